"""Synthetic objectives for the search tests: module-level (picklable by reference), so
worker processes and Dask workers import them from this file (tests/search on their path)."""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import Any

# The known optimum of `quadratic`: log10 lr = -2.5, y = 0.3, value 0.
OPT_LOG_LR, OPT_Y = -2.5, 0.3


def quadratic(params: dict[str, Any], trial: Any) -> float:
    """-((log10 lr + 2.5)² + (y − 0.3)²) (0 at the optimum), with the other params ignored."""
    return -((math.log10(params["lr"]) - OPT_LOG_LR) ** 2 + (params["y"] - OPT_Y) ** 2)


def diverging(params: dict[str, Any], trial: Any) -> float:
    """Diverges (as training would) for lr > 1e-2, else the quadratic."""
    from neuronlab.train import DivergenceError

    if params["lr"] > 1e-2:
        raise DivergenceError(3, "loss", float("nan"))
    return quadratic(params, trial)


def curve(params: dict[str, Any], trial: Any) -> float:
    """An 'accuracy' that rises over 6 epochs towards a plateau set by lr; reports each epoch
    and stops when pruned (the training objective's protocol)."""
    plateau = 1.0 - abs(math.log10(params["lr"]) - OPT_LOG_LR) / 5.0
    acc = 0.0
    for epoch in range(6):
        acc = plateau * (1.0 - 0.5 ** (epoch + 1))
        trial.report(acc, epoch)
        if trial.should_prune():
            from neuronlab.search import TrialPruned

            raise TrialPruned()
    return acc


class Counting:
    """The quadratic, leaving one file per call in ``folder`` (counts calls across processes)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __call__(self, params: dict[str, Any], trial: Any) -> float:
        Path(self.folder, f"call-{trial.number}-{os.getpid()}-{time.monotonic_ns()}").touch()
        return quadratic(params, trial)


class Sleepy:
    """The quadratic after ``seconds`` of sleep; writes ``pids/<trial>`` with the worker's pid
    first, so a test can kill the process that is running a given trial."""

    def __init__(self, folder: str, seconds: float) -> None:
        self.folder, self.seconds = folder, seconds

    def __call__(self, params: dict[str, Any], trial: Any) -> float:
        pids = Path(self.folder, "pids")
        pids.mkdir(exist_ok=True)
        (pids / f"{trial.number}.tmp").write_text(str(os.getpid()))
        os.replace(pids / f"{trial.number}.tmp", pids / str(trial.number))
        time.sleep(self.seconds)
        return quadratic(params, trial)


class KillOnce:
    """SIGKILLs its own worker process the first time trial ``number`` runs (a marker file
    remembers), as the OOM killer or a crashed machine would."""

    def __init__(self, folder: str, number: int) -> None:
        self.folder, self.number = folder, number

    def __call__(self, params: dict[str, Any], trial: Any) -> float:
        marker = Path(self.folder, f"killed-{self.number}")
        if trial.number == self.number and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.05)
        return quadratic(params, trial)


def _wait_for(path: Path, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.02)


class KillBeside:
    """Trial ``number`` SIGKILLs its own worker the first time it runs, while trial
    ``number + 1`` is in flight on the other worker; trial ``number + 1`` answers only once the
    rerun of trial ``number`` has started (marker files order the two whatever the timing).
    Every call leaves ``call-<trial>-<pid>`` in ``folder``."""

    def __init__(self, folder: str, number: int) -> None:
        self.folder, self.number = folder, number

    def __call__(self, params: dict[str, Any], trial: Any) -> float:
        folder = Path(self.folder)
        (folder / f"call-{trial.number}-{os.getpid()}").touch()
        (folder / f"started-{trial.number}").touch()
        if trial.number == self.number:
            if not (folder / "killed").exists():
                _wait_for(folder / f"started-{self.number + 1}")
                (folder / "killed").touch()
                os.kill(os.getpid(), signal.SIGKILL)
            (folder / "rerun").touch()
        if trial.number == self.number + 1:
            _wait_for(folder / "rerun")
        return quadratic(params, trial)


class SignalParent:
    """Trial ``number`` writes its pid to ``folder/pid``, sends ``signum`` to the search
    process (its worker's parent) and then runs until it is killed."""

    def __init__(self, folder: str, number: int, signum: int) -> None:
        self.folder, self.number, self.signum = folder, number, signum

    def __call__(self, params: dict[str, Any], trial: Any) -> float:
        if trial.number == self.number:
            Path(self.folder, "pid").write_text(str(os.getpid()))
            os.kill(os.getppid(), self.signum)
            time.sleep(120)
        return quadratic(params, trial)
