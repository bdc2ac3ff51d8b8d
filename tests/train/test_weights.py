"""Sample and class weights in training and evaluation: resolution, the weighted step and
metrics, exactness (weights 1 change nothing, resume is bit-identical) and the effect that
class weights are for (minority recall on imbalanced data)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.train.evaluation import evaluate
from neuronlab.train.step import loss_and_grads
from neuronlab.train.weights import resolve_sample_weight


def blobs(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return (2.0 * np.eye(3, 4)[y] + rng.standard_normal((n, 4))).astype(np.float32), y


def imbalanced(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """95 % class 0, 5 % class 1: two unit Gaussians 1.5·√2 apart, so they overlap."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=np.int64)
    y[: n // 20] = 1
    X = rng.standard_normal((n, 2)) + 1.5 * y[:, None]
    return X.astype(np.float32), y


def trainer(n_out: int = 3, loss=None, **kwargs) -> nl.Trainer:
    model = nl.mlp(4, [8], n_out, rng=0)
    return nl.Trainer(model, loss or nl.SoftmaxCrossEntropy(), nl.Momentum(lr=0.05), **kwargs)


def assert_same_weights(a: nl.Trainer, b: nl.Trainer) -> None:
    for k, v in a.model.params.items():
        assert np.array_equal(v, b.model.params[k]), k


# -- resolution -------------------------------------------------------------------------------
def test_resolve_sample_weight():
    y = np.array([0, 0, 0, 1, 2, 2])
    assert resolve_sample_weight(y, None, None, "classification") is None
    w = resolve_sample_weight(y, [1, 2, 3, 4, 5, 6], None, "classification")
    assert w.dtype == np.float64 and w.tolist() == [1, 2, 3, 4, 5, 6]
    # a dict multiplies sample_weight; labels it does not name weigh 1
    w = resolve_sample_weight(y, [1, 2, 3, 4, 5, 6], {2: 0.5}, "classification")
    assert w.tolist() == [1, 2, 3, 4, 2.5, 3]
    # balanced: n_samples / (n_classes · count) = 6 / (3·3), 6 / (3·1), 6 / (3·2)
    w = resolve_sample_weight(y, None, "balanced", "classification")
    np.testing.assert_allclose(w, [2 / 3] * 3 + [2.0] + [1.0] * 2, rtol=1e-15)
    sklearn_weights = pytest.importorskip("sklearn.utils.class_weight")
    np.testing.assert_allclose(w, sklearn_weights.compute_sample_weight("balanced", y), rtol=1e-15)
    # every class then carries the same total weight, n_samples / n_classes
    assert np.bincount(y, weights=w).tolist() == pytest.approx([2.0, 2.0, 2.0])
    # regression and multilabel take sample_weight, not class weights
    assert resolve_sample_weight(np.zeros((6, 2)), np.ones(6), None, "regression").shape == (6,)


@pytest.mark.parametrize(
    ("sample_weight", "class_weight", "task", "match"),
    [
        ([1, 1], None, "classification", "sample_weight has 2 weights but y has 4 samples"),
        ([1, -1, 1, 1], None, "classification", "sample_weight must be >= 0, got -1 at row 1"),
        ([1, 1, np.nan, 1], None, "classification", "sample_weight must be finite"),
        ([0, 0, 0, 0], None, "classification", "sample_weight must have a positive sum"),
        (None, "balance", "classification", "class_weight must be a dict .* or 'balanced'"),
        (None, {0: -1.0}, "classification", r"class_weight\[0\] must be a finite number >= 0"),
        (None, {"0": 1.0}, "classification", "class_weight keys must be integer class labels"),
        (None, {0: 1.0, 5: 2.0}, "classification", r"names the labels \[5\], which are not in y"),
        (None, {0: 0.0, 1: 0.0}, "classification", "class_weight gives every row the weight 0"),
        ([1, 1, 0, 0], {0: 0.0}, "classification", "sample_weight times class_weight gives"),
        (None, "balanced", "regression", "class_weight applies to classification losses only"),
        (None, {0: 1.0}, "multilabel", "class_weight applies to classification losses only"),
    ],
)
def test_bad_weights_name_the_argument(sample_weight, class_weight, task, match):
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match=match):
        resolve_sample_weight(y, sample_weight, class_weight, task)


def test_class_weight_of_the_wrong_type():
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        resolve_sample_weight(np.array([0, 1]), None, [1.0, 2.0], "classification")


# -- the step ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("loss", "n_out", "make_y"),
    [
        (nl.SoftmaxCrossEntropy(), 3, lambda rng, n: rng.integers(0, 3, n)),
        (nl.MeanSquaredError(), 2, lambda rng, n: rng.standard_normal((n, 2))),
        (nl.SigmoidCrossEntropy(multilabel=True), 2, lambda rng, n: rng.integers(0, 2, (n, 2))),
    ],
    ids=["softmax", "mse", "multilabel"],
)
def test_step_with_integer_weights_is_the_step_on_repeated_rows(loss, n_out, make_y):
    """Weights 0..3 give the objective and the parameter gradients of the batch in which
    each row appears w_i times (a regulariser included)."""
    rng = np.random.default_rng(0)
    X, y, w = rng.standard_normal((12, 4)), make_y(rng, 12), rng.integers(0, 4, 12)
    model = nl.mlp(4, [6], n_out, rng=0, dtype=np.float64)
    twin = copy.deepcopy(model)
    value, _ = loss_and_grads(model, loss, X, y, nl.L2(1e-2), sample_weight=w.astype(float))
    rows = np.repeat(np.arange(12), w)
    expected, _ = loss_and_grads(twin, loss, X[rows], y[rows], nl.L2(1e-2))
    assert value == pytest.approx(expected, rel=1e-12)
    for k, g in model.grads.items():
        np.testing.assert_allclose(g, twin.grads[k], rtol=1e-10, atol=1e-14, err_msg=k)


def test_a_batch_of_weight_zero_adds_no_data_loss_and_no_gradient():
    X, y = blobs(8)
    model = nl.mlp(4, [6], 3, rng=0, dtype=np.float64)
    loss_and_grads(model, nl.SoftmaxCrossEntropy(), X, y)  # leave gradients to be overwritten
    value, scores = loss_and_grads(model, nl.SoftmaxCrossEntropy(), X, y, nl.L2(0.5),
                                   sample_weight=np.zeros(8))
    assert value == pytest.approx(nl.L2(0.5).loss(model)) and scores.shape == (8, 3)
    for k, g in model.grads.items():  # the regulariser's gradient alone
        expected = 0.5 * model.params[k] if k in model.weight_keys else 0.0
        np.testing.assert_allclose(g, expected, atol=1e-15, err_msg=k)


# -- the trainer ------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["momentum", "lbfgs"])
def test_weights_one_train_bit_identically_to_no_weights(optimizer):
    X, y = blobs(100)
    Xv, yv = blobs(30, seed=1)

    def run(**weights):
        opt = nl.Momentum(lr=0.05) if optimizer == "momentum" else nl.LBFGS(max_iter=5)
        model = nl.mlp(4, [8], 3, batchnorm=True, dropout=0.2, rng=0)
        tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), opt, regularizer=nl.L2(1e-3))
        val = (Xv, yv) if "sample_weight" not in weights else (Xv, yv, np.ones(30))
        tr.fit(X, y, validation=val, epochs=3, batch_size=32, **weights)
        return tr

    plain, ones = run(), run(sample_weight=np.ones(100))
    assert ones.sample_weight is not None and plain.sample_weight is None
    assert ones.history == plain.history  # every step's loss and every epoch's metrics
    assert_same_weights(ones, plain)
    assert run(class_weight={0: 1.0, 1: 1.0, 2: 1.0}).history == plain.history


def test_epoch_and_validation_metrics_are_weighted_means():
    """One batch per epoch, no dropout: the epoch's training metrics are the weighted metrics
    of the weights before the step, and the validation metrics Trainer.evaluate's."""
    X, y = blobs(60)
    Xv, yv = blobs(40, seed=1)
    w = np.random.default_rng(2).uniform(0, 3, 60)
    wv = np.random.default_rng(3).uniform(0, 3, 40)
    tr = trainer()
    before = tr.evaluate(X, y, sample_weight=w)
    assert before != tr.evaluate(X, y)
    h = tr.fit(X, y, sample_weight=w, validation=(Xv, yv, wv), epochs=1, batch_size=60)
    assert h.epochs[0]["loss"] == pytest.approx(before["loss"], rel=1e-6)
    assert h.epochs[0]["acc"] == pytest.approx(before["acc"], rel=1e-12)
    after = tr.evaluate(Xv, yv, sample_weight=wv)
    assert h.epochs[0]["val_loss"] == after["loss"]
    assert h.epochs[0]["val_acc"] == after["acc"]


def test_minibatch_epoch_loss_is_the_weight_weighted_mean_of_the_steps():
    X, y = blobs(100)
    w = np.random.default_rng(1).uniform(0.5, 2.0, 100)
    tr = trainer()
    h = tr.fit(X, y, sample_weight=w, epochs=1, batch_size=30, seed=5)
    order = np.random.default_rng(5).permutation(100)
    masses = [w[order[b : b + 30]].sum() for b in range(0, 100, 30)]
    assert h.epochs[0]["loss"] == pytest.approx(np.average(h.loss, weights=masses), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_evaluate_with_weight_two_is_evaluate_on_the_row_twice(dtype):
    rng = np.random.default_rng(0)
    X, labels = rng.standard_normal((50, 4)), rng.integers(0, 3, 50)
    targets = rng.standard_normal((50, 2))
    w = rng.integers(0, 3, 50)
    rows = np.repeat(np.arange(50), w)
    cases = [(nl.SoftmaxCrossEntropy(), labels, 3), (nl.MeanSquaredError(), targets, 2),
             (nl.SigmoidCrossEntropy(multilabel=True), (targets > 0).astype(int), 2)]
    for loss, y, n_out in cases:
        model = nl.mlp(4, [6], n_out, rng=0, dtype=dtype)
        got = evaluate(model, loss, X, y, sample_weight=w, batch_size=7)
        want = evaluate(model, loss, X[rows], y[rows], batch_size=1000)
        assert got.keys() == want.keys()
        for k in got:
            assert got[k] == pytest.approx(want[k], rel=1e-5 if dtype == np.float32 else 1e-12), k
    # rows= picks weights by row of X; rows whose weights are all 0 are nothing to evaluate
    some = np.flatnonzero(w)[:9]
    got = evaluate(model, loss, X, y, sample_weight=w, rows=some)
    assert got == evaluate(model, loss, X[some], y[some], sample_weight=w[some])
    with pytest.raises(ValueError, match="sample_weight is 0 on every evaluated row"):
        evaluate(model, loss, X, y, sample_weight=w, rows=np.flatnonzero(w == 0))


def test_class_weight_balanced_raises_minority_recall():
    X, y = imbalanced(1000, seed=0)
    Xt, yt = imbalanced(4000, seed=1)
    assert np.bincount(y).tolist() == [950, 50]

    def recall(class_weight):
        tr = nl.Trainer(nl.mlp(2, [16], 2, rng=0), nl.SoftmaxCrossEntropy(), nl.Adam(lr=1e-2),
                        monitor=False)
        tr.fit(X, y, class_weight=class_weight, epochs=20, batch_size=64, seed=0)
        pred = tr.predict(Xt)
        return np.mean(pred[yt == 1] == 1), np.mean(pred == yt)

    (plain, plain_acc), (balanced, balanced_acc) = recall(None), recall("balanced")
    assert balanced >= plain + 0.25 and balanced >= 0.6, (plain, balanced)
    assert balanced_acc < plain_acc  # the price: more majority rows called minority


def test_resume_with_weights_is_bit_identical(tmp_path):
    X, y = blobs(90)
    Xv, yv = blobs(30, seed=1)
    w = np.random.default_rng(4).uniform(0, 2, 90)

    def run(callbacks=(), resume=None):
        tr = nl.Trainer(nl.mlp(4, [8], 3, dropout=0.2, rng=0), nl.SoftmaxCrossEntropy(),
                        nl.Adam(lr=1e-2), callbacks=list(callbacks))
        tr.fit(X, y, sample_weight=w, class_weight="balanced", validation=(Xv, yv, w[:30]),
               epochs=3, batch_size=16, seed=2, resume=resume)
        return tr

    class Stop(nl.Callback):
        order = 200

        def on_batch_end(self, trainer, step, logs):
            if trainer.step == 8:  # mid-epoch 1, right after a checkpoint
                raise KeyboardInterrupt

    reference = run()
    with pytest.raises(KeyboardInterrupt):
        run([nl.Checkpoint(tmp_path, every_steps=4, every_epochs=None), Stop()])
    resumed = run(resume=tmp_path)
    assert resumed.resumed and resumed.history == reference.history
    assert_same_weights(resumed, reference)
    assert isinstance(resumed.state.state_dict()["sums"]["n"], float)  # weights, not rows


# -- inputs as scikit-learn takes them --------------------------------------------------------
def test_lists_and_integer_arrays_are_accepted():
    X, y = blobs(40)
    Xi = np.rint(X * 4).astype(np.int16)
    a, b = trainer(), trainer()
    a.fit(Xi.tolist(), y.tolist(), sample_weight=[1.0] * 40, epochs=2, batch_size=8)
    b.fit(Xi.astype(np.float32), y, epochs=2, batch_size=8)
    assert a.history == b.history
    assert a.predict(Xi.tolist()).tolist() == b.predict(Xi).tolist()
    assert a.evaluate(Xi, y.astype(np.float64)) == b.evaluate(Xi.astype(np.float32), y)


def test_pandas_frames_and_series_are_accepted():
    pd = pytest.importorskip("pandas")
    X, y = blobs(40)
    Xv, yv = blobs(20, seed=1)
    frame = pd.DataFrame(X.astype(np.float64), columns=list("abcd"))
    a, b = trainer(), trainer()
    a.fit(frame, pd.Series(y), sample_weight=pd.Series(np.ones(40)),
          validation=(pd.DataFrame(Xv), pd.Series(yv), pd.Series(np.ones(20))),
          epochs=2, batch_size=8)
    b.fit(X.astype(np.float64), y, validation=(Xv, yv), epochs=2, batch_size=8)
    assert a.history == b.history
    np.testing.assert_array_equal(a.predict(frame), b.predict(X))
    mixed = frame.assign(a=frame["a"].astype(object))  # an object column of numbers
    assert a.evaluate(mixed, pd.Series(y)) == b.evaluate(X.astype(np.float64), y)


@pytest.mark.parametrize("dtype", [np.int16, np.float16])
def test_a_memmap_of_other_numbers_stays_a_memmap(tmp_path, dtype):
    """Not copied into memory: the trainer holds the memmap itself and casts each batch."""
    X, y = blobs(64)
    Xi = np.rint(X * 4).astype(dtype)
    np.save(tmp_path / "X.npy", Xi)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    a, b = trainer(engine=False), trainer(engine=False)  # a memmap takes the NumPy path
    a.fit(Xm, y, validation=(Xm, y), epochs=2, batch_size=16)
    assert a.train_data[0] is Xm
    b.fit(Xi.astype(np.float32), y, validation=(Xi, y), epochs=2, batch_size=16)
    assert a.history == b.history
    assert np.array_equal(a.predict(Xm), b.predict(Xi))
    if dtype == np.float16:  # floats are still scanned for NaN
        Xi[5, 2] = np.nan
        np.save(tmp_path / "bad.npy", Xi)
        with pytest.raises(ValueError, match="X contains NaN or Inf"):
            a.predict(np.load(tmp_path / "bad.npy", mmap_mode="r"))


def test_float_labels_must_be_whole_numbers():
    X, _ = blobs(6)
    tr = trainer()
    tr.fit(X, np.array([0.0, 1.0, 2.0, 2.0, 1.0, 0.0]), epochs=1)  # whole numbers are labels
    with pytest.raises(ValueError, match=r"y must hold integer class labels, but y\[3\] = 1.5 is "
                                         r"not a whole number \(2 such rows\)"):
        tr.fit(X, [0.0, 1.0, 2.0, 1.5, 1.0, 0.5])
    with pytest.raises(ValueError, match=r"y_val\[0\] = nan"):
        tr.fit(X, np.zeros(6), validation=(X, np.full(6, np.nan)))
    with pytest.raises(ValueError, match=r"y\[1\] = 0.25"):
        tr.evaluate(X, [0, 0.25, 0, 0, 0, 0])


def test_bad_weights_in_fit_and_evaluate_are_refused_before_training():
    X, y = blobs(10)
    tr = trainer()
    with pytest.raises(ValueError, match="sample_weight has 9 weights but y has 10 samples"):
        tr.fit(X, y, sample_weight=np.ones(9))
    with pytest.raises(ValueError, match="w_val must be >= 0"):
        tr.fit(X, y, validation=(X, y, -np.ones(10)))
    with pytest.raises(TypeError, match=r"validation must be a tuple \(X_val, y_val\) or"):
        tr.fit(X, y, validation=(X, y, None, None))
    with pytest.raises(ValueError, match="class_weight applies to classification losses only"):
        nl.Trainer(nl.mlp(4, [4], 1), nl.MeanSquaredError(), nl.SGD(lr=0.1)).fit(
            X, y.astype(float), class_weight="balanced")
    with pytest.raises(ValueError, match="sample_weight must be finite"):
        tr.evaluate(X, y, sample_weight=[np.inf] + [1.0] * 9)
    assert tr.step == 0
