"""Hostile checkpoints against both resume paths: ``Trainer.fit(resume=...)`` and
``neuronlab train --resume``.

A checkpoint's digest covers its metadata JSON and every tensor, so a flipped bit is refused;
a checkpoint *re-digested* after tampering (what an attacker or a buggy tool writes) must still
be refused when what it would restore is inconsistent: a negative step, an epoch past the run,
an order that is not a permutation of the rows, a null random state, a missing key, renamed
history keys, another architecture. Every case ends in a CheckpointError (CLI: exit 2 with one
``error:`` line), within 10 s, never another exception.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import save

import neuronlab as nl
from neuronlab.cli import cli
from neuronlab.errors import CheckpointError
from neuronlab.io.safetensors_file import read_safetensors, DTYPES
from neuronlab.io.files import content_digest
from neuronlab.train.checkpoint import load_checkpoint

from _hostile import deadline

X, Y = nl.data.spiral(n_per_class=20, n_classes=3, seed=0)


def trainer(callbacks: list | None = None) -> nl.Trainer:
    model = nl.mlp(2, [8], 3, dropout=0.1, rng=0)  # dropout: a layer random state too
    return nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(lr=1e-2),
                      callbacks=[nl.EarlyStopping("loss", patience=50), *(callbacks or [])])


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    """A mid-epoch checkpoint (step 5 of an epoch of 8 batches) of a 2-epoch run."""
    folder = tmp_path_factory.mktemp("ckpt")
    trainer([nl.Checkpoint(folder, every_steps=5, every_epochs=None, keep=None)]).fit(
        X, Y, epochs=2, batch_size=8, seed=0)
    return folder / "step-000000005.safetensors"


def resume(path: Path) -> nl.History:
    return trainer().fit(X, Y, epochs=2, batch_size=8, seed=0, resume=path)


def rewrite(src: Path, dst: Path, edit: Callable[[dict, dict[str, np.ndarray]], None]) -> Path:
    """``src`` with its metadata and tensors edited, then digested again (a valid digest)."""
    tensors, meta = read_safetensors(src, CheckpointError, dtypes=set(DTYPES) - {"BF16"},
                                     policy="", what="checkpoint")
    info = json.loads(meta["meta"])
    tensors = {k: np.array(v) for k, v in tensors.items()}
    edit(info, tensors)
    meta = {**meta, "meta": json.dumps(info)}
    meta["sha256"] = content_digest(tensors, meta)
    dst.write_bytes(save(tensors, metadata=meta))
    return dst


def _set(path: str, value: Any) -> Callable[[dict, dict], None]:
    def edit(info: dict, tensors: dict) -> None:
        *parents, last = path.split(".")
        node = info
        for p in parents:
            node = node[p]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return edit


def _order(make: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict, dict], None]:
    def edit(info: dict, tensors: dict) -> None:
        tensors["state/order"] = make(tensors["state/order"]).astype(np.int64)
    return edit


def _rename_history_key(info: dict, tensors: dict) -> None:
    monitor = info["state"]["history"]["monitor"]
    monitor[0]["update_ratiO"] = monitor[0].pop("update_ratio", None) if monitor else None
    if not monitor:
        info["state"]["history"]["info"]["initial_losS"] = 1.0


def _other_activation(info: dict, tensors: dict) -> None:
    info["model"]["layers"][1]["type"] = "tanh"


def _scale_weights(info: dict, tensors: dict) -> None:
    tensors["model/0.W"] = np.zeros((3, 3), np.float32)  # another shape


TAMPERED = {
    "negative step": _set("state.step", -1),
    "step off by one": _set("state.step", 6),
    "epoch 1e9": _set("state.epoch", 10**9),
    "epoch float": _set("state.epoch", 1e9),
    "batch past the epoch": _set("state.batch_in_epoch", 99),
    "lr_scale nan": _set("state.lr_scale", float("nan")),
    "lr_scale negative": _set("state.lr_scale", -1.0),
    "null shuffle rng": _set("state.shuffle_rng", None),
    "garbage shuffle rng": _set("state.shuffle_rng", {"bit_generator": "PCG64", "state": 3}),
    "null layer rng": lambda info, t: info["layer_rngs"].update({k: None for k in info["layer_rngs"]}),
    "missing state": _set("state", KeyError),
    "missing n_samples": _set("state.fit.n_samples", KeyError),
    "missing history": _set("state.history", KeyError),
    "missing sums": _set("state.sums", KeyError),
    "order duplicates": _order(lambda o: np.r_[o[:-1], o[:1]]),
    "order negative": _order(lambda o: np.r_[o[:-1], -1]),
    "order zeros": _order(np.zeros_like),
    "order 10^6": _order(lambda o: np.r_[o[:-1], 10**6]),
    "order short": _order(lambda o: o[:-1]),
    "history key renamed": _rename_history_key,
    "history loss dropped": lambda info, t: info["state"]["history"]["loss"].pop(),
    "other activation": _other_activation,
    "other weight shape": _scale_weights,
    "optimizer state dropped": lambda info, t: info["optimizer"].update(state={}),
    "optimizer t negative": _set("optimizer.t", -5),
    "callback state garbage": lambda info, t: info["callbacks"].update(
        {k: {"best": "x"} for k in info["callbacks"]}),
    "callbacks not a table": _set("callbacks", [1, 2]),
    "meta not a table": lambda info, t: info.clear(),
}


def test_the_original_resumes(original) -> None:
    whole = trainer().fit(X, Y, epochs=2, batch_size=8, seed=0)
    assert resume(original).loss == whole.loss  # bit-identical


@pytest.mark.parametrize("case", list(TAMPERED), ids=list(TAMPERED))
def test_tampered_but_redigested_checkpoints_are_refused(tmp_path, original, case) -> None:
    path = rewrite(original, tmp_path / "step-000000005.safetensors", TAMPERED[case])
    with deadline(), pytest.raises(CheckpointError):
        resume(path)


def _run_folder(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["train", "--data", "xor", "--hidden", "4", "--epochs", "2",
                                      "--no-report", "--runs-dir", str(runs), "--name", "r"])
    assert result.exit_code == 0, result.output
    return runs / "r"


def test_the_cli_refuses_a_tampered_checkpoint_with_one_line(tmp_path) -> None:
    run = _run_folder(tmp_path)
    latest = max((run / "checkpoints").iterdir())
    for case in ("negative step", "order duplicates", "null shuffle rng", "meta not a table"):
        rewrite(latest, latest, TAMPERED[case]) if case != "negative step" else rewrite(
            latest, latest, _set("state.step", -1))
        result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--epochs", "3",
                                          "--no-report"])
        assert result.exit_code == 2, (case, result.output)
        errors = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
        assert len(errors) == 1 and "checkpoint" in errors[0], (case, result.stderr)


def test_non_regular_checkpoints_fail_at_once(tmp_path) -> None:
    folder = tmp_path / "ckpts"
    folder.mkdir()
    fifo = folder / "step-000000009.safetensors"
    os.mkfifo(fifo)
    with deadline(), pytest.raises(CheckpointError, match="FIFO"):
        load_checkpoint(folder)
    fifo.unlink()
    fifo.symlink_to("/dev/zero")
    with deadline(), pytest.raises(CheckpointError, match="character device"):
        resume(fifo)


def _flips(original: Path, positions: list[int], tmp_path: Path) -> None:
    blob = original.read_bytes()
    whole = trainer().fit(X, Y, epochs=2, batch_size=8, seed=0).loss
    path = tmp_path / "flip.safetensors"
    refused = identical = 0
    for bit in positions:
        data = bytearray(blob)
        data[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(data))
        with deadline():
            try:
                got = resume(path).loss
            except CheckpointError:
                refused += 1
                continue
        assert got == whole, f"bit {bit} changed the resumed run"
        identical += 1
    assert refused + identical == len(positions) and refused > 0


def _header_bits(original: Path) -> int:
    blob = original.read_bytes()
    return (8 + int.from_bytes(blob[:8], "little")) * 8


def test_bit_flips_are_refused_or_harmless_sampled(original, tmp_path) -> None:
    n_header, n_all = _header_bits(original), original.stat().st_size * 8
    rng = random.Random(0)
    _flips(original, rng.sample(range(n_header), 300) + rng.sample(range(n_header, n_all), 60),
           tmp_path)


def test_truncations_are_refused(original, tmp_path) -> None:
    blob = original.read_bytes()
    path = tmp_path / "cut.safetensors"
    for n in sorted({0, 1, 7, 8, 9, 100, len(blob) // 2, len(blob) - 1, *range(0, len(blob), 997)}):
        path.write_bytes(blob[:n])
        with deadline(), pytest.raises(CheckpointError):
            resume(path)


@pytest.mark.slow
def test_every_header_bit_flip_is_refused_or_harmless(original, tmp_path) -> None:
    _flips(original, list(range(_header_bits(original))), tmp_path)
