"""TrainState: the run's resumable state as one value, and the checks on loading it."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.train.checkpoint import CheckpointError, LoadedCheckpoint

N, BATCH, EPOCHS = 50, 16, 3  # 4 batches per epoch, the last one short


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, 4))
    return X, (X[:, 0] > 0).astype(np.int64)


def layout(state: nl.TrainState, **changes) -> nl.TrainState:
    """A fresh state with ``state``'s layout (what a resuming fit creates)."""
    kw = {"n_samples": state.n_samples, "batch_size": state.batch_size, "epochs": state.epochs,
          "full_batch": state.full_batch, "metrics": state.metrics}
    return nl.TrainState(**{**kw, **changes})


@pytest.fixture(scope="module")
def mid_epoch() -> dict:
    """The state dict after 6 steps: batch 2 of epoch 1, with a finished epoch in its history."""
    X, y = data()

    class Grab(nl.Callback):
        def on_batch_end(self, trainer, step, logs):
            if trainer.step == 6:
                self.saved = copy.deepcopy(trainer.state.state_dict())

    grab = Grab()
    tr = nl.Trainer(nl.mlp(4, [8], 2, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1),
                    regularizer=nl.L2(1e-3), callbacks=[grab])
    tr.fit(X, y, validation=(X[:10], y[:10]), epochs=EPOCHS, batch_size=BATCH, seed=5)
    return grab.saved


def test_fresh_state_and_epochs():
    s = nl.TrainState(n_samples=10, batch_size=4, epochs=2, seed=3)
    assert (s.step, s.epoch, s.batch_in_epoch, s.n_batches, s.lr_scale) == (0, 0, 0, 3, 1.0)
    assert s.order is None and not s.epoch_done and not s.stop_training
    s.begin_epoch(0)
    assert np.array_equal(s.order, np.random.default_rng(3).permutation(10))
    assert nl.TrainState(n_samples=10, batch_size=4, full_batch=True).n_batches == 1


def test_round_trip(mid_epoch):
    d = mid_epoch
    assert (d["step"], d["epoch"], d["batch_in_epoch"], d["epoch_done"]) == (6, 1, 2, False)
    assert d["fit"] == {"n_samples": N, "batch_size": BATCH, "epochs": EPOCHS,
                        "full_batch": False, "metrics": ["loss", "acc", "val_loss", "val_acc"]}
    state = nl.TrainState(n_samples=N, batch_size=BATCH, epochs=EPOCHS, metrics=d["fit"]["metrics"])
    state.load_state_dict(d)
    again = state.state_dict()
    assert np.array_equal(again.pop("order"), d["order"])
    assert again == {k: v for k, v in d.items() if k != "order"}
    assert len(state.history.loss) == 6 and len(state.history.epochs) == 1
    # the generator continues where the saved run's did: the same next epoch order
    twin = layout(state)
    twin.load_state_dict(d)
    state.begin_epoch(2)
    twin.begin_epoch(2)
    assert np.array_equal(state.order, twin.order)


def test_refused_layout_of_another_run(mid_epoch):
    base = nl.TrainState(n_samples=N, batch_size=BATCH, epochs=EPOCHS,
                         metrics=mid_epoch["fit"]["metrics"])
    with pytest.raises(CheckpointError, match="batch_size=16, this run has batch_size=8"):
        layout(base, batch_size=8).load_state_dict(mid_epoch)
    with pytest.raises(CheckpointError, match="n_samples=50"):
        layout(base, n_samples=49).load_state_dict(mid_epoch)
    with pytest.raises(CheckpointError, match="metrics"):
        layout(base, metrics=("loss", "acc")).load_state_dict(mid_epoch)
    with pytest.raises(CheckpointError, match="stopped inside epoch 1"):
        layout(base, epochs=1).load_state_dict(mid_epoch)
    more = layout(base, epochs=EPOCHS + 2)  # resuming for more epochs is fine
    more.load_state_dict(mid_epoch)
    assert more.epochs == EPOCHS + 2 and more.step == 6


def _set(d: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for p in parents:
        d = d[p]
    if value is _DELETE:
        del d[last]
    else:
        d[last] = value


_DELETE = object()


def _order(edit):
    def make(d):
        order = np.array(d["order"])
        edit(order)
        return order
    return make


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("step", -1, "'step'"),
        ("step", 7, "'step'"),  # not epoch * n_batches + batch_in_epoch = 6
        ("step", 6.0, "'step'"),
        ("epoch", -2, "'epoch'"),
        ("epoch", EPOCHS, "'epoch'"),
        ("batch_in_epoch", 5, "'batch_in_epoch'"),
        ("epoch_done", "no", "'epoch_done'"),
        ("order", _order(lambda o: o.__setitem__(0, o[1])), "'order'"),  # a duplicate
        ("order", _order(lambda o: o.__setitem__(0, -1)), "'order'"),
        ("order", _order(lambda o: o.__setitem__(0, N)), "'order'"),
        ("order", lambda d: d["order"][:-1], "'order'"),
        ("order", lambda d: d["order"].astype(np.float64), "'order'"),
        ("order", None, "'order'"),  # mid-epoch: the order is needed
        ("order", [0, 1], "'order'"),
        ("shuffle_rng", None, "'shuffle_rng'"),
        ("shuffle_rng", "garbage", "'shuffle_rng'"),
        ("shuffle_rng", np.random.MT19937(0).state, "'shuffle_rng'"),
        ("shuffle_rng.state", None, "'shuffle_rng'"),
        ("shuffle_rng.state.inc", "1", "'shuffle_rng'"),
        ("shuffle_rng.has_uint32", _DELETE, "'shuffle_rng'"),
        ("sums", _DELETE, "'sums'"),
        ("history", _DELETE, "'history'"),
        ("fit.n_samples", _DELETE, "'fit.n_samples'"),
        ("fit.epochs", 0, "'fit.epochs'"),
        ("fit.metrics", "loss", "'fit.metrics'"),
        ("extra", 1, "'extra'"),
        ("lr_scale", 0.0, "'lr_scale'"),
        ("lr_scale", -0.5, "'lr_scale'"),
        ("lr_scale", math.nan, "'lr_scale'"),
        ("lr_scale", math.inf, "'lr_scale'"),
        ("lr_scale", "1.0", "'lr_scale'"),
        ("lr_scale", True, "'lr_scale'"),
        ("seed", None, "'seed'"),
        ("sums.sq", _DELETE, "'sums.sq'"),
        ("sums.n", -3, "'sums.n'"),
        ("sums.n", -0.5, "'sums.n'"),  # a weighted fit's total weight: a float, but >= 0
        ("sums.correct", math.nan, "'sums.correct'"),
        ("sums.correct", True, "'sums.correct'"),
        ("sums.loss", "1", "'sums.loss'"),
        ("sums.extra", 0, "'sums.extra'"),
        ("history.loss", lambda d: d["history"]["loss"][:-1], "'history'"),
        ("history.epochs", [], "'history'"),
        ("history.epochs", lambda d: [{**d["history"]["epochs"][0], "x": 1}], "'history'"),
        ("history.lr", 3, "'history'"),
    ],
)
def test_each_refusal_names_the_field(mid_epoch, path, value, field):
    d = copy.deepcopy(mid_epoch)
    _set(d, path, value(d) if callable(value) else value)
    state = nl.TrainState(n_samples=N, batch_size=BATCH, epochs=EPOCHS,
                          metrics=mid_epoch["fit"]["metrics"])
    before = state.state_dict()
    with pytest.raises(CheckpointError, match=field):
        state.load_state_dict(d)
    assert state.state_dict() == before  # checked whole before anything changed


def test_a_dict_is_needed():
    with pytest.raises(CheckpointError, match="'state' must be a dict"):
        nl.TrainState().load_state_dict(None)


def _states_of(make_trainer, fit_kwargs: dict) -> list[dict]:
    """The state dict after every step and every epoch of a real run."""
    seen = []

    class Record(nl.Callback):
        order = 1000

        def on_batch_end(self, trainer, step, logs):
            seen.append(copy.deepcopy(trainer.state.state_dict()))

        on_epoch_end = on_batch_end

        def on_train_begin(self, trainer):
            seen.append(copy.deepcopy(trainer.state.state_dict()))

    tr = make_trainer([Record()])
    X, y = data()
    tr.fit(X, y, **fit_kwargs)
    return seen


@pytest.mark.parametrize("kind", ["minibatch", "early_stopped", "stopped_mid_epoch", "lbfgs"])
def test_every_state_of_a_real_run_loads(kind):
    """The consistency rules (step = epoch * n_batches + batch_in_epoch, the order, the
    history's length...) hold at every step of real runs, also stopped ones and L-BFGS."""

    class StopAt(nl.Callback):
        def on_batch_end(self, trainer, step, logs):
            trainer.stop_training = trainer.step == 6

    def make(callbacks):
        opt = nl.LBFGS(max_iter=3) if kind == "lbfgs" else nl.SGD(lr=0.1)
        extra = {"early_stopped": [nl.EarlyStopping("loss", patience=0, min_delta=10.0)],
                 "stopped_mid_epoch": [StopAt()]}.get(kind, [])
        return nl.Trainer(nl.mlp(4, [8], 2, rng=0, dtype=np.float64), nl.SoftmaxCrossEntropy(),
                          opt, callbacks=[*extra, *callbacks])

    states = _states_of(make, {"epochs": EPOCHS, "batch_size": BATCH, "seed": 1})
    last = states[-1]
    if kind == "early_stopped":
        assert last["stop_training"] and last["epoch"] == 1 and last["epoch_done"]
    if kind == "stopped_mid_epoch":
        assert last["stop_training"] and (last["step"], last["batch_in_epoch"]) == (6, 2)
    if kind == "lbfgs":
        assert last["order"] is None and last["step"] == EPOCHS
    for d in states:
        state = nl.TrainState(n_samples=N, batch_size=BATCH, epochs=EPOCHS,
                              full_batch=kind == "lbfgs", metrics=d["fit"]["metrics"])
        state.load_state_dict(d)


def test_a_checkpoint_with_a_null_layer_rng_is_refused(tmp_path):
    X, y = data()
    make = lambda cbs: nl.Trainer(nl.mlp(4, [8], 2, dropout=0.5, rng=0), nl.SoftmaxCrossEntropy(),
                                  nl.SGD(lr=0.1), callbacks=cbs)
    make([nl.Checkpoint(tmp_path)]).fit(X, y, epochs=1, batch_size=BATCH)
    good = nl.load_checkpoint(tmp_path)
    (layer,) = good.meta["layer_rngs"]
    for bad in (None, {"bit_generator": "PCG64"}, 7):
        meta = {**good.meta, "layer_rngs": {layer: bad}}
        tr = make([])
        state = nl.TrainState(n_samples=N, batch_size=BATCH, metrics=("loss", "acc"))
        before = {k: v.copy() for k, v in tr.model.params.items()}
        with pytest.raises(CheckpointError, match=f"random state 'layer_rngs.{layer}'"):
            LoadedCheckpoint(good.path, meta, good.tensors).restore(tr.model, tr.optimizer, state)
        assert all(np.array_equal(v, tr.model.params[k]) for k, v in before.items())


def test_an_edited_checkpoint_fails_its_digest(tmp_path):
    """The SHA-256 covers the JSON metadata too: a hand-edited step count is corrupt."""
    X, y = data()
    tr = nl.Trainer(nl.mlp(4, [8], 2, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1),
                    callbacks=[nl.Checkpoint(tmp_path)])
    tr.fit(X, y, epochs=1, batch_size=BATCH)
    path = Path(nl.load_checkpoint(tmp_path).path)
    raw = path.read_bytes()
    edited = raw.replace(b'\\"step\\": 4', b'\\"step\\": 5', 1)
    assert edited != raw
    path.write_bytes(edited)
    with pytest.raises(CheckpointError, match="SHA-256"):
        nl.load_checkpoint(path)


def test_trainer_attributes_are_the_state():
    tr = nl.Trainer(nl.mlp(4, [8], 2, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1))
    tr.fit(*data(), epochs=2, batch_size=BATCH)
    s = tr.state
    assert (tr.step, tr.epoch, tr.batch_in_epoch, tr.epochs, tr.n_batches) == (8, 1, 4, 2, 4)
    assert tr.history is s.history and tr.epoch_done and not tr.resumed
    tr.lr_scale, tr.stop_training = 0.5, True
    assert (s.lr_scale, s.stop_training) == (0.5, True)
    with pytest.raises(AttributeError, match="read-only"):
        tr.step = 3
