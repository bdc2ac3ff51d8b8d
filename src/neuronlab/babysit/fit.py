"""Over- and underfitting, read from the per-epoch training and validation accuracy: a large
gap that keeps growing (the notes: "strong overfitting"), or both low and flat.
"""

from __future__ import annotations

import numpy as np

from neuronlab.babysit.findings import Finding
from neuronlab.babysit.runview import RunView

__all__ = [
    "OVERFIT_GAP",
    "OVERFIT_GROWTH",
    "PLATEAU",
    "UNDERFIT_ACC",
    "UNDERFIT_GAP",
    "overfitting_rule",
    "underfitting_rule",
]

OVERFIT_GAP = 0.10  # train - val accuracy at the end
OVERFIT_GROWTH = 0.05  # ... having grown by at least this since its smallest value
UNDERFIT_ACC = 0.90  # training accuracy below this at the end
UNDERFIT_GAP = 0.05  # ... with validation within this of it
PLATEAU = 0.02  # accuracy gained over the last half of the epochs: flat


def _accuracy_pair(run: RunView) -> tuple[list[float], list[float]] | None:
    acc, val = run.metric("acc"), run.metric("val_acc")
    return None if acc is None or val is None else (acc, val)


def overfitting_rule(run: RunView) -> Finding | None:
    """``overfitting``: at the last epoch training accuracy exceeds validation accuracy by at
    least :data:`OVERFIT_GAP`, and the gap has grown by at least :data:`OVERFIT_GROWTH` since
    its smallest value.

    Parameters
    ----------
    run : RunView
        The run's history as the rules read it.

    Returns
    -------
    Finding or None
        A warning with both accuracies and the gap's growth; None when the gap is small,
        did not grow, or the run has fewer than two epochs of ``acc`` and ``val_acc``.
    """
    pair = _accuracy_pair(run)
    if pair is None or len(pair[0]) < 2:
        return None
    acc, val = pair
    gaps = [a - v for a, v in zip(acc, val)]
    smallest = int(np.argmin(gaps))
    if gaps[-1] < OVERFIT_GAP or gaps[-1] - gaps[smallest] < OVERFIT_GROWTH:
        return None
    last = len(gaps) - 1
    return Finding("overfitting", "warning",
                   f"training accuracy {acc[-1]:.1%} vs validation {val[-1]:.1%}: the gap grew from "
                   f"{gaps[smallest]:.1%} (epoch {smallest}) to {gaps[-1]:.1%} (epoch {last})",
                   {"acc": acc[-1], "val_acc": val[-1], "gap": gaps[-1],
                    "smallest_gap": gaps[smallest], "epochs": [smallest, last]},
                   "regularise more (larger L2 strength, dropout), get more training data, or "
                   "stop earlier (EarlyStopping on val_loss)")


def underfitting_rule(run: RunView, fired: set[str]) -> Finding | None:
    """``underfitting``: after at least four epochs, training accuracy ends below
    :data:`UNDERFIT_ACC`, validation is within :data:`UNDERFIT_GAP` of it, and the last
    half of the epochs gained at most :data:`PLATEAU` over the best of the first half.

    Parameters
    ----------
    run : RunView
        The run's history as the rules read it.
    fired : set of str
        Names of the rules that already fired; after ``lr_too_high``, ``lr_too_low`` or
        ``regularization_too_strong`` (which explain a poor fit) this rule stays silent.

    Returns
    -------
    Finding or None
        A warning with both accuracies and the gain over the second half, or None.
    """
    if fired & {"lr_too_high", "lr_too_low", "regularization_too_strong"}:  # explained already
        return None
    pair = _accuracy_pair(run)
    if pair is None or len(pair[0]) < 4:
        return None
    acc, val = pair
    half = len(acc) // 2
    gained = acc[-1] - max(acc[:half])
    if acc[-1] >= UNDERFIT_ACC or abs(acc[-1] - val[-1]) > UNDERFIT_GAP or gained > PLATEAU:
        return None
    return Finding("underfitting", "warning",
                   f"training accuracy is only {acc[-1]:.1%} and validation {val[-1]:.1%}, and "
                   f"training accuracy gained {gained:+.1%} over the second half of the run",
                   {"acc": acc[-1], "val_acc": val[-1], "gain_second_half": gained,
                    "epochs": [half, len(acc) - 1]},
                   "use a bigger model (wider or deeper layers), regularise less, or train longer")
