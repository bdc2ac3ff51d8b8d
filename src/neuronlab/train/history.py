"""What a training run measured: per-step loss and learning rate, per-epoch summaries."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["History"]


class History:
    """The record of one :meth:`Trainer.fit` run (continued across resumes).

    Attributes
    ----------
    loss : list of float
        Training objective of every optimizer step (data loss + regularisation loss),
        in step order.
    lr : list of float or None
        Learning rate actually used at every step (``schedule(step) * lr_scale``); ``None``
        for full-batch L-BFGS epochs, which have no learning rate.
    epochs : list of dict
        One dict per finished epoch with keys ``"epoch"`` (0-based), ``"step"`` (optimizer
        steps done at its end), ``"lr"`` (last learning rate used), ``"loss"`` (mean training
        objective over the epoch's batches, weighted by batch size) and, depending on the
        loss's task, ``"acc"`` (classification / multilabel: fraction of correct predictions
        in training mode) or ``"error"`` (regression: mean squared error); with validation
        data also ``"val_loss"`` and ``"val_acc"`` / ``"val_error"``, measured in inference
        mode after the epoch. Example: ``history.epochs[-1]["val_acc"]``.
    monitor : list of dict
        Per-layer records of :class:`neuronlab.Monitor` (schema in ``neuronlab.babysit.monitor``).
    info : dict
        Facts about the run recorded at its start (expected and measured initial loss...).

    Notes
    -----
    ``history["val_acc"]`` returns that key's values over the epochs (Keras style), and
    ``history.to_dict()`` / ``History.from_dict()`` round-trip through JSON.
    """

    def __init__(self) -> None:
        self.loss: list[float] = []
        self.lr: list[float | None] = []
        self.epochs: list[dict[str, Any]] = []
        self.monitor: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}

    # -- recording (called by the Trainer) -------------------------------------------------
    def record_epoch(self, logs: dict[str, Any]) -> None:
        """Append one epoch's summary (a copy of ``logs``).

        Parameters
        ----------
        logs : dict
            The epoch's record (see :attr:`epochs` for its keys).
        """
        self.epochs.append(dict(logs))

    # -- reading ---------------------------------------------------------------------------
    def __getitem__(self, key: str) -> list[Any]:
        """Values of an epoch key over all epochs, e.g. ``history["val_loss"]``."""
        if not self.epochs or key not in self.epochs[-1]:
            known = sorted(self.epochs[-1]) if self.epochs else []
            raise KeyError(f"no epoch metric {key!r}; recorded metrics: {known}")
        return [e.get(key) for e in self.epochs]

    @property
    def n_steps(self) -> int:
        """Number of optimizer steps recorded (``len(history.loss)``)."""
        return len(self.loss)

    def best(self, key: str = "val_loss") -> dict[str, Any]:
        """The epoch dict with the best value of ``key`` (highest for accuracies, else lowest).

        Parameters
        ----------
        key : str, default "val_loss"
            An epoch metric; names ending in ``"acc"`` are maximised, all others minimised.
            Ties go to the earliest epoch. Epochs whose value is NaN, infinite or missing
            (``None``, as :meth:`from_dict` restores non-finite values) are never the best.

        Returns
        -------
        dict
            That epoch's record (the dict stored in :attr:`epochs`, not a copy).

        Raises
        ------
        KeyError
            If no epoch is recorded, the last epoch has no ``key``, or no epoch has a finite
            value of ``key``.
        """
        values = self[key]
        finite = [j for j, v in enumerate(values) if v is not None and math.isfinite(v)]
        if not finite:
            raise KeyError(f"no epoch has a finite {key!r}: {values}")
        sign = -1.0 if key.endswith("acc") else 1.0
        return self.epochs[min(finite, key=lambda j: sign * values[j])]

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (non-finite losses become ``None``)."""
        return {
            "loss": [_finite_or_none(v) for v in self.loss],
            "lr": list(self.lr),
            "epochs": [{k: _finite_or_none(v) for k, v in e.items()} for e in self.epochs],
            "monitor": [{k: _finite_or_none(v) for k, v in r.items()} for r in self.monitor],
            "info": {k: _finite_or_none(v) for k, v in self.info.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        """Rebuild from :meth:`to_dict` output (``None`` losses become NaN again).

        Parameters
        ----------
        d : dict
            Needs ``"loss"``, ``"lr"`` and ``"epochs"``; ``"monitor"`` and ``"info"`` are
            optional (files written before they existed lack them).

        Returns
        -------
        History

        Raises
        ------
        ValueError
            If ``d`` is not a dict or lacks one of the required keys.
        """
        if not isinstance(d, dict) or not {"loss", "lr", "epochs"} <= set(d):
            raise ValueError("history dict must have 'loss', 'lr' and 'epochs' keys")
        h = cls()
        h.loss = [math.nan if v is None else float(v) for v in d["loss"]]
        h.lr = [None if v is None else float(v) for v in d["lr"]]
        h.epochs = [dict(e) for e in d["epochs"]]
        h.monitor = [dict(r) for r in d.get("monitor", ())]  # absent in older files
        h.info = dict(d.get("info", {}))
        return h

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        return f"History(steps={len(self.loss)}, epochs={len(self.epochs)}, last={last})"


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
