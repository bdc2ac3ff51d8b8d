"""Monitor records as series over steps, one per parameter or layer, and drawing them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab.plots._base import _marks

__all__ = ["plot_series", "series"]

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def series(
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


def plot_series(ax: Axes, lines: dict[str, tuple[np.ndarray, np.ndarray]], **kw: Any) -> None:
    for i, (name, (s, v)) in enumerate(lines.items()):
        ax.plot(s, v, color=f"C{i % 10}", label=name, **_marks(len(s)), **kw)
