"""End to end: what a user waits for at the command line, each command a fresh process.

* ``python -c "import numpy"`` (for reference) and ``python -c "import neuronlab"``: the
  interpreter's start-up plus the import;
* ``neuronlab --help``;
* ``neuronlab train`` with its defaults (64-256-10 on digits, Adam, 30 epochs, checkpoints,
  metrics, the diagnosis): as it is (the HTML report drawn in the background after the
  command returns), with ``--wait-report`` (the report written before it returns) and with
  ``--no-report``; the notes give the report's share of each (its time minus
  ``--no-report``'s, over its time). A background report is waited for, untimed, before the
  next command starts;
* ``neuronlab search --strategy random --trials 30 --workers 2`` (the default space on
  digits), as trials per minute.

The executables are those of the environment running the benchmark: ``sys.executable`` and
the ``neuronlab`` console script beside it. Everything runs in a temporary directory (the run
folders go to ``--runs-dir``, the search to ``--out``; removed at the end). The commands of a
group are interleaved like the rest of the benchmark (``timing.interleave``: every repetition
runs each once, in rotating order; the start-up commands after one warm-up round, so the
numbers are warm-cache ones). A time is the wall clock of the parent around
``subprocess.run``, process start to exit; the median over the repetitions is reported.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from timing import interleave

__all__ = ["E2E", "measure_e2e", "neuronlab_script"]

PARTS = ("startup", "train", "search")


@dataclass
class E2E:
    """One end-to-end row: a median (seconds, or trials per minute) over ``runs`` processes."""

    name: str
    value: float
    unit: str  # "s" or "trials/min"
    runs: int
    spread: float  # (max - min) / median of the repetitions
    target: float | None = None  # an upper bound, in ``unit``
    note: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.value <= self.target

    def shown(self) -> str:
        return f"{self.value:.2f} s" if self.unit == "s" else f"{self.value:.0f} {self.unit}"


def neuronlab_script() -> Path | None:
    """The ``neuronlab`` console script of the environment running this (beside
    ``sys.executable``, not resolved through its links: a venv's python is one)."""
    bindir = Path(sys.executable).parent
    for name in ("neuronlab", "neuronlab.exe"):
        if (bindir / name).is_file():
            return bindir / name
    return None


def _command(cmd: Sequence[str], cwd: Path, outputs: list[str] | None = None) -> Callable[[], int]:
    def run() -> int:
        done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited {done.returncode}:\n"
                               f"{done.stderr[-2000:]}")
        if outputs is not None:
            outputs.append(done.stdout)
        return 1

    return run


def _wait_for_reports(runs_dir: Path, timeout: float = 600.0) -> None:
    """Wait until no run in ``runs_dir`` has a report being drawn (``report.pending``) and
    the processes that drew them have ended."""
    deadline = time.monotonic() + timeout
    for marker in runs_dir.glob("*/report.pending"):
        try:
            pid = int(json.loads(marker.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue  # gone meanwhile: done
        while marker.exists() or _running(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the report of {marker.parent} was not done in {timeout} s")
            time.sleep(0.02)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _spread(xs: Sequence[float]) -> float:
    return (max(xs) - min(xs)) / statistics.median(xs) if len(xs) > 1 else 0.0


def measure_e2e(*, reps: int = 7, train_reps: int = 3, search_reps: int = 1,
                search_trials: int = 30, parts: Sequence[str] = PARTS,
                say: Callable[[str], None] = print) -> list[E2E]:
    """Time the commands of ``parts`` (``startup``, ``train``, ``search``); print each row."""
    python, script = sys.executable, neuronlab_script()
    rows: list[E2E] = []

    def add(row: E2E) -> None:
        rows.append(row)
        target = "" if row.target is None else (
            f"  (target ≤ {row.target:g} s: {'met' if row.met else 'NOT met'})")
        say(f"  {row.name:<40}{row.shown():>16}  (±{row.spread:.0%}, {row.runs} runs){target}"
            f"{'  ' + row.note if row.note else ''}")

    if script is None and set(parts) - {"startup"}:
        say(f"  no neuronlab script beside {python}: the command-line rows are skipped")
    with tempfile.TemporaryDirectory(prefix="neuronlab-e2e-") as tmp_:
        tmp = Path(tmp_)
        if "startup" in parts:
            cmds = {'python -c "import numpy"': [python, "-c", "import numpy"],
                    'python -c "import neuronlab"': [python, "-c", "import neuronlab"]}
            if script is not None:
                cmds["neuronlab --help"] = [str(script), "--help"]
            targets = {'python -c "import neuronlab"': 0.25, "neuronlab --help": 0.3}
            samples = interleave({k: _command(c, tmp) for k, c in cmds.items()}, reps=reps)
            for name, s in samples.items():
                add(E2E(name, statistics.median(s.seconds), "s", reps, _spread(s.seconds),
                        targets.get(name)))
        if "train" in parts and script is not None and train_reps > 0:
            names = count()
            runs_dir = tmp / "runs"

            def train(*extra: str) -> Callable[[], int]:
                def run() -> int:
                    return _command([str(script), "train", "--runs-dir", str(runs_dir),
                                     "--name", f"r{next(names)}", *extra], tmp)()

                return run

            variants = {"neuronlab train (background report)": (),
                        "neuronlab train --wait-report": ("--wait-report",),
                        "neuronlab train --no-report": ("--no-report",)}
            samples = interleave({k: train(*v) for k, v in variants.items()}, reps=train_reps,
                                 warmup=1 if train_reps > 1 else 0,
                                 settle=lambda: _wait_for_reports(runs_dir))
            _wait_for_reports(runs_dir)
            bare = statistics.median(samples["neuronlab train --no-report"].seconds)
            for name, s in samples.items():
                t = statistics.median(s.seconds)
                note = "" if name.endswith("--no-report") else (
                    f"(report's share {(t - bare) / t:.0%}: {t - bare:.2f} s)")
                add(E2E(name, t, "s", train_reps, _spread(s.seconds), note=note))
        if "search" in parts and script is not None and search_reps > 0:
            outs: list[str] = []
            dirs = count()

            def search() -> int:
                return _command([str(script), "search", "--strategy", "random", "--trials",
                                 str(search_trials), "--workers", "2", "--out",
                                 str(tmp / f"search{next(dirs)}")], tmp, outs)()

            s = interleave({"search": search}, reps=search_reps, warmup=0)["search"]
            per_min = [search_trials * 60.0 / t for t in s.seconds]
            found = [re.search(r"(\d+) trials: (.*)", o) for o in outs]
            states = "; ".join(dict.fromkeys(m.group(2) for m in found if m))
            add(E2E(f"neuronlab search random, {search_trials} trials, 2 workers",
                    statistics.median(per_min), "trials/min", search_reps, _spread(per_min),
                    note=f"({statistics.median(s.seconds):.1f} s; {states})"))
    return rows
