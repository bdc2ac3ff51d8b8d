"""Vanishing and exploding gradients through depth.

Gradient flow is read from the bias gradients of the weight layers: ``db = Σ_n δ_n`` is the
backpropagated signal δ at that layer summed over the batch, free of the scale of the
layer's input (``dW = xᵀδ`` is not: in a ReLU net the growth of x forward and of δ backward
cancel in ``‖dW‖/‖W‖``). Its root mean square per unit is compared between the first and the
last weight layer. The Monitor measures ``grad_norm`` of every parameter.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab.babysit.findings import Finding
from neuronlab.babysit.runview import RunView

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


__all__ = ["DEPTH_FACTOR", "gradient_flow_rule", "plot_gradient_norms"]

DEPTH_FACTOR = 100.0  # first vs last layer: two orders of magnitude


def _signal_per_layer(run: RunView) -> tuple[list[int], dict[str, list[float]]]:
    """RMS bias gradient of each weight layer (first to last), per sampled step."""
    bias = {name: recs for name, recs in run.params.items()
            if recs and recs[0].get("role") == "bias"}
    names = sorted(bias, key=lambda n: int(bias[n][0]["layer"]))
    steps: dict[int, dict[str, float]] = defaultdict(dict)
    for n in names:
        for r in bias[n]:
            if r.get("grad_norm") is not None:
                steps[int(r["step"])][n] = r["grad_norm"] / math.sqrt(r["size"])
    full = sorted(s for s, v in steps.items() if len(v) == len(names))
    return full, {n: [steps[s][n] for s in full] for n in names}


def gradient_flow_rule(run: RunView, vanishing: bool) -> Finding | None:
    """``vanishing_gradients`` or ``exploding_gradients``: the median over the monitor steps of
    the first weight layer's RMS bias gradient over the last one's is below
    1/:data:`DEPTH_FACTOR` (vanishing) or above :data:`DEPTH_FACTOR` (exploding).

    Parameters
    ----------
    run : RunView
        The run's history as the rules read it.
    vanishing : bool
        True checks for vanishing gradients, False for exploding ones.

    Returns
    -------
    Finding or None
        A warning with each layer's median RMS bias gradient; None within bounds, with
        fewer than three layers with biases, or when the last layer's gradient is 0.
    """
    steps, per = _signal_per_layer(run)
    if len(per) < 3 or not steps:
        return None
    names = list(per)
    first, last = np.array(per[names[0]]), np.array(per[names[-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.median(first / last))  # ∞ / NaN when the last layer gets nothing
    if not math.isfinite(ratio):
        return None
    rule = "vanishing_gradients" if vanishing else "exploding_gradients"
    if (vanishing and ratio >= 1 / DEPTH_FACTOR) or (not vanishing and ratio <= DEPTH_FACTOR):
        return None
    medians = {n: float(np.median(v)) for n, v in per.items()}
    word = "smaller" if vanishing else "larger"
    factor = (1 / ratio if ratio > 0 else math.inf) if vanishing else ratio
    action = ("use ReLU-family activations instead of sigmoid/tanh, He/Glorot initialisation, "
              "batch norm" if vanishing else
              "use a smaller initialisation (He for ReLU, Glorot for tanh), batch norm, "
              "gradient clipping (clip_norm)")
    size = "no gradient at all" if math.isinf(factor) else f"a gradient {factor:.3g}x {word}"
    return Finding(rule, "warning",
                   f"the first weight layer ({names[0]}) receives {size} compared with the last "
                   f"({names[-1]}) (median RMS bias gradient over steps {steps[0]}-{steps[-1]})",
                   {"rms_bias_gradient": medians, "first_over_last": ratio,
                    "steps": [steps[0], steps[-1]]}, action)


def plot_gradient_norms(
    history_or_records: Any, *, ax: Axes | None = None, weights_only: bool = True
) -> Figure:
    """Gradient norm per parameter over time (log axis): vanishing or exploding through depth
    shows as lines drifting apart by decades.

    Parameters
    ----------
    history_or_records : History, dict or list of dict
        A :class:`~neuronlab.train.History`, its ``to_dict()`` output, or the records of a
        ``metrics.jsonl`` file; the Monitor's parameter records are read.
    ax : matplotlib Axes, optional
        Axes to draw on; None draws on a new Figure.
    weights_only : bool, default True
        Draw the weight matrices only (False adds biases and other parameters).

    Returns
    -------
    matplotlib.figure.Figure
        One line per parameter.
    """
    from neuronlab.plots._base import _axes, _empty, as_records
    from neuronlab.plots.series import plot_series, series
    r = as_records(history_or_records)
    fig, ax = _axes(ax)
    lines = series(r.monitor, "grad_norm", "param", weights_only=weights_only)
    plot_series(ax, lines, lw=1.2)
    if lines:
        ax.set_yscale("log", nonpositive="mask")
        ax.legend(loc="best", fontsize="x-small", ncols=2)
    else:
        _empty(ax, "no monitor records")
    ax.set_xlabel("step")
    ax.set_ylabel("‖∂L/∂w‖")
    ax.set_title("Gradient norms")
    return fig
