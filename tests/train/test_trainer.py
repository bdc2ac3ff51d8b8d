"""The training loop: what one step does, that it learns, and how it treats its input."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import neuronlab as nl


def blobs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian clusters in 5-D (an easy problem)."""
    rng = np.random.default_rng(seed)
    centers = 4.0 * np.eye(3, 5)
    y = rng.integers(0, 3, n)
    return (centers[y] + rng.standard_normal((n, 5))).astype(np.float32), y


def test_easy_problem_reaches_high_accuracy():
    X, y = blobs(300)
    Xv, yv = blobs(200, seed=1)
    tr = nl.Trainer(nl.mlp(5, [32], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.Momentum(lr=0.05))
    history = tr.fit(X, y, validation=(Xv, yv), epochs=5, batch_size=32)
    assert history.epochs[-1]["val_acc"] >= 0.95
    assert history.epochs[-1]["loss"] < history.epochs[0]["loss"]


def test_notes_spiral_reaches_98_percent_training_accuracy():
    """The notes' spiral (3 classes x 100 points) with one hidden layer of 100 ReLUs, trained
    the notes' way: full-batch gradient descent, step size 1, L2 strength 1e-3."""
    X, y = nl.data.spiral(100, 3, seed=0)
    model = nl.mlp(2, [100], 3, activation="relu", rng=0)
    tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=1.0), regularizer=nl.L2(1e-3))
    tr.fit(X, y, epochs=1000, batch_size=300)
    assert tr.evaluate(X, y)["acc"] >= 0.98
    # a linear classifier cannot do this: the hidden layer is doing the work
    assert np.mean(tr.predict(X) == y) >= 0.98


def test_first_step_matches_the_math():
    """Step 0 by hand in float64: the batch is the first batch_size indices of
    default_rng(seed).permutation(N) (sorted); loss = data loss + ½λ Σ W²; the gradient gets
    λW on weights only; SGD moves every parameter by -lr * gradient."""
    X, y = blobs(10)
    X = X.astype(np.float64)
    model = nl.mlp(5, [6], 3, rng=0, dtype=np.float64)
    ref = copy.deepcopy(model)
    lam, lr, seed = 0.01, 0.5, 3
    seen = {}

    class Grab(nl.Callback):
        def on_batch_end(self, trainer, step, logs):
            if step == 0:
                seen.update({k: v.copy() for k, v in trainer.model.params.items()})

    tr = nl.Trainer(
        model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=lr), regularizer=nl.L2(lam), callbacks=[Grab()]
    )
    tr.fit(X, y, epochs=1, batch_size=4, seed=seed)

    idx = np.sort(np.random.default_rng(seed).permutation(10)[:4])
    loss = nl.SoftmaxCrossEntropy()
    ref.zero_grad()
    value = loss.forward(ref.forward(X[idx], training=True), y[idx])
    ref.backward(loss.backward())
    weights = ref.weight_keys
    assert weights == ["0.W", "2.W"]
    value += 0.5 * lam * sum(float((ref.params[k] ** 2).sum()) for k in weights)
    assert tr.history.loss[0] == pytest.approx(value, rel=1e-12)
    for k, w in ref.params.items():
        g = ref.grads[k] + (lam * w if k in weights else 0.0)
        np.testing.assert_allclose(seen[k], w - lr * g, rtol=1e-12, atol=1e-15, err_msg=k)


def test_history_steps_lrs_and_json_round_trip():
    X, y = blobs(100)
    Xv, yv = blobs(40, seed=1)
    sched = nl.InverseTime(lr=0.1, k=0.5)
    tr = nl.Trainer(
        nl.mlp(5, [8], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), schedule=sched
    )
    h = tr.fit(X, y, validation=(Xv, yv), epochs=3, batch_size=30)
    # 100 rows in batches of 30: 4 steps per epoch (30, 30, 30, 10)
    assert len(h.loss) == len(h.lr) == 12 == tr.step
    assert h.lr == [sched(s) for s in range(12)]
    assert [e["epoch"] for e in h.epochs] == [0, 1, 2]
    assert [e["step"] for e in h.epochs] == [4, 8, 12]
    assert set(h.epochs[-1]) == {"epoch", "step", "lr", "loss", "acc", "val_loss", "val_acc"}
    # the epoch loss is the batch-size weighted mean of the step losses
    assert h.epochs[0]["loss"] == pytest.approx(np.average(h.loss[:4], weights=[30, 30, 30, 10]))
    assert h["val_acc"] == [e["val_acc"] for e in h.epochs]
    assert h.epochs[-1]["val_loss"] == pytest.approx(tr.evaluate(Xv, yv)["loss"])
    again = nl.History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again == h and again.loss == h.loss
    with pytest.raises(KeyError, match="val_error"):
        h["val_error"]


def test_history_best_skips_non_finite_epochs():
    nan, inf = float("nan"), float("inf")
    h = nl.History()
    for i, (loss, acc) in enumerate([(nan, nan), (0.5, 0.7), (-inf, inf), (0.3, 0.6)]):
        h.record_epoch({"epoch": i, "val_loss": loss, "val_acc": acc})
    # a NaN first epoch used to win every comparison; ±inf used to be the extreme
    assert h.best()["epoch"] == 3
    assert h.best("val_acc")["epoch"] == 1
    # to_dict stores non-finite metrics as None; the restored history agrees
    again = nl.History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again.best()["epoch"] == 3 and again.best("val_acc")["epoch"] == 1
    broken = nl.History()
    broken.record_epoch({"epoch": 0, "val_loss": nan})
    with pytest.raises(KeyError, match="no epoch has a finite 'val_loss'"):
        broken.best()
    with pytest.raises(KeyError):
        nl.History().best()


def test_same_seed_same_run_other_seed_other_order():
    X, y = blobs(90)

    def run(seed):
        tr = nl.Trainer(nl.mlp(5, [8], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1))
        tr.fit(X, y, epochs=2, batch_size=16, seed=seed)
        return tr.history.loss

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_first_layer_gets_no_input_gradient():
    seen = []

    class Spy(nl.Linear):
        def backward(self, dout, *, input_grad=True):
            seen.append(input_grad)
            return super().backward(dout, input_grad=input_grad)

    X, y = blobs(20)
    model = nl.Sequential([Spy(5, 4, rng=0), nl.ReLU(), nl.Linear(4, 3, rng=1)])
    nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), monitor=False).fit(
        X, y, epochs=1, batch_size=10)
    assert seen == [False, False]


def test_float64_input_is_cast_per_batch_like_a_precast_array():
    X, y = blobs(100)
    X64 = X.astype(np.float64) + 1e-9  # differs from X below float32 precision only

    def run(data):
        model = nl.mlp(5, [8], 3, rng=0)
        nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(lr=1e-2)).fit(
            data, y, epochs=2, batch_size=16
        )
        return model

    a, b = run(X64), run(X64.astype(np.float32))
    for k, v in a.params.items():
        assert v.dtype == np.float32 and np.array_equal(v, b.params[k]), k


def test_memmap_input_trains_like_in_memory(tmp_path):
    X, y = blobs(200)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert isinstance(Xm, np.memmap)

    def run(data):
        model = nl.mlp(5, [16], 3, rng=0)
        # a memmap trains on the NumPy path (the engine would map its pages): like with like
        tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Momentum(lr=0.05), engine=False)
        tr.fit(data, y, validation=(data, y), epochs=3, batch_size=32)
        return tr

    on_disk, in_memory = run(Xm), run(X)
    assert on_disk.history == in_memory.history
    assert on_disk.history.epochs[-1]["val_acc"] >= 0.95


def test_regression_with_mse():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (400, 1)).astype(np.float32)
    y = np.sin(X[:, 0]) + 0.05 * rng.standard_normal(400)
    Xv = np.linspace(-2, 2, 50, dtype=np.float32)[:, None]
    yv = np.sin(Xv[:, 0])
    tr = nl.Trainer(
        nl.mlp(1, [32, 32], 1, activation="tanh", init="glorot", rng=0),
        nl.MeanSquaredError(),
        nl.Adam(lr=1e-2),
    )
    h = tr.fit(X, y, validation=(Xv, yv), epochs=40, batch_size=32)
    last = h.epochs[-1]
    assert set(last) == {"epoch", "step", "lr", "loss", "error", "val_loss", "val_error"}
    assert last["val_error"] < 0.01 < h.epochs[0]["val_error"]
    pred = tr.predict(Xv)
    assert pred.shape == (50, 1)
    # with one output the error (mean squared error per target) equals the MSE loss
    assert tr.evaluate(Xv, yv)["error"] == pytest.approx(np.mean((pred[:, 0] - yv) ** 2), rel=1e-5)


def test_multilabel_with_sigmoid_cross_entropy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4)).astype(np.float32)
    Y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0], axis=1).astype(np.int64)
    tr = nl.Trainer(
        nl.mlp(4, [16], 2, rng=0), nl.SigmoidCrossEntropy(multilabel=True), nl.Adam(lr=1e-2)
    )
    h = tr.fit(X, Y, epochs=20, batch_size=32)
    assert h.epochs[-1]["acc"] > 0.95
    assert tr.predict(X).shape == (300, 2)


def test_lbfgs_runs_one_minimize_per_epoch():
    X, y = blobs(120)
    model = nl.mlp(5, [8], 3, rng=0, dtype=np.float64)
    tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.LBFGS(max_iter=20), regularizer=nl.L2(1e-3))
    h = tr.fit(X.astype(np.float64), y, epochs=3)
    assert tr.step == 3 and h.lr == [None, None, None]
    assert h.loss[-1] <= h.loss[0] and h.epochs[-1]["acc"] >= 0.95
    assert tr.optimizer.t > 3  # several L-BFGS iterations inside each step


def test_evaluate_and_predict_are_batched_inference():
    X, y = blobs(101)
    model = nl.mlp(5, [8], 3, dropout=0.5, rng=0)
    tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1))
    scores = model.forward(X, training=False)
    np.testing.assert_array_equal(tr.predict(X, batch_size=7), scores.argmax(axis=1))
    small, whole = tr.evaluate(X, y, batch_size=7), tr.evaluate(X, y)
    assert small["acc"] == whole["acc"] == np.mean(scores.argmax(axis=1) == y)
    assert small["loss"] == pytest.approx(nl.SoftmaxCrossEntropy().forward(scores, y), rel=1e-6)


@pytest.mark.parametrize(
    ("X", "y", "kwargs", "error", "match"),
    [
        (
            np.full((10, 5), "a"),
            np.zeros(10, int),
            {},
            TypeError,
            "X must hold real numbers, got an array of dtype <U1",
        ),
        (np.ones(10), np.zeros(10, int), {}, ValueError, "at least 2 dimensions"),
        (np.ones((0, 5)), np.zeros(0, int), {}, ValueError, "X is empty"),
        (np.full((10, 5), np.nan), np.zeros(10, int), {}, ValueError, "X contains NaN or Inf"),
        (
            np.ones((10, 4)),
            np.zeros(10, int),
            {},
            ValueError,
            "4 features per sample, but the model expects 5",
        ),
        (np.ones((10, 5)), np.zeros(9, int), {}, ValueError, "X has 10 samples but y has shape"),
        (np.ones((10, 5)), np.full(10, 3), {}, ValueError, r"y must be in \[0, 3\), got label 3"),
        (np.ones((10, 5)), np.full(10, 0.5), {}, ValueError, r"y\[0\] = 0.5 is not a whole number"),
        (
            np.ones((10, 5)),
            np.zeros(10, int),
            {"batch_size": 0},
            ValueError,
            "batch_size must be > 0, got 0",
        ),
        (
            np.ones((10, 5)),
            np.zeros(10, int),
            {"epochs": -1},
            ValueError,
            "epochs must be > 0, got -1",
        ),
        (np.ones((10, 5)), np.zeros(10, int), {"seed": "a"}, TypeError, "seed must be an integer"),
        (
            np.ones((10, 5)),
            np.zeros(10, int),
            {"validation": np.ones((3, 5))},
            TypeError,
            "validation must be a tuple",
        ),
        (
            np.ones((10, 5)),
            np.zeros(10, int),
            {"validation": (np.ones((3, 5)), np.full(3, -1))},
            ValueError,
            r"y_val must be in \[0, 3\)",
        ),
    ],
)
def test_bad_input_is_a_clear_error(X, y, kwargs, error, match):
    tr = nl.Trainer(nl.mlp(5, [4], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1))
    with pytest.raises(error, match=match):
        tr.fit(X, y, **kwargs)
    assert tr.step == 0


def test_bad_regression_targets_and_components():
    tr = nl.Trainer(nl.mlp(2, [4], 1, rng=0), nl.MeanSquaredError(), nl.SGD(lr=0.1))
    with pytest.raises(ValueError, match="y contains NaN or Inf"):
        tr.fit(np.ones((4, 2)), np.array([1.0, np.inf, 0.0, 0.0]))
    with pytest.raises(TypeError, match="numeric regression targets"):
        tr.fit(np.ones((4, 2)), np.array(["a", "b", "c", "d"]))
    with pytest.raises(TypeError, match="optimizer must provide step"):
        nl.Trainer(nl.mlp(2, [4], 1), nl.MeanSquaredError(), object())
    with pytest.raises(TypeError, match=r"callbacks\[0\] must be a Callback"):
        nl.Trainer(nl.mlp(2, [4], 1), nl.MeanSquaredError(), nl.SGD(lr=0.1), callbacks=[print])
    with pytest.raises(TypeError, match="schedule must be callable"):
        nl.Trainer(nl.mlp(2, [4], 1), nl.MeanSquaredError(), nl.SGD(lr=0.1), schedule=0.1)


def test_predict_and_evaluate_read_a_memmap_in_batches(tmp_path):
    """Same answers as on the in-memory array; the NaN scan and the batches go a chunk at a
    time (no full-size temporaries for a file larger than memory)."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((3000, 8)).astype(np.float32), rng.integers(0, 3, 3000)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    tr = nl.Trainer(nl.mlp(8, [16], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), monitor=False)
    assert np.array_equal(tr.predict(Xm, batch_size=256), tr.predict(X, batch_size=256))
    assert tr.evaluate(Xm, y) == tr.evaluate(X, y)
    X[1234, 5] = np.nan
    np.save(tmp_path / "bad.npy", X)
    with pytest.raises(ValueError, match="X contains NaN or Inf"):
        tr.predict(np.load(tmp_path / "bad.npy", mmap_mode="r"))


def test_fit_defaults_are_the_run_config_defaults() -> None:
    """One set of defaults: Trainer.fit, the CLI (RunConfig) and the estimators agree."""
    import inspect

    from neuronlab.config import RunConfig

    params = inspect.signature(nl.Trainer.fit).parameters
    train = RunConfig().train
    assert (params["epochs"].default, params["batch_size"].default) == (train.epochs, train.batch_size)
