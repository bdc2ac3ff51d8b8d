"""Baselines and data checks: golden values from closed forms and from data built with known
duplicates and conflicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.babysit import baselines as bl
from neuronlab.babysit.baselines import (
    Baselines,
    baselines,
    baselines_for_run,
    conflicting_labels,
    duplicates_across,
)


# -- the constant baselines ------------------------------------------------------------------
def test_majority_class_accuracy_and_frequency_loss_are_the_closed_forms():
    """Training labels 0 x2, 1 x3, 2 x5: the majority class is 2, its accuracy on the
    evaluation labels is their share of 2s, and the softmax loss of predicting the training
    frequencies (0.2, 0.3, 0.5) is -mean ln f[y]."""
    y_tr = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    y_ev = np.array([0, 1, 2, 2, 2, 1, 0, 2])
    X_tr, X_ev = np.zeros((10, 3)), np.zeros((8, 3))
    b = baselines(X_tr, y_tr, X_ev, y_ev, task="classification", linear=False)
    assert b.constant_value == 2 and b.constant_name == "majority class"
    assert b.constant == 4 / 8
    expected = -(2 * math.log(0.2) + 2 * math.log(0.3) + 4 * math.log(0.5)) / 8
    assert b.constant_loss == pytest.approx(expected, rel=1e-12)
    assert b.linear is None and b.metric == "acc" and b.degenerate == ""
    assert (b.n_train, b.n_eval) == (10, 8)


def test_majority_ties_go_to_the_smallest_label_and_absent_classes_cost_infinity():
    y_tr = np.array([3, 1, 3, 1, 0])
    b = baselines(np.zeros((5, 2)), y_tr, np.zeros((3, 2)), np.array([1, 2, 3]),
                  task="classification", linear=False)
    assert b.constant_value == 1 and b.constant == pytest.approx(1 / 3)
    assert b.constant_loss == math.inf  # class 2 never occurs in training: f = 0
    assert b.to_dict()["constant_loss"] is None
    json.dumps(b.to_dict())


def test_sigmoid_binary_and_multilabel_constants():
    """Binary sigmoid cross-entropy of p = P(y=1) in training; multilabel: each attribute's
    majority (0 on a tie) and the sum over attributes of the binary cross-entropies."""
    y_tr = np.array([1, 1, 1, 0])
    y_ev = np.array([1, 0])
    b = baselines(np.zeros((4, 1)), y_tr, np.zeros((2, 1)), y_ev, task="classification",
                  loss=nl.SigmoidCrossEntropy(), linear=False)
    assert b.constant == 0.5 and b.constant_value == 1
    assert b.constant_loss == pytest.approx(-(math.log(0.75) + math.log(0.25)) / 2)

    Y_tr = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 1], [1, 0, 0]])  # p = 1, 0.25, 0.5
    Y_ev = np.array([[1, 0, 0], [0, 1, 1]])
    m = baselines(np.zeros((4, 2)), Y_tr, np.zeros((2, 2)), Y_ev, task="multilabel", linear=False)
    assert m.constant_value == [1, 0, 0] and m.constant_name == "majority of each attribute"
    assert m.constant == pytest.approx(3 / 6)  # row 1 all right, row 2 all wrong
    row1 = -(0.0 + math.log(0.75) + math.log(0.5))
    row2 = math.inf  # attribute 0 is 1 in every training row: ln(1 - 1) = -inf
    assert m.constant_loss == pytest.approx((row1 + row2) / 2)


def test_regression_baselines_equal_the_closed_forms():
    """The training mean's MSE and the least-squares fit's MSE, checked against the normal
    equations solved independently; the MSE loss sums over targets, the metric averages."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    Y = np.column_stack([X @ [1.0, -2.0, 0.5, 0.0] + 3.0, X[:, 0] ** 2]) + 0.3 * rng.standard_normal((300, 2))
    Xt, Yt, Xe, Ye = X[:200], Y[:200], X[200:], Y[200:]
    b = baselines(Xt, Yt, Xe, Ye, task="regression")
    mean = Yt.mean(axis=0)
    assert b.constant == pytest.approx(((Ye - mean) ** 2).mean(), rel=1e-12)
    assert b.constant_value == pytest.approx(mean.tolist())
    A = np.column_stack([Xt, np.ones(200)])
    coef = np.linalg.solve(A.T @ A, A.T @ Yt)
    pred = np.column_stack([Xe, np.ones(100)]) @ coef
    assert b.linear == pytest.approx(((pred - Ye) ** 2).mean(), rel=1e-9)
    assert b.linear_loss == pytest.approx(((pred - Ye) ** 2).sum(axis=1).mean(), rel=1e-9)
    assert b.constant_loss == pytest.approx(2 * b.constant, rel=1e-9)  # two targets
    assert b.metric == "error" and b.linear_rows == 200


def test_an_exactly_linear_target_is_fitted_exactly_and_constant_targets_are_degenerate():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 3))
    y = X @ [2.0, -1.0, 0.25] - 4.0
    b = baselines(X[:40], y[:40], X[40:], y[40:], task="regression")
    assert b.linear < 1e-20 and b.constant > 1
    flat = baselines(X[:40], np.full(40, 7.0), X[40:], y[40:], task="regression")
    assert "constant" in flat.degenerate
    one = baselines(X[:40], np.zeros(40, int), X[40:], np.zeros(20, int), task="classification",
                    linear=False)
    assert "one class" in one.degenerate


# -- the linear classifier -------------------------------------------------------------------
def test_the_linear_baseline_separates_separable_data_and_fails_on_xor():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 2)).astype(np.float32)
    y = (X @ [1.0, -1.0] > 0).astype(np.int64)
    keep = np.abs(X @ [1.0, -1.0]) > 0.2  # a margin
    X, y = X[keep], y[keep]
    b = baselines(X[:200], y[:200], X[200:], y[200:], task="classification", seed=0)
    assert b.linear >= 0.99 and b.linear_rows == 200
    Xx, yx = nl.data.xor(n=400, seed=0)
    bx = baselines(Xx[:200], yx[:200], Xx[200:], yx[200:], task="classification", seed=0)
    assert abs(bx.constant - 0.5) < 0.1 and bx.linear < 0.65


def test_the_linear_baseline_trains_with_the_networks_loss_and_caps_its_rows():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    b = baselines(X[:250], y[:250], X[250:], y[250:], task="classification",
                  loss=nl.BinaryHinge(), max_rows=100)
    assert b.linear_rows == 100 and b.n_train == 250 and b.linear >= 0.9
    assert b.constant_loss is None  # no constant loss for a hinge
    assert "BinaryHinge" in b.linear_how and "100 rows" in b.linear_how
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(np.int64)
    m = baselines(X[:250], Y[:250], X[250:], Y[250:], task="multilabel")
    assert m.linear >= 0.9


def test_arguments_are_checked():
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="task must be one of"):
        baselines(X, y, X, y, task="ranking")
    with pytest.raises(ValueError, match="is for 'regression'"):
        baselines(X, y, X, y, task="classification", loss=nl.MeanSquaredError())
    with pytest.raises(ValueError, match="X_eval has no rows"):
        baselines(X, y, X[:0], y[:0], task="classification")
    with pytest.raises(ValueError, match="different row shapes"):
        baselines(X, y, np.zeros((4, 3)), y, task="classification")
    with pytest.raises(ValueError, match="X_train has 4 samples but y_train"):
        baselines(X, y[:3], X, y, task="classification")
    with pytest.raises(ValueError, match="integer class labels"):
        baselines(X, y + 0.5, X, y, task="classification")
    with pytest.raises(ValueError, match="use task='multilabel'"):
        baselines(X, np.eye(4, 2, dtype=int), X, np.eye(4, 2, dtype=int), task="classification")


# -- the sentences ---------------------------------------------------------------------------
def _acc(constant: float, linear: float | None) -> Baselines:
    return Baselines(task="classification", metric="acc", constant=constant,
                     constant_name="majority class", constant_value=1, constant_loss=2.3,
                     linear=linear, linear_loss=0.3, linear_name="linear baseline",
                     linear_how="", n_train=100, n_eval=50, linear_rows=100, part="val")


def test_compare_accuracy_sentences():
    b = _acc(0.102, 0.917)
    assert b.compare({"val_acc": 0.978, "val_loss": 0.1}) == (
        "the network beats the linear baseline by 6.1 points of accuracy (97.8% vs 91.7%) "
        "and the majority class by 87.6 points (97.8% vs 10.2%)")
    assert b.compare({"acc": 0.9}) == (
        "the network does not beat the linear baseline (90.0% vs 91.7% accuracy, 1.7 points "
        "below); it beats the majority class by 79.8 points (90.0% vs 10.2%)")
    assert b.compare({"test_acc": 0.05}) == (
        "the network does not beat the linear baseline (5.0% vs 91.7% accuracy, 86.7 points "
        "below) nor the majority class (10.2%)")
    assert "does not beat" in b.compare({"acc": 0.917})  # a tie does not beat
    assert _acc(0.5, None).compare({"acc": 0.75}) == (
        "the network beats the majority class by 25.0 points of accuracy (75.0% vs 50.0%)")
    assert "not finite" in b.compare({"acc": math.nan})
    with pytest.raises(KeyError, match="no 'acc'"):
        b.compare({"error": 0.1})
    assert b.summary() == ("majority class 10.2% accuracy (loss 2.3), linear baseline 91.7% "
                           "(loss 0.3) on 50 validation rows")


def test_compare_regression_sentences():
    b = Baselines(task="regression", metric="error", constant=1.0, constant_name="training mean",
                  constant_value=0.0, constant_loss=1.0, linear=0.4, linear_loss=0.4,
                  linear_name="linear baseline", linear_how="", n_train=100, n_eval=20,
                  linear_rows=100, part="test")
    assert b.compare({"error": 0.1}) == (
        "the network beats the linear baseline: mean squared error 0.1 vs 0.4 (75% lower) "
        "and the training mean (1, 10 times lower)")
    assert b.compare({"val_error": 0.5}) == (
        "the network does not beat the linear baseline (mean squared error 0.5 vs 0.4, 25% "
        "higher); it beats the training mean (1, 50% lower)")
    assert b.summary() == ("mean squared error of the training mean 1, of the linear "
                           "baseline 0.4 on 20 test rows")


# -- duplicates ------------------------------------------------------------------------------
def _planted() -> tuple[np.ndarray, np.ndarray]:
    """X_a: 100 random rows, row 50 a copy of row 17. X_b: 20 new rows with copies of rows
    3, 17, 17 and 42 of X_a at positions 2, 5, 11 and 19."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((100, 6)).astype(np.float32)
    A[50] = A[17]
    B = rng.standard_normal((20, 6)).astype(np.float32)
    for pos, src in ((2, 3), (5, 17), (11, 17), (19, 42)):
        B[pos] = A[src]
    return A, B


def test_duplicates_across_reports_the_planted_rows_exactly():
    A, B = _planted()
    r = duplicates_across(A, B)
    assert (r.n_a, r.n_b, r.n_duplicates) == (100, 20, 4)
    assert r.rows_b.tolist() == [2, 5, 11, 19]
    assert r.rows_a.tolist() == [3, 17, 17, 42]  # the first equal row of X_a
    assert r.fraction == 0.2 and r.examples[:2] == [(3, 2), (17, 5)]
    assert json.loads(json.dumps(r.to_dict()))["n_duplicates"] == 4
    assert duplicates_across(A, B + 1).n_duplicates == 0


def test_rows_compare_after_the_dtype_cast_bytewise():
    A, B = _planted()
    assert duplicates_across(A, B.astype(np.float64)).n_duplicates == 4  # float32 values, exactly
    near = B.copy()
    near[2, 0] = np.nextafter(near[2, 0], np.float32(np.inf))  # one ulp apart: not a duplicate
    assert duplicates_across(A, near).rows_b.tolist() == [5, 11, 19]
    Z = np.zeros((1, 6))
    negz = Z.copy()
    negz[0, 3] = -0.0
    assert duplicates_across(Z, negz).n_duplicates == 1  # -0.0 counts as 0.0
    with pytest.raises(ValueError, match="different row shapes"):
        duplicates_across(A, B[:, :5])


def test_rows_select_parts_and_keep_their_numbering():
    """Two parts of one array, as a run's split gives them."""
    A, B = _planted()
    X = np.concatenate([A, B])  # B's rows are 100..119
    train, test = np.arange(100), np.arange(100, 120)
    r = duplicates_across(X, X, rows_a=train, rows_b=test)
    assert r.rows_b.tolist() == [102, 105, 111, 119] and r.rows_a.tolist() == [3, 17, 17, 42]
    with pytest.raises(IndexError, match="outside"):
        duplicates_across(X, X, rows_a=[200])


def test_memmaps_in_chunks_and_hash_collisions_give_the_same_answer(tmp_path, monkeypatch):
    A, B = _planted()
    np.save(tmp_path / "A.npy", A)
    Am = np.load(tmp_path / "A.npy", mmap_mode="r")
    monkeypatch.setattr(bl, "_CHUNK_BYTES", 7 * 24)  # 7 rows per chunk
    r = duplicates_across(Am, B)
    assert r.rows_b.tolist() == [2, 5, 11, 19] and r.rows_a.tolist() == [3, 17, 17, 42]
    # every row with the same hash: the byte comparison alone decides
    monkeypatch.setattr(bl, "_hash_words", lambda words, salts: np.zeros(len(words), np.uint64))
    r = duplicates_across(Am, B)
    assert r.rows_b.tolist() == [2, 5, 11, 19] and r.rows_a.tolist() == [3, 17, 17, 42]
    c = conflicting_labels(*_conflicts())
    assert c.groups == [[0, 10, 20], [7, 8]] and c.n_repeated == 4


# -- conflicting labels ----------------------------------------------------------------------
def _conflicts() -> tuple[np.ndarray, np.ndarray]:
    """30 distinct rows, then: rows 0, 10, 20 identical (labels 1, 1, 2: a conflict), rows 5
    and 15 identical (labels 3, 3: no conflict), rows 7 and 8 identical (0 and 4: a conflict)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    y = rng.integers(0, 5, 30)
    X[10] = X[20] = X[0]
    y[[0, 10, 20]] = [1, 1, 2]
    X[15] = X[5]
    y[[5, 15]] = 3
    X[8] = X[7]
    y[[7, 8]] = [0, 4]
    return X, y


def test_conflicting_labels_reports_the_planted_groups_exactly():
    X, y = _conflicts()
    c = conflicting_labels(X, y)
    assert (c.n_rows, c.n_repeated, c.n_groups, c.n_conflicting_rows) == (30, 4, 2, 5)
    assert c.groups == [[0, 10, 20], [7, 8]] and c.labels == [[1, 1, 2], [0, 4]]
    # the best any function can do: label 1 for the first group (1 wrong), one of two (1 wrong)
    assert c.best_possible == pytest.approx(1 - 2 / 30) and c.metric == "acc"
    assert c.fraction == pytest.approx(5 / 30)
    json.dumps(c.to_dict())
    # a part of the rows, numbered as in X
    part = conflicting_labels(X, y, rows=np.arange(1, 30))
    assert part.groups == [[7, 8], [10, 20]] and part.n_repeated == 3 and part.n_rows == 29


def test_no_conflicts():
    X, y = _conflicts()
    y[[20, 8]] = [1, 0]
    c = conflicting_labels(X, y)
    assert c.n_groups == 0 and c.n_repeated == 4 and c.best_possible == 1.0 and c.groups == []
    assert conflicting_labels(X[:1], y[:1]).n_repeated == 0


def test_multilabel_and_regression_conflicts():
    X, _ = _conflicts()
    Y = np.zeros((30, 2), np.int64)
    Y[[0, 10, 20]] = [[1, 0], [1, 1], [0, 1]]  # per attribute: 2 vs 1 ones -> 1 + 1 wrong
    m = conflicting_labels(X, Y, task="multilabel")
    assert m.n_groups == 1 and m.labels == [[[1, 0], [1, 1], [0, 1]]]
    assert m.best_possible == pytest.approx(1 - 2 / 60)
    t = np.zeros(30)
    t[[0, 10, 20]] = [1.0, 2.0, 3.0]  # squared deviations from the mean 2: 1 + 0 + 1
    t[[7, 8]] = [5.0, 5.0]
    r = conflicting_labels(X, t, task="regression")
    assert r.n_groups == 1 and r.metric == "error"
    assert r.best_possible == pytest.approx(2 / 30)
    with pytest.raises(ValueError, match="task must be one of"):
        conflicting_labels(X, t, task="nope")


# -- a run -----------------------------------------------------------------------------------
def test_baselines_for_a_prepared_digits_run():
    from neuronlab.config import RunConfig
    from neuronlab.runs import prepare_run

    run = prepare_run(RunConfig().with_overrides({"model": {"hidden": [16]}}))
    try:
        b = baselines_for_run(run)
        assert b.part == "val" and b.n_eval == len(run.val[1]) and b.n_train == len(run.train[1])
        major = np.bincount(run.train[1]).argmax()
        assert b.constant == pytest.approx(np.mean(run.val[1] == major))
        assert b.linear > 0.9
        t = baselines_for_run(run, part="test", linear=False)
        assert t.part == "test" and t.n_eval == len(run.test[1]) and t.linear is None
        with pytest.raises(ValueError, match="part must be"):
            baselines_for_run(run, part="nope")
    finally:
        run.close()
