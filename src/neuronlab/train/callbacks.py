"""Everything optional in the training loop is a callback (Keras' ``on_*`` hooks).

The :class:`Callback` base class (in :mod:`neuronlab.train.base`, re-exported here) lists
the hooks. A callback overrides only the hooks it needs; the :class:`Trainer` calls a hook
only on the callbacks that override it, so a callback that does nothing costs nothing per step.
Callbacks with state that a resumed run needs (counters, best values, best weights) return it
from :meth:`Callback.state_dict`; checkpoints save it and restore it with
:meth:`Callback.load_state_dict`.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab._validation import check_number, check_positive_int
from neuronlab.train.base import Callback
from neuronlab.train.checkpoint import CHECKPOINT_NAME, save_checkpoint
from neuronlab.train.errors import DivergenceError

if TYPE_CHECKING:
    from neuronlab.train.trainer import Trainer

__all__ = [
    "Callback",
    "Checkpoint",
    "DivergenceError",
    "EarlyStopping",
    "NonFiniteGuard",
    "ReduceLROnPlateau",
]


def _check_nonneg_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}: {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return int(value)


class _Monitor(Callback):
    """Shared by EarlyStopping and ReduceLROnPlateau: track the best value of one epoch
    metric and count the epochs without an improvement of more than ``min_delta``."""

    def __init__(self, monitor: str, patience: int, min_delta: float, mode: str) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a str, got {type(monitor).__name__}: {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.patience = _check_nonneg_int("patience", patience)
        self.min_delta = check_number("min_delta", min_delta, low=0)
        self.mode = mode
        # accuracies improve upwards, losses and errors downwards
        self._sign = (
            (1.0 if monitor.endswith("acc") else -1.0)
            if mode == "auto"
            else (1.0 if mode == "max" else -1.0)
        )
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def on_train_begin(self, trainer: Trainer) -> None:
        """Forget the best value and the wait count, and check that the run measures
        ``monitor``.

        Parameters
        ----------
        trainer : Trainer
            The trainer that is about to train.

        Raises
        ------
        ValueError
            If ``monitor`` is not one of the run's epoch metrics (a ``"val_"`` metric
            without validation data, ``"acc"`` in a regression...).
        """
        # a fresh run starts from scratch; a resumed one gets its state back right after this
        self.best, self.best_epoch, self.wait = None, None, 0
        names = trainer.epoch_metric_names
        if self.monitor not in names:
            raise ValueError(
                f"{type(self).__name__} monitor {self.monitor!r} is not measured in this run; "
                f"available: {names}" + ("" if trainer.has_validation else " (pass validation=...)")
            )

    def _improved(self, epoch: int, logs: dict[str, Any]) -> bool:
        value = logs[self.monitor]
        if value is None or not math.isfinite(value):
            self.wait += 1
            return False
        if self.best is None or self._sign * (value - self.best) > self.min_delta:
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            return True
        self.wait += 1
        return False

    def state_dict(self) -> dict[str, Any]:
        """The best value, its epoch and the count of epochs without improvement.

        Returns
        -------
        dict
            ``{"best": float or None, "best_epoch": int or None, "wait": int}``.
        """
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the best value, its epoch and the wait count.

        Parameters
        ----------
        state : dict
            A dictionary :meth:`state_dict` returned.
        """
        self.best, self.best_epoch, self.wait = (
            state["best"],
            state["best_epoch"],
            int(state["wait"]),
        )


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str
        An epoch metric: ``"val_loss"``, ``"val_acc"``, ``"val_error"``, ``"loss"``, ``"acc"``...
    patience : int
        Epochs without improvement (>= 0) after which training stops.
    min_delta : float
        An improvement must exceed this (>= 0).
    restore_best : bool
        At the end of training, put back the parameters and buffers of the best epoch.
    mode : {"auto", "min", "max"}
        Direction of improvement; "auto": max for names ending in "acc", else min.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best: bool = True,
        mode: str = "auto",
    ) -> None:
        super().__init__(monitor, patience, min_delta, mode)
        self.restore_best = bool(restore_best)
        self.stopped_epoch: int | None = None
        self._best_arrays: dict[str, np.ndarray] = {}

    def on_train_begin(self, trainer: Trainer) -> None:
        """Start a run afresh: no best value, no saved weights, not stopped.

        Parameters
        ----------
        trainer : Trainer
            The trainer that is about to train.

        Raises
        ------
        ValueError
            If the run does not measure ``monitor``.
        """
        super().on_train_begin(trainer)
        self.stopped_epoch = None
        self._best_arrays = {}

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        """Compare ``logs[monitor]`` with the best so far: on an improvement, copy the
        parameters and buffers (when ``restore_best``); after ``patience`` epochs without
        one, set ``trainer.stop_training`` and record ``stopped_epoch``. A missing (None) or
        non-finite value counts as no improvement.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the epoch.
        epoch : int
            0-based index of the epoch.
        logs : dict
            The epoch's record; must hold ``monitor``.
        """
        if self._improved(epoch, logs):
            if self.restore_best:
                arrays = {**trainer.model.params, **trainer.model.buffers}
                if self._best_arrays.keys() != arrays.keys():
                    self._best_arrays = {k: v.copy() for k, v in arrays.items()}
                else:  # reuse the buffers: one copy per improving epoch, no allocation
                    for k, v in arrays.items():
                        np.copyto(self._best_arrays[k], v)
        elif self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer: Trainer) -> None:
        """Put the best epoch's parameters and buffers back into the model (when
        ``restore_best`` and an epoch improved).

        Parameters
        ----------
        trainer : Trainer
            The trainer that has finished.
        """
        if self.restore_best and self._best_arrays:
            trainer.model.set_arrays(self._best_arrays)

    def state_dict(self) -> dict[str, Any]:
        """The monitor's state, ``stopped_epoch`` and the best epoch's arrays.

        Returns
        -------
        dict
            ``best``, ``best_epoch``, ``wait``, ``stopped_epoch`` and ``best_arrays``
            (``{name: ndarray}``, empty when ``restore_best`` is False).
        """
        state = super().state_dict()
        state["stopped_epoch"] = self.stopped_epoch
        state["best_arrays"] = dict(self._best_arrays)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the arrays are copied).

        Parameters
        ----------
        state : dict
            A dictionary :meth:`state_dict` returned.
        """
        super().load_state_dict(state)
        self.stopped_epoch = state["stopped_epoch"]
        self._best_arrays = {k: np.array(v, copy=True) for k, v in state["best_arrays"].items()}


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs.

    The trainer's lr is ``schedule(step) * trainer.lr_scale``; this callback lowers
    ``lr_scale``, so it composes with any schedule. ``min_lr`` bounds the lr at the time of a
    reduction (the schedule's current lr times the new scale).

    Parameters
    ----------
    monitor : str
        Epoch metric to watch (see :class:`EarlyStopping`).
    factor : float
        In (0, 1).
    patience : int
        Epochs without improvement (>= 0) before a reduction; the count restarts after one.
    min_lr : float
        Lower bound (>= 0) of the learning rate.
    min_delta : float
        An improvement must exceed this (>= 0).
    mode : {"auto", "min", "max"}
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        factor: float = 0.1,
        patience: int = 3,
        min_lr: float = 0.0,
        min_delta: float = 0.0,
        mode: str = "auto",
    ) -> None:
        super().__init__(monitor, patience, min_delta, mode)
        self.factor = check_number(
            "factor", factor, low=0, high=1, low_inclusive=False, high_inclusive=False
        )
        self.min_lr = check_number("min_lr", min_lr, low=0)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        """After ``patience`` epochs without improvement of ``logs[monitor]``, multiply
        ``trainer.lr_scale`` by ``factor`` (or lower it only to ``min_lr`` when a full
        reduction would pass it) and restart the count.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the epoch.
        epoch : int
            0-based index of the epoch.
        logs : dict
            The epoch's record; must hold ``monitor``.
        """
        if self._improved(epoch, logs) or self.wait < self.patience:
            return
        self.wait = 0
        base = trainer.base_lr(trainer.step)
        if base <= 0.0:
            return
        if base * trainer.lr_scale * self.factor >= self.min_lr:
            trainer.lr_scale *= self.factor
        elif base * trainer.lr_scale > self.min_lr:
            trainer.lr_scale = self.min_lr / base


class NonFiniteGuard(Callback):
    """Raise :class:`DivergenceError` at the first step whose loss or gradient is not finite,
    before the optimizer applies it, so the parameters (and any checkpoint) stay good.

    The check costs one BLAS dot product g·g per gradient array (NaN and Inf propagate into
    it, and it allocates nothing); only when that is not finite are the elements looked at,
    so a finite gradient whose squares overflow is not an error.
    """

    checks_finite = True

    def next_step(self, step: int) -> int:
        """Never: the compiled engine checks every step's loss and gradients itself and
        stops before the update of a non-finite one, which the NumPy path then replays
        through this hook.

        Parameters
        ----------
        step : int
            0-based index of the next step to run.

        Returns
        -------
        int
        """
        return 1 << 62

    def on_before_update(self, trainer: Trainer, step: int, loss: float) -> None:
        """Check the step's loss, then every array of ``trainer.grads``.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the step.
        step : int
            0-based index of the step.
        loss : float
            The batch's loss.

        Raises
        ------
        DivergenceError
            If the loss, or an element of a gradient, is NaN or infinite; it names the step,
            the array (``"loss"`` or the parameter's dotted name) and the offending value.
        """
        if not math.isfinite(loss):
            raise DivergenceError(step, "loss", float(loss))
        for name, g in trainer.grads.items():
            flat = g.reshape(-1)
            if not math.isfinite(np.dot(flat, flat)):
                lo, hi = float(g.min()), float(g.max())  # min/max propagate NaN
                if not (math.isfinite(lo) and math.isfinite(hi)):
                    raise DivergenceError(step, name, hi if not math.isfinite(hi) else lo)


def _check_optional_positive_int(name: str, value: Any) -> int | None:
    return None if value is None else check_positive_int(name, value)


class Checkpoint(Callback):
    """Save exact checkpoints to ``directory`` during training.

    Files are ``step-000000120.safetensors`` (mid-epoch) and
    ``epoch-0003-step-000000120.safetensors`` (end of epoch 3, 0-based, after validation and
    the other callbacks). ``fit(..., resume=directory)`` continues from the newest.
    A failing run writes nothing for the failed step (a :class:`DivergenceError` is raised
    before ``on_batch_end``) and a partial write never replaces a good file.

    Parameters
    ----------
    directory : str or os.PathLike
        Created if missing.
    every_steps : int or None
        Save after every this many optimizer steps (> 0).
    every_epochs : int or None
        Save after every this many epochs (> 0); the last epoch of a run (also one ended by
        early stopping) is always saved.
    keep : int or None
        Keep the newest ``keep`` checkpoints (> 0) older than or equal to the one just
        written; None keeps all. Newer files (from a run resumed from an older checkpoint)
        are never deleted.
    """

    order = 100

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        every_steps: int | None = None,
        every_epochs: int | None = 1,
        keep: int | None = 3,
    ) -> None:
        self.directory = os.fspath(directory)
        self.every_steps = _check_optional_positive_int("every_steps", every_steps)
        self.every_epochs = _check_optional_positive_int("every_epochs", every_epochs)
        self.keep = _check_optional_positive_int("keep", keep)
        if self.every_steps is None and self.every_epochs is None:
            raise ValueError("every_steps and every_epochs cannot both be None")
        self.last_path: str | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        """Create ``directory`` if it is missing.

        Parameters
        ----------
        trainer : Trainer
            The trainer that is about to train.
        """
        os.makedirs(self.directory, exist_ok=True)

    def next_step(self, step: int) -> int:
        """The next step after which ``trainer.step`` is a multiple of ``every_steps`` (a
        save), or never without ``every_steps``.

        Parameters
        ----------
        step : int
            0-based index of the next step to run.

        Returns
        -------
        int
        """
        e = self.every_steps
        return 1 << 62 if e is None else -(-(step + 1) // e) * e - 1

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict[str, Any]) -> None:
        """Save ``step-<trainer.step>.safetensors`` when ``every_steps`` steps have been done
        since the last such save (``trainer.step`` is a multiple of ``every_steps``).

        Parameters
        ----------
        trainer : Trainer
            The trainer running the step.
        step : int
            0-based index of the step just done.
        logs : dict
            The batch's logs (unused).
        """
        if self.every_steps is not None and trainer.step % self.every_steps == 0:
            self.save(trainer, f"step-{trainer.step:09d}.safetensors")

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        """Save ``epoch-<epoch>-step-<step>.safetensors`` every ``every_epochs`` epochs and
        at the run's last epoch (the planned last one, or one where ``stop_training`` is set).

        Parameters
        ----------
        trainer : Trainer
            The trainer running the epoch.
        epoch : int
            0-based index of the epoch.
        logs : dict
            The epoch's record (unused).
        """
        last = trainer.stop_training or epoch + 1 == trainer.epochs
        if last or (self.every_epochs is not None and (epoch + 1) % self.every_epochs == 0):
            self.save(trainer, f"epoch-{epoch:04d}-step-{trainer.step:09d}.safetensors")

    def save(self, trainer: Trainer, name: str) -> str:
        """Write a checkpoint called ``name`` now, then prune old ones (``keep``).

        Parameters
        ----------
        trainer : Trainer
            Whose model, optimizer, state, schedule and callbacks are saved.
        name : str
            File name inside ``directory``. The callback manages the files named
            ``step-<9 digits>.safetensors`` or ``epoch-<4 digits>-step-<9 digits>.safetensors``:
            pruning and ``resume`` read the step from the name. A file of any other name
            (``"best.safetensors"``) is written but never pruned, and saving it prunes nothing.

        Returns
        -------
        str
            The path written.
        """
        path = os.path.join(self.directory, name)
        save_checkpoint(path, model=trainer.model, optimizer=trainer.optimizer,
                        state=trainer.state, schedule=trainer.schedule,
                        callbacks=trainer.callbacks)
        self.last_path = path
        if self.keep is not None and CHECKPOINT_NAME.match(name):
            self._prune(name, self.keep)
        return path

    def _prune(self, newest: str, keep: int) -> None:
        """Delete all but the ``keep`` newest managed checkpoints up to ``newest`` (a name
        :data:`CHECKPOINT_NAME` matches); newer ones and other files stay."""
        keys: dict[str, tuple[int, bool]] = {}
        for name in os.listdir(self.directory):
            m = CHECKPOINT_NAME.match(name)
            if m:
                keys[name] = (int(m.group(2)), m.group(1) is not None)
        older = sorted((n for n in keys if keys[n] <= keys[newest]), key=lambda n: (keys[n], n))
        for name in older[: max(0, len(older) - keep)]:
            try:
                os.unlink(os.path.join(self.directory, name))
            except FileNotFoundError:
                pass
