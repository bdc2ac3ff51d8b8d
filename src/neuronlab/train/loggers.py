"""Callbacks that report progress: a tqdm bar and the append-only ``metrics.jsonl`` log."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from neuronlab._validation import check_number, check_positive_int
from neuronlab.train.callbacks import Callback

if TYPE_CHECKING:
    from neuronlab.train.trainer import Trainer

__all__ = ["JSONLLogger", "ProgressBar", "read_metrics"]


class ProgressBar(Callback):
    """A tqdm bar over all steps of the run, showing the loss and the epoch metrics.

    Parameters
    ----------
    disable : bool or None
        None: shown only when ``file`` (default stderr) is a terminal.
    file : file object or None
        Where to draw (default ``sys.stderr``).
    mininterval : float
        Seconds between updates of the loss shown (>= 0); keeps the per-step cost tiny.
    """

    def __init__(
        self, *, disable: bool | None = None, file: IO[str] | None = None, mininterval: float = 0.1
    ) -> None:
        self.disable = disable
        self.file = file
        self.mininterval = check_number("mininterval", mininterval, low=0)
        self.bar: Any = None
        self._next = 0.0

    def on_train_begin(self, trainer: Trainer) -> None:
        """Open the bar over ``trainer.total_steps`` steps, starting at ``trainer.step`` (a
        resumed run starts part-way).

        Parameters
        ----------
        trainer : Trainer
            The trainer that is about to train.
        """
        from tqdm.auto import tqdm

        file = self.file if self.file is not None else sys.stderr
        disable = self.disable
        if disable is None:
            disable = not (hasattr(file, "isatty") and file.isatty())
        self.bar = tqdm(
            total=trainer.total_steps,
            initial=trainer.step,
            file=file,
            disable=disable,
            unit="step",
            dynamic_ncols=True,
            mininterval=self.mininterval,
        )

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        """Show ``epoch k/n`` (1-based) as the bar's description.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the epoch.
        epoch : int
            0-based index of the epoch.
        """
        self.bar.set_description(f"epoch {epoch + 1}/{trainer.epochs}", refresh=False)

    def next_step(self, step: int) -> int:
        """Never: the bar catches up with ``trainer.step`` whenever it is called (at the
        compiled engine's stops and at epoch ends).

        Parameters
        ----------
        step : int
            0-based index of the next step to run.

        Returns
        -------
        int
        """
        return 1 << 62

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict[str, Any]) -> None:
        """Advance the bar to the steps done; show the batch's loss at most every ``mininterval``
        seconds.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the step.
        step : int
            0-based index of the step just done.
        logs : dict
            The batch's logs (``"loss"``, ``"lr"``, ``"batch_size"``).
        """
        bar = self.bar
        bar.update(trainer.step - bar.n)  # the steps since the last call (the engine's segment)
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.mininterval
            bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        """Show the epoch's float metrics (loss, acc, val_loss...) after the bar.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the epoch.
        epoch : int
            0-based index of the epoch.
        logs : dict
            The epoch's record.
        """
        self.bar.update(trainer.step - self.bar.n)
        shown = {
            k: f"{v:.4g}"
            for k, v in logs.items()
            if k not in ("epoch", "step", "lr") and isinstance(v, float)
        }
        self.bar.set_postfix(shown, refresh=True)

    def close(self) -> None:
        """Close the bar (once; later calls do nothing)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class JSONLLogger(Callback):
    """Append one JSON object per line to ``metrics.jsonl``: the project's source of truth
    for metrics. The file is opened in append mode and flushed after every line, so a killed
    run loses nothing written. A resumed run first cuts the file back to its checkpoint (the
    lines of steps and epochs after it, which the run is about to redo, and ``train_end``
    lines are dropped; the file is rewritten atomically), then writes a ``"train_begin"`` line
    with ``"resumed": true``: every step, epoch and monitor record appears once, and there is
    one ``train_begin`` line per start.

    Events: ``{"event": "train_begin", "step", "epoch", "resumed"}``,
    ``{"event": "step", "step", "epoch", "loss", "lr"}`` (every ``every_steps`` steps),
    ``{"event": "info", "step", "info"}`` after the first step (``history.info`` with the
    measured initial loss) and again when a fit ends in divergence (with the ``diverged_*``
    facts, at the diverged step), ``{"event": "epoch", **epoch_logs}``, ``{"event": "train_end", "step"}``, and each
    record of ``trainer.history.monitor`` as ``{"event": "monitor", **record}`` right after the
    step that made it (train_begin's ``"info"`` holds ``history.info``).
    Non-finite numbers are written as ``null`` so every line is strict JSON.

    Parameters
    ----------
    path : str or os.PathLike
        The file, or an existing folder (then ``folder/metrics.jsonl``).
    every_steps : int
        Write a step event every this many steps (> 0).
    """

    def __init__(self, path: str | os.PathLike[str], *, every_steps: int = 1) -> None:
        path = os.fspath(path)
        self.path = os.path.join(path, "metrics.jsonl") if os.path.isdir(path) else path
        self.every_steps = check_positive_int("every_steps", every_steps)
        self._f: IO[str] | None = None
        self._n_monitor = 0  # monitor records already written
        self._info_sent = False
        self._history: Any = None
        self._trainer: Any = None
        self._next_line = 0  # the first step whose step line is not written yet

    def next_step(self, step: int) -> int:
        """The run's first step (the ``info`` line follows it); step lines are written from
        the history at every later call and at the epoch's end, so the compiled engine needs
        no other stop for them.

        Parameters
        ----------
        step : int
            0-based index of the next step to run.

        Returns
        -------
        int
        """
        return step if not self._info_sent else 1 << 62

    def _write_steps(self) -> None:
        """The step lines of the steps done since the last call, in one write: what
        ``on_batch_end`` would have written after each (their loss and lr are the history's)."""
        trainer = self._trainer
        if trainer is None or self._f is None:
            return
        history, done = trainer.history, trainer.step
        every, epoch, lines = self.every_steps, trainer.epoch, []
        for step in range(self._next_line, min(done, len(history.loss))):
            if (step + 1) % every == 0:
                lines.append(json.dumps({"event": "step", "step": step, "epoch": epoch,
                                         "loss": _jsonable(history.loss[step]),
                                         "lr": _jsonable(history.lr[step])}) + "\n")
        self._next_line = max(self._next_line, done)
        if lines:
            self._f.write("".join(lines))
            self._f.flush()

    def _write(self, obj: dict[str, Any]) -> None:
        assert self._f is not None
        self._f.write(json.dumps({k: _jsonable(v) for k, v in obj.items()}) + "\n")
        self._f.flush()

    def on_train_begin(self, trainer: Trainer) -> None:
        """Open the file for appending (on a resumed run, first cut it back to the
        checkpoint) and write the ``train_begin`` line.

        Parameters
        ----------
        trainer : Trainer
            The trainer that is about to train.
        """
        if trainer.resumed and os.path.exists(self.path):
            self._cut_back(trainer)
        if self._f is None:
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        history = getattr(trainer, "history", None)
        self._write(
            {
                "event": "train_begin",
                "time": time.time(),
                "step": trainer.step,
                "epoch": trainer.epoch,
                "resumed": trainer.resumed,
                "info": {k: _jsonable(v) for k, v in getattr(history, "info", {}).items()},
            }
        )
        self._n_monitor = len(getattr(history, "monitor", ()))  # a resumed run's were written
        self._info_sent = trainer.step > 0  # written after step 0, before any checkpoint
        self._history, self._trainer, self._next_line = history, trainer, trainer.step

    def _cut_back(self, trainer: Trainer) -> None:
        """Keep the lines that describe the run up to the resumed state: steps before
        ``trainer.step``, epochs finished by then, and every ``train_begin``. A torn last
        line (a kill mid-write) goes too."""
        from neuronlab.io import atomic_write_bytes

        done, epoch, epoch_done = trainer.step, trainer.epoch, trainer.epoch_done
        kept = []
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                event = rec.get("event") if isinstance(rec, dict) else None
                if event == "train_begin":
                    keep = True
                elif event in ("step", "info", "monitor"):
                    keep = isinstance(rec.get("step"), int) and rec["step"] < done
                elif event == "epoch":
                    e = rec.get("epoch")
                    keep = isinstance(e, int) and (e < epoch or (e == epoch and epoch_done))
                else:  # train_end, or anything unknown
                    keep = False
                if keep:
                    kept.append(line if line.endswith("\n") else line + "\n")
        atomic_write_bytes(self.path, "".join(kept).encode("utf-8"))

    def _write_monitor(self, trainer: Trainer) -> None:
        records = trainer.history.monitor
        while self._n_monitor < len(records):
            self._write({"event": "monitor", **records[self._n_monitor]})
            self._n_monitor += 1

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict[str, Any]) -> None:
        """Write a ``step`` line every ``every_steps`` steps, the ``info`` line after the
        run's first step, and the Monitor records made since the last call.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the step.
        step : int
            0-based index of the step just done.
        logs : dict
            The batch's logs (``"loss"``, ``"lr"``, ``"batch_size"``).
        """
        self._write_steps()
        history = getattr(trainer, "history", None)
        if not self._info_sent:  # the initial loss is measured by the first step
            self._info_sent = True
            info = getattr(history, "info", {})
            self._write({"event": "info", "step": step, "info": {k: _jsonable(v) for k, v in info.items()}})
        if history is not None and self._n_monitor < len(history.monitor):
            self._write_monitor(trainer)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        """Write the Monitor records made at the epoch's end, then the ``epoch`` line
        (``logs`` plus the time).

        Parameters
        ----------
        trainer : Trainer
            The trainer running the epoch.
        epoch : int
            0-based index of the epoch.
        logs : dict
            The epoch's record.
        """
        self._write_steps()
        self._write_monitor(trainer)  # records made at the epoch's end (the weight spectra)
        self._write({"event": "epoch", "time": time.time(), **logs})

    def on_train_end(self, trainer: Trainer) -> None:
        """Write the ``train_end`` line.

        Parameters
        ----------
        trainer : Trainer
            The trainer that has finished.
        """
        self._write({"event": "train_end", "time": time.time(), "step": trainer.step})

    def close(self) -> None:
        """Write a last ``info`` line when the fit diverged (the ``diverged_*`` facts), then
        close the file."""
        if self._f is not None:
            self._write_steps()  # the steps before a divergence
            # a diverged fit records where and why in history.info as it ends: write it, so
            # the report and `neuronlab diagnose` read the divergence from the file too
            info = getattr(self._history, "info", {})
            if "diverged_step" in info:
                self._write({"event": "info", "step": info["diverged_step"],
                             "info": {k: _jsonable(v) for k, v in info.items()}})
            self._f.close()
            self._f = None


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` file (or of ``RUN_DIR/metrics.jsonl``), in file order.

    A last line cut short by a crash is ignored; a bad line elsewhere raises ValueError
    naming the line.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.jsonl"
    lines = p.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                break  # torn write at the end of an interrupted run
            raise ValueError(f"{p}:{i + 1} is not valid JSON: {e}") from None
    return out
