"""Callbacks: hook order, early stopping, plateau reduction, the non-finite guard, logging."""

from __future__ import annotations

import io
import json
import math
import types

import numpy as np
import pytest

import neuronlab as nl


def data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 1).astype(np.int64)


def trainer(callbacks, *, lr=0.1, schedule=None, optimizer=None) -> nl.Trainer:
    model = nl.mlp(3, [8], 3, rng=0)
    return nl.Trainer(
        model,
        nl.SoftmaxCrossEntropy(),
        optimizer or nl.SGD(lr=lr),
        schedule=schedule,
        callbacks=callbacks,
    )


class Recorder(nl.Callback):
    def __init__(self, stop_at_step=None):
        self.calls = []
        self.stop_at_step = stop_at_step

    def on_train_begin(self, trainer):
        self.calls.append("train_begin")

    def on_epoch_begin(self, trainer, epoch):
        self.calls.append(f"epoch_begin {epoch}")

    def on_before_update(self, trainer, step, loss):
        self.calls.append(f"before_update {step}")

    def on_batch_end(self, trainer, step, logs):
        self.calls.append(f"batch_end {step} steps_done={trainer.step}")
        if step == self.stop_at_step:
            trainer.stop_training = True

    def on_epoch_end(self, trainer, epoch, logs):
        self.calls.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, trainer):
        self.calls.append("train_end")

    def close(self):
        self.calls.append("close")


def test_hooks_run_in_order():
    X, y = data(40)
    rec = Recorder()
    trainer([rec]).fit(X, y, validation=(X, y), epochs=2, batch_size=20)
    keys = "['acc', 'epoch', 'loss', 'lr', 'step', 'val_acc', 'val_loss']"
    assert rec.calls == [
        "train_begin",
        "epoch_begin 0", "before_update 0", "batch_end 0 steps_done=1", "before_update 1",
        "batch_end 1 steps_done=2", f"epoch_end 0 {keys}",
        "epoch_begin 1", "before_update 2", "batch_end 2 steps_done=3", "before_update 3",
        "batch_end 3 steps_done=4", f"epoch_end 1 {keys}",
        "train_end", "close",
    ]  # fmt: skip


def test_stop_training_ends_after_the_step_and_closes_the_epoch():
    X, y = data(60)
    rec = Recorder(stop_at_step=4)  # 3 batches per epoch: step 4 is batch 1 of epoch 1
    tr = trainer([rec])
    h = tr.fit(X, y, epochs=10, batch_size=20)
    assert tr.step == 5 and len(h.epochs) == 2 and h.epochs[-1]["step"] == 5
    assert rec.calls[-3:] == [f"epoch_end 1 {sorted(h.epochs[-1])}", "train_end", "close"]


def test_close_runs_after_an_error_but_train_end_does_not():
    class Boom(nl.Callback):
        def on_batch_end(self, trainer, step, logs):
            raise KeyError("boom")

    X, y = data()
    rec = Recorder()
    with pytest.raises(KeyError):
        trainer([rec, Boom()]).fit(X, y, epochs=1)
    assert rec.calls[-1] == "close" and "train_end" not in rec.calls


def test_callbacks_run_by_order_then_by_position():
    class Late(nl.Callback):
        order = 50

    a, b, late, ckpt = Recorder(), Recorder(), Late(), nl.Checkpoint("unused", every_epochs=1)
    tr = trainer([late, a, ckpt, b])
    ours = [cb for cb in tr.callbacks if cb in (a, b, late, ckpt)]  # the trainer may add its own
    assert ours == [a, b, late, ckpt]


# -- EarlyStopping -------------------------------------------------------------------------
def test_early_stopping_stops_after_patience_epochs_without_improvement():
    """With lr = 0 after the first epoch's 3 steps, val_loss improves at epoch 0 only
    (epoch 1 repeats it exactly); patience 2 -> epochs 1 and 2 are the two bad ones."""
    X, y = data(60)
    stop = nl.EarlyStopping(patience=2)
    tr = trainer([stop], schedule=lambda s: 0.1 if s < 3 else 0.0)
    h = tr.fit(X, y, validation=(X, y), epochs=20, batch_size=20)
    assert len(h.epochs) == 3 and stop.stopped_epoch == 2 and stop.best_epoch == 0
    assert h.epochs[1]["val_loss"] == h.epochs[0]["val_loss"]


def _fake_trainer(model):
    return types.SimpleNamespace(model=model, stop_training=False)


def test_early_stopping_restores_the_best_weights():
    model = nl.mlp(3, [4], 2, batchnorm=True, rng=0)
    stop = nl.EarlyStopping(monitor="val_acc", patience=1, min_delta=0.01)
    tr = _fake_trainer(model)
    snapshots = []
    # val_acc: 0.5, 0.8 (best), 0.805 (not by more than min_delta), 0.7 -> stops at epoch 3
    for epoch, acc in enumerate([0.5, 0.8, 0.805, 0.7]):
        for v in {**model.params, **model.buffers}.values():
            v += 1.0  # the weights change every epoch
        snapshots.append({k: v.copy() for k, v in {**model.params, **model.buffers}.items()})
        stop.on_epoch_end(tr, epoch, {"val_acc": acc})
        if tr.stop_training:
            break
    assert (epoch, stop.best_epoch, stop.best) == (2, 1, 0.8)
    stop.on_train_end(tr)
    for k, v in {**model.params, **model.buffers}.items():
        assert np.array_equal(v, snapshots[1][k]), k


def test_early_stopping_needs_its_metric():
    X, y = data()
    with pytest.raises(ValueError, match=r"'val_loss' is not measured.*pass validation"):
        trainer([nl.EarlyStopping()]).fit(X, y, epochs=1)
    with pytest.raises(ValueError, match="patience must be >= 0, got -1"):
        nl.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode must be"):
        nl.EarlyStopping(mode="up")


# -- ReduceLROnPlateau ---------------------------------------------------------------------
def test_reduce_lr_on_plateau_scales_the_schedule():
    """min_delta is huge, so only the first epoch counts as an improvement; patience 1:
    every later epoch reduces lr_scale by 10 until lr reaches min_lr = 1e-3 (base lr 0.1)."""
    X, y = data(40)
    plateau = nl.ReduceLROnPlateau(
        monitor="loss", factor=0.1, patience=1, min_delta=1e9, min_lr=1e-3
    )
    tr = trainer([plateau], lr=0.1)
    h = tr.fit(X, y, epochs=5, batch_size=20)
    # end of epoch 0: best; end of epoch 1: reduce (x0.1), end of 2: reduce to 1e-3 = min_lr,
    # later: 1e-4 would be below min_lr and the lr already is min_lr, so it stays
    per_epoch = [h.lr[2 * e] for e in range(5)]
    assert per_epoch[:3] == [0.1, 0.1, 0.1 * 0.1]
    assert per_epoch[3:] == pytest.approx([1e-3] * 2, rel=1e-12)
    assert h.lr[4] == h.lr[5] and tr.lr_scale == pytest.approx(1e-2)


def test_reduce_lr_waits_for_patience():
    plateau = nl.ReduceLROnPlateau(factor=0.5, patience=2)
    tr = types.SimpleNamespace(lr_scale=1.0, step=0, base_lr=lambda step: 0.2)
    scales = []
    for epoch, v in enumerate([1.0, 0.9, 0.95, 0.92, 0.91, 0.85, 0.9, 0.9]):
        plateau.on_epoch_end(tr, epoch, {"val_loss": v})
        scales.append(tr.lr_scale)
    # improvements at epochs 0, 1, 5; two bad epochs (2, 3) -> halve at 3; (6, 7) -> halve at 7
    assert scales == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]
    with pytest.raises(ValueError, match="factor must be < 1"):
        nl.ReduceLROnPlateau(factor=1.5)


# -- NonFiniteGuard ------------------------------------------------------------------------
def _regression(lr, callbacks):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 2)).astype(np.float32)
    model = nl.mlp(2, [16], 1, rng=0)
    tr = nl.Trainer(model, nl.MeanSquaredError(), nl.SGD(lr=lr), callbacks=callbacks)
    return tr, X, X.sum(axis=1)


def test_guard_stops_a_diverging_run_at_the_first_non_finite_step():
    """MSE regression at lr = 1e4 overflows within a few steps. Without the guard the
    history shows where the loss first becomes non-finite (the run goes on until the NaN
    reaches the network's output, which the trainer always reports); with the guard,
    training stops at that first step, before its update, with every parameter finite."""
    free, X, y = _regression(1e4, [])
    with pytest.raises(nl.DivergenceError) as late:
        free.fit(X, y, epochs=2, batch_size=16)
    assert late.value.name == "scores" and "network's output" in str(late.value)
    first_bad = next(i for i, v in enumerate(free.history.loss) if not math.isfinite(v))

    guarded, X, y = _regression(1e4, [nl.NonFiniteGuard()])
    with pytest.raises(nl.DivergenceError) as err:
        guarded.fit(X, y, epochs=2, batch_size=16)
    assert err.value.step == first_bad == guarded.step < late.value.step
    assert err.value.name == "loss" and not math.isfinite(err.value.value)
    assert f"step {first_bad}" in str(err.value) and isinstance(err.value, RuntimeError)
    assert guarded.history.loss == free.history.loss[:first_bad]
    assert all(np.isfinite(v).all() for v in guarded.model.params.values())


def test_lr_1e6_is_reported_as_divergence_at_its_step():
    """At lr = 1e6 the weights after two steps are so large that the scores overflow: a
    DivergenceError names step 2, and the weights (never updated from a bad step) are finite."""
    tr, X, y = _regression(1e6, [nl.NonFiniteGuard()])
    with pytest.raises(nl.DivergenceError, match="diverged at step 2") as err:
        tr.fit(X, y, epochs=2, batch_size=16)
    assert (err.value.step, tr.step, len(tr.history.loss)) == (2, 2, 2)
    assert all(np.isfinite(v).all() for v in tr.model.params.values())
    assert max(np.abs(v).max() for v in tr.model.params.values()) > 1e10


def test_guard_names_the_parameter_with_a_nan_gradient():
    class Poisoned(nl.Linear):
        calls = 0

        def backward(self, dout, *, input_grad=True):
            out = super().backward(dout, input_grad=input_grad)
            Poisoned.calls += 1
            if Poisoned.calls == 4:  # the 4th backward is step 3
                self.grads["W"][1, 2] = np.nan
            return out

    X, y = data(60)
    model = nl.Sequential([nl.Linear(3, 8, rng=0), nl.ReLU(), Poisoned(8, 3, rng=1)])
    before = {}

    class Keep(nl.Callback):
        def on_batch_end(self, trainer, step, logs):
            before.update({k: v.copy() for k, v in trainer.model.params.items()})

    tr = nl.Trainer(  # no monitor: its instruments would call backward too
        model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), callbacks=[nl.NonFiniteGuard(), Keep()],
        monitor=False,
    )
    with pytest.raises(
        nl.DivergenceError, match=r"step 3: the gradient of parameter '2.W' is nan"
    ) as err:
        tr.fit(X, y, epochs=2, batch_size=20)
    assert (err.value.step, err.value.name, tr.step) == (3, "2.W", 3)
    for k, v in model.params.items():  # the poisoned step was not applied
        assert np.array_equal(v, before[k]), k


def test_guard_accepts_a_finite_gradient_whose_square_sum_overflows():
    g = np.full(4, 3e38, dtype=np.float32)  # finite, but Σg² is inf in float32
    tr = types.SimpleNamespace(grads={"0.W": g})
    with np.errstate(over="ignore", invalid="ignore"):  # as inside Trainer.fit
        nl.NonFiniteGuard().on_before_update(tr, 0, 1.0)
        g[2] = -np.inf
        with pytest.raises(nl.DivergenceError, match="'0.W' is -inf"):
            nl.NonFiniteGuard().on_before_update(tr, 0, 1.0)


# -- ProgressBar and JSONLLogger -----------------------------------------------------------
def test_progress_bar_shows_loss_and_accuracy():
    X, y = data(40)
    out = io.StringIO()
    trainer([nl.ProgressBar(disable=False, file=out, mininterval=0)]).fit(
        X, y, validation=(X, y), epochs=2, batch_size=20
    )
    text = out.getvalue()
    assert "4/4" in text and "loss=" in text and "val_acc=" in text and "epoch 2/2" in text


def test_progress_bar_is_silent_when_not_a_terminal():
    X, y = data(40)
    out = io.StringIO()  # isatty() is False
    trainer([nl.ProgressBar(file=out)]).fit(X, y, epochs=1, batch_size=20)
    assert out.getvalue() == ""


def test_jsonl_logger_appends_one_object_per_event(tmp_path):
    X, y = data(40)
    trainer([nl.JSONLLogger(tmp_path)]).fit(X, y, validation=(X, y), epochs=2, batch_size=20)
    trainer([nl.JSONLLogger(tmp_path / "metrics.jsonl", every_steps=2)]).fit(
        X, y, epochs=1, batch_size=20
    )
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lines = [e for e in lines if e["event"] != "monitor"]  # a default Monitor may add its own
    events = [e["event"] for e in lines]
    # run 1: begin, 2 x (2 steps + epoch) with the info line after the first step, end;
    # run 2: begin, info (after step 0, which is not logged: every 2), step 1, epoch, end
    assert events == ["train_begin", "step", "info", "step", "epoch", "step", "step", "epoch",
                      "train_end", "train_begin", "info", "step", "epoch", "train_end"]  # fmt: skip
    assert [e["step"] for e in lines if e["event"] == "step"] == [0, 1, 2, 3, 1]
    assert 0.0 <= lines[4]["val_acc"] <= 1.0 and lines[4]["epoch"] == 0
    assert lines[2]["info"]["initial_loss"] == pytest.approx(lines[1]["loss"], rel=0.2)
    assert lines[1]["lr"] == 0.1 and lines[0]["resumed"] is False


def test_jsonl_logger_writes_strict_json_for_nan(tmp_path):
    logger = nl.JSONLLogger(tmp_path / "m.jsonl")
    tr = types.SimpleNamespace(step=0, epoch=0, resumed=False, history=nl.History())
    logger.on_train_begin(tr)
    tr.step = 1  # what the trainer has done when it calls on_batch_end: step 0 is in the history
    tr.history.loss.append(float("nan"))
    tr.history.lr.append(0.1)
    logger.on_batch_end(tr, 0, {"loss": float("nan"), "lr": 0.1})
    logger.close()
    text = (tmp_path / "m.jsonl").read_text()
    assert "NaN" not in text and json.loads(text.splitlines()[1])["loss"] is None


def test_checkpoint_arguments_are_validated():
    with pytest.raises(ValueError, match="every_steps must be > 0, got 0"):
        nl.Checkpoint("d", every_steps=0)
    with pytest.raises(ValueError, match="cannot both be None"):
        nl.Checkpoint("d", every_steps=None, every_epochs=None)
    with pytest.raises(TypeError, match="keep must be an integer"):
        nl.Checkpoint("d", keep=2.5)
