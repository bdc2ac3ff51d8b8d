"""Helpers every layer module shares: cheap input checks, in-place dW accumulation, config bits."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import FLOAT_DTYPES
from neuronlab.layers.base import Layer

__all__ = ["add_at_b", "as_2d", "check_dout", "check_input", "dtype_name", "seed_config"]

# BLAS GEMM with beta=1 adds A·B into C in place: the dW accumulation without a temporary.
# Filled by the first backward: scipy.linalg takes 0.2-0.3 s to import, which
# `import neuronlab` does not pay.
_GEMM: dict[np.dtype[Any], Any] = {}


def _gemms() -> dict[np.dtype[Any], Any]:
    if not _GEMM:
        from scipy.linalg import blas

        _GEMM.update({np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm})
    return _GEMM


def check_input(layer: Layer, x: Any) -> np.ndarray:
    """Cheap per-call check that ``x`` is a float32/float64 ndarray with a batch axis.

    The full check (finite values, widths) happens once in ``Sequential.forward``; a layer
    only guards against the mistakes that would otherwise give a confusing NumPy error.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{type(layer).__name__}: x must be a numpy ndarray, got {type(x).__name__}"
        )
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{type(layer).__name__}: x must have dtype float32 or float64, got {x.dtype}"
        )
    if x.ndim < 2:
        raise ValueError(
            f"{type(layer).__name__}: x must have at least 2 dimensions (n_samples, n_features), "
            f"got shape {x.shape}; reshape 1-D data with x.reshape(-1, 1) or x.reshape(1, -1)"
        )
    return x


def as_2d(layer: Layer, x: Any, width: int, what: str = "n_in") -> np.ndarray:
    """Check ``x`` and view it as (n_samples, width), flattening trailing axes row-major
    (a view, not a copy, for contiguous input)."""
    check_input(layer, x)
    x2: np.ndarray = x.reshape(x.shape[0], -1)
    if x2.shape[1] != width:
        raise ValueError(
            f"{type(layer).__name__}: x has {x2.shape[1]} features per sample "
            f"(shape {x.shape}), expected {what}={width}"
        )
    return x2


def check_dout(layer: Layer, dout: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Check that the upstream gradient matches the shape of the last output."""
    if not isinstance(dout, np.ndarray) or dout.shape != shape:
        got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
        raise ValueError(
            f"{type(layer).__name__}.backward: dout must have shape {shape}, got {got}"
        )
    return dout


def add_at_b(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """``g += a.T @ b`` in place, for g of shape (k, m), a (n, k) and b (n, m).

    When all three share a dtype and are C-contiguous, one BLAS call does it: ``g.T`` is a
    Fortran-ordered (m, k) array equal to ``b.T @ a``, so GEMM with beta=1 accumulates into
    g's own memory (no (k, m) temporary, one pass less over g than ``g += a.T @ b``).
    """
    gemm = (_GEMM or _gemms()).get(g.dtype)
    if (
        gemm is not None
        and a.dtype == g.dtype
        and b.dtype == g.dtype
        and g.flags.c_contiguous
        and a.flags.c_contiguous
        and b.flags.c_contiguous
    ):
        gemm(1.0, b.T, a.T, beta=1.0, c=g.T, trans_b=1, overwrite_c=1)
    else:
        np.add(g, a.T @ b, out=g, casting="same_kind")


def dtype_name(layer: Layer, default: Any) -> str:
    """The parameters' current dtype as a config string (``astype`` may have changed it)."""
    return str(layer.dtype if layer.dtype is not None else np.dtype(default))


def seed_config(seed: Any) -> dict[str, int]:
    """``{"rng": seed}`` when the seed is a plain int (JSON-able and reproducible), else ``{}``."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return {"rng": int(seed)}
    return {}
