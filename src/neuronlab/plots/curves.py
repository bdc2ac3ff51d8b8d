"""Curves over steps and epochs: loss (raw and smoothed), accuracy, learning rate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab._validation import check_number
from neuronlab.plots._base import _axes, _empty, as_records, ema

__all__ = ["plot_accuracy", "plot_learning_rate", "plot_loss"]

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_loss(
    history_or_records: Any,
    *,
    ax: Axes | None = None,
    smoothing: float = 0.9,
    log_scale: bool = False,
) -> Figure:
    """Training loss per step (raw, faint) with its EMA, and per-epoch train/validation loss.

    Parameters
    ----------
    history_or_records : History, dict or list of dict
    ax : matplotlib Axes, optional
    smoothing : float in [0, 1)
        EMA factor β; 0 draws the raw curve only once.
    log_scale : bool
        Logarithmic loss axis (a loss that spans decades, or an exploding one).

    Returns
    -------
    matplotlib.figure.Figure
        The raw per-step losses as faint points labelled ``"raw"``; lines labelled
        ``"EMA (β)"``, ``"train (epoch mean)"`` and ``"validation"`` (each where the run
        recorded it).
    """
    smoothing = check_number("smoothing", smoothing, low=0.0, high=1.0, high_inclusive=False)
    r = as_records(history_or_records)
    fig, ax = _axes(ax)
    keep = np.flatnonzero(np.isfinite(r.loss))  # a diverged step is NaN/None: skip it
    if keep.size:
        steps, loss = r.steps[keep], r.loss[keep]
        ax.plot(steps, loss, ".", color="C0", alpha=0.3, ms=2.5, label="raw")
        if smoothing > 0.0:
            ax.plot(steps, ema(loss, smoothing), color="C0", lw=1.8, label=f"EMA ({smoothing:g})")
    for key, label, color in (
        ("loss", "train (epoch mean)", "C1"),
        ("val_loss", "validation", "C2"),
    ):
        pts = [(e["step"], e[key]) for e in r.epochs if e.get(key) is not None and "step" in e]
        if pts:
            x, y = zip(*pts, strict=True)
            ax.plot(x, y, "o-", color=color, ms=3.5, lw=1.2, label=label)
    if not ax.lines:
        _empty(ax, "no loss recorded")
    if log_scale:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    if ax.lines:
        ax.legend(loc="best", fontsize="small")
    return fig


def plot_accuracy(history_or_records: Any, *, ax: Axes | None = None) -> Figure:
    """Training and validation accuracy per epoch (mean squared error for regression runs).

    Parameters
    ----------
    history_or_records : History, dict or list of dict
        A :class:`~neuronlab.train.History`, its ``to_dict()`` output, or the records of a
        ``metrics.jsonl`` file (:func:`~neuronlab.train.loggers.read_metrics`).
    ax : matplotlib Axes, optional
        Axes to draw on (the figure returned is then its figure); None draws on a new
        Figure.

    Returns
    -------
    matplotlib.figure.Figure
        Lines labelled ``"train"`` and ``"validation"`` over epochs 1..n.
    """
    r = as_records(history_or_records)
    fig, ax = _axes(ax)
    metric = "acc" if any("acc" in e for e in r.epochs) else "error"
    for key, label, color in ((metric, "train", "C1"), (f"val_{metric}", "validation", "C2")):
        pts = [(e["epoch"] + 1, e[key]) for e in r.epochs if e.get(key) is not None]
        if pts:
            x, y = zip(*pts, strict=True)
            ax.plot(x, y, "o-", color=color, ms=3.5, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy" if metric == "acc" else "mean squared error")
    ax.set_title("Accuracy" if metric == "acc" else "Error")
    if ax.lines:
        ax.legend(loc="best", fontsize="small")
        # the gap between the two curves is the overfitting signal: integer epochs on x
        ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        _empty(ax, "no epoch metrics recorded")
    return fig


def plot_learning_rate(history_or_records: Any, *, ax: Axes | None = None) -> Figure:
    """Learning rate per step (log axis), as the schedule and plateau callbacks set it.

    Steps without a positive finite rate (full-batch L-BFGS, a zero lr) are left out.

    Parameters
    ----------
    history_or_records : History, dict or list of dict
        A :class:`~neuronlab.train.History`, its ``to_dict()`` output, or the records of a
        ``metrics.jsonl`` file (:func:`~neuronlab.train.loggers.read_metrics`).
    ax : matplotlib Axes, optional
        Axes to draw on (the figure returned is then its figure); None draws on a new
        Figure.

    Returns
    -------
    matplotlib.figure.Figure
        One line labelled ``"lr"`` (a "no learning rate recorded" note when none).
    """
    r = as_records(history_or_records)
    fig, ax = _axes(ax, (6.4, 2.6))
    keep = np.flatnonzero(np.isfinite(r.lr) & (r.lr > 0))
    if keep.size:
        ax.plot(r.steps[keep], r.lr[keep], color="C4", label="lr")
        ax.set_yscale("log")
    else:
        _empty(ax, "no learning rate recorded")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning rate")
    return fig
