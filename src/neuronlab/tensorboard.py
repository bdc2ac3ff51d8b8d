"""A callback that logs a run for TensorBoard, through tensorboardX.

``metrics.jsonl`` stays the source of truth; this is a view for people who already watch
their runs in TensorBoard (``tensorboard --logdir runs/``). tensorboardX is an optional
dependency (``pip install neuronlab[tensorboard]``) imported when training begins.
"""

from __future__ import annotations

import logging
import math
import os
from typing import TYPE_CHECKING, Any

from neuronlab._validation import check_positive_int
from neuronlab.train.callbacks import Callback

if TYPE_CHECKING:
    from neuronlab.train.trainer import Trainer

__all__ = ["TensorBoardLogger"]

log = logging.getLogger(__name__)

_LAYER_KEYS = ("dead_fraction", "saturation", "act_std")  # monitor "layer" fields worth a chart


class TensorBoardLogger(Callback):
    """Write scalars and histograms of a run as TensorBoard event files.

    Tags: ``train/loss`` and ``train/lr`` per step; ``update_ratio/<param>`` (‖Δw‖/‖w‖ of
    each weight matrix, the notes' ≈ 1e-3 rule); ``epoch/<metric>`` (loss, acc, val_loss,
    val_acc, ...) per epoch; ``weights/<param>`` histograms of every parameter every
    ``histogram_every_epochs`` epochs. Steps are the 0-based optimizer step, epochs the 0-based
    epoch index, as in ``metrics.jsonl``.

    The per-layer charts are the :class:`~neuronlab.babysit.monitor.Monitor`'s records (the
    Trainer adds one by default), forwarded as they appear: the report and TensorBoard show
    the same measurements, made once. ``update_ratio/<param>`` and ``grad_norm/<param>`` for
    weights, ``dead_fraction/<layer>``, ``saturation/<layer>`` and ``act_std/<layer>``. A
    trainer without a Monitor gets the loss, lr, epoch metrics and histograms only (and a
    log line saying so).

    Parameters
    ----------
    logdir : str or os.PathLike
        Folder for the event files (created if missing).
    every_steps : int
        Log the loss and learning rate every this many steps.
    histogram_every_epochs : int
        Write weight histograms every this many epochs (and after the last one).
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        every_steps: int = 1,
        histogram_every_epochs: int = 1,
    ) -> None:
        self.logdir = os.fspath(logdir)
        self.every_steps = check_positive_int("every_steps", every_steps)
        self.histogram_every_epochs = check_positive_int(
            "histogram_every_epochs", histogram_every_epochs
        )
        self._writer: Any = None
        self._forward = False
        self._n_seen = 0
        self._next_scalar = 0  # the first step whose loss and lr are not logged yet

    def next_step(self, step: int) -> int:
        """Never: the steps' loss and lr are logged from the history at every call and at
        the epoch's end, so the compiled engine needs no stop for them.

        Parameters
        ----------
        step : int
            0-based index of the next step to run.

        Returns
        -------
        int
        """
        return 1 << 62

    def _log_steps(self, trainer: Trainer) -> None:
        """``train/loss`` and ``train/lr`` of the steps done since the last call, every
        ``every_steps`` steps (a non-finite loss is skipped)."""
        w, history = self._writer, trainer.history
        for step in range(self._next_scalar, min(trainer.step, len(history.loss))):
            if step % self.every_steps == 0:
                loss, lr = history.loss[step], history.lr[step]
                if loss is not None and math.isfinite(loss):
                    w.add_scalar("train/loss", float(loss), step)
                if lr is not None:
                    w.add_scalar("train/lr", float(lr), step)
        self._next_scalar = max(self._next_scalar, trainer.step)

    def on_train_begin(self, trainer: Trainer) -> None:
        """Open the event writer (once) and check whether the trainer has a Monitor whose
        records to forward.

        Parameters
        ----------
        trainer : Trainer
            The trainer that is about to train.

        Raises
        ------
        ImportError
            If tensorboardX is not installed.
        """
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
        self._next_scalar = trainer.step
        self._n_seen = len(getattr(history, "monitor", ()))  # a resumed run's were logged before
        self._forward = any(isinstance(cb, Monitor) for cb in trainer.callbacks)
        if not self._forward:
            log.info("TensorBoardLogger: the trainer has no Monitor, so no per-layer charts")

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict[str, Any]) -> None:
        """Log ``train/loss`` and ``train/lr`` of the steps done since the last call, every
        ``every_steps`` steps (a non-finite loss is skipped), and the Monitor records made
        since the last call.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the step.
        step : int
            0-based index of the step just done.
        logs : dict
            The batch's logs (``"loss"``, ``"lr"``, ``"batch_size"``).
        """
        self._log_steps(trainer)
        if self._forward:
            self._log_monitor(trainer.history.monitor)

    def _log_monitor(self, records: list[dict[str, Any]]) -> None:
        w = self._writer
        for rec in records[self._n_seen :]:
            step, kind = rec["step"], rec.get("kind")
            tags: list[tuple[str, Any]] = []
            if kind == "param":
                if rec.get("role") == "weight":
                    tags = [(f"{key}/{rec['param']}", rec.get(key))
                            for key in ("update_ratio", "grad_norm")]
            elif kind == "layer":
                tags = [(f"{key}/{rec['layer']}_{rec.get('type', '')}", rec.get(key))
                        for key in _LAYER_KEYS]
            elif kind == "noise":
                where = rec["layer"] or "all"
                tags = [(f"noise/b_simple_{where}", rec.get("b_simple")),
                        (f"noise/snr_{where}", rec.get("snr"))]
            elif kind == "sharpness":
                tags = [("sharpness/top_eigenvalue", rec.get("top_eigenvalue")),
                        ("sharpness/threshold", rec.get("threshold"))]
            elif kind == "spectrum":
                tags = [(f"spectrum_alpha/{rec['param']}", rec.get("alpha")),
                        (f"spectrum_top_singular/{rec['param']}", rec.get("top_singular"))]
            for tag, value in tags:
                if value is not None:
                    w.add_scalar(tag, float(value), step)
        self._n_seen = len(records)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        """Log the epoch's finite metrics as ``epoch/<key>``, the weight histograms every
        ``histogram_every_epochs`` epochs (and at the last epoch), and flush.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the epoch.
        epoch : int
            0-based index of the epoch.
        logs : dict
            The epoch's record.
        """
        self._log_steps(trainer)
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
        """Close the event writer (once; later calls do nothing)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
