"""Prediction end to end: a trained or loaded model predicts from raw features
(preprocessor, inference-mode forward in batches, the loss's reading of the scores)."""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.prediction import DEFAULT_LOSS, resolve_loss


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A digits run as ``neuronlab train`` makes one: float32 raw X, Standardize fitted on the
    training rows, the model trained on transformed X, saved with ``metadata["loss"]``."""
    X, y = nl.data.digits()
    pre = nl.Standardize().fit(X[:1200])
    model = nl.mlp(64, [32], 10, dropout=0.1, batchnorm=True, rng=0)
    loss = nl.SoftmaxCrossEntropy()
    trainer = nl.Trainer(model, loss, nl.Adam(lr=1e-2), monitor=None)
    trainer.fit(pre.transform(X[:1200]), y[:1200], epochs=3, batch_size=64, seed=0)
    model.preprocessor = pre
    path = tmp_path_factory.mktemp("predict") / "model.safetensors"
    nl.save(model, path, metadata={"loss": "softmax"})
    return X, y, model, loss, pre, path


def reference_proba(model, loss, pre, X):
    """The training run's probabilities, by hand: transform, forward, loss.predict_proba."""
    return loss.predict_proba(model.forward(pre.transform(X).astype(model.dtype), training=False))


def test_loaded_model_predicts_exactly_as_the_training_run(trained):
    X, y, model, loss, pre, path = trained
    loaded = nl.load(path)
    assert loaded.metadata["loss"] == "softmax" and loaded.preprocessor is not None
    X_raw = X[1200:]  # 597 rows, fewer rows than one batch: the same GEMM as the reference
    expected = reference_proba(model, loss, pre, X_raw)
    got = loaded.predict_proba(X_raw)
    assert got.dtype == np.float32 and got.shape == (597, 10)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(model.predict_proba(X_raw), expected)
    np.testing.assert_array_equal(loaded.predict(X_raw), expected.argmax(axis=1))
    scores = model.forward(pre.transform(X_raw), training=False)
    np.testing.assert_array_equal(loaded.decision_function(X_raw), scores)
    assert (loaded.predict(X_raw) == y[1200:]).mean() > 0.85


def test_batches_do_not_change_the_answer(trained):
    X, _, model, loss, pre, _ = trained
    whole = reference_proba(model, loss, pre, X)
    for batch_size in (1, 7, 1024, 5000):
        got = model.predict_proba(X, batch_size=batch_size)
        assert got.shape == whole.shape
        np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.predict(X, batch_size=100), whole.argmax(axis=1))


def test_inference_mode_leaves_the_model_as_it_was(trained):
    X, _, model, *_ = trained
    buffers = {k: v.copy() for k, v in model.buffers.items()}
    first = model.predict_proba(X[:50])
    np.testing.assert_array_equal(model.predict_proba(X[:50]), first)  # dropout off
    for k, v in model.buffers.items():  # batch norm's running statistics untouched
        np.testing.assert_array_equal(v, buffers[k])


def test_array_likes(trained, tmp_path):
    X, _, model, *_ = trained
    X64 = X[:20].astype(np.float64)
    expected = model.predict_proba(X64)
    np.testing.assert_array_equal(model.predict_proba(X64.tolist()), expected)
    np.testing.assert_array_equal(model.predict_proba(tuple(map(tuple, X64))), expected)
    counts = np.rint(X64 * 16).astype(np.int64)  # integer data are read as float64
    np.testing.assert_array_equal(model.predict_proba(counts),
                                  model.predict_proba(counts.astype(np.float64)))
    pd = pytest.importorskip("pandas")
    np.testing.assert_array_equal(model.predict_proba(pd.DataFrame(X64)), expected)
    np.save(tmp_path / "X.npy", X[:20])
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    np.testing.assert_array_equal(model.predict_proba(mapped, batch_size=8),
                                  model.predict_proba(X[:20], batch_size=8))


def test_without_a_preprocessor_the_input_goes_straight_in(rng):
    model = nl.mlp(4, [8], 3, rng=0)
    X = rng.standard_normal((9, 4))
    scores = model.forward(X.astype(np.float32))
    np.testing.assert_array_equal(model.decision_function(X), scores)
    expected = nl.SoftmaxCrossEntropy().predict_proba(scores)
    np.testing.assert_array_equal(model.predict_proba(X), expected)


def test_which_loss_reads_the_scores(rng):
    model = nl.mlp(4, [8], 3, rng=0)
    assert not hasattr(model, "metadata") or not model.metadata
    assert type(resolve_loss(model)) is nl.SoftmaxCrossEntropy and DEFAULT_LOSS == "softmax"
    model.metadata = {"loss": "multiclass_hinge"}
    assert type(resolve_loss(model)) is nl.MulticlassHinge
    assert type(resolve_loss(model, "softmax")) is nl.SoftmaxCrossEntropy  # argument wins
    own = nl.MulticlassHinge(margin=2.0)
    assert resolve_loss(model, own) is own
    model.metadata = {"loss": "sigmoid_cross_entropy"}  # three outputs: attributes
    assert resolve_loss(model).multilabel
    assert not resolve_loss(nl.mlp(4, [8], 1, rng=0), "sigmoid_cross_entropy").multilabel
    model.metadata = {"config": {}}  # a saved model without a loss entry
    assert type(resolve_loss(model)) is nl.SoftmaxCrossEntropy


def test_sigmoid_probabilities(rng):
    X = rng.standard_normal((11, 4))
    binary = nl.mlp(4, [8], 1, rng=0)
    binary.metadata = {"loss": "sigmoid_cross_entropy"}
    s = binary.forward(X.astype(np.float32))
    p = binary.predict_proba(X)
    assert p.shape == (11,)
    np.testing.assert_array_equal(p, nl.SigmoidCrossEntropy().predict_proba(s))
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-s.reshape(-1).astype(np.float64))), rtol=1e-6)
    np.testing.assert_array_equal(binary.predict(X), (s.reshape(-1) > 0).astype(np.int64))
    attributes = nl.mlp(4, [8], 3, rng=0)
    got = attributes.predict_proba(X, loss="sigmoid_cross_entropy")
    assert got.shape == (11, 3)
    assert attributes.predict(X, loss="sigmoid_cross_entropy").shape == (11, 3)


@pytest.mark.parametrize("name", ["multiclass_hinge", "binary_hinge", "mse", "mae"])
def test_losses_without_probabilities_refuse_clearly(rng, name):
    n_out = 1 if name == "binary_hinge" else 3
    model = nl.mlp(4, [8], n_out, rng=0)
    model.metadata = {"loss": name}
    X = rng.standard_normal((5, 4))
    with pytest.raises(NotImplementedError, match=r"not probabilities: use decision_function"):
        model.predict_proba(X)
    assert model.predict(X).shape[0] == 5
    assert model.decision_function(X).shape == (5, n_out)


def test_regression_predicts_values(rng):
    model = nl.mlp(4, [8], 2, rng=0)
    X = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(model.predict(X, loss="mse"), model.decision_function(X))


def test_trainer_model_predicts_with_the_trainer_loss(rng):
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    loss = nl.SigmoidCrossEntropy()
    trainer = nl.Trainer(nl.mlp(3, [8], 1, rng=0), loss, nl.SGD(lr=0.1), monitor=None)
    trainer.fit(X, y, epochs=2, batch_size=8, seed=0)
    p = trainer.model.predict_proba(X, loss=trainer.loss)
    np.testing.assert_array_equal(p, loss.predict_proba(trainer.model.forward(X)))
    np.testing.assert_array_equal(trainer.model.predict(X, loss=trainer.loss), trainer.predict(X))


def test_bad_input_is_named(rng):
    model = nl.mlp(4, [8], 3, rng=0)
    X = rng.standard_normal((5, 4))
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or Inf \(row 3\)"):
        model.predict_proba(bad, batch_size=2)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        model.predict(X[0])
    with pytest.raises(ValueError, match="X is empty"):
        model.predict(X[:0])
    with pytest.raises(ValueError, match="5 features per sample, but the model expects 4"):
        model.predict(rng.standard_normal((2, 5)))
    with pytest.raises(TypeError, match="X must hold numbers"):
        model.predict([["a", "b", "c", "d"]])
    with pytest.raises(ValueError, match="batch_size must be > 0"):
        model.predict(X, batch_size=0)
    with pytest.raises(ValueError, match="unknown loss 'softmx'; choose one of: .*softmax"):
        model.predict(X, loss="softmx")
    model.metadata = {"loss": 3}
    with pytest.raises(TypeError, match=r"model.metadata\['loss'\] must be a Loss or a loss name"):
        model.predict(X)
