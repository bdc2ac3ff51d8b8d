"""TensorBoardLogger: the event file is read back record by record (TFRecord framing,
``tensorboardX.proto`` messages) to check what landed."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.babysit.monitor import Monitor
from neuronlab.tensorboard import TensorBoardLogger

event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")  # the `test` extra installs it


def read_events(logdir: Path) -> dict[str, list[tuple[int, object]]]:
    """``{tag: [(step, value or "histo"), ...]}`` of every event file in ``logdir``.

    TFRecord framing: uint64 length, uint32 masked CRC of the length, the serialized Event,
    uint32 masked CRC of the data (the CRCs are not checked here)."""
    tags: dict[str, list[tuple[int, object]]] = {}
    files = sorted(logdir.glob("events.out.tfevents.*"))
    assert files, f"no event file in {logdir}"
    for f in files:
        data, i = f.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            ev = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
            i += 12 + n + 4
            for v in ev.summary.value:
                kind = v.WhichOneof("value")
                tags.setdefault(v.tag, []).append(
                    (ev.step, v.simple_value if kind == "simple_value" else kind)
                )
    return tags


def _fit(logger, *, monitor, epochs=2):
    X, y = nl.data.digits()
    model = nl.mlp(64, [16], 10, rng=0)
    trainer = nl.Trainer(
        model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), callbacks=[logger], monitor=monitor
    )
    h = trainer.fit(
        X[:400], y[:400], validation=(X[400:500], y[400:500]), epochs=epochs, batch_size=100
    )
    return model, h


def test_scalars_and_histograms_land_in_the_event_file(tmp_path):
    model, h = _fit(TensorBoardLogger(tmp_path), monitor=Monitor(every=2))
    tags = read_events(tmp_path)
    loss = tags["train/loss"]
    assert [s for s, _ in loss] == list(range(8))  # 2 epochs x 4 batches
    np.testing.assert_allclose([v for _, v in loss], h.loss, rtol=1e-6)  # stored as float32
    np.testing.assert_allclose([v for _, v in tags["train/lr"]], 0.1, rtol=1e-6)
    for key in ("loss", "acc", "val_loss", "val_acc"):
        np.testing.assert_allclose([v for _, v in tags[f"epoch/{key}"]], h[key], rtol=1e-6)
        assert [s for s, _ in tags[f"epoch/{key}"]] == [0, 1]
    # the monitor's update ratios are forwarded (weights only, at its steps 0, 2, 4, 6)
    for name in model.weight_keys:
        recs = [r for r in h.monitor if r.get("param") == name and r["kind"] == "param"]
        got = tags[f"update_ratio/{name}"]
        assert [s for s, _ in got] == [r["step"] for r in recs] == [0, 2, 4, 6]
        np.testing.assert_allclose(
            [v for _, v in got], [r["update_ratio"] for r in recs], rtol=1e-6
        )
    assert "update_ratio/0.b" not in tags
    assert [s for s, _ in tags["dead_fraction/1_ReLU"]] == [0, 2, 4, 6]
    for name in model.params:
        assert tags[f"weights/{name}"] == [(0, "histo"), (1, "histo")]


def test_without_a_monitor_there_are_no_per_layer_charts(tmp_path):
    model, h = _fit(TensorBoardLogger(tmp_path), monitor=False)
    tags = read_events(tmp_path)
    assert h.monitor == []
    assert "train/loss" in tags and "weights/0.W" in tags
    assert not [t for t in tags if t.startswith(("update_ratio/", "grad_norm/", "dead_fraction/"))]


def test_histograms_every_k_epochs_and_after_the_last(tmp_path):
    _fit(TensorBoardLogger(tmp_path, histogram_every_epochs=2), monitor=False, epochs=3)
    assert read_events(tmp_path)["weights/0.W"] == [(1, "histo"), (2, "histo")]


def test_arguments_are_validated(tmp_path):
    with pytest.raises(ValueError, match="every_steps must be > 0, got 0"):
        TensorBoardLogger(tmp_path, every_steps=0)
    with pytest.raises(TypeError, match="histogram_every_epochs"):
        TensorBoardLogger(tmp_path, histogram_every_epochs=1.5)


def test_neuronlab_train_with_tensorboard(tmp_path):
    from click.testing import CliRunner

    from neuronlab.cli import cli

    r = CliRunner().invoke(
        cli,
        [
            "train",
            "--runs-dir",
            str(tmp_path),
            "--name",
            "tb",
            "--epochs",
            "1",
            "--hidden",
            "16",
            "--no-report",
            "--no-progress",
            "--tensorboard",
        ],
    )
    assert r.exit_code == 0, r.output
    tags = read_events(tmp_path / "tb" / "tensorboard")
    n_steps = sum(
        1
        for line in (tmp_path / "tb" / "metrics.jsonl").read_text().splitlines()
        if '"event": "step"' in line
    )
    assert len(tags["train/loss"]) == n_steps > 0
    assert {"epoch/loss", "epoch/val_acc", "update_ratio/0.W", "weights/0.W"} <= set(tags)
    assert not (tmp_path / "tb" / "report.html").exists()
