"""Argument checks shared by the whole package. Every error names the argument and the value."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "FLOAT_DTYPES",
    "as_rng",
    "check_array",
    "check_float_dtype",
    "check_labels",
    "check_number",
    "check_positive_int",
]

FLOAT_DTYPES = (np.float32, np.float64)


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise if it is not an integer > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}: {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return int(value)


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real number in the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (v < low or (v == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {op} {low}, got {value!r}")
    if high is not None and (v > high or (v == high and not high_inclusive)):
        op = "<=" if high_inclusive else "<"
        raise ValueError(f"{name} must be {op} {high}, got {value!r}")
    return v


def check_array(
    name: str,
    x: Any,
    *,
    min_ndim: int = 2,
    finite: bool = True,
) -> np.ndarray:
    """Check that ``x`` is a float32/float64 ndarray with at least ``min_ndim`` dimensions,
    a non-empty first axis and (optionally) only finite values. Returns it unchanged."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions (n_samples, n_features), "
            f"got shape {x.shape}; reshape 1-D data with x.reshape(-1, 1) or x.reshape(1, -1)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {x.shape}")
    # the ufunc's reduce, not ndarray.all(): its Python wrapper is a µs per call, and losses
    # check every batch's scores
    if finite and not np.logical_and.reduce(np.isfinite(x), axis=None):
        raise ValueError(f"{name} contains NaN or Inf")
    return x


def check_labels(name: str, y: object, n_samples: int, n_classes: int | None = None) -> np.ndarray:
    """Check integer class labels of shape (n_samples,) in [0, n_classes)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels of shape ({n_samples},), got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} labels but scores have {n_samples} rows")
    if y.dtype.kind not in "iu":  # not an integer dtype (a kind test is cheaper than issubdtype)
        if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if n_classes is not None and y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)][0]
        raise ValueError(f"{name} must be in [0, {n_classes}), got label {int(bad)}")
    return y


def as_rng(seed: Any) -> np.random.Generator:
    """Turn ``None``, an int seed or a Generator into a Generator (scikit-learn's random_state idea)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)  # type: ignore[arg-type]  # stub lacks Integral
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(seed).__name__}")


def check_float_dtype(name: str, dtype: Any) -> np.dtype:
    """Return ``dtype`` as a numpy dtype, or raise unless it is float32 or float64."""
    try:
        # np.dtype(None) would mean float64
        dt: np.dtype | None = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt is None or dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}")
    return dt
