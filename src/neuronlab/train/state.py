"""Where a training run is, as one value: what a checkpoint restores to resume it exactly.

A :class:`TrainState` holds the counters (step, epoch, position in the epoch), the flags a
callback may set (``stop_training``, ``lr_scale``), the epoch's order of the rows and the
generator that draws the next one, the epoch's running metric sums, the fit's layout and the
:class:`~neuronlab.train.History`. The :class:`~neuronlab.train.Trainer` reads and advances
it; :meth:`TrainState.state_dict` / :meth:`TrainState.load_state_dict` turn it into JSON values
and arrays and back. Loading checks every field first and raises :class:`CheckpointError`
naming the one that is wrong, so a damaged or hand-edited checkpoint never resumes a run from
an impossible place.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neuronlab.train.errors import CheckpointError
from neuronlab.train.evaluation import new_sums
from neuronlab.train.history import History

__all__ = ["TrainState", "check_rng_state"]

_FIELDS = ("step", "epoch", "batch_in_epoch", "epoch_done", "stop_training", "lr_scale", "order",
           "seed", "shuffle_rng", "sums", "fit", "history")
_FIT_FIELDS = ("n_samples", "batch_size", "epochs", "full_batch", "metrics")


class TrainState:
    """The resumable state of one :meth:`Trainer.fit` run.

    Parameters
    ----------
    n_samples, batch_size, epochs : int
        The fit's layout: training rows, rows per minibatch, epochs to run.
    seed : int
        Seeds the shuffle generator (``np.random.default_rng(seed)``).
    full_batch : bool
        One step per epoch over all rows (L-BFGS): no order is drawn.
    metrics : sequence of str
        The epoch metric names the run records (``"loss"``, ``"acc"``, ``"val_loss"``, ...).

    Attributes
    ----------
    step : int
        Optimizer steps done.
    epoch : int
        0-based index of the current (or last) epoch.
    batch_in_epoch : int
        Batches of ``epoch`` done (``n_batches`` when it is complete).
    epoch_done : bool
        ``epoch`` has been closed (validated, recorded, ``on_epoch_end`` called).
    stop_training : bool
        Set by a callback to end training after the current step.
    lr_scale : float
        Multiplier on the schedule's lr (ReduceLROnPlateau lowers it).
    order : ndarray of int64 of shape (n_samples,), or None
        The epoch's permutation of the rows (batch ``b`` holds the rows
        ``order[b * batch_size : (b + 1) * batch_size]``); None for full batch, or before the
        first epoch has drawn it.
    shuffle_rng : np.random.Generator
        Draws each epoch's order.
    sums : dict
        The epoch's running sums: ``loss`` (objective times rows), ``n`` (rows), ``correct``
        (right predictions) and ``sq`` (squared error). In a weighted fit rows count by
        their weight, so ``n`` and ``correct`` are floats (ints otherwise); the weights
        themselves are data, like X and y, and are not part of the state.
    history : History
    """

    def __init__(self, *, n_samples: int = 0, batch_size: int = 1, epochs: int = 1, seed: int = 0,
                 full_batch: bool = False, metrics: Sequence[str] = ()) -> None:
        self.n_samples, self.batch_size, self.epochs = n_samples, batch_size, epochs
        self.full_batch, self.metrics = full_batch, tuple(metrics)
        self.seed = seed
        self.shuffle_rng = np.random.default_rng(seed)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.epoch_done = self.stop_training = False
        self.lr_scale = 1.0
        self.order: np.ndarray | None = None
        self.sums: dict[str, Any] = new_sums()
        self.history = History()

    @property
    def n_batches(self) -> int:
        """Steps per epoch: ``ceil(n_samples / batch_size)``, or 1 for full batch."""
        return 1 if self.full_batch else -(-self.n_samples // self.batch_size)

    def begin_epoch(self, epoch: int) -> None:
        """Start ``epoch``: draw its order from the shuffle generator, batch 0, zero sums.

        Parameters
        ----------
        epoch : int
            0-based index of the epoch to start.
        """
        self.order = None if self.full_batch else self.shuffle_rng.permutation(self.n_samples)
        self.epoch, self.batch_in_epoch, self.epoch_done = epoch, 0, False
        self.sums = new_sums()

    # -- state dict ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON values and one array (``order``, not copied): everything :meth:`load_state_dict`
        needs to continue the run exactly."""
        return {
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "epoch_done": bool(self.epoch_done), "stop_training": bool(self.stop_training),
            "lr_scale": float(self.lr_scale), "order": self.order, "seed": self.seed,
            "shuffle_rng": self.shuffle_rng.bit_generator.state,
            "sums": _sums(self.sums),
            "fit": {"n_samples": self.n_samples, "batch_size": self.batch_size,
                    "epochs": self.epochs, "full_batch": self.full_batch,
                    "metrics": list(self.metrics)},
            "history": self.history.to_dict(),
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Continue from ``d`` (a :meth:`state_dict`, maybe read back from a file).

        ``d`` is checked whole before anything changes. Its layout must be this state's
        (``n_samples``, ``batch_size``, ``full_batch``, ``metrics``: resume needs the same
        data and validation); ``epochs`` stays this state's, so a run can be resumed for more
        epochs (not for fewer than it has started).

        Parameters
        ----------
        d : mapping
            A dictionary :meth:`state_dict` returned.

        Raises
        ------
        CheckpointError
            A field is missing, of the wrong type, out of range or inconsistent with the
            others; the message names it.
        """
        _check(d, self.shuffle_rng)
        fit = d["fit"]
        for key in ("n_samples", "batch_size", "full_batch"):
            if fit[key] != getattr(self, key):
                raise CheckpointError(
                    f"the run was written with {key}={fit[key]}, this run has "
                    f"{key}={getattr(self, key)}; resume needs the same data layout")
        if tuple(fit["metrics"]) != self.metrics:
            raise CheckpointError(
                f"the run recorded the metrics {fit['metrics']}, this run records "
                f"{list(self.metrics)}; resume needs the same loss and validation data")
        if not d["epoch_done"] and d["epoch"] >= self.epochs:
            raise CheckpointError(
                f"the run stopped inside epoch {d['epoch']} (0-based); this run has only "
                f"epochs={self.epochs}")
        self.step, self.epoch = int(d["step"]), int(d["epoch"])
        self.batch_in_epoch, self.seed = int(d["batch_in_epoch"]), int(d["seed"])
        self.epoch_done, self.stop_training = d["epoch_done"], d["stop_training"]
        self.lr_scale = float(d["lr_scale"])
        self.order = None if d["order"] is None else np.array(d["order"], dtype=np.int64)
        self.shuffle_rng.bit_generator.state = dict(d["shuffle_rng"])
        self.sums = _sums(d["sums"])
        self.history = History.from_dict(d["history"])


def _sums(sums: Mapping[str, Any]) -> dict[str, Any]:
    """The running sums as plain JSON numbers. ``n`` and ``correct`` keep their kind: ints
    (rows) in an unweighted fit, floats (weights) in a weighted one, so resume is exact."""
    def count(v: Any) -> int | float:
        return int(v) if isinstance(v, numbers.Integral) else float(v)

    return {"loss": float(sums["loss"]), "n": count(sums["n"]),
            "correct": count(sums["correct"]), "sq": float(sums["sq"])}


# -- checks --------------------------------------------------------------------------------------
def _bad(field: str, what: str, value: Any, kind: str = "training state field") -> CheckpointError:
    got = repr(value)
    got = got if len(got) <= 80 else got[:77] + "..."
    return CheckpointError(f"{kind} {field!r} must be {what}, got {got}")


def _int(d: Mapping[str, Any], key: str, low: int, field: str = "") -> int:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
        raise _bad(field or key, f"an integer >= {low}", v)
    return int(v)


def _bool(d: Mapping[str, Any], key: str) -> bool:
    v = d[key]
    if not isinstance(v, bool):
        raise _bad(key, "true or false", v)
    return v


def _keys(d: Any, keys: Sequence[str], prefix: str = "") -> None:
    if not isinstance(d, Mapping):
        raise _bad(prefix.rstrip(".") or "state", "a dict", type(d).__name__)
    missing, extra = [k for k in keys if k not in d], [k for k in d if k not in keys]
    if missing:
        raise CheckpointError(f"training state has no field {prefix + missing[0]!r}")
    if extra:
        raise CheckpointError(f"training state has an unexpected field {prefix + str(extra[0])!r}")


def check_rng_state(g: np.random.Generator, state: Any, field: str) -> None:
    """Refuse a bit-generator ``state`` that ``g`` cannot take: not a dict, another bit
    generator's, or malformed (a CheckpointError naming ``field``)."""
    own, kind = g.bit_generator.state, "random state"
    if not isinstance(state, Mapping):
        raise _bad(field, f"a {own['bit_generator']} state (a dict)", state, kind)
    if state.get("bit_generator") != own["bit_generator"]:
        raise _bad(field, f"a {own['bit_generator']} state", state.get("bit_generator"), kind)

    def same_shape(a: Any, b: Any) -> bool:  # the same keys, and ints where ``g`` has ints
        if isinstance(a, Mapping):
            return isinstance(b, Mapping) and a.keys() == b.keys() and all(
                same_shape(a[k], b[k]) for k in a)
        if isinstance(a, int):
            return isinstance(b, int) and not isinstance(b, bool)
        return type(a) is type(b)

    trial = type(g.bit_generator)()
    try:
        ok = same_shape(own, state)
        if ok:
            trial.state = dict(state)
    except (ValueError, TypeError, KeyError, OverflowError):
        ok = False
    if not ok:
        raise _bad(field, f"a well-formed {own['bit_generator']} state", state, kind)


def _check(d: Any, rng: np.random.Generator) -> None:
    """Every field of a state dict, alone and against the others."""
    _keys(d, _FIELDS)
    fit = d["fit"]
    _keys(fit, _FIT_FIELDS, "fit.")
    n_samples = _int(fit, "n_samples", 0, "fit.n_samples")
    batch_size = _int(fit, "batch_size", 1, "fit.batch_size")
    epochs = _int(fit, "epochs", 1, "fit.epochs")
    full_batch = _bool(fit, "full_batch")
    if not isinstance(fit["metrics"], list) or not all(isinstance(m, str) for m in fit["metrics"]):
        raise _bad("fit.metrics", "a list of metric names", fit["metrics"])
    step, epoch, b = _int(d, "step", 0), _int(d, "epoch", 0), _int(d, "batch_in_epoch", 0)
    done, _ = _bool(d, "epoch_done"), _bool(d, "stop_training")
    n_batches = 1 if full_batch else -(-n_samples // batch_size)
    if epoch >= epochs:
        raise _bad("epoch", f"< epochs = {epochs}", epoch)
    if b > n_batches:
        raise _bad("batch_in_epoch", f"<= the {n_batches} batches of an epoch", b)
    if step != epoch * n_batches + b:
        raise _bad("step", f"epoch * n_batches + batch_in_epoch = {epoch * n_batches + b}", step)
    lr_scale = d["lr_scale"]
    # typeshed's numbers.Real declares no __gt__ (its subclasses all have one)
    if isinstance(lr_scale, bool) or not isinstance(lr_scale, numbers.Real) or not (
            math.isfinite(lr_scale) and lr_scale > 0):  # type: ignore[operator]
        raise _bad("lr_scale", "a finite number > 0", lr_scale)
    _int(d, "seed", 0)
    _check_order(d["order"], n_samples, full_batch, undrawn=b == 0 and not done)
    check_rng_state(rng, d["shuffle_rng"], "shuffle_rng")
    _check_sums(d["sums"])
    _check_history(d["history"], step, epoch + done, ["epoch", "step", "lr", *fit["metrics"]])


def _check_order(order: Any, n_samples: int, full_batch: bool, *, undrawn: bool) -> None:
    """A permutation of the rows; None for full batch (no order) or before the first batch
    of an epoch whose order was not drawn yet."""
    if full_batch or order is None:
        if order is not None or not (full_batch or undrawn):
            raise _bad("order", "None (full batch)" if full_batch else
                        f"a permutation of the {n_samples} rows", getattr(order, "shape", order))
        return
    if not (isinstance(order, np.ndarray) and order.dtype.kind in "iu"
            and order.shape == (n_samples,)):
        raise _bad("order", f"an integer array of shape ({n_samples},)",
                    getattr(order, "shape", type(order).__name__))
    if not np.array_equal(np.sort(order), np.arange(n_samples)):
        raise CheckpointError(
            f"training state field 'order' must be a permutation of range({n_samples}): it "
            "repeats, skips or exceeds rows")


def _check_sums(sums: Any) -> None:
    _keys(sums, ("loss", "n", "correct", "sq"), "sums.")
    for key in ("n", "correct"):  # rows (ints), or total weights (floats) in a weighted fit
        v = sums[key]
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):
            _int(sums, key, 0, f"sums.{key}")
        elif isinstance(v, bool) or not isinstance(v, numbers.Real) or not (
                math.isfinite(v) and float(v) >= 0):
            raise _bad(f"sums.{key}", "an integer or a finite number >= 0", v)
    for key in ("loss", "sq"):
        if isinstance(sums[key], bool) or not isinstance(sums[key], numbers.Real):
            raise _bad(f"sums.{key}", "a number", sums[key])


def _check_history(h: Any, steps: int, epochs: int, keys: list[str]) -> None:
    try:
        history = History.from_dict(h)
    except (ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"training state field 'history' is malformed: {e}") from None
    if len(history.loss) != steps or len(history.lr) != steps:
        raise CheckpointError(
            f"training state field 'history' must hold one loss and lr per step ({steps}), "
            f"has {len(history.loss)} and {len(history.lr)}")
    if len(history.epochs) != epochs:
        raise _bad("history", f"{epochs} epoch records", f"{len(history.epochs)} records")
    for record in history.epochs:
        if set(record) != set(keys):
            raise _bad("history", f"epoch records with the keys {keys}", list(record))
