"""The compiled training engine (:mod:`neuronlab.engine`) against the NumPy reference path.

Every comparison runs the same fit twice, ``Trainer(engine=True)`` and ``Trainer(engine=False)``,
and checks ``engine_used`` on the engine side, so a silent fallback cannot make a test pass.
The engine computes the same formulas in another order (BLAS calls of other shapes, sums per
row): float64 runs agree to ~1e-14 after 114 steps (the worst over the full product of the 5
activations x 2 losses x 10 optimizer variants x 4 regularisers, run once by hand, was
4.0e-14 on the parameters), which the tests bound by 1e-12. Runs of the engine against
itself (segments, callbacks, resume) must be bit-identical.
"""

from __future__ import annotations

import collections
import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

import neuronlab as nl
import neuronlab.engine as nl_engine
from neuronlab.train.checkpoint import latest_checkpoint

pytestmark = pytest.mark.skipif(not nl_engine.available(), reason="numba is not installed")

N, FEATURES, BATCH, EPOCHS = 300, 6, 8, 3  # 38 batches an epoch (the last of 4 rows): 114 steps
STEPS = EPOCHS * -(-N // BATCH)
TOL64 = 1e-12
# float32: the worst over the full product of activations x losses x optimizers x
# regularisers (360 runs of 114 steps, measured by hand) was 3.2e-5 relative on the
# parameters, 1.2e-5 on a step's loss and 1.3e-6 on the epoch metrics (tanh, softmax
# cross-entropy, RMSprop: its 1/sqrt(v) amplifies the rounding); most runs stay below 1e-6.
TOL32 = 1e-4


def data(task: str = "classification", n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float64 rows; 3 classes, or 2 regression targets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, FEATURES))
    if task == "classification":
        return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5)
    y = np.stack([X[:, 0] - X[:, 1], np.sin(2 * X[:, 2])], axis=1)
    return X, y + 0.1 * rng.standard_normal((n, 2))


ACTIVATIONS = {"relu": None, "leaky_relu": 0.2, "elu": 0.7, "tanh": None, "sigmoid": None}
LOSSES = {"softmax": nl.SoftmaxCrossEntropy, "mse": nl.MeanSquaredError}
# clipping thresholds below the gradients' size (test_clipping_and_weight_decay_act_in_the_engine)
OPTIMIZERS = {
    "sgd": lambda: nl.SGD(lr=0.1),
    "momentum": lambda: nl.Momentum(lr=0.05),
    "nesterov": lambda: nl.Nesterov(lr=0.05),
    "adagrad": lambda: nl.Adagrad(lr=0.1),
    "rmsprop": lambda: nl.RMSprop(lr=0.01),
    "adam": lambda: nl.Adam(lr=0.01),
    "adam_clip_value": lambda: nl.Adam(lr=0.01, clip_value=0.02),
    "sgd_clip_norm": lambda: nl.SGD(lr=0.5, clip_norm=0.2),
    "momentum_weight_decay": lambda: nl.Momentum(lr=0.05, weight_decay=0.05),
    "adamw": lambda: nl.AdamW(lr=0.01),
}
REGULARIZERS = {
    "none": lambda: None,
    "l2": lambda: nl.L2(1e-2),
    "l1": lambda: nl.L1(1e-3),
    "elastic": lambda: nl.ElasticNet(1e-3, 1e-2),
}
DEFAULT = ("relu", "softmax", "adam", "none")


def combos() -> list[tuple[str, str, str, str]]:
    """Each value of each axis with the other axes at their default, then 12 seeded picks
    from the rest of the product."""
    axes = [list(ACTIVATIONS), list(LOSSES), list(OPTIMIZERS), list(REGULARIZERS)]
    chosen = [DEFAULT]
    for i, axis in enumerate(axes):
        for v in axis:
            c = (*DEFAULT[:i], v, *DEFAULT[i + 1 :])
            if c not in chosen:
                chosen.append(c)
    rest = [c for c in itertools.product(*axes) if c not in chosen]
    return chosen + random.Random(2026).sample(rest, 12)


def model(activation: str = "relu", n_out: int = 3, hidden=(16,),
          dtype=np.float64) -> nl.Sequential:
    m = nl.mlp(FEATURES, list(hidden), n_out, activation=activation, rng=0, dtype=dtype)
    alpha = ACTIVATIONS.get(activation)
    for layer in m.layers:
        if alpha is not None and isinstance(layer, (nl.LeakyReLU, nl.ELU)):
            layer.alpha = alpha  # not the default: the kernel must get the layer's own
    return m


def trainer(engine, *, activation="relu", loss="softmax", optimizer="adam", regularizer="none",
            dtype=np.float64, net=None, **kwargs) -> nl.Trainer:
    n_out = 3 if loss == "softmax" else 2
    kwargs.setdefault("monitor", False)
    return nl.Trainer(
        net if net is not None else model(activation, n_out, dtype=dtype),
        LOSSES[loss](),
        OPTIMIZERS[optimizer](),
        regularizer=REGULARIZERS[regularizer](),
        engine=engine,
        **kwargs,
    )


def task_of(loss: str) -> str:
    return "classification" if loss == "softmax" else "regression"


def rel(a, b) -> float:
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


def assert_close_runs(e: nl.Trainer, n: nl.Trainer, tol: float) -> None:
    """The engine run ``e`` against the NumPy run ``n``: parameters and optimizer slots
    (relative to each array's largest value), every step's loss and lr, the epochs."""
    assert e.engine_used == "compiled"
    assert n.engine_used.startswith("numpy:")
    assert e.model.params.keys() == n.model.params.keys()
    for k, v in n.model.params.items():
        assert rel(e.model.params[k], v) <= tol, k
    se, sn = e.optimizer.state_dict(), n.optimizer.state_dict()
    assert se["t"] == sn["t"]
    for name, slots in sn["state"].items():
        for slot, v in slots.items():
            assert rel(se["state"][name][slot], v) <= tol, (name, slot)
    assert len(e.history.loss) == len(n.history.loss)
    le, ln = np.array(e.history.loss), np.array(n.history.loss)
    assert np.all(np.abs(le - ln) <= tol * np.abs(ln))
    assert e.history.lr == n.history.lr
    assert len(e.history.epochs) == len(n.history.epochs)
    for a, b in zip(e.history.epochs, n.history.epochs):
        assert a.keys() == b.keys()
        for k, v in b.items():
            if isinstance(v, int) or v is None:
                assert a[k] == v, k
            else:
                assert abs(a[k] - v) <= tol * abs(v), k


def assert_same_run(a: nl.Trainer, b: nl.Trainer, *, monitor: bool = True) -> None:
    """Bit-identical: weights, optimizer state, history (``monitor``: its records too)."""
    for k, v in b.model.params.items():
        assert np.array_equal(a.model.params[k], v), k
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["t"] == sb["t"]
    for name, slots in sb["state"].items():
        for slot, v in slots.items():
            assert np.array_equal(sa["state"][name][slot], v), (name, slot)
    if monitor:
        assert a.history == b.history
    else:
        ha, hb = a.history, b.history
        assert (ha.loss, ha.lr, ha.epochs) == (hb.loss, hb.lr, hb.epochs)
    assert (a.step, a.epoch, a.lr_scale) == (b.step, b.epoch, b.lr_scale)


def fit(tr: nl.Trainer, task: str = "classification", dtype=np.float64, **kwargs) -> nl.Trainer:
    X, y = data(task)
    kwargs = {"epochs": EPOCHS, "batch_size": BATCH, "seed": 1, **kwargs}
    tr.fit(X.astype(dtype), y, **kwargs)
    return tr


# -- the engine against the NumPy path ------------------------------------------------------------
@pytest.mark.parametrize("combo", combos(), ids="-".join)
def test_engine_matches_numpy_path_float64(combo):
    act, loss, opt, reg = combo
    e, n = (fit(trainer(engine, activation=act, loss=loss, optimizer=opt, regularizer=reg),
                task_of(loss)) for engine in (True, False))
    assert len(n.history.loss) == n.optimizer.t == STEPS
    assert_close_runs(e, n, TOL64)


@pytest.mark.parametrize("combo", [
    ("tanh", "softmax", "rmsprop", "none"),  # the worst of the product (3.2e-5)
    ("relu", "softmax", "adam", "l2"),
    ("elu", "mse", "sgd_clip_norm", "elastic"),
    ("sigmoid", "mse", "momentum_weight_decay", "l1"),
], ids="-".join)
def test_engine_matches_numpy_path_float32(combo):
    act, loss, opt, reg = combo
    e, n = (fit(trainer(engine, activation=act, loss=loss, optimizer=opt, regularizer=reg,
                        dtype=np.float32), task_of(loss), dtype=np.float32)
            for engine in (True, False))
    assert e.model.dtype == np.float32
    assert_close_runs(e, n, TOL32)


def test_a_second_fit_continues_from_the_first():
    """A second ``fit`` goes on from the weights and optimizer state the engine left."""
    X, y = data()
    runs = []
    for engine in (True, False):
        tr = trainer(engine, optimizer="adam", regularizer="l2")
        tr.fit(X, y, epochs=1, batch_size=BATCH, seed=1)
        tr.fit(X[:200], y[:200], epochs=2, batch_size=16, seed=2)
        runs.append(tr)
    assert runs[1].optimizer.t == 38 + 2 * 13
    assert_close_runs(*runs, TOL64)


def test_clipping_and_weight_decay_act_in_the_engine():
    """The optimizer variants above differ from their plain rule (the parity tests are not
    comparing two runs that ignore the option)."""
    def end(opt):
        return fit(trainer(True, optimizer=opt)).model.params["0.W"]

    assert not np.allclose(end("adam_clip_value"), end("adam"))
    sgd = nl.Trainer(model(), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.5), monitor=False,
                     engine=True)
    assert not np.allclose(end("sgd_clip_norm"), fit(sgd).model.params["0.W"])
    mom = nl.Trainer(model(), nl.SoftmaxCrossEntropy(), nl.Momentum(lr=0.05), monitor=False,
                     engine=True)
    assert not np.allclose(end("momentum_weight_decay"), fit(mom).model.params["0.W"])


def test_two_hidden_layers_and_linear_layers_without_bias():
    nets = [
        lambda: model("tanh", hidden=(16, 12)),
        lambda: nl.Sequential([
            nl.Linear(FEATURES, 16, bias=None, rng=1, dtype=np.float64),
            nl.ELU(0.5),
            nl.Linear(16, 12, rng=2, dtype=np.float64),
            nl.LeakyReLU(0.1),
            nl.Linear(12, 3, bias=None, rng=3, dtype=np.float64),
        ]).pack(),
    ]
    for net in nets:
        e, n = (fit(trainer(engine, regularizer="elastic", net=net())) for engine in (True, False))
        assert_close_runs(e, n, TOL64)
    assert "2.b" in e.model.params and "0.b" not in e.model.params and "4.b" not in e.model.params


def test_unusual_layouts():
    """An activation first, two Linear layers back to back, an activation last (MSE on its
    output), and 1-D regression targets."""
    X, y = data("regression")

    def net():
        return nl.Sequential([
            nl.Sigmoid(),
            nl.Linear(FEATURES, 10, rng=1, dtype=np.float64),
            nl.Linear(10, 8, rng=2, dtype=np.float64),
            nl.ReLU(),
            nl.Linear(8, 1, rng=3, dtype=np.float64),
            nl.Tanh(),
        ]).pack()

    runs = []
    for engine in (True, False):
        tr = nl.Trainer(net(), nl.MeanSquaredError(), nl.Momentum(lr=0.05), regularizer=nl.L2(1e-3),
                        monitor=False, engine=engine)
        tr.fit(X, np.tanh(y[:, 0]), epochs=EPOCHS, batch_size=BATCH, seed=1)
        runs.append(tr)
    assert_close_runs(*runs, TOL64)


@pytest.mark.parametrize("n, batch_size", [(50, 7), (50, 50), (30, 64)],
                         ids=["last-batch-of-1", "one-full-batch", "batch-above-n"])
def test_partial_and_oversized_batches(n, batch_size):
    X, y = data(n=n)
    runs = []
    for engine in (True, False):
        tr = trainer(engine, optimizer="nesterov", regularizer="l2")
        tr.fit(X, y, epochs=4, batch_size=batch_size, seed=3)
        runs.append(tr)
    assert len(runs[1].history.loss) == 4 * -(-n // batch_size)
    assert_close_runs(*runs, TOL64)


def test_schedule_and_plateau_scaling_match_numpy_path():
    X, y = data()
    Xv, yv = data(n=60, seed=1)
    runs = []
    for engine in (True, False):
        tr = trainer(engine, optimizer="momentum", regularizer="l2",
                     schedule=nl.Warmup(nl.Cosine(lr=0.1, total_steps=STEPS), warmup_steps=10),
                     callbacks=[nl.ReduceLROnPlateau(patience=0, factor=0.5, min_delta=1.0)])
        tr.fit(X, y, validation=(Xv, yv), epochs=EPOCHS, batch_size=BATCH, seed=1)
        runs.append(tr)
    assert len(set(runs[1].history.lr)) > 20  # the lr changes every step
    assert_close_runs(*runs, TOL64)
    assert runs[0].lr_scale == runs[1].lr_scale == 0.25  # halved after epochs 0 and 1


@pytest.mark.parametrize("loss", ["softmax", "mse"])
def test_sample_and_class_weights_match_numpy_path(loss):
    """Row weights (some 0, and a batch whose rows all weigh 0: the regulariser alone),
    and class weights."""
    X, y = data(task_of(loss))
    w = np.random.default_rng(5).uniform(0.0, 2.0, N)
    w[::7] = 0.0
    w[np.random.default_rng(1).permutation(N)[:BATCH]] = 0.0  # step 0's rows (seed 1): no mass
    extras = [{"sample_weight": w}]
    if loss == "softmax":
        extras.append({"class_weight": {0: 0.5, 1: 2.0, 2: 1.0}, "sample_weight": w})
    for extra in extras:
        runs = []
        for engine in (True, False):
            tr = trainer(engine, loss=loss, optimizer="rmsprop", regularizer="l2")
            tr.fit(X, y, epochs=EPOCHS, batch_size=BATCH, seed=1, **extra)
            runs.append(tr)
        assert_close_runs(*runs, TOL64)
        # step 0 had no data: its loss is the penalty of the initial weights alone
        start = model(n_out=3 if loss == "softmax" else 2)
        assert runs[0].history.loss[0] == pytest.approx(nl.L2(1e-2).loss(start), rel=1e-12)


def test_weights_of_one_train_exactly_as_none():
    a = fit(trainer(True, regularizer="l1"), sample_weight=np.ones(N))
    b = fit(trainer(True, regularizer="l1"))
    assert a.engine_used == b.engine_used == "compiled"
    assert_same_run(a, b)


# -- callbacks: where the engine stops, and what the hooks see ----------------------------------
class Recorder(nl.Callback):
    """Every fifth step: the loss and gradients before the update, the weights after it."""

    interval = 5

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at
        self.calls: list[tuple] = []
        self.seen: list[tuple] = []

    def on_before_update(self, trainer, step, loss):
        self.calls.append(("before", step, trainer.step))
        grads = np.concatenate([g.ravel() for g in trainer.grads.values()])
        self.seen.append((loss, grads, trainer.model.params["0.W"].copy()))

    def on_batch_end(self, trainer, step, logs):
        self.calls.append(("end", step, trainer.step, logs["lr"], logs["batch_size"]))
        self.seen.append((logs["loss"], trainer.model.params["0.W"].copy()))
        if step == self.stop_at:
            trainer.stop_training = True


def test_callback_hooks_see_what_they_see_on_the_numpy_path():
    recs = [Recorder(stop_at=65), Recorder(stop_at=65)]
    runs = [fit(trainer(engine, optimizer="rmsprop", regularizer="l1", callbacks=[rec]))
            for engine, rec in zip((True, False), recs)]
    assert_close_runs(*runs, TOL64)
    assert len(runs[0].history.loss) == 66  # stopped mid-epoch, after step 65
    assert recs[0].calls == recs[1].calls
    assert [c[1] for c in recs[0].calls if c[0] == "before"] == list(range(0, 66, 5))
    for a, b in zip(recs[0].seen, recs[1].seen):
        assert abs(a[0] - b[0]) <= TOL64 * abs(b[0])
        for x, z in zip(a[1:], b[1:]):
            assert rel(x, z) <= TOL64


@pytest.mark.parametrize("monitor", ["default", "every-10"])
def test_monitor_checkpoints_and_logger_do_not_change_the_engine_run(tmp_path, monitor):
    """The Monitor (the engine stops before the updates of steps 0 and 100; every 10 with
    noise every 25: every multiple of 5), a checkpoint every 7 steps and the JSONL log:
    bit-identical to the same engine run without them."""
    mon = True if monitor == "default" else nl.Monitor(every=10, noise_every=25)
    with_callbacks = fit(trainer(
        True, monitor=mon,
        callbacks=[nl.Checkpoint(tmp_path / "ckpt", every_steps=7, keep=None),
                   nl.JSONLLogger(tmp_path / "metrics.jsonl")]))
    plain = fit(trainer(True))
    assert with_callbacks.engine_used == plain.engine_used == "compiled"
    assert_same_run(with_callbacks, plain, monitor=False)
    # the callbacks did their work
    measured = {r["step"] for r in with_callbacks.history.monitor if r["kind"] != "spectrum"}
    assert measured == ({0, 100} if monitor == "default" else
                        set(range(0, STEPS, 10)) | set(range(0, STEPS, 25)))
    saved = sorted(p.name for p in (tmp_path / "ckpt").glob("step-*.safetensors"))
    assert saved == [f"step-{s:09d}.safetensors" for s in range(7, STEPS + 1, 7)]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert sum(json.loads(x)["event"] == "step" for x in lines) == STEPS


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("every_steps", [1, 5])
def test_jsonl_step_lines_match_numpy_path(tmp_path, every_steps):
    runs, logs = [], []
    for engine in (True, False):
        path = tmp_path / f"{engine}.jsonl"
        runs.append(fit(trainer(engine, monitor=True, optimizer="momentum", regularizer="l2",
                                callbacks=[nl.JSONLLogger(path, every_steps=every_steps)])))
        logs.append(jsonl(path))
    assert_close_runs(*runs, TOL64)
    e, n = logs

    def events(lines):
        return collections.Counter((x["event"], x.get("step"), x.get("kind"), x.get("layer"),
                                    x.get("param")) for x in lines)

    assert events(e) == events(n)
    se = [x for x in e if x["event"] == "step"]
    sn = [x for x in n if x["event"] == "step"]
    assert [x["step"] for x in sn] == list(range(every_steps - 1, STEPS, every_steps))
    for a, b in zip(se, sn):
        assert (a["step"], a["epoch"], a["lr"]) == (b["step"], b["epoch"], b["lr"])
        assert abs(a["loss"] - b["loss"]) <= TOL64 * abs(b["loss"])
    epochs = [[x for x in lines if x["event"] == "epoch"] for lines in (e, n)]
    assert len(epochs[1]) == EPOCHS
    for a, b in zip(*epochs):
        assert a.keys() == b.keys()
        for k in b.keys() - {"time"}:
            if isinstance(b[k], float):
                assert abs(a[k] - b[k]) <= TOL64 * abs(b[k]), k
            else:
                assert a[k] == b[k], k


# -- resume ---------------------------------------------------------------------------------------
class Interrupt(Exception):
    pass


class InterruptAt(nl.Callback):
    """A crash once ``trainer.step`` reaches ``at`` (after Checkpoint, order 100, saved);
    ``next_step`` tells the engine where, so it runs the steps before without calling back."""

    order = 200

    def __init__(self, at: int) -> None:
        self.at = at

    def next_step(self, step):
        return self.at - 1 if step < self.at else 1 << 62

    def on_batch_end(self, trainer, step, logs):
        if trainer.step == self.at:
            raise Interrupt


def resume_trainer(callbacks=()) -> nl.Trainer:
    return nl.Trainer(
        model("elu"), nl.SoftmaxCrossEntropy(), nl.Adam(lr=0.02),
        schedule=nl.Cosine(lr=0.02, total_steps=STEPS), regularizer=nl.L2(1e-3),
        callbacks=[nl.ReduceLROnPlateau(patience=0, factor=0.5, min_delta=1.0), *callbacks],
        engine=True,
    )  # with the default Monitor


def resume_fit(tr: nl.Trainer, resume=None) -> nl.Trainer:
    Xv, yv = data(n=60, seed=1)
    return fit(tr, validation=(Xv, yv), resume=resume)


def test_resume_mid_epoch_is_bit_identical(tmp_path):
    """Checkpoints every 10 steps (38 batches an epoch), a crash at step 55: the run resumed
    from step 50 (batch 12 of epoch 1) ends bit-identical to the uninterrupted run."""
    reference = resume_fit(resume_trainer())
    with pytest.raises(Interrupt):
        resume_fit(resume_trainer([nl.Checkpoint(tmp_path, every_steps=10), InterruptAt(55)]))
    assert Path(latest_checkpoint(tmp_path)).name == "step-000000050.safetensors"
    resumed = resume_fit(resume_trainer(), resume=tmp_path)
    assert resumed.resumed
    assert reference.engine_used == resumed.engine_used == "compiled"
    assert reference.lr_scale < 1  # the plateau reduction's state was resumed too
    assert_same_run(resumed, reference)


# -- dropout ------------------------------------------------------------------------------------
class StopsEvery(nl.Callback):
    """Per-step hooks every ``interval`` steps: the engine's segments end there."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.seen: list[int] = []

    def on_batch_end(self, trainer, step, logs):
        self.seen.append(step)


def dropout_trainer(engine, callbacks=(), dtype=np.float64, rate=0.3, lr=0.05) -> nl.Trainer:
    net = nl.mlp(FEATURES, [16, 12], 3, dropout=rate, rng=0, dtype=dtype)
    return nl.Trainer(net, nl.SoftmaxCrossEntropy(), nl.Momentum(lr=lr), monitor=False,
                      engine=engine, callbacks=list(callbacks))


def rng_states(tr: nl.Trainer) -> list[dict]:
    return [layer.rng.bit_generator.state for layer in tr.model.layers if isinstance(layer, nl.Dropout)]


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-4)], ids=["f64", "f32"])
def test_dropout_draws_the_masks_the_numpy_path_draws(dtype, tol):
    """Two Dropout layers, each with its own generator: the engine draws every segment's masks
    up front, as the layers' forward would have, so the runs agree and the generators end in
    the same state (checkpoints every 7 steps cut the segments at other places)."""
    e = fit(dropout_trainer(True, [StopsEvery(7)]), dtype=dtype)
    n = fit(dropout_trainer(False), dtype=dtype)
    assert_close_runs(e, n, tol)
    assert rng_states(e) == rng_states(n)
    assert e.callbacks[0].seen == list(range(0, e.step, 7))
    plain = fit(dropout_trainer(True), dtype=dtype)
    assert_same_run(plain, e, monitor=False)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-4)], ids=["f64", "f32"])
def test_gaussian_noise_draws_the_noise_the_numpy_path_draws(dtype, tol):
    """Input noise and a noise layer after a hidden activation, next to Dropout, segments cut
    every 5 steps; std 0 draws nothing."""
    def make(engine):
        net = nl.Sequential([
            nl.GaussianNoise(0.3, rng=11), nl.Linear(FEATURES, 16, rng=0, dtype=dtype), nl.Tanh(),
            nl.GaussianNoise(0.1, rng=12), nl.Dropout(0.2, rng=13), nl.GaussianNoise(0.0, rng=14),
            nl.Linear(16, 3, rng=1, dtype=dtype)]).pack()
        return nl.Trainer(net, nl.SoftmaxCrossEntropy(), nl.Momentum(lr=0.05), monitor=False,
                          engine=engine, callbacks=[StopsEvery(5)])

    e, n = fit(make(True), dtype=dtype), fit(make(False), dtype=dtype)
    assert_close_runs(e, n, tol)
    states = [[layer.rng.bit_generator.state for layer in tr.model.layers if hasattr(layer, "rng")]
              for tr in (e, n)]
    assert states[0] == states[1]
    assert states[0][3] == make(False).model.layers[5].rng.bit_generator.state  # std 0


def test_dropout_at_rate_0_draws_nothing():
    e, n = fit(dropout_trainer(True, rate=0.0)), fit(dropout_trainer(False, rate=0.0))
    assert_close_runs(e, n, 1e-12)
    assert rng_states(e) == rng_states(n) == rng_states(dropout_trainer(False, rate=0.0))


def test_a_diverging_step_gives_back_the_masks_it_did_not_use():
    """A segment stops at a non-finite step: the masks drawn for the steps after it go back to
    the generators, and the NumPy replay of that step draws the masks the NumPy path drew."""
    runs = []
    for engine in (True, False):
        tr = dropout_trainer(engine, [nl.NonFiniteGuard()], lr=1e4)
        with pytest.raises(nl.DivergenceError) as err, np.errstate(all="ignore"):
            fit(tr)
        runs.append((tr, err.value))
    (e, ee), (n, en) = runs
    assert (ee.step, str(ee)) == (en.step, str(en))
    assert rng_states(e) == rng_states(n)


def test_dropout_resume_mid_epoch_is_bit_identical(tmp_path):
    reference = fit(dropout_trainer(True))
    with pytest.raises(Interrupt):
        fit(dropout_trainer(True, [nl.Checkpoint(tmp_path, every_steps=10), InterruptAt(55)]))
    resumed = fit(dropout_trainer(True), resume=tmp_path)
    assert resumed.resumed and resumed.engine_used == "compiled"
    assert_same_run(resumed, reference, monitor=False)
    assert rng_states(resumed) == rng_states(reference)


# -- batch norm -----------------------------------------------------------------------------------
def batchnorm_trainer(engine, dtype=np.float64, dropout=0.0, callbacks=()) -> nl.Trainer:
    net = nl.mlp(FEATURES, [16, 12], 3, batchnorm=True, dropout=dropout, rng=0, dtype=dtype)
    for layer in net.layers:
        if isinstance(layer, nl.BatchNorm):
            layer.momentum = 0.7  # not the default: the kernel must get the layer's own
    return nl.Trainer(net, nl.SoftmaxCrossEntropy(), nl.Adam(lr=0.01), regularizer=nl.L2(1e-3),
                      monitor=False, engine=engine, callbacks=list(callbacks))


def assert_close_buffers(e: nl.Trainer, n: nl.Trainer, tol: float) -> None:
    for k, v in n.model.buffers.items():
        assert e.model.buffers[k].dtype == v.dtype
        assert np.max(np.abs(e.model.buffers[k] - v)) <= tol * np.max(np.abs(v)), k


@pytest.mark.parametrize("dropout", [0.0, 0.25], ids=["bn", "bn-dropout"])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-4)], ids=["f64", "f32"])
def test_batchnorm_matches_numpy_path(dtype, tol, dropout):
    """Two BatchNorm layers of different widths (Linear without bias before each): weights,
    γ and β, and the running averages, which the engine keeps in one block of views."""
    e = fit(batchnorm_trainer(True, dtype, dropout), dtype=dtype)
    n = fit(batchnorm_trainer(False, dtype, dropout), dtype=dtype)
    assert_close_runs(e, n, tol)
    assert_close_buffers(e, n, tol)
    X, _ = data()
    np.testing.assert_allclose(e.predict(X.astype(dtype)), n.predict(X.astype(dtype)))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-4)], ids=["f64", "f32"])
def test_layernorm_matches_numpy_path(dtype, tol):
    """LayerNorm after each hidden Linear (one with a non-default eps), and on the inputs."""
    def make(engine):
        net = nl.Sequential([
            nl.LayerNorm(FEATURES, dtype=dtype), nl.Linear(FEATURES, 16, rng=0, dtype=dtype),
            nl.LayerNorm(16, eps=1e-2, dtype=dtype), nl.ReLU(),
            nl.Linear(16, 12, rng=1, dtype=dtype), nl.LayerNorm(12, dtype=dtype), nl.Tanh(),
            nl.Linear(12, 3, rng=2, dtype=dtype)]).pack()
        for layer in net.layers:
            if isinstance(layer, nl.LayerNorm):
                layer.params["gamma"][...] = np.linspace(0.5, 1.5, layer.n_features)
        return nl.Trainer(net, nl.SoftmaxCrossEntropy(), nl.Adam(lr=0.01), monitor=False,
                          engine=engine)

    assert_close_runs(fit(make(True), dtype=dtype), fit(make(False), dtype=dtype), tol)


def test_batchnorm_resume_mid_epoch_is_bit_identical(tmp_path):
    """The running averages go through the checkpoint and back into the engine's block."""
    reference = fit(batchnorm_trainer(True, dropout=0.25))
    with pytest.raises(Interrupt):
        fit(batchnorm_trainer(True, dropout=0.25,
                              callbacks=[nl.Checkpoint(tmp_path, every_steps=10), InterruptAt(55)]))
    resumed = fit(batchnorm_trainer(True, dropout=0.25), resume=tmp_path)
    assert resumed.engine_used == "compiled"
    assert_same_run(resumed, reference, monitor=False)
    for k, v in reference.model.buffers.items():
        assert np.array_equal(resumed.model.buffers[k], v), k


# -- what keeps a run on the NumPy path --------------------------------------------------------
def unsupported():
    """(id, keyword of the reason, trainer factory, extra fit arguments)."""
    def mlp(**kw):
        return lambda: nl.mlp(FEATURES, [16], 3, rng=0, dtype=np.float64, **kw)

    def tr(net=None, loss=None, opt=None, **kw):
        def make(engine):
            return nl.Trainer(
                net() if net else model(), loss() if loss else nl.SoftmaxCrossEntropy(),
                opt() if opt else nl.Momentum(lr=0.05), monitor=False, engine=engine, **kw)
        return make

    def unpacked():
        return nl.Sequential([nl.Linear(FEATURES, 8, rng=0, dtype=np.float64), nl.ReLU(),
                              nl.Linear(8, 3, rng=1, dtype=np.float64)])

    return [
        ("prelu", "PReLU", tr(mlp(activation="prelu")), {}),
        ("unpacked", "packed", tr(unpacked), {}),
        ("hinge", "MulticlassHinge", tr(loss=nl.MulticlassHinge), {}),
        ("lbfgs", "L-BFGS", tr(opt=lambda: nl.LBFGS(max_iter=5)), {}),
        ("maxnorm", "constraints", tr(constraints=[nl.MaxNorm(2.0)]), {}),
    ]


@pytest.mark.parametrize("case", unsupported(), ids=lambda c: c[0])
def test_unsupported_runs_fall_back_to_the_numpy_path(case):
    _, keyword, make, extra = case
    X, y = data()
    a = make(None)
    a.fit(X, y, epochs=2, batch_size=32, seed=1, **extra)
    assert a.engine_used.startswith("numpy: ") and keyword in a.engine_used
    b = make(False)  # the fallback is the reference path itself
    b.fit(X, y, epochs=2, batch_size=32, seed=1, **extra)
    assert b.engine_used == "numpy: Trainer(engine=False)"
    assert a.history == b.history and len(a.history.epochs) == 2
    with pytest.raises(ValueError, match=keyword):
        make(True).fit(X, y, epochs=1, batch_size=32, **extra)


def test_memmap_data_falls_back(tmp_path):
    X, y = data()
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    tr = trainer(None)
    tr.fit(Xm, y, epochs=1, batch_size=32)
    assert tr.engine_used.startswith("numpy: ") and "memory-mapped" in tr.engine_used
    with pytest.raises(ValueError, match="memory-mapped"):
        trainer(True).fit(Xm, y, epochs=1, batch_size=32)


def test_engine_off_or_numba_missing_fall_back(monkeypatch):
    monkeypatch.setattr(nl_engine, "ENABLED", False)  # NEURONLAB_ENGINE=0
    tr = fit(trainer(None), epochs=1)
    assert tr.engine_used == "numpy: the compiled engine is off (NEURONLAB_ENGINE=0)"
    with pytest.raises(ValueError, match="NEURONLAB_ENGINE=0"):
        fit(trainer(True), epochs=1)
    monkeypatch.setattr(nl_engine, "ENABLED", True)
    monkeypatch.setattr(nl_engine, "available", lambda: False)
    tr = fit(trainer(None), epochs=1)
    assert tr.engine_used.startswith("numpy: numba is not installed")
    assert fit(trainer(False), epochs=1).engine_used == "numpy: Trainer(engine=False)"


def test_engine_argument_is_checked():
    with pytest.raises(TypeError, match="engine must be None, True or False"):
        trainer("yes")
    assert trainer(None).engine_used == ""  # set by fit
    assert fit(trainer(None), epochs=1).engine_used == "compiled"


@pytest.mark.parametrize("layout", ["float64", "fortran", "strided"])
def test_other_data_layouts_are_cast_once_and_train_identically(layout):
    """A float32 model given float64 (or non-contiguous) rows trains on the engine,
    bit-identically to the float32 C array (the NumPy path casts each batch the same way)."""
    X, y = data()
    X32 = X.astype(np.float32)
    given = {"float64": X, "fortran": np.asfortranarray(X32),
             "strided": np.repeat(X32, 2, axis=1)[:, ::2]}[layout]
    assert np.array_equal(given.astype(np.float32), X32)
    runs = []
    for rows in (given, X32):
        tr = trainer(True, dtype=np.float32)
        tr.fit(rows, y, epochs=2, batch_size=BATCH, seed=1)
        runs.append(tr)
    assert runs[0].engine_used == "compiled"
    assert_same_run(*runs)
    ref = trainer(False, dtype=np.float32)
    ref.fit(given, y, epochs=2, batch_size=BATCH, seed=1)
    assert_close_runs(runs[0], ref, TOL32)


# -- divergence -----------------------------------------------------------------------------------
def diverging(engine, loss, lr, dtype, guard):
    return nl.Trainer(model(n_out=3 if loss == "softmax" else 2, dtype=dtype), LOSSES[loss](),
                      nl.SGD(lr=lr), monitor=False, engine=engine,
                      callbacks=[nl.NonFiniteGuard()] if guard else [])


@pytest.mark.parametrize("guard", [False, True], ids=["no-guard", "guard"])
@pytest.mark.parametrize("loss, lr, dtype", [
    ("softmax", 1e6, np.float64),   # scores overflow at step 34, in the last Linear
    ("softmax", 1e6, np.float32),   # at step 4
    ("mse", 1e3, np.float64),       # the loss overflows from finite scores (with the guard)
    ("mse", 1e12, np.float64),      # NaN weights written by an update (without the guard)
    ("mse", 1e6, np.float32),
], ids=["softmax-f64", "softmax-f32", "mse-f64", "mse-f64-nan", "mse-f32"])
def test_divergence_raises_the_numpy_paths_error(loss, lr, dtype, guard):
    errors, runs = [], []
    for engine in (True, False):
        tr = diverging(engine, loss, lr, dtype, guard)
        with pytest.raises(nl.DivergenceError) as err:
            fit(tr, task_of(loss), dtype=dtype, batch_size=10, seed=0)
        errors.append(err.value)
        runs.append(tr)
    e, n = errors
    assert runs[0].engine_used == "compiled"
    assert (e.step, e.name, e.layer, e.layer_type, e.direction, e.param) == (
        n.step, n.name, n.layer, n.layer_type, n.direction, n.param)
    assert str(e) == str(n)
    assert "training diverged at step" in str(e) and "(the update was not applied)" in str(e)
    he, hn = runs[0].history, runs[1].history
    assert len(he.loss) == len(hn.loss) == e.step
    le, ln = np.array(he.loss), np.array(hn.loss)  # without the guard, inf losses before
    finite = np.isfinite(ln)
    assert np.array_equal(np.isfinite(le), finite) and np.array_equal(le[~finite], ln[~finite])
    tol = TOL64 if dtype == np.float64 else TOL32
    assert np.all(np.abs(le[finite] - ln[finite]) <= tol * np.abs(ln[finite]))
    diverged = {k: v for k, v in hn.info.items() if k.startswith("diverged")}
    assert diverged and {k: he.info[k] for k in diverged} == diverged


@pytest.mark.parametrize("guard", [False, True], ids=["no-guard", "guard"])
def test_a_float32_squared_error_sum_that_overflows(guard):
    """Scores of 1.5e19: each square (2.25e38) fits float32, a batch's sum does not. The
    NumPy loss sums in the scores' dtype (np.dot), so it is inf; the engine's must be too
    (NonFiniteGuard stops step 0 on its loss; without it both record inf)."""
    X, y = np.ones((16, FEATURES), np.float32), np.zeros((16, 2))
    runs = []
    for engine in (True, False):
        net = nl.mlp(FEATURES, [], 2, rng=0, dtype=np.float32)
        net.params["0.W"][:] = 1.5e19 / FEATURES
        tr = nl.Trainer(net, nl.MeanSquaredError(), nl.SGD(lr=1e-30), monitor=False,
                        engine=engine, callbacks=[nl.NonFiniteGuard()] if guard else [])
        runs.append(tr)
        if guard:
            with pytest.raises(nl.DivergenceError) as err:
                tr.fit(X, y, epochs=1, batch_size=8)
            assert (err.value.step, err.value.name) == (0, "loss")
        else:
            tr.fit(X, y, epochs=1, batch_size=8)
    assert runs[0].engine_used == "compiled"
    assert runs[0].history.loss == runs[1].history.loss  # [inf, inf] without the guard


@pytest.mark.parametrize("guard", [False, True], ids=["no-guard", "guard"])
def test_an_infinite_loss_from_finite_scores(guard):
    """Squared errors of ~1e320 overflow float64 while the scores (~1e160) and gradients stay
    finite: NonFiniteGuard stops the step on its loss (the engine checks the loss as well as
    the gradients), and without it both paths record inf and go on."""
    X, y = data("regression", n=40)
    runs = []
    for engine in (True, False):
        net = nl.mlp(FEATURES, [], 2, rng=0, dtype=np.float64)
        net.params["0.W"][:] = 1e160
        tr = nl.Trainer(net, nl.MeanSquaredError(), nl.SGD(lr=1e-3), monitor=False, engine=engine,
                        callbacks=[nl.NonFiniteGuard()] if guard else [])
        runs.append(tr)
        if guard:
            with pytest.raises(nl.DivergenceError) as err:
                tr.fit(X, y, epochs=1, batch_size=8)
            assert (err.value.step, err.value.name, err.value.direction) == (0, "loss", "loss")
            assert tr.history.loss == []
        else:
            tr.fit(X, y, epochs=1, batch_size=8)
            assert tr.history.loss[0] == np.inf
    assert runs[0].engine_used == "compiled"
    assert runs[0].history.loss == runs[1].history.loss


def test_writing_a_new_engine_version_prunes_the_stale_ones(tmp_path, monkeypatch):
    """A version nothing has loaded for STALE_AFTER_S goes with its machine code; one loaded
    recently (its .used stamp) or written recently stays, and so does the one written."""
    import os
    import time

    from neuronlab.engine import build

    monkeypatch.setenv("NEURONLAB_CACHE", str(tmp_path))
    folder = tmp_path / "engine"
    (folder / "__pycache__").mkdir(parents=True)
    old = time.time() - build.STALE_AFTER_S - 60

    def version(stem: str, *, written: float, used: float | None) -> None:
        module = folder / f"{stem}.py"
        module.write_text("x = 1\n")
        os.utime(module, (written, written))
        for ext in ("steps-1.py311.nbi", "steps-1.py311.1.nbc"):
            (folder / "__pycache__" / f"{stem}.{ext}").write_bytes(b"code")
        if used is not None:
            (folder / f"{stem}.used").touch()
            os.utime(folder / f"{stem}.used", (used, used))

    version("engine_stale", written=old, used=old)
    version("engine_stale_no_stamp", written=old, used=None)
    version("engine_used_lately", written=old, used=time.time())
    version("engine_new_elsewhere", written=time.time(), used=None)
    path, cached = build._write("y = 2\n")
    assert cached and path.parent == folder and path.with_suffix(".used").exists()
    left = sorted(p.name for p in folder.glob("engine_*.py"))
    assert left == sorted([path.name, "engine_new_elsewhere.py", "engine_used_lately.py"])
    code = {p.name.split(".")[0] for p in (folder / "__pycache__").iterdir()}
    assert code == {"engine_new_elsewhere", "engine_used_lately"}
    # the same text again: nothing rewritten, nothing pruned, the stamp refreshed
    os.utime(path.with_suffix(".used"), (old, old))
    assert build._write("y = 2\n") == (path, True)
    assert path.with_suffix(".used").stat().st_mtime > old + 60
