"""Train / validation / test splits, stratified by class and reproducible from a seed.

:func:`split_indices` splits *indices* only, so a memory-mapped X of any size is never
copied; :func:`train_val_test_split` is the in-memory convenience that gathers the rows.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from neuronlab._validation import as_rng, check_number

__all__ = ["Split", "SplitIndices", "split_indices", "train_val_test_split"]


class SplitIndices(NamedTuple):
    """Sorted int64 row indices of each part (sorted: reading a memmap in file order)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


class Split(NamedTuple):
    """The six arrays of a train / validation / test split."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _allocate(counts: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` among classes in proportion to ``counts`` (largest remainder method).

    Each class gets floor(share); the leftover units go to the classes with the largest
    fractional parts (ties broken at random), so the parts sum to ``total`` exactly and no
    class gets more than it has.
    """
    share = counts * (total / counts.sum())
    base: np.ndarray = np.floor(share).astype(np.int64)
    left = total - int(base.sum())
    if left > 0:
        order = np.lexsort((rng.random(counts.size), -(share - base)))
        base[order[:left]] += 1
    return base


def _part_size(name: str, fraction: float, n: int) -> int:
    size = math.floor(fraction * n + 0.5)  # round half up: 25% of 1797 -> 449
    if fraction > 0 and size == 0:
        raise ValueError(
            f"{name}={fraction!r} of {n} samples gives an empty set; use a larger {name}"
        )
    return size


def split_indices(
    y: np.ndarray,
    *,
    val_size: float = 0.15,
    test_size: float = 0.25,
    stratify: bool = True,
    seed: Any = 0,
) -> SplitIndices:
    """Split row indices 0..n-1 into train, validation and test parts.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Labels (used for stratification; only the length matters when ``stratify`` is False).
    val_size, test_size : float in [0, 1)
        Fractions of all samples, rounded to the nearest count; their sum must be < 1.
        0 gives an empty part.
    stratify : bool, default True
        Keep each class's proportion in every part (as close as whole counts allow).
    seed : None, int or np.random.Generator
        The same seed gives the same split.

    Returns
    -------
    SplitIndices
        ``train``, ``val``, ``test``: sorted int64 arrays that together cover every row once.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D of shape (n_samples,), got shape {y.shape}")
    n = y.shape[0]
    if n == 0:
        raise ValueError("y is empty: cannot split 0 samples")
    val_size = check_number("val_size", val_size, low=0, high=1, high_inclusive=False)
    test_size = check_number("test_size", test_size, low=0, high=1, high_inclusive=False)
    if val_size + test_size >= 1:
        raise ValueError(
            "val_size + test_size must be < 1 to leave training data, "
            f"got {val_size!r} + {test_size!r}"
        )
    if not isinstance(stratify, (bool, np.bool_)):
        raise TypeError(f"stratify must be a bool, got {type(stratify).__name__}: {stratify!r}")
    rng = as_rng(seed)
    n_test = _part_size("test_size", test_size, n)
    n_val = _part_size("val_size", val_size, n)
    if n_test + n_val >= n:
        raise ValueError(
            f"val_size={val_size!r} and test_size={test_size!r} leave no training data "
            f"from {n} samples"
        )

    if not stratify:
        perm = rng.permutation(n)
        parts = perm[n - n_test - n_val : n - n_test], perm[n - n_test :]
        train_rows = perm[: n - n_test - n_val]
        return SplitIndices(np.sort(train_rows), np.sort(parts[0]), np.sort(parts[1]))

    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    test_per_class = _allocate(counts, n_test, rng)
    rest = counts - test_per_class
    val_per_class = _allocate(rest, n_val, rng) if n_val else np.zeros_like(counts)
    # Rows grouped by class (stable sort), each group shuffled, then cut test | val | train.
    by_class = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    train, val, test = [], [], []
    for c in range(classes.size):
        members = rng.permutation(by_class[starts[c] : starts[c + 1]])
        t, v = test_per_class[c], val_per_class[c]
        test.append(members[:t])
        val.append(members[t : t + v])
        train.append(members[t + v :])
    return SplitIndices(*(np.sort(np.concatenate(p)).astype(np.int64) for p in (train, val, test)))


def train_val_test_split(
    X: np.ndarray,
    y: np.ndarray,
    *,
    val_size: float = 0.15,
    test_size: float = 0.25,
    stratify: bool = True,
    seed: Any = 0,
) -> Split:
    """Split in-memory data into train, validation and test sets.

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...)
    y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Class labels when ``stratify`` (the default); for regression targets pass
        ``stratify=False``.
    val_size, test_size, stratify, seed
        As in :func:`split_indices`.

    Returns
    -------
    Split
        ``(X_train, y_train, X_val, y_val, X_test, y_test)``, rows in their original order.

    Notes
    -----
    Gathering rows copies them. For a memory-mapped X use :func:`split_indices` and read
    minibatches with :func:`neuronlab.data.iterate_minibatches` instead.
    """
    if not hasattr(X, "shape") or len(X.shape) < 1:
        raise TypeError(f"X must be an array of shape (n_samples, ...), got {type(X).__name__}")
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have different numbers of samples: {X.shape[0]} and {y.shape[:1]}"
        )
    if stratify and y.ndim != 1:
        raise ValueError(f"stratify=True needs 1-D class labels, got y of shape {y.shape}")
    idx = split_indices(
        y if y.ndim == 1 else np.zeros(y.shape[0]),
        val_size=val_size,
        test_size=test_size,
        stratify=stratify,
        seed=seed,
    )
    return Split(X[idx.train], y[idx.train], X[idx.val], y[idx.val], X[idx.test], y[idx.test])
