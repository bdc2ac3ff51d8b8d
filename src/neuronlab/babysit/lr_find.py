"""The learning-rate range test (Smith 2015, 2017): sweep the lr up, watch the loss, pick one.

From the model's *current* weights, :func:`lr_find` takes ``steps`` optimizer steps on
shuffled minibatches while the learning rate grows geometrically from ``start_lr`` to
``end_lr``, and records the minibatch loss after every step. Too small a rate leaves the loss
where it was; a good one makes it fall; too large a one makes it blow up. Where it falls
fastest, and where it stops falling, say which rates train this network on this data.

The sweep is repeated for each of ``seeds`` (each draws its own minibatches), so a suggestion
comes with its spread across seeds, and everything the sweep touched is put back afterwards:
the weights and buffers (copied back into the same arrays), the gradients, each stochastic
layer's random generator. The optimizer is never touched at all: each sweep runs on a copy of
it, made from its ``state_dict``. A :class:`~neuronlab.train.Trainer` fitted after a range
test therefore trains exactly as it would have without it.

How a point is measured
    ``losses[k]`` is the loss of the minibatch drawn right *after* the update at
    ``lrs[k]`` (the objective of :func:`~neuronlab.train.step.loss_and_grads`: data loss
    plus the regulariser's penalty), so each point shows the effect of its own rate; the
    loss before any update is ``initial_loss``. Minibatches are full: when fewer than
    ``batch_size`` rows remain of the current shuffle, a new permutation is drawn.
How a curve ends
    A sweep stops early, keeping the curve so far, when the smoothed loss exceeds
    ``diverge_factor`` times its minimum, or when a loss or a gradient is NaN or Inf (that
    point is not recorded). Either way ``diverged`` is True for that seed.

Smoothing
    The curves are smoothed by a bias-corrected exponential moving average:
    ``a_k = β·a_(k−1) + (1 − β)·loss_k`` from ``a_(−1) = 0``, and
    ``smoothed[k] = a_k / (1 − β^(k+1))``. The default β = 0.9 averages about
    the last ten steps (0.8 of a decade in the default sweep of 100 steps over 8 decades).
    fastai's β = 0.98 lags about 49 steps, half the sweep: measured on the digits with Adam,
    its smoothed curve bottoms out at lr 0.115 where the raw losses do at 0.018, and the
    rules read a curve shifted by decades.

The rules (each applied to each seed's smoothed curve; ``suggestions[rule]`` is the median
over seeds with the smallest and largest)

``"valley"`` (the recommended one, :data:`RECOMMENDED`)
    A range-test curve has a plateau (rates too small to move the weights in a few steps),
    one long valley where the loss falls, a floor, and the rise where it blows up. The valley
    runs from its *rim*, the last point before the minimum still within 10% of the depth of
    the highest point before it, down to its *floor*, the first point after the rim within
    10% of the depth above the minimum: two level crossings of a falling curve, which the
    noise hardly moves (a single point of it, or of its slope, moves much more). The
    suggestion is a tenth of the way down the valley in log lr, just past the rim: a rate
    that makes clear progress within the sweep's few steps at it, and well below the rates
    that lower the loss fastest in those few steps, which are too large for a run of
    thousands of steps (such a run ends noisier, overfits sooner or blows up later).
``"steepest"``
    Where the smoothed loss falls fastest per decade of lr (the most negative slope of the
    curve against log10 lr, before its minimum). The classic reading of the plot: the rate of
    fastest short-term progress, which tends to be too large for a long run.
``"minimum/10"``
    The rate at the smoothed curve's minimum, divided by ten: the old rule of thumb.

Why valley is the recommendation. On the digits with the default network (64-256-10 ReLU,
batches of 32, 30 epochs) a log grid of ten runs (three per decade) puts the best final
validation loss at lr 1e-3 for Adam and 1e-2 for momentum SGD (momentum 0.9); the valley
rule suggests 1.3e-3 and 5e-3 (1.3 and 0.5 times the best), steepest 8.5e-3 and 3.8e-2 (8.5
and 3.8 times), minimum/10 5.5e-3 and 2.9e-2 (5.5 and 2.9 times). The grid's best itself
moves with the split: over the seeds 0 to 3 it ranges from 4.6e-4 to 2.2e-3 for Adam and
from 4.6e-3 to 2.2e-2 for momentum, while the valley's suggestions stay within 1.3e-3 to
1.6e-3 and 5e-3 to 6e-3; the valley then lies within 0.28 to 3.4 times the best (of 0, a
tenth, 0.15 and a fifth of the way down, a tenth has the smallest worst ratio; a fifth
reaches 4.8 for Adam),
steepest and minimum/10 up to 18 and 21 times. ``tests/babysit/test_lr_find.py`` holds the
acceptance check. With plain SGD and Adagrad, whose steps are not amplified by momentum or
normalised per weight, the best rate sits just below the curves' floor instead: there
minimum/10 is the better guess and the valley is low (a tenth to a seventh of the best), so
read the plot.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab._validation import check_number, check_positive_int
from neuronlab.data.arrays import batch
from neuronlab.threads import blas_threads, limit_blas
from neuronlab.train.errors import DivergenceError
from neuronlab.train.inputs import check_components, check_data
from neuronlab.train.step import loss_and_grads
from neuronlab.train.weights import check_weights

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["RECOMMENDED", "RULES", "LRFindResult", "lr_find", "suggest"]

#: The suggestion rules, in the order they are reported.
RULES: tuple[str, ...] = ("valley", "steepest", "minimum/10")
#: The rule whose value is :attr:`LRFindResult.suggestion` (the module docstring says why).
RECOMMENDED = "valley"

_VALLEY_BAND = 0.1  # the rim and the floor of a valley: within this share of its depth
_VALLEY_POSITION = 0.1  # the valley suggestion: this far down the valley, in log lr


@dataclass
class LRFindResult:
    """The curves of a learning-rate range test and the rates they suggest.

    Attributes
    ----------
    seeds : tuple of int
        One sweep per seed, in this order; the per-seed lists below follow it.
    lrs, losses, smoothed : list of ndarray of shape (n_points,)
        For each seed: the learning rate of every step taken, the minibatch loss right after
        that step, and its bias-corrected exponential moving average. A sweep that stopped
        early has fewer than ``steps`` points (none when the very first step failed).
    initial_loss : list of float
        For each seed, the loss of the first minibatch, before any update (NaN when even
        that was not finite).
    diverged : list of bool
        For each seed, whether the sweep stopped early (loss blew up, or NaN / Inf).
    per_seed : dict of str to list of float
        ``per_seed[rule][i]``: the rule's rate on seed i's curve (NaN when that curve is too
        short for the rule).
    suggestions : dict of str to (float, float, float)
        ``{rule: (median, lo, hi)}`` over the seeds where the rule gave a value; all three
        NaN when it gave none.
    rule : str
        The recommended rule (:data:`RECOMMENDED`), or ``"minimum/10"`` when the curves were
        too short for it.
    settings : dict
        The sweep's arguments (``start_lr``, ``end_lr``, ``steps``, ``batch_size``,
        ``smoothing``, ``diverge_factor``).
    """

    seeds: tuple[int, ...]
    lrs: list[np.ndarray]
    losses: list[np.ndarray]
    smoothed: list[np.ndarray]
    initial_loss: list[float]
    diverged: list[bool]
    per_seed: dict[str, list[float]]
    suggestions: dict[str, tuple[float, float, float]]
    rule: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def suggestion(self) -> float:
        """The recommended learning rate: the median over seeds of :attr:`rule`'s rates
        (NaN when no curve had a single finite point)."""
        return self.suggestions[self.rule][0]

    @property
    def spread(self) -> tuple[float, float]:
        """The smallest and largest of :attr:`rule`'s rates across seeds."""
        _, lo, hi = self.suggestions[self.rule]
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        """JSON values: every curve, the suggestions and the settings (NaN written as None)."""

        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "suggestion": num(self.suggestion),
            "rule": self.rule,
            "suggestions": {r: [num(v) for v in s] for r, s in self.suggestions.items()},
            "per_seed": {r: [num(v) for v in s] for r, s in self.per_seed.items()},
            "settings": dict(self.settings),
            "sweeps": [
                {
                    "seed": int(seed),
                    "initial_loss": num(self.initial_loss[i]),
                    "diverged": bool(self.diverged[i]),
                    "lr": [float(v) for v in self.lrs[i]],
                    "loss": [float(v) for v in self.losses[i]],
                    "smoothed": [float(v) for v in self.smoothed[i]],
                }
                for i, seed in enumerate(self.seeds)
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LRFindResult:
        """Rebuild a result from :meth:`to_dict` output (as read back from JSON).

        Parameters
        ----------
        d : mapping
            What :meth:`to_dict` returned; None values become NaN.

        Returns
        -------
        LRFindResult

        Raises
        ------
        ValueError
            If ``d`` lacks a key or holds a value of the wrong kind.
        """

        def num(v: Any) -> float:
            return math.nan if v is None else float(v)

        try:
            sweeps = list(d["sweeps"])
            suggestions = {str(r): (num(s[0]), num(s[1]), num(s[2]))
                           for r, s in d["suggestions"].items()}
            if str(d["rule"]) not in suggestions:
                raise ValueError(f"its rule {str(d['rule'])!r:.40} has no suggestion")
            return cls(
                seeds=tuple(int(s["seed"]) for s in sweeps),
                lrs=[np.asarray(s["lr"], dtype=np.float64) for s in sweeps],
                losses=[np.asarray(s["loss"], dtype=np.float64) for s in sweeps],
                smoothed=[np.asarray(s["smoothed"], dtype=np.float64) for s in sweeps],
                initial_loss=[num(s["initial_loss"]) for s in sweeps],
                diverged=[bool(s["diverged"]) for s in sweeps],
                per_seed={str(r): [num(v) for v in s] for r, s in d["per_seed"].items()},
                suggestions=suggestions,
                rule=str(d["rule"]),
                settings=dict(d.get("settings") or {}),
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise ValueError(f"not an lr_find result: {type(e).__name__}: {e}") from None

    def summary(self) -> str:
        """A short table: each rule's median rate and spread, and the recommendation."""
        lines = [f"{'rule':<12}{'lr':>11}{'spread over ' + str(len(self.seeds)) + ' seeds':>30}"]
        for r in RULES:
            med, lo, hi = self.suggestions[r]
            mark = "  <- recommended" if r == self.rule else ""
            lines.append(f"{r:<12}{_fmt(med):>11}{_fmt(lo):>17} .. {_fmt(hi):<10}{mark}")
        stopped = sum(self.diverged)
        lines.append(f"{stopped} of {len(self.seeds)} sweeps stopped early (the loss blew up)"
                     if stopped else "no sweep blew up: a larger end_lr may show more")
        return "\n".join(lines)

    def plot(self, ax: Axes | None = None) -> Figure:
        """The loss against the learning rate (log x): each seed's raw loss (faint) and
        smoothed curve, and each rule's suggestion as a labelled vertical line (the
        recommended one solid (matplotlib is imported here).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; None draws on a new Figure.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        if ax is None:
            fig = Figure(figsize=(6.4, 4.0), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure  # type: ignore[assignment]
        colors = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink")
        finite: list[float] = []
        for i, seed in enumerate(self.seeds):
            lr, raw, s = self.lrs[i], self.losses[i], self.smoothed[i]
            c = colors[i % len(colors)]
            if lr.size:
                ax.plot(lr, raw, color=c, alpha=0.25, lw=0.8)
                ax.plot(lr, s, color=c, lw=1.6, label=f"seed {seed}" + (
                    " (stopped)" if self.diverged[i] else ""))
                finite += [float(v) for v in s if math.isfinite(v)]
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("minibatch loss (smoothed)")
        if finite:  # the curves' rise at the end would squash the descent: clip it
            lo, first = min(finite), max(float(s[0]) for s in self.smoothed if s.size)
            top = max(first, lo) + 0.25 * abs(max(first, lo) - lo) + 1e-12
            ax.set_ylim(max(lo - 0.15 * (top - lo), min(lo, 0.0)), top)
        else:
            ax.text(0.5, 0.5, "no finite loss: every sweep failed at once", ha="center",
                    va="center", transform=ax.transAxes, color="0.4")
        styles = {"valley": "-", "steepest": "--", "minimum/10": ":"}
        for r in RULES:
            med, lo, hi = self.suggestions[r]
            if not math.isfinite(med):
                continue
            main = r == self.rule
            ax.axvline(med, color="black" if main else "0.45", ls=styles.get(r, "-."),
                       lw=1.6 if main else 1.0, label=f"{r}: {_fmt(med)}" + (" *" if main else ""))
            if hi > lo:
                ax.axvspan(lo, hi, color="0.5", alpha=0.08 if main else 0.04, lw=0)
        ax.set_title(f"learning-rate range test: suggested lr {_fmt(self.suggestion)} ({self.rule})")
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize="small", loc="best")
        return fig


def _fmt(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else "—"


# -- the rules ------------------------------------------------------------------------------------
def _steepest(lrs: np.ndarray, s: np.ndarray) -> float:
    """The lr where ``s`` falls fastest against log10 lr, at or before its minimum."""
    end = int(np.argmin(s)) + 1
    if end < 3:
        return math.nan
    slope = np.gradient(s[:end], np.log10(lrs[:end]))
    return float(lrs[int(np.argmin(slope))])


#: A valley shallower than this fraction of the plateau's loss is noise, not a valley.
_VALLEY_MIN_DEPTH = 0.03


def _valley(lrs: np.ndarray, s: np.ndarray) -> float:
    """A tenth of the way down the valley of ``s`` in log lr (the module docstring explains
    the rule): from the last point still on the rim (within 10% of the depth below the
    highest point before the minimum) to the first point on the floor (within 10% of the
    depth above the minimum)."""
    m = int(np.argmin(s))
    # the rim's level is the plateau the sweep starts on (the median of its first tenth), not
    # the highest point: the first smoothed points are single noisy minibatches, and a spike
    # there put the rim at the sweep's start (a suggestion of start_lr)
    plateau = float(np.median(s[: max(5, s.size // 10)]))
    depth = plateau - float(s[m])
    if m == 0 or not depth > _VALLEY_MIN_DEPTH * abs(plateau):
        return math.nan  # the loss never fell (or by less than noise): no valley
    bottom, band = float(s[m]), _VALLEY_BAND * depth
    rim = max(k for k in range(m + 1) if s[k] >= bottom + depth - band)
    floor = next(k for k in range(rim, m + 1) if s[k] <= bottom + band)
    a, b = math.log(float(lrs[rim])), math.log(float(lrs[floor]))
    return float(math.exp(a + _VALLEY_POSITION * (b - a)))


def _minimum10(lrs: np.ndarray, s: np.ndarray) -> float:
    return float(lrs[int(np.argmin(s))]) / 10.0


_RULE_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "valley": _valley, "steepest": _steepest, "minimum/10": _minimum10}


def suggest(lrs: Any, smoothed: Any, rule: str = RECOMMENDED) -> float:
    """One rule's rate on one curve (NaN when the curve is too short for it).

    Parameters
    ----------
    lrs, smoothed : array-like of shape (n_points,)
        Learning rates (increasing) and the smoothed loss at each.
    rule : {"valley", "steepest", "minimum/10"}
    """
    if rule not in _RULE_FUNCTIONS:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    lr, s = np.asarray(lrs, dtype=np.float64), np.asarray(smoothed, dtype=np.float64)
    if lr.shape != s.shape or lr.ndim != 1:
        raise ValueError(f"lrs and smoothed must be 1-D of one length, got {lr.shape} and {s.shape}")
    ok = np.isfinite(s) & np.isfinite(lr) & (lr > 0)
    lr, s = lr[ok], s[ok]
    if s.size == 0:
        return math.nan
    return _RULE_FUNCTIONS[rule](lr, s)


# -- the sweep ------------------------------------------------------------------------------------
def _check_seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise TypeError(f"seeds must be a sequence of integers, got {type(seeds).__name__}")
    out = []
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"seeds[{i}] must be an integer, got {s!r}")
        if s < 0:
            raise ValueError(f"seeds[{i}] must be >= 0, got {s!r}")
        out.append(int(s))
    if not out:
        raise ValueError("seeds must hold at least one seed")
    return tuple(out)


def _sweep_optimizer(optimizer: Any) -> Any:
    """A copy of ``optimizer`` in its current state; stepping it leaves the original as it was."""
    clone = copy.copy(optimizer)  # hyperparameters shared (read-only); state replaced below
    clone.load_state_dict(optimizer.state_dict())  # copies the arrays, resets the caches
    return clone


def _rngs(model: Any) -> list[np.random.Generator]:
    layers = getattr(model, "layers", None) or []
    return [g for layer in (model, *layers)
            if isinstance(g := getattr(layer, "rng", None), np.random.Generator)]


class _Snapshot:
    """Everything a sweep changes in the model, taken before it and put back after it."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.arrays = {f"{kind}/{k}": v.copy() for kind in ("params", "grads", "buffers")
                       for k, v in (getattr(model, kind, None) or {}).items()}
        self.rng_states = [(g, copy.deepcopy(g.bit_generator.state)) for g in _rngs(model)]
        # Linear's "the next backward may write its gradient" flag (a lazy zero_grad)
        self.flags = [(layer, layer._grad_zero) for layer in getattr(model, "layers", None) or []
                      if isinstance(getattr(layer, "_grad_zero", None), bool)]

    def restore(self) -> None:
        model = self.model
        for kind in ("params", "grads", "buffers"):
            for k, v in (getattr(model, kind, None) or {}).items():
                v[...] = self.arrays[f"{kind}/{k}"]  # into the same arrays: views stay valid
        for g, state in self.rng_states:
            g.bit_generator.state = copy.deepcopy(state)
        for layer, flag in self.flags:
            layer._grad_zero = flag


def lr_find(
    model: Any,
    loss: Any,
    optimizer: Any,
    X: Any,
    y: Any,
    *,
    regularizer: Any = None,
    constraints: Sequence[Any] = (),
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    batch_size: int = 32,
    seeds: Sequence[int] = (0, 1, 2),
    smoothing: float = 0.9,
    diverge_factor: float = 4.0,
    sample_weight: Any = None,
    progress: Callable[[int], Any] | None = None,
) -> LRFindResult:
    """Run a learning-rate range test from the model's current weights.

    Parameters
    ----------
    model : Sequential
        The network, as it would start training; left exactly as it was.
    loss : Loss
    optimizer : Optimizer
        The update rule to sweep (its hyperparameters and current state); never modified: each
        sweep steps a copy. A full-batch optimizer (L-BFGS) is refused: its line search picks
        every step, so it has no learning rate to find.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        The training data, taken as :meth:`~neuronlab.train.Trainer.fit` takes them.
    regularizer : object with ``loss(model)`` and ``add_grad(model)``, optional
        Part of the objective, as in training.
    constraints : sequence of objects with ``apply(model)``
        Applied after every update, as in training (max-norm).
    start_lr, end_lr : float
        The first and last rate: step k (0-based) uses
        ``start_lr * (end_lr / start_lr) ** (k / (steps - 1))``. 0 < start_lr < end_lr.
    steps : int >= 5
        Updates per sweep (fewer when a sweep stops early).
    batch_size : int > 0
        Rows per minibatch (all rows when there are fewer).
    seeds : sequence of int >= 0
        One sweep per seed, each drawing its minibatches from ``np.random.default_rng(seed)``.
    smoothing : float in [0, 1)
        β of the bias-corrected exponential moving average of the loss (0: none). It
        averages about 1 / (1 − β) steps and lags about β / (1 − β): the default 0.9 suits a
        sweep of 100 steps (fastai's 0.98 lags half of one; see the module docstring), and
        a much shorter sweep wants less.
    diverge_factor : float > 1
        A sweep stops once its smoothed loss exceeds this multiple of its minimum so far.
    sample_weight : array-like of shape (n_samples,), optional
        Row weights (finite, >= 0): each minibatch loss is the weighted mean, as in training.
    progress : callable, optional
        Called with the number of steps finished since its previous call (``tqdm.update``);
        a sweep that stops early reports the steps it skipped, so the calls add up to
        ``steps * len(seeds)``.

    Returns
    -------
    LRFindResult
        The curves, ``suggestions`` per rule (median and spread over the seeds) and the
        recommended ``suggestion``.

    Raises
    ------
    TypeError, ValueError
        A bad argument (the message names it), or data that do not fit the model.
    """
    check_components(model, loss, optimizer, None, regularizer, tuple(constraints), ())
    if getattr(optimizer, "full_batch", False):
        raise ValueError(
            f"lr_find needs a minibatch optimizer: {type(optimizer).__name__} is full batch "
            "(L-BFGS), whose line search picks every step, so it has no learning rate to find")
    start_lr = check_number("start_lr", start_lr, low=0, low_inclusive=False)
    end_lr = check_number("end_lr", end_lr, low=0, low_inclusive=False)
    if end_lr <= start_lr:
        raise ValueError(f"end_lr must be > start_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}")
    steps = check_positive_int("steps", steps)
    if steps < 5:
        raise ValueError(f"steps must be >= 5 (a curve needs points), got {steps}")
    batch_size = check_positive_int("batch_size", batch_size)
    seed_list = _check_seeds(seeds)
    smoothing = check_number("smoothing", smoothing, low=0, high=1, high_inclusive=False)
    diverge_factor = check_number("diverge_factor", diverge_factor, low=1, low_inclusive=False)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable, got {type(progress).__name__}")
    X, y = check_data(model, loss.task, "X", "y", X, y)
    w = None if sample_weight is None else check_weights(sample_weight, y.shape[0])

    schedule = start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))
    rows = min(batch_size, X.shape[0])
    snapshot = _Snapshot(model)
    curves = []
    try:
        # overflow on the way to a NaN is what the sweep looks for, not a warning
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                limit_blas(blas_threads(model, rows)):
            for seed in seed_list:
                try:
                    curves.append(_sweep(model, loss, _sweep_optimizer(optimizer), X, y, w,
                                         regularizer, tuple(constraints), schedule, rows, seed,
                                         smoothing, diverge_factor, progress))
                finally:
                    snapshot.restore()
    finally:
        snapshot.restore()

    lrs, raw, smooth, first, stopped = (list(t) for t in zip(*curves))
    per_seed = {r: [suggest(lrs[i], smooth[i], r) for i in range(len(seed_list))] for r in RULES}
    suggestions = {r: _median_spread(v) for r, v in per_seed.items()}
    rule = RECOMMENDED
    if not math.isfinite(suggestions[rule][0]) and math.isfinite(suggestions["minimum/10"][0]):
        rule = "minimum/10"  # curves too short for the valley: the one rule that always reads
    settings = {"start_lr": start_lr, "end_lr": end_lr, "steps": steps, "batch_size": batch_size,
                "smoothing": smoothing, "diverge_factor": diverge_factor}
    return LRFindResult(seed_list, lrs, raw, smooth, first, stopped, per_seed, suggestions, rule,
                        settings)


def _median_spread(values: list[float]) -> tuple[float, float, float]:
    """Median, min and max of the finite values in log space (NaN when there are none)."""
    v = np.asarray([x for x in values if math.isfinite(x) and x > 0], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    return float(np.exp(np.median(np.log(v)))), float(v.min()), float(v.max())


def _sweep(
    model: Any, loss: Any, opt: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray | None,
    regularizer: Any, constraints: tuple[Any, ...], schedule: np.ndarray, rows: int, seed: int,
    smoothing: float, diverge_factor: float, progress: Callable[[int], Any] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, bool]:
    """One seed's sweep: ``(lrs, losses, smoothed, initial_loss, diverged)``."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    order, pos = rng.permutation(n), 0
    xbuf = np.empty((rows, *X.shape[1:]), dtype=model.dtype)
    params, grads, decay_keys = model.params, model.grads, model.weight_keys

    def objective(step: int) -> float:
        """The loss on the next minibatch (its gradient left in ``grads``); NaN if not finite."""
        nonlocal order, pos
        if pos + rows > n:
            order, pos = rng.permutation(n), 0
        idx = np.sort(order[pos : pos + rows])
        pos += rows
        try:
            value = float(loss_and_grads(model, loss, batch(X, idx, out=xbuf), y[idx],
                                         regularizer, step=step,
                                         sample_weight=None if w is None else w[idx])[0])
        except DivergenceError:
            return math.nan
        if not math.isfinite(value) or not all(np.isfinite(g).all() for g in grads.values()):
            return math.nan
        return value

    losses: list[float] = []
    smoothed: list[float] = []
    initial = objective(0)
    diverged, acc, best, done = not math.isfinite(initial), 0.0, math.inf, 0
    beta = smoothing
    for k in range(0 if diverged else len(schedule)):
        opt.step(params, grads, lr=float(schedule[k]), decay_keys=decay_keys)
        for c in constraints:
            c.apply(model)
        value = objective(k + 1)
        done = k + 1
        if progress is not None:
            progress(1)
        if math.isnan(value):
            diverged = True
            break
        losses.append(value)
        acc = beta * acc + (1.0 - beta) * value
        s = acc / (1.0 - beta ** (k + 1)) if beta > 0 else value
        smoothed.append(s)
        best = min(best, s)
        if best > 0 and s > diverge_factor * best:
            diverged = True
            break
    if progress is not None and done < len(schedule):
        progress(len(schedule) - done)
    m = len(losses)
    return (np.array(schedule[:m], dtype=np.float64), np.array(losses, dtype=np.float64),
            np.array(smoothed, dtype=np.float64), initial, diverged)
