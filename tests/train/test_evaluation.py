"""The one evaluator: its metrics against a straightforward computation on small data."""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.train.evaluation import evaluate


def reference(model, loss, X, y, penalty=0.0) -> dict[str, float]:
    """All rows in one forward pass, the metrics written out."""
    scores = model.forward(np.asarray(X, dtype=model.dtype), training=False)
    out = {"loss": loss.forward(scores, y) + penalty}
    if loss.task == "regression":
        out["error"] = float(np.mean((scores - y.reshape(scores.shape)) ** 2))
    else:
        pred = loss.predict(scores)
        out["acc"] = float(np.mean(pred == y.reshape(pred.shape)))
    return out


def check(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-6), k


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((103, 6)) * 3 + 1
    return X, rng.integers(0, 4, 103), rng.standard_normal((103, 2))


def test_classification_and_regression(data):
    X, labels, targets = data
    clf = nl.mlp(6, [10], 4, rng=0, dtype=np.float64)
    check(evaluate(clf, nl.SoftmaxCrossEntropy(), X, labels, batch_size=16),
          reference(clf, nl.SoftmaxCrossEntropy(), X, labels))
    reg = nl.mlp(6, [10], 2, rng=0, dtype=np.float64)
    check(evaluate(reg, nl.MeanSquaredError(), X, targets, batch_size=16),
          reference(reg, nl.MeanSquaredError(), X, targets))
    multi = (targets > 0).astype(np.int64)
    loss = nl.SigmoidCrossEntropy(multilabel=True)
    check(evaluate(reg, loss, X, multi, batch_size=50), reference(reg, loss, X, multi))


def test_rows_preprocessor_regularizer_and_prefix(data):
    X, labels, _ = data
    model, loss = nl.mlp(6, [10], 4, rng=0), nl.SoftmaxCrossEntropy()  # float32
    rows = np.array([3, 4, 10, 50, 51, 52, 90, 102])
    pre = nl.Standardize().fit(X)
    l2 = nl.L2(0.1)
    got = evaluate(model, loss, X, labels, rows=rows, preprocessor=pre, regularizer=l2,
                   batch_size=3, prefix="val_")
    want = reference(model, loss, pre.transform(X[rows]), labels[rows], l2.loss(model))
    check(got, {f"val_{k}": v for k, v in want.items()})


def test_a_memmap_is_read_a_batch_at_a_time_with_the_same_result(data, tmp_path):
    X, labels, _ = data
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    model, loss = nl.mlp(6, [10], 4, rng=0), nl.SoftmaxCrossEntropy()
    pre, rows = nl.Standardize().fit(X), np.arange(0, 103, 2)
    for kw in ({}, {"rows": rows}, {"preprocessor": pre}, {"rows": rows, "preprocessor": pre}):
        assert evaluate(model, loss, Xm, labels, batch_size=8, **kw) == evaluate(
            model, loss, X, labels, batch_size=8, **kw)


def test_the_trainer_reports_the_evaluators_numbers(data):
    X, labels, _ = data
    tr = nl.Trainer(nl.mlp(6, [10], 4, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1),
                    regularizer=nl.L2(1e-3), monitor=False)
    tr.fit(X[:80], labels[:80], validation=(X[80:], labels[80:]), epochs=2, batch_size=16)
    reg = tr.regularizer
    val = evaluate(tr.model, tr.loss, X[80:], labels[80:], regularizer=reg, prefix="val_")
    assert {k: tr.history.epochs[-1][k] for k in val} == val
    assert tr.evaluate(X, labels) == evaluate(tr.model, tr.loss, X, labels, regularizer=reg)


def test_bad_input(data):
    X, labels, _ = data
    model, loss = nl.mlp(6, [10], 4, rng=0), nl.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(model, loss, X, labels, rows=np.array([], dtype=np.int64))
    X = X.copy()
    X[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate(model, loss, X, labels)
