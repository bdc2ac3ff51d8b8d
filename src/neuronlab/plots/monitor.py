"""Monitor series over steps: update/weight ratios, gradient norms, dead and saturated units."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab._validation import check_number
from neuronlab.plots._base import _axes, _empty, _marks, as_records

__all__ = [
    "UPDATE_RATIO_BAND",
    "UPDATE_RATIO_TARGET",
    "plot_dead_units",
    "plot_gradient_norms",
    "plot_update_ratios",
]

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

UPDATE_RATIO_TARGET = 1e-3
"""The notes' rule of thumb for ‖Δw‖/‖w‖ per step."""
UPDATE_RATIO_BAND = (1e-4, 1e-2)
"""A decade either side of the target: outside it the learning rate is probably off."""


def _series(
    monitor: list[dict[str, Any]], key: str, by: str, *, weights_only: bool = False
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (steps, values)}`` of monitor field ``key``, one series per ``by`` value, in
    layer order ("0.W" < "1.W" < "10.W"). ``weights_only`` keeps records whose ``role`` is
    "weight" (records without a role are kept)."""
    acc: dict[str, list[tuple[int, float]]] = {}
    for rec in monitor:
        v = rec.get(key)
        if v is None or (weights_only and rec.get("role", "weight") != "weight"):
            continue
        name = str(rec.get(by, rec.get("layer")))
        if by == "layer" and rec.get("type"):
            name = f"{name}: {rec['type']}"
        acc.setdefault(name, []).append((int(rec["step"]), float(v)))

    def order(name: str) -> tuple[int, str]:
        head = name.split(".", 1)[0].split(":", 1)[0]
        return (int(head) if head.isdigit() else 1 << 30, name)

    return {
        n: (np.array([s for s, _ in acc[n]]), np.array([v for _, v in acc[n]]))
        for n in sorted(acc, key=order)
    }


def _plot_series(ax: Axes, series: dict[str, tuple[np.ndarray, np.ndarray]], **kw: Any) -> None:
    for i, (name, (s, v)) in enumerate(series.items()):
        ax.plot(s, v, color=f"C{i % 10}", label=name, **_marks(len(s)), **kw)


def plot_update_ratios(
    history_or_records: Any,
    *,
    ax: Axes | None = None,
    band: tuple[float, float] = UPDATE_RATIO_BAND,
    weights_only: bool = True,
) -> Figure:
    """Update/weight ratio ‖Δw‖/‖w‖ per parameter over time, log axis, with the 1e-3 band.

    The notes' rule: about 1e-3; far below, the learning rate is too low; far above, too high.
    ``weights_only`` leaves out biases and batch-norm parameters (the rule is about weights;
    a bias starting at 0 has a meaningless ratio).

    Returns
    -------
    matplotlib.figure.Figure
        One line per parameter (labelled by its dotted name), a dashed line at 1e-3 and a
        shaded band ``band`` (a PolyCollection / Rectangle patch) around it.
    """
    lo = check_number("band[0]", band[0], low=0.0, low_inclusive=False)
    hi = check_number("band[1]", band[1], low=lo, low_inclusive=False)
    r = as_records(history_or_records)
    fig, ax = _axes(ax)
    series = _series(r.monitor, "update_ratio", "param", weights_only=weights_only)
    ax.axhspan(lo, hi, color="C2", alpha=0.12, label=f"healthy band [{lo:g}, {hi:g}]")
    ax.axhline(UPDATE_RATIO_TARGET, color="C2", ls="--", lw=1.0, label="1e-3")
    _plot_series(ax, series, lw=1.2)
    ax.set_yscale("log", nonpositive="mask")  # a ratio of 0 (lr = 0) is masked, not an error
    ax.set_xlabel("step")
    ax.set_ylabel("‖Δw‖ / ‖w‖")
    ax.set_title("Update / weight ratio")
    if not series:
        _empty(ax, "no monitor records")
    ax.legend(loc="best", fontsize="x-small", ncols=2)
    return fig


def plot_gradient_norms(
    history_or_records: Any, *, ax: Axes | None = None, weights_only: bool = True
) -> Figure:
    """Gradient norm per parameter over time (log axis): vanishing or exploding through depth
    shows as lines drifting apart by decades. ``weights_only`` as in :func:`plot_update_ratios`.

    Returns
    -------
    matplotlib.figure.Figure
        One line per parameter.
    """
    r = as_records(history_or_records)
    fig, ax = _axes(ax)
    series = _series(r.monitor, "grad_norm", "param", weights_only=weights_only)
    _plot_series(ax, series, lw=1.2)
    if series:
        ax.set_yscale("log", nonpositive="mask")
        ax.legend(loc="best", fontsize="x-small", ncols=2)
    else:
        _empty(ax, "no monitor records")
    ax.set_xlabel("step")
    ax.set_ylabel("‖∂L/∂w‖")
    ax.set_title("Gradient norms")
    return fig


def plot_dead_units(history_or_records: Any, *, ax: Axes | None = None) -> Figure:
    """Fraction of dead ReLU units (solid) and saturated sigmoid/tanh units (dashed) per layer.

    Returns
    -------
    matplotlib.figure.Figure
        One line per layer that reports ``dead_fraction`` or ``saturation``; y in [0, 1].
    """
    r = as_records(history_or_records)
    fig, ax = _axes(ax)
    dead = _series(r.monitor, "dead_fraction", "layer")
    sat = _series(r.monitor, "saturation", "layer")
    _plot_series(ax, {f"{k} dead": v for k, v in dead.items()}, lw=1.4)
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
