"""Peak memory of training from a memory-mapped ``.npy`` larger than the budget.

The parent writes ``X.npy`` (float32, CIFAR-wide rows) and ``y.npy`` into a temporary folder on
disk in chunks (never holding the array), then starts a fresh Python process that loads them
with ``nl.data.load_arrays`` (an ``np.memmap``) and trains the large network for one epoch with
the Trainer's defaults. That child reports its peak resident set size (``VmHWM``, or
``ru_maxrss`` off Linux), which counts the file pages it has mapped in: reading the file is
only cheap if the library lets go of the pages it has used. Run as a script it is that child:
``python memory.py --child FOLDER BATCH``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["measure_memmap", "write_dataset"]

WIDTH = 3072  # CIFAR-10: 32 x 32 x 3
CHUNK_ROWS = 4096  # 48 MiB of float32 per write


def _rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux's ``VmHWM`` when there is one: ``ru_maxrss`` survives ``execve``, so a child spawned
    by a big process (the benchmark holds PyTorch and its data) starts with its parent's high
    water mark; ``VmHWM`` belongs to the new address space. Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1024 if sys.platform != "darwin" else 2**20  # KiB on Linux, bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def write_dataset(folder: Path, gib: float, *, classes: int = 10, seed: int = 0) -> int:
    """Write ``folder/X.npy`` (about ``gib`` GiB of float32 rows of WIDTH) and ``folder/y.npy``
    chunk by chunk through an ordinary file handle. Returns the number of rows."""
    rows = int(gib * 2**30) // (WIDTH * 4)
    rng = np.random.default_rng(seed)
    with open(folder / "X.npy", "wb") as fh:
        header = {"descr": "<f4", "fortran_order": False, "shape": (rows, WIDTH)}
        np.lib.format.write_array_header_1_0(fh, header)
        for s in range(0, rows, CHUNK_ROWS):
            rng.standard_normal((min(CHUNK_ROWS, rows - s), WIDTH), dtype=np.float32).tofile(fh)
    np.save(folder / "y.npy", rng.integers(0, classes, rows).astype(np.int64))
    return rows


def _child(folder: str, batch: int) -> None:
    import neuronlab as nl

    base = _rss_mib()  # interpreter, NumPy, SciPy and neuronlab imported
    X, y = nl.data.load_arrays(folder)
    model = nl.mlp(WIDTH, [512, 512], 10, activation="relu", rng=0)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Momentum(lr=0.01, momentum=0.9))
    t0 = time.perf_counter()
    trainer.fit(X, y, epochs=1, batch_size=batch)
    seconds = time.perf_counter() - t0
    print(json.dumps({"rows": int(X.shape[0]), "file_mib": X.nbytes / 2**20,
                      "is_memmap": isinstance(X, np.memmap), "baseline_rss_mib": base,
                      "peak_rss_mib": _rss_mib(), "seconds": seconds}))


def measure_memmap(gib: float = 2.0, *, batch: int = 256, tmpdir: str | None = None) -> dict[str, Any]:
    """Write a ``gib`` GiB data set to a temporary folder, train on it in a child process and
    return the child's report (rows, file size, baseline and peak RSS in MiB, seconds)."""
    folder = Path(tempfile.mkdtemp(prefix="neuronlab-bench-", dir=tmpdir))
    try:
        t0 = time.perf_counter()
        write_dataset(folder, gib)
        written = time.perf_counter() - t0
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        proc = subprocess.run([sys.executable, __file__, "--child", str(folder), str(batch)],
                              capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"memmap child failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        report["write_seconds"] = written
        return report
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]))
    else:
        gib = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
        print(json.dumps(measure_memmap(gib), indent=1))
