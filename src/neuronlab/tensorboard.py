"""A callback that logs a run for TensorBoard, through tensorboardX.

``metrics.jsonl`` stays the source of truth; this is a view for people who already watch
their runs in TensorBoard (``tensorboard --logdir runs/``). tensorboardX is an optional
dependency (``pip install neuronlab[tensorboard]``) imported when training begins.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab._validation import check_positive_int
from neuronlab.train.callbacks import Callback

if TYPE_CHECKING:
    from neuronlab.train.trainer import Trainer

__all__ = ["TensorBoardLogger"]

_LAYER_KEYS = ("dead_fraction", "saturation", "act_std")  # monitor "layer" fields worth a chart


class TensorBoardLogger(Callback):
    """Write scalars and histograms of a run as TensorBoard event files.

    Tags: ``train/loss`` and ``train/lr`` per step; ``update_ratio/<param>`` (‖Δw‖/‖w‖ of
    each weight matrix, the notes' ≈ 1e-3 rule); ``epoch/<metric>`` (loss, acc, val_loss,
    val_acc, ...) per epoch; ``weights/<param>`` histograms of every parameter every
    ``histogram_every_epochs`` epochs. Steps are the 0-based optimizer step, epochs the 0-based
    epoch index, as in ``metrics.jsonl``.

    When the trainer has a :class:`~neuronlab.babysit.monitor.Monitor` (the default), its records are
    forwarded as they appear, with no extra measurement: ``update_ratio/<param>`` and
    ``grad_norm/<param>`` for weights, ``dead_fraction/<layer>``, ``saturation/<layer>`` and
    ``act_std/<layer>``. Without one, the logger measures update ratios itself every
    ``ratio_every_steps`` steps.

    Parameters
    ----------
    logdir : str or os.PathLike
        Folder for the event files (created if missing).
    every_steps : int
        Log the loss and learning rate every this many steps.
    ratio_every_steps : int
        Measure update ratios every this many steps; each measurement copies the weights once,
        so sampling keeps the cost to a fraction of a percent of a step.
    histogram_every_epochs : int
        Write weight histograms every this many epochs (and after the last one).
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        every_steps: int = 1,
        ratio_every_steps: int = 20,
        histogram_every_epochs: int = 1,
    ) -> None:
        self.logdir = os.fspath(logdir)
        self.every_steps = check_positive_int("every_steps", every_steps)
        self.ratio_every_steps = check_positive_int("ratio_every_steps", ratio_every_steps)
        self.histogram_every_epochs = check_positive_int(
            "histogram_every_epochs", histogram_every_epochs
        )
        self._writer: Any = None
        self._before: dict[str, np.ndarray] = {}  # weights before a sampled update, reused buffers
        self._diff: dict[str, np.ndarray] = {}
        self._sampled: int | None = None
        self._forward = False
        self._n_seen = 0

    def on_train_begin(self, trainer: Trainer) -> None:
        if self._writer is None:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise ImportError(
                    "TensorBoardLogger needs tensorboardX: pip install 'neuronlab[tensorboard]'"
                ) from None
            self._writer = SummaryWriter(logdir=self.logdir)
        from neuronlab.babysit.monitor import Monitor

        history = trainer.history
        self._n_seen = len(getattr(history, "monitor", ()))  # a resumed run's were logged before
        self._forward = any(isinstance(cb, Monitor) for cb in trainer.callbacks)
        params = trainer.model.params
        keys = () if self._forward else trainer.model.weight_keys  # no second measurement
        self._before = {k: np.empty_like(params[k]) for k in keys}
        self._diff = {k: np.empty_like(v) for k, v in self._before.items()}
        self._sampled = None

    def on_before_update(self, trainer: Trainer, step: int, loss: float) -> None:
        if step % self.ratio_every_steps == 0 and self._before:
            params = trainer.model.params
            for k, buf in self._before.items():
                np.copyto(buf, params[k])
            self._sampled = step

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict[str, Any]) -> None:
        w = self._writer
        if step % self.every_steps == 0:
            if logs["loss"] is not None and math.isfinite(logs["loss"]):
                w.add_scalar("train/loss", float(logs["loss"]), step)
            if logs.get("lr") is not None:
                w.add_scalar("train/lr", float(logs["lr"]), step)
        if self._forward:
            self._log_monitor(trainer.history.monitor)
        elif self._sampled == step:
            params = trainer.model.params
            for k, before in self._before.items():
                d = np.subtract(params[k], before, out=self._diff[k])
                norm = float(np.linalg.norm(before.reshape(-1)))
                if norm > 0.0:  # an all-zero weight has no meaningful ratio
                    w.add_scalar(
                        f"update_ratio/{k}", float(np.linalg.norm(d.reshape(-1))) / norm, step
                    )
            self._sampled = None

    def _log_monitor(self, records: list[dict[str, Any]]) -> None:
        w = self._writer
        for rec in records[self._n_seen :]:
            step = rec["step"]
            if rec.get("kind") == "param":
                if rec.get("role") == "weight":
                    for key in ("update_ratio", "grad_norm"):
                        if rec.get(key) is not None:
                            w.add_scalar(f"{key}/{rec['param']}", float(rec[key]), step)
            else:
                for key in _LAYER_KEYS:
                    if rec.get(key) is not None:
                        w.add_scalar(
                            f"{key}/{rec['layer']}_{rec.get('type', '')}", float(rec[key]), step
                        )
        self._n_seen = len(records)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        w = self._writer
        for key, value in logs.items():
            if key in ("epoch", "step") or value is None or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                w.add_scalar(f"epoch/{key}", float(value), epoch)
        last = trainer.stop_training or epoch + 1 >= trainer.epochs
        if (epoch + 1) % self.histogram_every_epochs == 0 or last:
            for name, p in trainer.model.params.items():
                w.add_histogram(f"weights/{name}", p, epoch)
        w.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
