"""``neuronlab train --data X.npy`` on a memory-mapped file larger than ``STREAM_BYTES``: the
split is preprocessed into files on disk a chunk at a time, so the process stays far below
the data's size, and the temporary files are gone afterwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuronlab.config import RunConfig
from neuronlab.runs import STREAM_BYTES, prepare_run

ROWS, WIDTH = 200_000, 512  # 410 MB of float32

_CHILD = r"""
import sys
from neuronlab.cli import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
with open("/proc/self/status") as f:
    print(next(line for line in f if line.startswith("VmHWM")).split()[1])
sys.exit(code)
"""


def _write_data(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32, shape=(ROWS, WIDTH))
    for s in range(0, ROWS, 20_000):  # a chunk at a time: the test itself stays small too
        X[s : s + 20_000] = rng.standard_normal((20_000, WIDTH), dtype=np.float32) * 3 + 1
    X.flush()
    del X
    np.save(folder / "y.npy", rng.integers(0, 10, ROWS))
    return folder / "X.npy"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_train_streams_a_large_memmap_within_bounded_memory(tmp_path):
    data = _write_data(tmp_path)
    assert data.stat().st_size > STREAM_BYTES
    runs = tmp_path / "runs"
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, "train", "--data", str(data), "--hidden", "16", "--epochs", "1",
         "--batch-size", "256", "--runs-dir", str(runs), "--name", "big", "--no-report", "--no-progress"],
        capture_output=True, text=True, timeout=300, check=True)
    peak_mib = int(out.stdout.strip().splitlines()[-1]) / 1024
    # gathering the split into memory and standardising it peaked at 1866 MiB
    assert peak_mib < 300, out.stdout
    assert "test (50000 samples): accuracy" in out.stdout
    assert sorted(p.name for p in runs.iterdir()) == ["big"]  # the split files were removed
    # `neuronlab evaluate` reads the test rows a batch at a time too, and agrees with train
    ev = subprocess.run([sys.executable, "-c", _CHILD, "evaluate", str(runs / "big")],
                        capture_output=True, text=True, timeout=300, check=True)
    assert int(ev.stdout.strip().splitlines()[-1]) / 1024 < 300, ev.stdout
    acc = [line.split("): accuracy ")[1].split()[0] for line in (out.stdout + ev.stdout).splitlines()
           if "): accuracy " in line]  # the test lines of both commands
    assert len(acc) == 2 and acc[0] == acc[1], (out.stdout, ev.stdout)
    # `neuronlab check` streams the same way and reads only the rows its checks use
    ck = subprocess.run([sys.executable, "-c", _CHILD, "check", "--data", str(data), "--hidden", "16"],
                        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert ck.returncode in (0, 1) and ck.stdout.startswith("Sanity checks"), ck.stdout + ck.stderr
    assert int(ck.stdout.strip().splitlines()[-1]) / 1024 < 300, ck.stdout
    assert sorted(p.name for p in runs.iterdir()) == ["big"]  # its split files are gone too


def test_streamed_split_equals_the_in_memory_one(tmp_path, monkeypatch):
    """Same rows, same preprocessing (fitted on every training row when they fit FIT_BYTES)."""
    rng = np.random.default_rng(1)
    np.save(tmp_path / "X.npy", rng.standard_normal((3000, 64)).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 10, 3000))
    cfg = RunConfig().with_overrides({"data": {"source": str(tmp_path / "X.npy"), "val_size": 0.1}})
    memory = prepare_run(cfg)
    monkeypatch.setattr("neuronlab.runs.STREAM_BYTES", 0)
    monkeypatch.setattr("neuronlab.runs._CHUNK_BYTES", 64 * 4 * 100)  # 100-row chunks
    streamed = prepare_run(cfg, scratch_dir=tmp_path / "runs")
    try:
        assert streamed.scratch is not None and isinstance(streamed.train[0], np.memmap)
        for a, b in zip((memory.train, memory.val, memory.test), (streamed.train, streamed.val, streamed.test)):
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    finally:
        streamed.close()
    assert not streamed.scratch and list((tmp_path / "runs").iterdir()) == []


def test_split_folders_of_dead_processes_are_removed(tmp_path, monkeypatch):
    """A run killed before close() leaves .split-<pid>-*; the next streamed run removes it
    (and leaves a live process's folder alone)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    runs = tmp_path / "runs"
    (runs / f".split-{dead}-abc").mkdir(parents=True)
    (runs / f".split-{dead}-abc" / "X_train.npy").write_bytes(b"0" * 100)
    (runs / ".split-1-live").mkdir()  # pid 1 is always alive
    rng = np.random.default_rng(2)
    np.save(tmp_path / "X.npy", rng.standard_normal((200, 4)).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 2, 200))
    monkeypatch.setattr("neuronlab.runs.STREAM_BYTES", 0)
    run = prepare_run(RunConfig().with_overrides({"data": {"source": str(tmp_path / "X.npy")}}),
                      scratch_dir=runs)
    names = sorted(p.name for p in runs.iterdir())
    run.close()
    assert len(names) == 2 and ".split-1-live" in names and not any(dead in n for n in names)
