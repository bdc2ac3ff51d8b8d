"""Stratified, reproducible train / validation / test splits."""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.data import split_indices, train_val_test_split


def labels(counts: list[int], rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


def test_golden_stratified_counts(rng):
    # 100 samples, classes of 60 / 30 / 10. test_size 0.2 -> 20 test rows split 60:30:10,
    # i.e. 12, 6, 2. The remaining 48 / 24 / 8 (80 rows) give the 10 validation rows in the
    # same ratio: 6, 3, 1. Training keeps 42, 21, 7.
    y = labels([60, 30, 10], rng)
    idx = split_indices(y, val_size=0.1, test_size=0.2, seed=0)
    np.testing.assert_array_equal(np.bincount(y[idx.test]), [12, 6, 2])
    np.testing.assert_array_equal(np.bincount(y[idx.val]), [6, 3, 1])
    np.testing.assert_array_equal(np.bincount(y[idx.train]), [42, 21, 7])


def test_partition_and_proportions_on_digits():
    X, y = nl.data.digits()
    idx = split_indices(y)  # defaults: val 0.15, test 0.25
    n = len(y)
    assert len(idx.test) == 449  # round(0.25 * 1797 = 449.25)
    assert len(idx.val) == 270  # round(0.15 * 1797 = 269.55)
    everything = np.concatenate(idx)
    np.testing.assert_array_equal(np.sort(everything), np.arange(n))  # disjoint and complete
    for part in idx:
        assert part.dtype == np.int64
        assert np.all(np.diff(part) > 0)  # sorted (sequential memmap reads)
    counts = np.bincount(y)
    # largest remainder: every class is within one row of its exact share of the test set
    assert np.all(np.abs(np.bincount(y[idx.test], minlength=10) - counts * 449 / n) < 1)
    # validation shares are taken from what the test split left: within one row of those
    rest = counts - np.bincount(y[idx.test], minlength=10)
    assert np.all(np.abs(np.bincount(y[idx.val], minlength=10) - rest * 270 / rest.sum()) < 1)


def test_reproducible_and_seed_dependent(rng):
    y = labels([50, 50, 40], rng)
    a = split_indices(y, seed=3)
    b = split_indices(y, seed=3)
    c = split_indices(y, seed=4)
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a.test, c.test)
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    np.testing.assert_array_equal(split_indices(y, seed=g1).test, split_indices(y, seed=g2).test)


def test_unstratified_sizes(rng):
    y = np.zeros(40, dtype=np.int64)
    idx = split_indices(y, val_size=0.25, test_size=0.5, stratify=False, seed=1)
    assert (len(idx.train), len(idx.val), len(idx.test)) == (10, 10, 20)
    np.testing.assert_array_equal(np.sort(np.concatenate(idx)), np.arange(40))


def test_train_val_test_split_gathers_matching_rows(rng):
    y = labels([30, 20, 10], rng)
    X = np.column_stack([np.arange(60.0), y]).astype(np.float32)  # row i = (i, y[i])
    s = train_val_test_split(X, y, val_size=0.2, test_size=0.2, seed=5)
    assert isinstance(s, nl.data.Split)
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (36, 12, 12)
    for Xp, yp in ((s.X_train, s.y_train), (s.X_val, s.y_val), (s.X_test, s.y_test)):
        np.testing.assert_array_equal(Xp[:, 1], yp)  # labels travel with their rows
        np.testing.assert_array_equal(yp, y[Xp[:, 0].astype(int)])
    np.testing.assert_array_equal(np.bincount(s.y_test), [6, 4, 2])  # 12 split 30:20:10
    # val_size=0 gives an empty validation part
    s0 = train_val_test_split(X, y, val_size=0.0, test_size=0.25, seed=5)
    assert s0.X_val.shape == (0, 2) and len(s0.y_train) == 45


def test_regression_targets_without_stratification(rng):
    X = rng.standard_normal((20, 3))
    y = rng.standard_normal((20, 2))
    s = train_val_test_split(X, y, stratify=False, val_size=0.1, test_size=0.2)
    assert s.y_test.shape == (4, 2) and s.X_train.shape == (14, 3)
    with pytest.raises(ValueError, match="stratify=True needs 1-D class labels"):
        train_val_test_split(X, y)


def test_split_errors(rng):
    y = labels([10, 10], rng)
    with pytest.raises(ValueError, match="val_size \\+ test_size must be < 1"):
        split_indices(y, val_size=0.5, test_size=0.5)
    with pytest.raises(ValueError, match="test_size must be < 1"):
        split_indices(y, test_size=1.0)
    with pytest.raises(ValueError, match="val_size must be >= 0"):
        split_indices(y, val_size=-0.1)
    with pytest.raises(TypeError, match="test_size must be a real number"):
        split_indices(y, test_size="0.2")
    with pytest.raises(ValueError, match="val_size=0.01 of 20 samples gives an empty set"):
        split_indices(y, val_size=0.01)
    with pytest.raises(ValueError, match="leave no training data from 2 samples"):
        split_indices(np.array([0, 1]), val_size=0.45, test_size=0.45)  # 1 + 1 of 2
    with pytest.raises(ValueError, match="y is empty"):
        split_indices(np.array([], dtype=np.int64))
    with pytest.raises(TypeError, match="stratify must be a bool"):
        split_indices(y, stratify="yes")
    with pytest.raises(ValueError, match="different numbers of samples: 5 and"):
        train_val_test_split(np.zeros((5, 2)), y)
