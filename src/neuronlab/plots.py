"""Plots of a training run: each function returns a matplotlib ``Figure``.

The functions follow scikit-learn's display style, ``plot_x(history_or_records, *, ax=None)``:
pass ``ax`` to draw into an existing Axes, otherwise a new Figure is made. Figures are built
with ``matplotlib.figure.Figure`` directly (no pyplot, no global state, the Agg canvas when
saved), so they can be made in worker threads and in the report without a display; matplotlib
is imported inside the functions because it is only needed here.

``history_or_records`` is any of: a :class:`~neuronlab.train.History` (with the monitor's
records in ``history.monitor`` when a Monitor ran), ``History.to_dict()`` output, or the
records of a ``metrics.jsonl`` file as a list of dicts (see :func:`neuronlab.report.read_metrics`).
Monitor records are flat dicts with a ``"step"`` and a ``"layer"`` key, e.g.
``{"step": 120, "layer": "0", "type": "Linear", "param": "0.W", "update_ratio": 1.1e-3,
"weight_norm": ..., "grad_norm": ...}`` or ``{"step": 120, "layer": "1", "type": "ReLU",
"act_mean": ..., "act_std": ..., "dead_fraction": ..., "saturation": ...}``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab._validation import check_array, check_number, check_positive_int

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "RunRecords",
    "as_records",
    "plot_loss",
    "plot_accuracy",
    "plot_learning_rate",
    "plot_update_ratios",
    "plot_gradient_norms",
    "plot_dead_units",
    "plot_activation_histograms",
    "plot_gradient_histograms",
    "plot_weight_grid",
    "weight_mosaic",
    "plot_decision_regions",
]

UPDATE_RATIO_TARGET = 1e-3
"""The notes' rule of thumb for ‖Δw‖/‖w‖ per step."""
UPDATE_RATIO_BAND = (1e-4, 1e-2)
"""A decade either side of the target: outside it the learning rate is probably off."""


# -- inputs -----------------------------------------------------------------------------------
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


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def _from_jsonl(records: Iterable[dict[str, Any]]) -> RunRecords:
    # A resumed run appends to the same file and redoes the steps after its checkpoint:
    # the last record of a step (or epoch) wins.
    steps: dict[int, tuple[float, float]] = {}
    epochs: dict[int, dict[str, Any]] = {}
    monitor: dict[tuple[Any, ...], dict[str, Any]] = {}
    info: dict[str, Any] = {}
    for r in records:
        if not isinstance(r, dict):
            raise TypeError(f"records must be dicts, got {type(r).__name__}")
        event = r.get("event")
        if event == "step":
            steps[int(r["step"])] = (_float(r.get("loss")), _float(r.get("lr")))
        elif event == "epoch":
            epochs[int(r["epoch"])] = {k: v for k, v in r.items() if k not in ("event", "time")}
        elif event == "train_begin":
            info = info or dict(r.get("info") or {})  # the first start measured the initial loss
        elif "layer" in r and "step" in r:
            monitor[(r["step"], r["layer"], r.get("param"))] = {k: v for k, v in r.items() if k != "event"}
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
    from scipy.signal import lfilter

    x = np.asarray(values, dtype=np.float64)
    if smoothing == 0.0 or x.size == 0:
        return x.copy()
    s = lfilter([1.0 - smoothing], [1.0, -smoothing], x)
    s /= -np.expm1(np.arange(1, x.size + 1) * math.log(smoothing))  # 1 − β^(t+1), accurately
    return s


# -- curves over steps and epochs ---------------------------------------------------------------
def plot_loss(
    history_or_records: Any, *, ax: Axes | None = None, smoothing: float = 0.9, log_scale: bool = False
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
        Lines labelled ``"raw"``, ``"EMA (β)"``, ``"train (epoch mean)"`` and ``"validation"``
        (each where the run recorded it).
    """
    smoothing = check_number("smoothing", smoothing, low=0.0, high=1.0, high_inclusive=False)
    r = as_records(history_or_records)
    fig, ax = _axes(ax)
    keep = np.flatnonzero(np.isfinite(r.loss))  # a diverged step is NaN/None: skip it
    if keep.size:
        steps, loss = r.steps[keep], r.loss[keep]
        ax.plot(steps, loss, color="C0", alpha=0.25, lw=0.8, label="raw")
        if smoothing > 0.0:
            ax.plot(steps, ema(loss, smoothing), color="C0", lw=1.8, label=f"EMA ({smoothing:g})")
    for key, label, color in (("loss", "train (epoch mean)", "C1"), ("val_loss", "validation", "C2")):
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
    """Learning rate per step (log axis), as the schedule and plateau callbacks set it."""
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


# -- monitor series ----------------------------------------------------------------------------
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


def _marks(n: int) -> dict[str, Any]:
    """Markers on short series: a run sampled once or twice would otherwise draw nothing."""
    return {"marker": "o", "ms": 3.0} if n <= 30 else {}


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


def plot_gradient_norms(history_or_records: Any, *, ax: Axes | None = None, weights_only: bool = True) -> Figure:
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
        ax.plot(s, v, color=f"C{i % 10}", ls="--", lw=1.4, label=f"{name} saturated", **_marks(len(s)))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("fraction of units")
    ax.set_title("Dead / saturated units")
    if ax.lines:
        ax.legend(loc="best", fontsize="x-small")
    else:
        _empty(ax, "no activation records")
    return fig


# -- histograms from a model and a data sample -----------------------------------------------------
def _hist_panels(values: Sequence[tuple[str, np.ndarray]], bins: int, xlabel: str, color: str) -> Figure:
    from matplotlib.ticker import MaxNLocator

    fig, axes = _panels(len(values))
    for ax, (title, v) in zip(axes, values, strict=True):
        v = np.asarray(v, dtype=np.float64).ravel()
        counts, edges = np.histogram(v, bins=bins)
        ax.stairs(counts, edges, fill=True, color=color, alpha=0.8)
        ax.set_title(title, fontsize="small")
        ax.text(0.98, 0.95, f"mean {v.mean():.3g}\nstd {v.std():.3g}", ha="right", va="top",
                transform=ax.transAxes, fontsize="x-small")
        ax.tick_params(labelsize="x-small")
        ax.xaxis.set_major_locator(MaxNLocator(4))  # tiny gradient scales have long labels
        ax.set_xlabel(xlabel, fontsize="x-small")
    return fig


def plot_activation_histograms(model: Any, X: np.ndarray, *, bins: int = 50) -> Figure:
    """Histogram of every layer's output on a data sample, forwarded in inference mode.

    The notes' picture of healthy depth: activations that keep a spread through the layers,
    neither collapsing to 0 nor piling up at the saturation ends of tanh/sigmoid.

    Parameters
    ----------
    model : Sequential
    X : ndarray of shape (n_samples, n_in)
        A sample of (preprocessed) inputs; a few hundred rows are plenty.
    bins : int

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per layer except the last (the scores), titled ``"i: Type"``.
    """
    X = check_array("X", X)
    bins = check_positive_int("bins", bins)
    layers = list(model.layers)
    out, values = X, []
    for i, layer in enumerate(layers[:-1] if len(layers) > 1 else layers):
        out = layer.forward(out, training=False)
        values.append((f"{i}: {type(layer).__name__}", out))
    return _hist_panels(values, bins, "activation", "C0")


def plot_gradient_histograms(model: Any, loss: Any, X: np.ndarray, y: np.ndarray, *, bins: int = 50) -> Figure:
    """Histogram of the gradient dL/d(output) arriving at each layer on a data sample
    (gradient flow: how the backward signal shrinks or grows through depth).

    The model's ``grads`` are left as they were (saved and put back).

    Parameters
    ----------
    model : Sequential
    loss : Loss
    X : ndarray of shape (n_samples, n_in)
    y : ndarray of targets for ``loss``
    bins : int

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per layer, titled ``"i: Type"``, last layer first removed: order follows depth.
    """
    X = check_array("X", X)
    bins = check_positive_int("bins", bins)
    grads = model.grads
    saved = {k: g.copy() for k, g in grads.items()}
    try:
        scores = model.forward(X, training=False)
        loss.forward(scores, y)
        dout = loss.backward()
        values = []
        layers = list(model.layers)
        for i in range(len(layers) - 1, -1, -1):
            values.append((f"{i}: {type(layers[i]).__name__}", np.array(dout, dtype=np.float64)))
            if i > 0:
                dout = layers[i].backward(dout, input_grad=True)
    finally:
        for k, g in grads.items():
            np.copyto(g, saved[k])
    values.reverse()
    return _hist_panels(values, bins, "∂L/∂output", "C3")


# -- weights as images -------------------------------------------------------------------------
def _first_weights(model_or_W: Any) -> np.ndarray:
    if isinstance(model_or_W, np.ndarray):
        W = model_or_W
    else:
        layer = next((l for l in model_or_W.layers if "W" in l.params), None)
        if layer is None:
            raise ValueError("the model has no layer with a weight matrix 'W'")
        W = layer.params["W"]
    return np.asarray(W, dtype=np.float64).reshape(W.shape[0], -1)  # Maxout: every piece a tile


def weight_mosaic(
    model_or_W: Any, image_shape: Sequence[int], *, max_units: int = 100, pad: int = 1
) -> np.ndarray:
    """Tile the first layer's weight vectors (one per hidden unit) as images.

    Each tile is scaled to [0, 1] by its own min and max; a constant tile (max == min, e.g. a
    dead unit or a zero init) becomes mid-grey instead of dividing by zero.

    Parameters
    ----------
    model_or_W : Sequential or ndarray of shape (n_in, n_units)
    image_shape : (H, W) for grey images or (C, H, W) channel-major (CIFAR rows: 3×32×32)
    max_units : int
        At most this many tiles (the first units).
    pad : int
        Background pixels between tiles.

    Returns
    -------
    ndarray of shape (rows·(H+pad)+pad, cols·(W+pad)+pad) or (..., ..., C)
        With ``cols = ceil(sqrt(k))`` and ``rows = ceil(k / cols)`` for ``k`` tiles.
    """
    W = _first_weights(model_or_W)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or math.prod(shape) != W.shape[0] or (len(shape) == 3 and shape[0] not in (1, 3)):
        raise ValueError(
            f"image_shape must be (H, W) or (C, H, W) with C in (1, 3) and H*W*C == n_in = {W.shape[0]}, "
            f"got {image_shape!r}"
        )
    max_units = check_positive_int("max_units", max_units)
    k = min(W.shape[1], max_units)
    tiles = W[:, :k].T.copy()  # (k, D)
    lo = tiles.min(axis=1, keepdims=True)
    span = tiles.max(axis=1, keepdims=True) - lo
    tiles -= lo
    np.divide(tiles, span, out=tiles, where=span > 0)
    tiles[np.flatnonzero(span[:, 0] == 0)] = 0.5  # integer-index: a constant tile is mid-grey
    if len(shape) == 3:  # channel-major rows -> (k, H, W, C) for imshow
        tiles = tiles.reshape(k, *shape).transpose(0, 2, 3, 1)
    else:
        tiles = tiles.reshape(k, *shape, 1)
    h, w, c = tiles.shape[1:]
    cols = math.ceil(math.sqrt(k))
    rows = -(-k // cols)
    grid = np.ones((rows * cols, h + pad, w + pad, c))  # white background
    grid[:k, :h, :w] = tiles
    grid = grid.reshape(rows, cols, h + pad, w + pad, c).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * (h + pad), cols * (w + pad), c)
    grid = np.pad(grid, ((pad, 0), (pad, 0), (0, 0)), constant_values=1.0)
    return grid[..., 0] if c == 1 else grid


def plot_weight_grid(
    model_or_W: Any, image_shape: Sequence[int], *, ax: Axes | None = None, max_units: int = 100
) -> Figure:
    """First-layer weights as an image grid (one tile per hidden unit): on image data a
    trained network shows strokes and blobs, an untrained or broken one noise.

    Parameters are those of :func:`weight_mosaic`.

    Returns
    -------
    matplotlib.figure.Figure
        One AxesImage holding the mosaic (``ax.images[0].get_array()``).
    """
    mosaic = weight_mosaic(model_or_W, image_shape, max_units=max_units)
    fig, ax = _axes(ax, (5.5, 5.5))
    ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0.0, vmax=1.0,
              interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"First-layer weights ({min(_first_weights(model_or_W).shape[1], max_units)} units)")
    return fig


# -- 2-D decision regions ----------------------------------------------------------------------
def plot_decision_regions(
    model: Any, X: np.ndarray, y: np.ndarray, *, ax: Axes | None = None, resolution: int = 200,
    preprocess: bool = True,
) -> Figure:
    """Predicted class over the plane, with the training points on top (2-D inputs only).

    Parameters
    ----------
    model : Sequential
        Scores of shape (n, C): the class is the argmax, or ``score > 0`` when C == 1.
    X : ndarray of shape (n_samples, 2)
        Points in the original (un-preprocessed) coordinates.
    y : ndarray of shape (n_samples,)
        Integer class labels.
    resolution : int
        Grid points per axis.
    preprocess : bool
        Apply ``model.preprocessor`` (set by ``nl.load``) to the grid before predicting.

    Returns
    -------
    matplotlib.figure.Figure
        A filled contour set of the predicted class and one scatter (PathCollection) of X.
    """
    X = check_array("X", X)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision regions need 2-D inputs of shape (n_samples, 2), got {X.shape}")
    y = np.asarray(y)
    resolution = check_positive_int("resolution", resolution)
    (x0, y0), (x1, y1) = X.min(axis=0), X.max(axis=0)
    mx, my = 0.1 * (x1 - x0) + 1e-3, 0.1 * (y1 - y0) + 1e-3
    gx, gy = np.meshgrid(np.linspace(x0 - mx, x1 + mx, resolution), np.linspace(y0 - my, y1 + my, resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    pre = getattr(model, "preprocessor", None) if preprocess else None
    if pre is not None:
        grid = pre.transform(grid.astype(np.float32))
    grid = np.ascontiguousarray(grid, dtype=model.dtype or np.float32)
    scores = model.forward(grid, training=False)
    pred = scores.argmax(axis=1) if scores.shape[1] > 1 else (scores[:, 0] > 0).astype(np.int64)
    n_classes = max(int(scores.shape[1]) if scores.shape[1] > 1 else 2, int(y.max()) + 1)
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    # class k gets colour k of the qualitative palette, in the regions and on the points alike
    palette = colormaps["tab10" if n_classes <= 10 else "tab20"].colors
    cmap = ListedColormap([palette[k % len(palette)] for k in range(n_classes)])
    fig, ax = _axes(ax, (5.5, 5.0))
    levels = np.arange(n_classes + 1) - 0.5
    ax.contourf(gx, gy, pred.reshape(gx.shape), levels=levels, cmap=cmap, vmin=-0.5,
                vmax=n_classes - 0.5, alpha=0.35)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=n_classes - 0.5, s=12,
               edgecolors="k", linewidths=0.3)
    ax.set_xlabel("x₀")
    ax.set_ylabel("x₁")
    ax.set_title("Decision regions")
    return fig
