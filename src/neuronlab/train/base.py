"""The :class:`Callback` base class: every hook of the training loop, doing nothing.

It lives apart from :mod:`neuronlab.train.trainer` and :mod:`neuronlab.train.callbacks` so
that the trainer, the callbacks and the monitor can all build on it without importing each
other. (Its hooks type ``trainer`` as ``Any`` for the same reason; subclasses that the trainer
does not import name it :class:`~neuronlab.train.Trainer`.)
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["Callback", "overrides"]


class Callback:
    """Base class: every hook does nothing.

    Hooks, in the order the trainer calls them: ``on_train_begin(trainer)``, then per epoch
    ``on_epoch_begin(trainer, epoch)``, per step ``on_before_update(trainer, step, loss)``
    (after the gradients are complete, before the optimizer uses them) and
    ``on_batch_end(trainer, step, logs)``, then ``on_epoch_end(trainer, epoch, logs)``; finally
    ``on_train_end(trainer)`` after a run that finished normally, and ``close()`` always (also
    after an exception). ``trainer`` is the :class:`~neuronlab.train.Trainer`; ``step`` is the
    0-based index of the optimizer step; ``trainer.step`` counts the steps done. Setting
    ``trainer.stop_training = True`` ends the loop after the current step (the epoch is still
    closed: validation and ``on_epoch_end`` run).

    Attributes
    ----------
    order : int
        Callbacks run in increasing ``order`` (stable): :class:`Checkpoint` uses 100 so that it
        saves the state other callbacks have just updated at the end of an epoch.
    interval : int
        The per-step hooks (``on_before_update``, ``on_batch_end``) are called only at steps
        that are multiples of this (default 1: every step). A callback that samples (the
        Monitor) says so here, and its hooks cost nothing at the other steps.
    """

    order: ClassVar[int] = 0
    interval: int = 1
    #: True for a callback whose ``on_before_update`` checks that the step's loss and
    #: gradients are finite (:class:`NonFiniteGuard`): the compiled engine then makes the same
    #: check at every step and stops before the update of a non-finite one.
    checks_finite: ClassVar[bool] = False

    def next_step(self, step: int) -> int:
        """The first step at or after ``step`` where this callback's per-step hooks have work
        to do. The compiled engine (:mod:`neuronlab.engine`) runs the steps before it without
        calling back; a callback whose hooks act only at some steps says which here. Default:
        the next multiple of ``interval``.

        Parameters
        ----------
        step : int
            0-based index of the next step to run.

        Returns
        -------
        int
        """
        return -(-step // self.interval) * self.interval

    def on_train_begin(self, trainer: Any) -> None:
        """Called once at the start of :meth:`~neuronlab.train.Trainer.fit`, before the first
        epoch (and, on a resumed run, before the callbacks' saved state is restored).

        Parameters
        ----------
        trainer : Trainer
            The trainer that is about to train.
        """

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        """Called at the start of every epoch, after its shuffle order is drawn.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the epoch.
        epoch : int
            0-based index of the epoch.
        """

    def on_before_update(self, trainer: Any, step: int, loss: float) -> None:
        """Called once per step, after the gradients are complete and before the optimizer
        uses them (``trainer.grads``; the parameters still hold their old values).

        Parameters
        ----------
        trainer : Trainer
            The trainer running the step.
        step : int
            0-based index of the optimizer step.
        loss : float
            The batch's loss (data loss plus regularisation).
        """

    def on_batch_end(self, trainer: Any, step: int, logs: dict[str, Any]) -> None:
        """Called after every optimizer step (and after the constraints).

        Parameters
        ----------
        trainer : Trainer
            The trainer running the step.
        step : int
            0-based index of the step just done (``trainer.step`` is now ``step + 1``).
        logs : dict
            ``{"loss": float, "lr": float or None, "batch_size": int}``: the batch's loss,
            the learning rate used (None for a full-batch L-BFGS step) and the batch's rows.
        """

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        """Called at the end of every epoch, after validation, once the epoch is recorded in
        ``trainer.history``.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the epoch.
        epoch : int
            0-based index of the epoch.
        logs : dict
            The epoch's record: ``"epoch"``, ``"step"``, ``"lr"``, the training ``"loss"``
            and ``"acc"`` (classification) or ``"error"`` (regression), and the same keys
            prefixed ``"val_"`` when there is validation data.
        """

    def on_train_end(self, trainer: Any) -> None:
        """Called once after the last epoch of a run that finished normally (also one ended
        early by ``trainer.stop_training``); not after an exception.

        Parameters
        ----------
        trainer : Trainer
            The trainer that has finished.
        """

    def close(self) -> None:
        """Called when :meth:`~neuronlab.train.Trainer.fit` returns, also after an exception:
        release files and other resources here."""

    def state_dict(self) -> dict[str, Any] | None:
        """State a resumed run needs (JSON-able values and ndarrays), or None if stateless."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the base class keeps nothing).

        Parameters
        ----------
        state : dict
            A dictionary :meth:`state_dict` returned, as a checkpoint stored it.
        """


def overrides(cb: Callback, hook: str) -> bool:
    """Whether ``cb``'s class overrides ``hook``: the trainer calls a hook only on those."""
    return getattr(type(cb), hook) is not getattr(Callback, hook)
