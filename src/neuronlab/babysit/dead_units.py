"""Dead ReLU units: a unit whose output is 0 on every example never passes a gradient again
(the notes: "as much as 40% of your network can be dead" after a too-large update).

Measured on the Monitor's fixed sample for every layer that declares ``"dead"`` in its
``statistics`` (ReLU); the record field is ``dead_fraction``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab.babysit.findings import Finding
from neuronlab.babysit.runview import RunView, last_layer_values

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


__all__ = ["DEAD_FRACTION", "dead_fraction", "dead_relu_rule", "plot_dead_units"]

DEAD_FRACTION = 0.30  # the notes: "as much as 40% of your network can be dead"


def dead_fraction(y: np.ndarray) -> float:
    """Fraction of the units that output 0 (or less) on every row: a unit is dead when no
    row of the sample activates it.

    Parameters
    ----------
    y : ndarray of shape (n_samples, n_units)
        A layer's outputs on a sample of inputs.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> dead_fraction(np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]]))  # unit 0 never fires
    0.3333333333333333
    """
    return float(np.count_nonzero(y.max(axis=0) <= 0)) / int(y.shape[1])


def dead_relu_rule(run: RunView) -> Finding | None:
    """``dead_relu``: at the latest step with measurements, some ReLU layer has at least
    :data:`DEAD_FRACTION` of its units dead.

    Parameters
    ----------
    run : RunView
        The run's history as the rules read it.

    Returns
    -------
    Finding or None
        A warning naming the worst layer, its dead fraction, the step and the first step any
        flagged layer was past the threshold; None when no layer is.
    """
    found = last_layer_values(run, "dead_fraction")
    if found is None:
        return None
    step, recs = found
    bad = {r["layer"]: r["dead_fraction"] for r in recs if r["dead_fraction"] >= DEAD_FRACTION}
    if not bad:
        return None
    since = min((s for s in run.steps for r in run.layers[s]
                 if r["layer"] in bad and (r.get("dead_fraction") or 0) >= DEAD_FRACTION), default=step)
    worst = max(bad, key=bad.__getitem__)
    return Finding("dead_relu", "warning",
                   f"{bad[worst]:.0%} of the ReLU units of layer {worst} are dead (output 0 on every "
                   f"example of the sample) at step {step}, since step {since}",
                   {"dead_fraction": bad, "steps": [since, step]},
                   "lower the learning rate, use LeakyReLU/PReLU or maxout, check the init "
                   "(He) and that biases are not negative")


def plot_dead_units(history_or_records: Any, *, ax: Axes | None = None) -> Figure:
    """Fraction of dead ReLU units (solid) and saturated sigmoid/tanh units (dashed) per layer.

    Parameters
    ----------
    history_or_records : History, dict or list of dict
        A :class:`~neuronlab.train.History`, its ``to_dict()`` output, or the records of a
        ``metrics.jsonl`` file; the Monitor's layer records are read.
    ax : matplotlib Axes, optional
        Axes to draw on; None draws on a new Figure.

    Returns
    -------
    matplotlib.figure.Figure
        One line per layer that reports ``dead_fraction`` or ``saturation``; y in [0, 1].
    """
    from neuronlab.plots._base import _axes, _empty, _marks, as_records
    from neuronlab.plots.series import plot_series, series
    r = as_records(history_or_records)
    fig, ax = _axes(ax)
    dead = series(r.monitor, "dead_fraction", "layer")
    sat = series(r.monitor, "saturation", "layer")
    plot_series(ax, {f"{k} dead": v for k, v in dead.items()}, lw=1.4)
    for i, (name, (s, v)) in enumerate(sat.items(), start=len(dead)):
        ax.plot(
            s, v, color=f"C{i % 10}", ls="--", lw=1.4, label=f"{name} saturated", **_marks(len(s))
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("fraction of units")
    ax.set_title("Dead / saturated units")
    if ax.lines:
        ax.legend(loc="best", fontsize="x-small")
    else:
        _empty(ax, "no activation records")
    return fig
