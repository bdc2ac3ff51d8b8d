"""Exact resume: an interrupted and resumed run ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.train.checkpoint import latest_checkpoint

_spec = importlib.util.spec_from_file_location(
    "_train_resume_case", Path(__file__).with_name("_train_resume_case.py")
)
case = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(case)  # type: ignore[union-attr]


class Interrupt(Exception):
    pass


class InterruptAt(nl.Callback):
    """Simulates a crash: raises after the step / epoch, once Checkpoint (order 100) saved it."""

    order = 200

    def __init__(self, *, step: int | None = None, epoch: int | None = None) -> None:
        self.step, self.epoch = step, epoch

    def on_batch_end(self, trainer, step, logs):
        if trainer.step == self.step:
            raise Interrupt

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.epoch:
            raise Interrupt


@pytest.fixture(scope="module")
def reference() -> nl.Trainer:
    """The uninterrupted run."""
    tr = case.trainer([])
    case.fit(tr)
    return tr


def assert_same_run(a: nl.Trainer, b: nl.Trainer) -> None:
    pa, pb = {**a.model.params, **a.model.buffers}, {**b.model.params, **b.model.buffers}
    assert pa.keys() == pb.keys()
    for k, v in pa.items():
        assert np.array_equal(v, pb[k]), k
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["t"] == sb["t"]
    for name, slots in sa["state"].items():
        for slot, v in slots.items():
            assert np.array_equal(v, sb["state"][name][slot]), (name, slot)
    assert a.history == b.history  # every step's loss and lr, every epoch's metrics
    assert (a.step, a.epoch, a.lr_scale) == (b.step, b.epoch, b.lr_scale)


def interrupted_then_resumed(
    tmp_path: Path, interrupt: InterruptAt, ckpt: nl.Checkpoint
) -> nl.Trainer:
    with pytest.raises(Interrupt):
        case.fit(case.trainer([ckpt, interrupt]))
    resumed = case.trainer(
        []
    )  # fresh model, optimizer and callbacks: all state comes from the file
    case.fit(resumed, resume=str(tmp_path))
    assert resumed.resumed
    return resumed


def test_resume_at_epoch_boundary_is_bit_identical(tmp_path, reference):
    resumed = interrupted_then_resumed(tmp_path, InterruptAt(epoch=1), nl.Checkpoint(tmp_path))
    assert os.path.basename(latest_checkpoint(tmp_path)) == "epoch-0001-step-000000010.safetensors"
    assert_same_run(reference, resumed)


@pytest.mark.parametrize(
    ("every", "stop", "newest"),
    [
        (4, 13, (12, 2, 2)),  # newest checkpoint: step 12 = batch 2 of epoch 2
        (5, 6, (5, 0, 5)),  # step 5 = after the last batch of epoch 0, before its validation
    ],
)
def test_resume_mid_epoch_is_bit_identical(tmp_path, reference, every, stop, newest):
    ckpt = nl.Checkpoint(tmp_path, every_steps=every, every_epochs=None, keep=None)
    resumed = interrupted_then_resumed(tmp_path, InterruptAt(step=stop), ckpt)
    loaded = nl.load_checkpoint(tmp_path)
    assert (loaded.step, loaded.epoch, loaded.meta["state"]["batch_in_epoch"]) == newest
    assert not loaded.meta["state"]["epoch_done"]
    assert_same_run(reference, resumed)


def test_resume_after_sigkilled_subprocess(tmp_path, reference):
    script = Path(case.__file__)
    with subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            line = proc.stdout.readline()  # blocks until the checkpoint of step 8 is written
            assert line.strip() == "SAVED 8", (
                proc.stderr.read() if proc.poll() is not None else line
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # keep=2: steps 4 and 8 remain; no temporary file was left behind
    assert sorted(os.listdir(tmp_path)) == [
        "step-000000004.safetensors",
        "step-000000008.safetensors",
    ]
    resumed = case.trainer([])
    case.fit(resumed, resume=tmp_path)
    assert_same_run(reference, resumed)


def test_checkpoint_content(tmp_path):
    tr = case.trainer([nl.Checkpoint(tmp_path, every_steps=3, every_epochs=None, keep=None)])
    case.fit(tr)
    loaded = nl.load_checkpoint(tmp_path / "step-000000006.safetensors")
    meta = loaded.meta
    assert meta["state"]["step"] == 6 and meta["state"]["epoch"] == 1
    assert meta["state"]["batch_in_epoch"] == 1 and not meta["state"]["epoch_done"]
    assert loaded.epochs_done == 1
    assert meta["optimizer"]["type"] == "adam" and meta["optimizer"]["t"] == 6
    assert meta["schedule"] == {"type": "cosine", "lr": 1e-2, "total_steps": 20, "min_lr": 0.0}
    assert meta["model"] == json.loads(json.dumps(tr.model.get_config()))
    dropout_layers = [str(i) for i, l in enumerate(tr.model.layers) if isinstance(l, nl.Dropout)]
    assert sorted(meta["layer_rngs"]) == sorted(dropout_layers) and len(dropout_layers) == 2
    assert meta["state"]["shuffle_rng"]["bit_generator"] == "PCG64"
    assert len(meta["state"]["history"]["loss"]) == 6
    assert len(meta["state"]["history"]["epochs"]) == 1
    assert set(meta["callbacks"]) == {"EarlyStopping.0", "ReduceLROnPlateau.0"}
    assert np.array_equal(np.sort(loaded.tensors["state/order"]), np.arange(case.N))
    assert loaded.tensors["model/1.running_var"].dtype == np.float32
    # the saved model can be rebuilt on its own
    model = loaded.build_model()
    assert model.get_config() == tr.model.get_config()
    # keep=None kept all: steps 3, 6, ..., 18 (20 // 3 = 6 files), plus the last epoch,
    # which is always saved even with every_epochs=None
    assert len(os.listdir(tmp_path)) == 7
    assert "epoch-0003-step-000000020.safetensors" in os.listdir(tmp_path)


def test_keep_prunes_oldest(tmp_path):
    case.fit(case.trainer([nl.Checkpoint(tmp_path, every_steps=2, every_epochs=1, keep=3)]))
    assert sorted(os.listdir(tmp_path)) == [
        "epoch-0003-step-000000020.safetensors",
        "step-000000018.safetensors",
        "step-000000020.safetensors",
    ]
    assert latest_checkpoint(tmp_path).endswith("epoch-0003-step-000000020.safetensors")


def test_custom_name_is_saved_and_never_pruned(tmp_path):
    ckpt = nl.Checkpoint(tmp_path, every_epochs=1, keep=2)

    class SaveBest(nl.Callback):  # a user's callback saving under its own name each epoch
        order = 150

        def on_epoch_end(self, trainer, epoch, logs):
            # a custom name used to hit an assert in the pruning
            assert ckpt.save(trainer, "best.safetensors") == str(tmp_path / "best.safetensors")

    case.fit(case.trainer([ckpt, SaveBest()]))
    # the managed files were pruned to keep=2 around it; the custom file was never touched
    assert sorted(os.listdir(tmp_path)) == [
        "best.safetensors",
        "epoch-0002-step-000000015.safetensors",
        "epoch-0003-step-000000020.safetensors",
    ]
    assert nl.load_checkpoint(tmp_path / "best.safetensors").meta["state"]["step"] == 20
    assert latest_checkpoint(tmp_path).endswith("epoch-0003-step-000000020.safetensors")


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_checkpoint_is_a_clear_error_and_nothing_is_overwritten(tmp_path, damage):
    case.fit(case.trainer([nl.Checkpoint(tmp_path, every_epochs=2, keep=None)]))
    path = tmp_path / "epoch-0003-step-000000020.safetensors"
    data = path.read_bytes()
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "flip":  # one byte inside the last tensor's data
        data = data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:]
    elif damage == "garbage":
        data = b"\x00" * 8 + b"not a checkpoint"
    else:
        data = b""
    path.write_bytes(data)
    before = _snapshot(tmp_path)
    with pytest.raises(nl.CheckpointError, match="truncated|corrupted|not a"):
        nl.load_checkpoint(path)
    tr = case.trainer([nl.Checkpoint(tmp_path, every_steps=1)])
    with pytest.raises(nl.CheckpointError):
        case.fit(tr, resume=tmp_path)  # the directory's newest file is the damaged one
    assert _snapshot(tmp_path) == before


def test_a_model_file_is_not_a_checkpoint(tmp_path):
    model = nl.mlp(4, [8], 3, rng=0)
    nl.save(model, tmp_path / "model.safetensors")
    with pytest.raises(nl.CheckpointError, match="not a neuronlab checkpoint"):
        nl.load_checkpoint(tmp_path / "model.safetensors")


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        nl.load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError):
        nl.load_checkpoint(tmp_path / "nope.safetensors")


def test_resume_refuses_other_model_or_batch_size(tmp_path):
    case.fit(case.trainer([nl.Checkpoint(tmp_path)]))
    X, y, _, _ = case.data()
    other = nl.Trainer(nl.mlp(4, [8], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.Adam(lr=1e-2))
    with pytest.raises(nl.CheckpointError, match="different model"):
        other.fit(X, y, epochs=5, resume=tmp_path)
    with pytest.raises(nl.CheckpointError, match="batch_size=32"):
        case.trainer([]).fit(X, y, epochs=5, batch_size=16, resume=tmp_path)


def test_resume_continues_to_more_epochs(tmp_path):
    """A finished 4-epoch run resumed with epochs=6 equals a 6-epoch run."""
    X, y, Xv, yv = case.data()
    case.fit(case.trainer([nl.Checkpoint(tmp_path)]))
    longer = case.trainer([])
    longer.fit(X, y, validation=(Xv, yv), epochs=6, batch_size=case.BATCH, seed=11, resume=tmp_path)
    straight = case.trainer([])
    straight.fit(X, y, validation=(Xv, yv), epochs=6, batch_size=case.BATCH, seed=11)
    # the cosine schedule ends at step 20, both runs then train at lr 0 identically
    assert_same_run(straight, longer)
    assert len(longer.history.epochs) == 6


def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    """Checkpoint every step; the loss becomes NaN at step 7 (0-based; batch 2 of epoch 1):
    the newest file holds the state after 7 good steps, it loads, and its weights are the
    trainer's current (finite) ones: the bad update was never applied nor saved."""

    class PoisonLoss(nl.SoftmaxCrossEntropy):
        armed = False

        def forward(self, scores, y):
            value = super().forward(scores, y)
            if PoisonLoss.armed:
                PoisonLoss.armed = False
                return float("nan")
            return value

    class Arm(nl.Callback):  # the next training forward, step 7's, gets a NaN loss
        def on_batch_end(self, trainer, step, logs):
            PoisonLoss.armed = trainer.step == 7

    X, y, _, _ = case.data()
    ckpt = nl.Checkpoint(tmp_path, every_steps=1, keep=2)
    tr = nl.Trainer(
        nl.mlp(4, [8], 3, rng=0),
        PoisonLoss(),
        nl.SGD(lr=0.1),
        callbacks=[nl.NonFiniteGuard(), Arm(), ckpt],
    )
    with pytest.raises(nl.DivergenceError) as err:
        tr.fit(X, y, epochs=2, batch_size=32)
    assert err.value.step == 7 and err.value.name == "loss"
    assert sorted(os.listdir(tmp_path)) == [
        "step-000000006.safetensors",
        "step-000000007.safetensors",
    ]
    loaded = nl.load_checkpoint(tmp_path)
    assert loaded.step == 7 and tr.step == 7
    for k, v in loaded.model_arrays().items():
        assert np.array_equal(v, tr.model.params[k]), k  # the bad update was never applied
        assert np.isfinite(v).all()


def test_resume_of_an_early_stopped_run_stays_stopped(tmp_path):
    """EarlyStopping stopped the run and restored the best weights; resuming from its last
    checkpoint does no more training and restores the same best weights."""
    X, y, Xv, yv = case.data()

    def make(callbacks):
        model = nl.mlp(4, [16], 3, rng=0)
        return nl.Trainer(
            model,
            nl.SoftmaxCrossEntropy(),
            nl.SGD(lr=0.05),
            schedule=lambda s: 0.05 if s < 10 else 0.0,
            callbacks=[nl.EarlyStopping(patience=1), *callbacks],
        )

    first = make([nl.Checkpoint(tmp_path)])
    first.fit(X, y, validation=(Xv, yv), epochs=20, batch_size=32, seed=0)
    assert first.stop_training and len(first.history.epochs) < 20
    again = make([])
    again.fit(X, y, validation=(Xv, yv), epochs=20, batch_size=32, seed=0, resume=tmp_path)
    assert again.step == first.step
    assert_same_run(first, again)


def test_lbfgs_run_resumes_exactly(tmp_path):
    """Full-batch L-BFGS: one minimize per epoch, no permutation; resume after epoch 1."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    y = (X[:, 0] > 0).astype(np.int64)

    def make(callbacks):
        model = nl.mlp(3, [6], 2, rng=0, dtype=np.float64)
        return nl.Trainer(
            model, nl.SoftmaxCrossEntropy(), nl.LBFGS(max_iter=5), callbacks=callbacks
        )

    straight = make([])
    straight.fit(X, y, epochs=4)
    with pytest.raises(Interrupt):
        make([nl.Checkpoint(tmp_path), InterruptAt(epoch=1)]).fit(X, y, epochs=4)
    assert "state/order" not in nl.load_checkpoint(tmp_path).tensors
    resumed = make([])
    resumed.fit(X, y, epochs=4, resume=tmp_path)
    assert_same_run(straight, resumed)
