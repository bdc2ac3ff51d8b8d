"""Weight initialisers: pure functions ``(shape, rng) -> array`` chosen by name.

For a weight matrix of shape (n_in, n_out) (or (n_in, n_out, pieces) for maxout) the fan-in is
``shape[0]`` and the fan-out ``shape[1]``. Variances follow the notes: LeCun 1/n_in,
Glorot 2/(n_in + n_out), He 2/n_in.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from neuronlab._validation import as_rng, check_number, check_positive_int
from neuronlab.registry import INITIALIZERS

__all__ = ["initialize", "fans"]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Return (fan_in, fan_out) of a weight array of shape (n_in, n_out, ...).

    Trailing axes (a maxout layer's pieces) count in neither.

    Parameters
    ----------
    shape : tuple of int
        The weight array's shape, at least 2 dimensions.

    Returns
    -------
    (int, int)
        ``(shape[0], shape[1])``.

    Raises
    ------
    ValueError
        If ``shape`` has fewer than 2 dimensions.

    Examples
    --------
    >>> fans((784, 100))
    (784, 100)
    >>> fans((64, 32, 2))
    (64, 32)
    """
    if len(shape) < 2:
        raise ValueError(f"a weight shape needs at least 2 dimensions (n_in, n_out), got {shape}")
    return int(shape[0]), int(shape[1])


@INITIALIZERS.register("zeros")
def zeros(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """All zeros. For weights this is the symmetry trap: every unit computes the same thing
    and receives the same gradient, so they never differ."""
    warnings.warn(
        "zeros initialisation for weights makes every unit identical (the symmetry trap); "
        "use 'he', 'glorot' or 'lecun'",
        UserWarning,
        stacklevel=3,
    )
    return np.zeros(shape)


@INITIALIZERS.register("normal")
def normal(shape: tuple[int, ...], rng: np.random.Generator, std: float = 0.01) -> np.ndarray:
    """Small random numbers: N(0, std²) (the notes' 0.01 · randn)."""
    check_number("std", std, low=0, low_inclusive=False)
    w: np.ndarray = rng.standard_normal(shape) * std
    return w


@INITIALIZERS.register("lecun")
def lecun(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Calibrated variance 1/n_in: w = randn / sqrt(n_in)."""
    n_in, _ = fans(shape)
    w: np.ndarray = rng.standard_normal(shape) * np.sqrt(1.0 / n_in)
    return w


@INITIALIZERS.register("glorot")
def glorot(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Glorot & Bengio: variance 2 / (n_in + n_out)."""
    n_in, n_out = fans(shape)
    w: np.ndarray = rng.standard_normal(shape) * np.sqrt(2.0 / (n_in + n_out))
    return w


@INITIALIZERS.register("he")
def he(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """He et al. for ReLU networks: variance 2/n_in."""
    n_in, _ = fans(shape)
    w: np.ndarray = rng.standard_normal(shape) * np.sqrt(2.0 / n_in)
    return w


@INITIALIZERS.register("sparse")
def sparse(
    shape: tuple[int, ...], rng: np.random.Generator, connections: int = 10, std: float = 0.01
) -> np.ndarray:
    """Each unit connects to ``connections`` random inputs (weights N(0, std²)); the rest are 0."""
    check_positive_int("connections", connections)
    n_in, _ = fans(shape)
    k = min(connections, n_in)
    w = np.zeros(shape)
    units = int(np.prod(shape[1:]))
    flat = w.reshape(n_in, units)
    for u in range(units):
        rows = rng.choice(n_in, size=k, replace=False)
        flat[rows, u] = rng.standard_normal(k) * std
    return w


def initialize(
    name: str,
    shape: tuple[int, ...],
    rng: Any = None,
    *,
    dtype: Any = np.float32,
    **kwargs: Any,
) -> np.ndarray:
    """Create an array of ``shape`` with the initialiser called ``name``.

    Parameters
    ----------
    name : str
        One of ``INITIALIZERS.names()``: zeros, normal, lecun, glorot, he, sparse.
    shape : tuple of int
        (n_in, n_out) or (n_in, n_out, pieces).
    rng : None, int or numpy Generator
    dtype : numpy dtype of the result
    **kwargs : the initialiser's own options (``std`` for normal and sparse, ``connections``).
    """
    fn = INITIALIZERS.get(name)
    return np.asarray(fn(tuple(shape), as_rng(rng), **kwargs), dtype=dtype)
