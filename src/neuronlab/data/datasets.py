"""Small built-in data sets: scikit-learn's 8x8 digits and 2-D toy problems.

Every function returns ``(X, y)`` with X float32 of shape (n_samples, n_features) and y int64
class labels of shape (n_samples,). Random ones take ``seed`` (None, an int or a
``np.random.Generator``); the same int gives the same data. ``load_dataset(name, **kw)``
resolves the names the CLI and config files use.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from neuronlab._validation import as_rng, check_number, check_positive_int
from neuronlab.registry import Registry

__all__ = [
    "DATASETS",
    "DIGITS_IMAGE_SHAPE",
    "blobs",
    "circles",
    "digits",
    "load_dataset",
    "moons",
    "spiral",
    "xor",
]

DATASETS: Registry[Callable[..., tuple[np.ndarray, np.ndarray]]] = Registry("dataset")

DIGITS_IMAGE_SHAPE: tuple[int, int] = (8, 8)
"""Each digits row is an 8x8 image flattened row-major: ``X[i].reshape(DIGITS_IMAGE_SHAPE)``."""


def _as_xy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(X, dtype=np.float32), np.ascontiguousarray(y, dtype=np.int64)


def _sklearn_seed(seed: Any) -> int:
    """scikit-learn's generators take an int or a RandomState, not a numpy Generator: pass
    an int through unchanged (same data as scikit-learn with that random_state) and draw one
    from the Generator otherwise."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return int(seed)
    return int(as_rng(seed).integers(0, 2**31 - 1))


@DATASETS.register("digits")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits (a copy of the UCI test set).

    Returns
    -------
    X : ndarray of shape (1797, 64), float32
        8x8 grey-level images (see ``DIGITS_IMAGE_SHAPE``), pixel counts 0..16 divided by 16
        so that every value lies in [0, 1].
    y : ndarray of shape (1797,), int64
        The digit, 0..9.
    """
    import gzip
    import importlib.util
    from pathlib import Path

    # scikit-learn's own file, read without importing scikit-learn (about a second of CPU on
    # every run that uses digits): rows of 64 pixel counts then the label, comma-separated
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the digits data set ships with scikit-learn: pip install scikit-learn")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt", encoding="ascii") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    return _as_xy(table[:, :-1] / 16.0, table[:, -1].astype(np.int64))


@DATASETS.register("spiral")
def spiral(
    n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, seed: Any = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The notes' K-class spiral, which no linear classifier separates.

    For class j, point i of N: r = i / (N - 1) (linspace(0, 1, N)),
    θ = linspace(4j, 4(j + 1), N)[i] + noise · ε with ε ~ N(0, 1), and x = (r sin θ, r cos θ).
    Rows are grouped by class (class 0 first), as in the notes; trainers shuffle.

    Parameters
    ----------
    n_per_class : int, default 100
        Points per class (> 0).
    n_classes : int, default 3
        Number of spiral arms (> 0).
    noise : float, default 0.2
        Standard deviation of the noise added to each angle θ (>= 0).
    seed : None, int or numpy Generator, default 0
        Randomness; the same int gives the same data.

    Returns
    -------
    X : ndarray of shape (n_per_class * n_classes, 2), float32
    y : ndarray of shape (n_per_class * n_classes,), int64

    Examples
    --------
    >>> X, y = spiral(n_per_class=50, n_classes=3)
    >>> X.shape, y.shape, X.dtype, y.dtype
    ((150, 2), (150,), dtype('float32'), dtype('int64'))
    """
    n = check_positive_int("n_per_class", n_per_class)
    k = check_positive_int("n_classes", n_classes)
    noise = check_number("noise", noise, low=0)
    rng = as_rng(seed)
    r = np.tile(np.linspace(0.0, 1.0, n), k)
    theta = np.concatenate([np.linspace(4.0 * j, 4.0 * (j + 1), n) for j in range(k)])
    theta += noise * rng.standard_normal(n * k)
    X = np.column_stack([r * np.sin(theta), r * np.cos(theta)])
    return _as_xy(X, np.repeat(np.arange(k), n))


@DATASETS.register("circles")
def circles(
    n: int = 200, noise: float = 0.1, factor: float = 0.5, seed: Any = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles (scikit-learn's ``make_circles``): class 1 is the inner one.

    Needs scikit-learn.

    Parameters
    ----------
    n : int, default 200
        Number of points (> 0), split between the two circles.
    noise : float, default 0.1
        Standard deviation of the gaussian noise added to each coordinate (>= 0).
    factor : float, default 0.5
        Inner radius relative to the outer radius 1, in (0, 1).
    seed : None, int or numpy Generator, default 0
        Randomness; the same int gives the same data.

    Returns
    -------
    X : ndarray of shape (n, 2), float32
    y : ndarray of shape (n,), int64
    """
    from sklearn.datasets import make_circles

    n = check_positive_int("n", n)
    noise = check_number("noise", noise, low=0)
    factor = check_number(
        "factor", factor, low=0, high=1, low_inclusive=False, high_inclusive=False
    )
    X, y = make_circles(n_samples=n, noise=noise, factor=factor, random_state=_sklearn_seed(seed))
    return _as_xy(X, y)


@DATASETS.register("moons")
def moons(n: int = 200, noise: float = 0.1, seed: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (scikit-learn's ``make_moons``); needs scikit-learn.

    Parameters
    ----------
    n : int, default 200
        Number of points (> 0), split between the two moons.
    noise : float, default 0.1
        Standard deviation of the gaussian noise added to each coordinate (>= 0).
    seed : None, int or numpy Generator, default 0
        Randomness; the same int gives the same data.

    Returns
    -------
    X : ndarray of shape (n, 2), float32
    y : ndarray of shape (n,), int64
    """
    from sklearn.datasets import make_moons

    n = check_positive_int("n", n)
    noise = check_number("noise", noise, low=0)
    X, y = make_moons(n_samples=n, noise=noise, random_state=_sklearn_seed(seed))
    return _as_xy(X, y)


@DATASETS.register("xor")
def xor(n: int = 200, noise: float = 0.25, seed: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four gaussian clusters at (±1, ±1); the label is 1 where the two signs differ.

    The classic problem a single linear layer cannot solve. The corners are used in turn
    (balanced classes: sample i sits at corner i mod 4), rows in random order; each point is
    its corner plus ``noise`` · N(0, I).

    Parameters
    ----------
    n : int, default 200
        Number of points (> 0).
    noise : float, default 0.25
        Standard deviation of the gaussian noise around each corner (>= 0).
    seed : None, int or numpy Generator, default 0
        Randomness; the same int gives the same data.

    Returns
    -------
    X : ndarray of shape (n, 2), float32
    y : ndarray of shape (n,), int64

    Examples
    --------
    >>> X, y = xor(n=8, noise=0.0)
    >>> sorted(set(map(tuple, X.tolist())))
    [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)]
    >>> int(y.sum())
    4
    """
    n = check_positive_int("n", n)
    noise = check_number("noise", noise, low=0)
    rng = as_rng(seed)
    corner = rng.permutation(np.arange(n) % 4)
    # corner c -> signs (s0, s1) = (±1, ±1) from its two bits; label = bit0 xor bit1.
    b0, b1 = corner & 1, (corner >> 1) & 1
    X = np.column_stack([2.0 * b0 - 1.0, 2.0 * b1 - 1.0]) + noise * rng.standard_normal((n, 2))
    return _as_xy(X, b0 ^ b1)


@DATASETS.register("blobs")
def blobs(
    n: int = 300,
    n_classes: int = 3,
    n_features: int = 2,
    std: float = 1.0,
    seed: Any = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic gaussian blobs, one per class (scikit-learn's ``make_blobs``).

    Centres are drawn uniformly in [-10, 10]^n_features; each point is its centre plus
    ``std`` · N(0, I). Classes are as balanced as n allows. Needs scikit-learn.

    Parameters
    ----------
    n : int, default 300
        Number of points (> 0).
    n_classes : int, default 3
        Number of blobs (> 0).
    n_features : int, default 2
        Dimensions of each point (> 0).
    std : float, default 1.0
        Standard deviation of each blob (>= 0).
    seed : None, int or numpy Generator, default 0
        Randomness; the same int gives the same data.

    Returns
    -------
    X : ndarray of shape (n, n_features), float32
    y : ndarray of shape (n,), int64
    """
    from sklearn.datasets import make_blobs

    n = check_positive_int("n", n)
    k = check_positive_int("n_classes", n_classes)
    d = check_positive_int("n_features", n_features)
    std = check_number("std", std, low=0)
    X, y = make_blobs(
        n_samples=n, n_features=d, centers=k, cluster_std=std, random_state=_sklearn_seed(seed)
    )
    return _as_xy(X, y)


def load_dataset(name: str, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Load a built-in data set by name ("digits", "spiral", "circles", "moons", "xor",
    "blobs") with that function's keyword arguments.

    For CIFAR-10 (which needs a folder and returns a train/test pair) call
    :func:`neuronlab.data.cifar10` directly.

    Parameters
    ----------
    name : str
        A data set name.
    **kwargs
        Keyword arguments of that data set's function (``n=...``, ``noise=...``).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
    y : ndarray of shape (n_samples,), int64

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the choices) or a value is out of range.
    TypeError
        If a keyword is not one the data set takes (the message names it and the valid
        ones).

    Examples
    --------
    >>> X, y = load_dataset("spiral", n_per_class=10, n_classes=2)
    >>> X.shape
    (20, 2)
    """
    fn = DATASETS.get(name)
    try:
        return fn(**kwargs)
    except TypeError as err:
        import inspect

        allowed = list(inspect.signature(fn).parameters)
        bad = sorted(set(kwargs) - set(allowed))
        if bad:
            raise TypeError(
                f"data set {name!r} got unknown option(s) {bad}; valid options: {allowed}"
            ) from err
        raise
