"""The update/weight ratio ``‖Δw‖ / ‖w‖`` of each weight array per step: the notes' rule of
thumb says about 1e-3. Far above, the learning rate is too high; far below, too low.

The Monitor measures it from the real step (clipping, decay and constraints included); the
rules read the median over the measured steps of each weight array. For full-batch L-BFGS one
step is a whole epoch's minimize call (ratios of 1-100 are normal) and there is no learning
rate: ``lr_too_high`` does not read its ratios, ``lr_too_low`` speaks of its iterations.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab._validation import check_number
from neuronlab.babysit.findings import Finding
from neuronlab.babysit.runview import RunView, fmt, window

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


__all__ = [
    "HIGH_RATIO",
    "LOSS_GROWTH",
    "LOW_DROP",
    "LOW_RATIO",
    "TARGET_RATIO",
    "UPDATE_RATIO_BAND",
    "lr_too_high_rule",
    "lr_too_low_rule",
    "plot_update_ratios",
    "update_ratio",
]

TARGET_RATIO = 1e-3  # the notes: updates about a thousandth of the weights
HIGH_RATIO = 3e-2  # 30x the target: steps that rewrite the weights quickly
LOW_RATIO = 1e-4  # 10x below the target, the band's edge: with a loss that barely moves
LOSS_GROWTH = 1.5  # loss at the end this many times the start: it is growing
LOW_DROP = 0.05  # relative loss decrease below which the loss "barely moved"
UPDATE_RATIO_BAND = (1e-4, 1e-2)  # a decade either side of the target, shaded in the plot

# lr_too_high under full-batch L-BFGS: its line search keeps each epoch's loss from rising on
# a fixed objective, so a rise or a NaN points at the objective, the gradients or the data
_LBFGS_ACTION = ("L-BFGS has no learning rate to lower: check the gradients (nl.gradcheck) "
                 "and the data for extreme values, add a penalty (nl.L2) to keep the weights "
                 "bounded, and leave out layers that change the loss between epochs (dropout, "
                 "noise); or train with a first-order optimizer (Adam) and clip gradients")


def update_ratio(update_norm: float | None, weight_norm_before: float) -> float | None:
    """``‖Δw‖ / ‖w‖`` of one step, or None when it is undefined (a zero or non-finite norm).

    Parameters
    ----------
    update_norm : float or None
        ‖Δw‖, the norm of the step's change of the array (None: not measured).
    weight_norm_before : float
        ‖w‖ before the step.

    Returns
    -------
    float or None

    Examples
    --------
    >>> update_ratio(0.002, 2.0)
    0.001
    >>> update_ratio(0.002, 0.0) is None
    True
    """
    if update_norm is None or not (weight_norm_before > 0 and math.isfinite(weight_norm_before)):
        return None
    return update_norm / weight_norm_before


def lr_too_high_rule(run: RunView) -> Finding | None:
    """``lr_too_high``: the run diverged or the loss became non-finite (an "error"), or the
    loss grew (with 20 steps or more: its mean over the last steps above :data:`LOSS_GROWTH`
    times the start, the first steps' mean or the very first loss when that is lower) or
    most weight arrays have a median update/weight ratio above :data:`HIGH_RATIO` (a
    "warning").

    A full-batch run (L-BFGS, :attr:`RunView.full_batch`) has no learning rate, and its
    ratios are measured over a whole epoch of line-searched iterations (1-100 is normal), so
    they are not read: only a divergence, a non-finite loss or a growing loss fires, with
    ``"full_batch": True`` in the evidence and L-BFGS's remedies in the action.

    Parameters
    ----------
    run : RunView
        The run's history as the rules read it; a divergence recorded in ``run.info``
        (``diverged_*``, with the sentinel's origin when located) is reported first.

    Returns
    -------
    Finding or None
    """
    loss = run.loss
    bad = np.flatnonzero(~np.isfinite(loss))
    # L-BFGS: one ratio per minimize call (many iterations), and no learning rate to lower
    ratios = {} if run.full_batch else run.weight_ratios()
    if "diverged_step" in run.info:
        i = int(run.info["diverged_step"])
        what = run.info.get("diverged_at")
        what = "the network's output" if what == "scores" else (
            "the loss" if what == "loss" else f"the gradient of {what}")
        finite = loss[np.isfinite(loss)]
        evidence: dict[str, Any] = {"diverged_step": i, "diverged_at": run.info.get("diverged_at"),
                                    "steps": [0, i]}
        # where it started (the stability sentinel's replay, babysit/sentinel.py), if located
        origin, context = run.info.get("diverged_origin"), run.info.get("diverged_context")
        layer, kind = run.info.get("diverged_layer"), run.info.get("diverged_layer_type")
        evidence.update({k: run.info[k] for k in ("diverged_layer", "diverged_layer_type",
                                                  "diverged_direction", "diverged_param")
                         if run.info.get(k) is not None})
        msg = f"training diverged at step {i}: " + (
            f"{origin}, so {what} became NaN or Inf" if origin else f"{what} became NaN or Inf")
        if finite.size:
            evidence.update(loss_start=float(finite[0]), loss_last=float(finite[-1]))
            msg += f" (the loss went from {fmt(finite[0])} to {fmt(finite[-1])} before)"
        if context:
            msg += f"; {context}"
        first = f"look at layer {layer} ({kind}) first; " if layer is not None else ""
        if run.full_batch:
            evidence["full_batch"] = True
        return Finding("lr_too_high", "error", msg, evidence,
                       first + (_LBFGS_ACTION if run.full_batch else
                                "lower the learning rate (try 10x smaller), clip gradients "
                                "(clip_norm), check the data for extreme values"))
    if bad.size:
        i = int(bad[0])
        last_good = float(loss[i - 1]) if i > 0 else None
        evidence = {"first_non_finite_step": i, "last_finite_loss": last_good,
                    "steps": [0, len(loss) - 1]}
        if run.full_batch:
            evidence["full_batch"] = True
        return Finding("lr_too_high", "error",
                       f"the loss became non-finite at step {i}"
                       + (f" (last finite value {fmt(last_good)})" if last_good is not None else ""),
                       evidence,
                       _LBFGS_ACTION if run.full_batch else
                       "lower the learning rate (try 10x smaller), clip gradients, check the "
                       "data for extreme values; NonFiniteGuard stops a run at the first bad step")
    evidence = {}
    reasons = []
    if len(loss) >= 20:
        w = window(len(loss))
        # the start is the first window's mean, or the very first loss when that is lower:
        # a rate high enough to blow the loss up within the first window hides in its mean
        start = min(float(loss[:w].mean()), float(loss[0]))
        end = float(loss[-w:].mean())
        if end > LOSS_GROWTH * start:
            reasons.append(f"the loss grew from {fmt(start)} to {fmt(end)}")
            evidence.update({"loss_start": start, "loss_end": end, "steps": [0, len(loss) - 1]})
    high = {k: v for k, v in ratios.items() if v[0] > HIGH_RATIO}
    # most weight arrays must move too fast: one small array (a last layer initialised tiny)
    # can have large ratios under a good learning rate
    if high and 2 * len(high) > len(ratios):
        worst = max(high, key=lambda k: high[k][0])
        reasons.append(f"update/weight ratios are above {HIGH_RATIO:g} in {len(high)} of "
                       f"{len(ratios)} weight arrays (median over steps, up to "
                       f"{fmt(high[worst][0])} in {worst}) against the healthy ≈ {TARGET_RATIO:g}")
        evidence["median_update_ratio"] = {k: v[0] for k, v in high.items()}
        evidence["ratio_steps"] = high[worst][1]
    if not reasons:
        return None
    if run.full_batch:
        evidence["full_batch"] = True
        return Finding("lr_too_high", "warning", "L-BFGS: " + "; ".join(reasons), evidence,
                       _LBFGS_ACTION)
    return Finding("lr_too_high", "warning", "; ".join(reasons),
                   evidence, "lower the learning rate (by 3-10x) until update/weight ratios are "
                   "near 1e-3")


def lr_too_low_rule(run: RunView) -> Finding | None:
    """``lr_too_low``: at least half of the weight arrays have a median update/weight ratio
    below :data:`LOW_RATIO` (a small last layer may move faster) and (when the run has finite
    losses) the loss fell by at most :data:`LOW_DROP` (relative) between the start and the
    end of the run.

    Parameters
    ----------
    run : RunView
        The run's history as the rules read it.

    Returns
    -------
    Finding or None
        A warning with the ratios and the loss at both ends; None when no ratio was measured,
        fewer than half of them are low, or the loss still falls well. For a full-batch run
        (L-BFGS, :attr:`RunView.full_batch`: no learning rate, a line search sizes each step)
        the text speaks of its iterations and tolerance instead, and the evidence holds
        ``"full_batch": True``.
    """
    ratios = run.weight_ratios()
    if not ratios:
        return None
    # at least half of the weight arrays must hardly move: a small last layer (initialised
    # with std 0.01) has large ratios even when the rate is far too low for the others
    low = sorted(v[0] for v in ratios.values() if v[0] < LOW_RATIO)
    if 2 * len(low) < len(ratios):
        return None
    evidence: dict[str, Any] = {"median_update_ratio": {k: v[0] for k, v in ratios.items()},
                                "ratio_steps": [min(v[1][0] for v in ratios.values()),
                                                max(v[1][1] for v in ratios.values())]}
    if run.full_batch:  # L-BFGS: the line search, not a rate, sizes the steps
        evidence["full_batch"] = True
        msg = f"L-BFGS hardly moves the weights: update/weight ratios are below {LOW_RATIO:g} " \
              f"in {len(low)} of {len(ratios)} weight arrays (median over steps, down to " \
              f"{fmt(low[0])}); its iterations stop early (its tolerance is reached) or " \
              "its line search finds no lower loss"
    else:
        msg = f"update/weight ratios are below {LOW_RATIO:g} in {len(low)} of {len(ratios)} " \
              f"weight arrays (median over steps, down to {fmt(low[0])}), far below the healthy " \
              f"≈ {TARGET_RATIO:g}: the weights hardly change"
    finite = run.loss[np.isfinite(run.loss)]
    if finite.size >= 2:
        w = window(finite.size)
        start, end = float(finite[:w].mean()), float(finite[-w:].mean())
        drop = (start - end) / abs(start) if start else 0.0
        if drop > LOW_DROP:  # the loss still falls well: small updates are enough here
            return None
        evidence.update({"loss_start": start, "loss_end": end, "relative_drop": drop,
                         "steps": [0, len(run.loss) - 1]})
        msg += f"; the loss went from {fmt(start)} to {fmt(end)} ({-drop:+.1%})"
    if run.full_batch:
        return Finding("lr_too_low", "warning", msg, evidence,
                       "L-BFGS has no learning rate to raise: if the loss is still high, train "
                       "more epochs, allow more iterations per epoch and a lower tolerance "
                       "(nl.LBFGS(max_iter=..., tol=...)), and check the gradients (nl.gradcheck); "
                       "if the loss is already low, it has converged and more training will not help")
    return Finding("lr_too_low", "warning", msg, evidence,
                   "raise the learning rate (try 10x larger) until ratios are near 1e-3")


def plot_update_ratios(
    history_or_records: Any,
    *,
    ax: Axes | None = None,
    band: tuple[float, float] = UPDATE_RATIO_BAND,
    weights_only: bool = True,
) -> Figure:
    """Update/weight ratio ‖Δw‖/‖w‖ per parameter over time, log axis, with the 1e-3 band.

    The notes' rule: about 1e-3; far below, the learning rate is too low; far above, too high.

    Parameters
    ----------
    history_or_records : History, dict or list of dict
        A :class:`~neuronlab.train.History`, its ``to_dict()`` output, or the records of a
        ``metrics.jsonl`` file; the Monitor's parameter records are read.
    ax : matplotlib Axes, optional
        Axes to draw on; None draws on a new Figure.
    band : (float, float), default UPDATE_RATIO_BAND
        The shaded healthy band ``(low, high)``, 0 < low < high.
    weights_only : bool, default True
        Leave out biases and batch-norm parameters (the rule is about weights; a bias
        starting at 0 has a meaningless ratio).

    Returns
    -------
    matplotlib.figure.Figure
        One line per parameter (labelled by its dotted name), a dashed line at 1e-3 and a
        shaded band ``band`` (a PolyCollection / Rectangle patch) around it.
    """
    from neuronlab.plots._base import _axes, _empty, as_records
    from neuronlab.plots.series import plot_series, series
    lo = check_number("band[0]", band[0], low=0.0, low_inclusive=False)
    hi = check_number("band[1]", band[1], low=lo, low_inclusive=False)
    r = as_records(history_or_records)
    fig, ax = _axes(ax)
    lines = series(r.monitor, "update_ratio", "param", weights_only=weights_only)
    ax.axhspan(lo, hi, color="C2", alpha=0.12, label=f"healthy band [{lo:g}, {hi:g}]")
    ax.axhline(TARGET_RATIO, color="C2", ls="--", lw=1.0, label="1e-3")
    plot_series(ax, lines, lw=1.2)
    ax.set_yscale("log", nonpositive="mask")  # a ratio of 0 (lr = 0) is masked, not an error
    ax.set_xlabel("step")
    ax.set_ylabel("‖Δw‖ / ‖w‖")
    ax.set_title("Update / weight ratio")
    if not lines:
        _empty(ax, "no monitor records")
    ax.legend(loc="best", fontsize="x-small", ncols=2)
    return fig
