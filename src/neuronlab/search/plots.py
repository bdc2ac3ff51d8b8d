"""The notes' search picture: validation accuracy over log10 learning rate × log10
regularisation strength, one dot per trial coloured by its accuracy (failed trials as grey
crosses), so the good region of the two most important knobs is visible at a glance."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_lr_reg"]

_LR_NAMES = ("lr", "optim.lr")
_REG_NAMES = ("l2", "regularization.l2", "l1", "regularization.l1")


def _pick(records: Sequence[dict[str, Any]], names: Sequence[str], given: str | None, what: str) -> str:
    if given is not None:
        return given
    present = {k for r in records for k in r["params"]}
    for n in names:
        if n in present:
            return n
    raise ValueError(f"no {what} parameter ({', '.join(names)}) in the search space")


def plot_lr_reg(records: Sequence[dict[str, Any]], *, x: str | None = None, y: str | None = None,
                ax: Axes | None = None) -> Figure:
    """Scatter of trials at (log10 x, log10 y) coloured by their value.

    Parameters
    ----------
    records : sequence of dict
        Trial records (``params``, ``state``, ``value``) as in ``trials.jsonl``.
    x, y : str, optional
        Parameter names; default the learning rate (``lr``) and the first regularisation
        strength found (``l2``, then ``l1``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    xn = _pick(records, _LR_NAMES, x, "learning-rate")
    yn = _pick(records, _REG_NAMES, y, "regularisation")
    if ax is None:
        fig = Figure(figsize=(6.0, 4.6), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure

    def log(v: Any) -> float:
        # a zero strength (no regularisation) has no log: draw it at the bottom edge
        return math.log10(v) if isinstance(v, (int, float)) and v > 0 else math.nan

    good, bad = [], []
    for r in records:
        if xn not in r["params"] or yn not in r["params"]:
            continue
        pt = (log(r["params"][xn]), log(r["params"][yn]))
        (good if r["state"] == "COMPLETE" and r["value"] is not None else bad).append((pt, r["value"]))
    if good:
        sc = ax.scatter([p[0] for p, _ in good], [p[1] for p, _ in good], c=[v for _, v in good],
                        cmap="viridis", s=36, edgecolors="k", linewidths=0.3)
        fig.colorbar(sc, ax=ax, label="validation accuracy")
        (bx, by), bv = max(good, key=lambda g: g[1])
        ax.scatter([bx], [by], marker="*", s=220, c="red", label=f"best {bv:.4f}")
        ax.legend(loc="best", fontsize=8)
    if bad:
        ax.scatter([p[0] for p, _ in bad], [p[1] for p, _ in bad], marker="x", c="0.5", s=30,
                   label="failed / pruned")
    ax.set_xlabel(f"log10 {xn}")
    ax.set_ylabel(f"log10 {yn}")
    ax.set_title(f"{len(good)} completed trials, {len(bad)} failed or pruned")
    return fig
