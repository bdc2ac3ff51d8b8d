"""Regularisation too strong: the penalty is most of the objective while the network underfits.

The :class:`~neuronlab.babysit.monitor.Monitor` splits the objective it sees at every measured
step into the data loss and the regulariser's penalty (``kind = "objective"`` records)::

    {"step": 100, "kind": "objective", "layer": "", "type": "", "data_loss": 1.37,
     "penalty": 101.6}

The notes' reading: when the penalty outweighs the data loss, the optimizer is mostly shrinking
weights, not fitting the data. That is only a problem when the fit suffers too, so
:func:`regularization_rule` fires when, at the end of the run,

* the penalty's share of the objective, ``penalty / (data_loss + penalty)`` (averaged over the
  last records), is above :data:`PENALTY_SHARE`, **and**
* the network underfits: the last epoch's training accuracy is below :data:`UNDERFIT_ACC`, or
  the data loss is still above :data:`DATA_LOSS_SHARE` times its value at the first measured
  step (for softmax that is about ln C, the loss of a network that guesses).

Too *little* regularisation is the ``overfitting`` rule (:mod:`~neuronlab.babysit.fit`).

Measured on the default digits run (64-256-10 ReLU, Adam 1e-3, 3 epochs; the record at step
100): L2 1e-4 leaves a penalty share of 0.08, 1e-3 of 0.43 and 1e-2 of 0.76 at 94.5% training
accuracy and a data loss 0.19 of its start (healthy: no finding); L2 1 has a share of 0.99,
89.5% accuracy and a data loss 0.60 of its start (the finding).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from neuronlab.babysit.findings import Finding

__all__ = [
    "DATA_LOSS_SHARE",
    "PENALTY_SHARE",
    "TAIL",
    "UNDERFIT_ACC",
    "objective_records",
    "regularization_rule",
]

PENALTY_SHARE = 0.5  # penalty / (data loss + penalty) above this: the penalty is most of it
UNDERFIT_ACC = 0.90  # training accuracy below this at the end: it underfits
DATA_LOSS_SHARE = 0.4  # ... or a data loss still above this fraction of its first value
TAIL = 3  # records averaged at the end (each is one minibatch: noisy)


def objective_records(run: Any) -> list[dict[str, Any]]:
    """The ``kind = "objective"`` records of a run, in step order, with finite numbers only.

    Parameters
    ----------
    run : RunView, History or dict
        A :class:`~neuronlab.babysit.runview.RunView` (its ``by_kind`` groups), or a
        :class:`~neuronlab.train.History` / its ``to_dict()`` (its ``monitor`` list).

    Returns
    -------
    list of dict
        Records with a finite ``data_loss`` >= 0 and ``penalty`` >= 0, sorted by step.
    """
    by_kind = getattr(run, "by_kind", None)
    if isinstance(by_kind, dict):
        records: Any = by_kind.get("objective", [])
    elif isinstance(run, dict):
        records = run.get("monitor", [])
    else:
        records = getattr(run, "monitor", [])
    out = []
    for r in records or []:
        if not isinstance(r, dict) or r.get("kind") != "objective":
            continue
        d, p, s = r.get("data_loss"), r.get("penalty"), r.get("step")
        if (isinstance(d, (int, float)) and isinstance(p, (int, float)) and _finite(d)
                and _finite(p) and d >= 0 and p >= 0
                and isinstance(s, numbers.Integral) and not isinstance(s, bool)):
            out.append(r)
    return sorted(out, key=lambda r: int(r["step"]))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _full_batch(run: Any) -> bool:
    """Whether the run is full-batch (L-BFGS: ``info["batch_size"]`` is None, as
    :attr:`~neuronlab.babysit.runview.RunView.full_batch` reads it)."""
    info = run.get("info") if isinstance(run, dict) else getattr(run, "info", None)
    return isinstance(info, dict) and "batch_size" in info and info["batch_size"] is None


def _last_accuracy(run: Any) -> float | None:
    epochs = getattr(run, "epochs", None)
    if epochs is None and isinstance(run, dict):
        epochs = run.get("epochs")
    if not epochs or not isinstance(epochs[-1], dict):
        return None
    acc = epochs[-1].get("acc")
    return float(acc) if isinstance(acc, (int, float)) and _finite(acc) else None


def regularization_rule(run: Any) -> Finding | None:
    """``regularization_too_strong``: the penalty is most of the objective and the network
    underfits (see the module docstring for the thresholds).

    Parameters
    ----------
    run : RunView, History or dict
        What :func:`objective_records` reads; the last epoch's ``acc`` is read when present
        (classification).

    Returns
    -------
    Finding or None
        A warning with the penalty's share, the data loss then and at the start, and the
        training accuracy; None when the run has no objective records or no penalty. For a
        full-batch (L-BFGS) run only the accuracy tells underfitting: its first record is
        not at the initial weights.
    """
    records = objective_records(run)
    if len(records) < 2:
        return None
    tail = records[-min(TAIL, len(records) - 1):]  # never the first record (step 0)
    data = sum(float(r["data_loss"]) for r in tail) / len(tail)
    penalty = sum(float(r["penalty"]) for r in tail) / len(tail)
    if penalty <= 0 or penalty / (data + penalty) <= PENALTY_SHARE:
        return None
    share = penalty / (data + penalty)
    first = float(records[0]["data_loss"])
    acc = _last_accuracy(run)
    low_acc = acc is not None and acc < UNDERFIT_ACC
    # L-BFGS's first record comes after its first epoch's minimize call, not at the initial
    # weights: a data loss that has not fallen since then may have converged there
    high_loss = not _full_batch(run) and first > 0 and data > DATA_LOSS_SHARE * first
    if not (low_acc or high_loss):
        return None
    steps = [int(tail[0]["step"]), int(tail[-1]["step"])]
    evidence: dict[str, Any] = {"penalty": penalty, "data_loss": data, "penalty_share": share,
                                "data_loss_start": first, "steps": steps}
    why = []
    if acc is not None:
        evidence["acc"] = acc
        if low_acc:
            why.append(f"training accuracy is only {acc:.1%}")
    if high_loss:
        why.append(f"the data loss is still {data / first:.0%} of its start ({first:.3g})")
    msg = (f"the regulariser's penalty is {share:.0%} of the objective at the end "
           f"(penalty {penalty:.3g} vs data loss {data:.3g}, steps {steps[0]}-{steps[1]}) and "
           + " and ".join(why))
    return Finding("regularization_too_strong", "warning", msg, evidence,
                   "regularise less: lower the L2/L1 strength (try 10-100x smaller) until the "
                   "penalty is a small part of the loss")
