"""What every plot shares: the run's records in one shape, and figure/axes helpers."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

__all__ = ["RunRecords", "as_records", "ema"]

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from neuronlab.train.history import History


@dataclass
class RunRecords:
    """What the plots read from a run, in one shape.

    Attributes
    ----------
    steps, loss, lr : ndarray of shape (n_recorded_steps,)
        Optimizer step index (0-based), training objective and learning rate (NaN when
        unknown, e.g. L-BFGS) of every recorded step, sorted by step.
    epochs : list of dict
        Epoch summaries (``"epoch"``, ``"step"``, ``"loss"``, ``"acc"``, ``"val_loss"``, ...).
    monitor : list of dict
        Per-layer monitor records (each with ``"step"`` and ``"layer"``).
    info : dict
        Facts recorded at the start of the run (``history.info``: expected and measured
        initial loss, ...).
    """

    steps: np.ndarray
    loss: np.ndarray
    lr: np.ndarray
    epochs: list[dict[str, Any]] = field(default_factory=list)
    monitor: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def to_history(self) -> History:
        """The :class:`~neuronlab.train.History` these records describe (what the diagnosis
        reads): losses and rates per step (NaN as None), epochs, monitor records and info.

        Returns
        -------
        History
        """
        from neuronlab.train.history import History

        return History.from_dict({
            "loss": [v if math.isfinite(v) else None for v in self.loss.tolist()],
            "lr": [v if math.isfinite(v) else None for v in self.lr.tolist()],
            "epochs": self.epochs,
            "monitor": self.monitor,
            "info": self.info,
        })


def _int(v: Any) -> int | None:
    """An integer field of a record, or None when it is not one."""
    return int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else None


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def _from_jsonl(records: Iterable[dict[str, Any]]) -> RunRecords:
    # A resumed run appends to the same file and redoes the steps after its checkpoint:
    # the last record of a step (or epoch) wins.
    steps: dict[int, tuple[float, float]] = {}
    epochs: dict[int, dict[str, Any]] = {}
    monitor: dict[tuple[Any, ...], dict[str, Any]] = {}
    info: dict[str, Any] = {}
    # a line of another shape (a tampered or foreign file: a step that is not an integer, an
    # info that is not a table) is skipped, so a report or a diagnosis still reads the rest
    for r in records:
        if not isinstance(r, dict):
            raise TypeError(f"records must be dicts, got {type(r).__name__}")
        event = r.get("event")
        if event == "step":
            if (s := _int(r.get("step"))) is not None:
                steps[s] = (_float(r.get("loss")), _float(r.get("lr")))
        elif event == "epoch":
            if (e := _int(r.get("epoch"))) is not None:
                epochs[e] = {k: v for k, v in r.items() if k not in ("event", "time")}
        elif event == "train_begin":
            first = r.get("info")
            info = info or (dict(first) if isinstance(first, dict) else {})  # the first start's
        elif event == "info":  # written after the first step, with the measured initial loss
            more = r.get("info")
            if isinstance(more, dict):
                info.update({k: v for k, v in more.items() if v is not None})
        elif "layer" in r and (s := _int(r.get("step"))) is not None:
            key = (s, str(r.get("kind")), str(r["layer"]), str(r.get("param")))
            monitor[key] = {k: v for k, v in r.items() if k != "event"}
    order = sorted(steps)
    return RunRecords(
        steps=np.asarray(order, dtype=np.int64),
        loss=np.asarray([steps[s][0] for s in order], dtype=np.float64),
        lr=np.asarray([steps[s][1] for s in order], dtype=np.float64),
        epochs=[epochs[e] for e in sorted(epochs)],
        monitor=sorted(monitor.values(), key=lambda r: int(r["step"])),
        info=info,
    )


def _monitor_list(m: Any) -> list[dict[str, Any]]:
    if m is None:
        return []
    if hasattr(m, "records"):  # a Monitor (or its history object) exposing its records
        m = m.records
    return [dict(r) for r in m]


def as_records(obj: Any) -> RunRecords:
    """Normalise a History, ``History.to_dict()`` output or metrics.jsonl records.

    Parameters
    ----------
    obj : History, dict, sequence of dict or RunRecords

    Returns
    -------
    RunRecords
    """
    if isinstance(obj, RunRecords):
        return obj
    if isinstance(obj, dict):
        if not {"loss", "lr", "epochs"} <= set(obj):
            raise ValueError("a history dict needs 'loss', 'lr' and 'epochs' keys")
        loss, lr, epochs, monitor = obj["loss"], obj["lr"], obj["epochs"], obj.get("monitor")
        info = obj.get("info")
    elif hasattr(obj, "loss") and hasattr(obj, "epochs"):  # a History
        loss, lr, epochs, monitor = obj.loss, obj.lr, obj.epochs, getattr(obj, "monitor", None)
        info = getattr(obj, "info", None)
    elif isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        return _from_jsonl(obj)
    else:
        raise TypeError(
            "expected a History, a history dict or a list of metrics.jsonl records, "
            f"got {type(obj).__name__}"
        )
    n = len(loss)
    return RunRecords(
        steps=np.arange(n, dtype=np.int64),
        loss=np.fromiter((_float(v) for v in loss), dtype=np.float64, count=n),
        lr=np.fromiter((_float(v) for v in lr), dtype=np.float64, count=len(lr)),
        epochs=[dict(e) for e in epochs],
        monitor=_monitor_list(monitor),
        info=dict(info or {}),
    )


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.0)) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _panels(n: int, ncols: int = 4, size: float = 2.6) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(size * ncols + 0.4, size * 0.8 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, list(axes[:n])


def _empty(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="0.4")


def ema(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Bias-corrected exponential moving average (TensorBoard's smoothing).

    ``s_t = β·s_{t−1} + (1 − β)·x_t`` from ``s_{−1} = 0``, divided by ``1 − β^(t+1)`` so the
    first values are not pulled towards zero. ``values`` of shape (n,) -> shape (n,).
    """
    x = np.asarray(values, dtype=np.float64)
    if smoothing == 0.0 or x.size == 0:
        return x.copy()
    # The recurrence as a loop over Python floats (0.2 s for a million steps), the same
    # arithmetic in the same order as scipy.signal.lfilter (bit-identical), without the
    # 0.2-0.3 s import of scipy.signal.
    beta, rest, acc = float(smoothing), 1.0 - float(smoothing), 0.0
    out = []
    for v in x.tolist():
        acc = rest * v + beta * acc
        out.append(acc)
    s = np.array(out, dtype=np.float64)
    s /= -np.expm1(np.arange(1, x.size + 1) * math.log(smoothing))  # 1 − β^(t+1), accurately
    return s


def _marks(n: int) -> dict[str, Any]:
    """Markers on short series: a run sampled once or twice would otherwise draw nothing."""
    return {"marker": "o", "ms": 3.0} if n <= 30 else {}
