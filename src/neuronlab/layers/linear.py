"""The affine (fully-connected) layer ``y = x W + b`` and the input helpers layers share."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import blas

from neuronlab._validation import (
    FLOAT_DTYPES,
    as_rng,
    check_float_dtype,
    check_number,
    check_positive_int,
)
from neuronlab.init import initialize
from neuronlab.layers.base import Layer
from neuronlab.registry import INITIALIZERS, LAYERS

__all__ = ["Linear"]

# BLAS GEMM with beta=1 adds A·B into C in place: the dW accumulation without a temporary.
_GEMM = {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}


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
    x2 = x.reshape(x.shape[0], -1)
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
    gemm = _GEMM.get(g.dtype)
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


@LAYERS.register("linear")
class Linear(Layer):
    """Fully-connected layer: ``y = x W + b``.

    Parameters
    ----------
    n_in : int
        Input features; an input of shape (n_samples, ...) is flattened row-major to
        (n_samples, n_in).
    n_out : int
        Output units (neurons).
    init : str
        Weight initialiser name from ``INITIALIZERS`` (he, glorot, lecun, normal, sparse, zeros).
    bias : float
        Initial value of every bias (the notes: 0, or 0.01 for ReLU units).
    rng : None, int or numpy Generator
        Randomness for the initial weights.
    dtype : float32 or float64
        Parameter dtype.

    Attributes
    ----------
    params : {"W": ndarray of shape (n_in, n_out), "b": ndarray of shape (n_out,)}
    """

    weight_names = ("W",)
    bias_names = ("b",)

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        init: str = "he",
        bias: float = 0.0,
        rng: Any = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        self.n_in = check_positive_int("n_in", n_in)
        self.n_out = check_positive_int("n_out", n_out)
        INITIALIZERS.get(init)  # unknown names fail here, listing the choices
        self.init = init
        self.bias = check_number("bias", bias)
        dt = check_float_dtype("dtype", dtype)
        self._seed = seed_config(rng)
        self.add_param("W", initialize(init, (self.n_in, self.n_out), as_rng(rng), dtype=dt))
        self.add_param("b", np.full(self.n_out, self.bias, dtype=dt))
        self._x: np.ndarray | None = None
        self._in_shape: tuple[int, ...] = ()

    @property
    def n_neurons(self) -> int:
        return self.n_out

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """x : (n_samples, n_in) or (n_samples, ...) -> (n_samples, n_out)."""
        x2 = as_2d(self, x, self.n_in)
        W, b = self.params["W"], self.params["b"]
        if W.dtype != x2.dtype:  # the input dtype is the compute dtype
            W, b = W.astype(x2.dtype), b.astype(x2.dtype)
        out = x2 @ W
        out += b
        self._x, self._in_shape = x2, x.shape
        return out

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """dout : (n_samples, n_out). Adds dW = x.T dout and db = sum(dout) into grads;
        returns dx = dout W.T in the input's shape (or None when ``input_grad`` is False:
        the input layer skips that GEMM)."""
        x2 = self._cached(self._x)
        dout = check_dout(self, dout, (x2.shape[0], self.n_out))
        add_at_b(self.grads["W"], x2, dout)
        self.grads["b"] += dout.sum(axis=0)
        if not input_grad:
            return None
        W = self.params["W"]
        dx = dout @ (W if W.dtype == dout.dtype else W.astype(dout.dtype)).T
        return dx.reshape(self._in_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "init": self.init,
            "bias": self.bias,
            **self._seed,
            "dtype": dtype_name(self, np.float32),
        }
