"""The stability sentinel: where a divergence started, and the update spikes that come first.

The design brief asks that a non-finite loss or gradient be caught at the step it appears,
naming the layer. The step that raises :class:`~neuronlab.train.DivergenceError` knows only
*what* it saw (the loss, the network's output or one parameter's gradient). A NaN, though, is
born in one place and then spreads: a ``log`` of a negative number in layer 3 makes every
later activation, the loss and every gradient NaN. So when the
:class:`~neuronlab.train.Trainer` catches a DivergenceError it calls :func:`explain`, which

1. **replays the failing step's batch** (:func:`locate`) on a copy of the layers, whose
   weights are still those of the failing step (:class:`~neuronlab.train.NonFiniteGuard`
   raises before the update): forward layer by layer, checking each layer's parameters
   (non-finite ones were written by an earlier update: a run without the guard) and its
   output; then the loss, the regulariser's penalty and the loss's gradient; then backward
   layer by layer, from the loss's gradient to the first layer, checking each layer's
   parameter gradients and input gradient; then the regulariser's gradient. The first
   non-finite array names the direction, the layer (index and class, ``"layer 3 (Log)"``),
   the parameter (``"0.W"``) and the numbers that led there (the range of the failing
   layer's input, or the size of the gradient it received);
2. **reads the Monitor's last records** before the failure (:func:`trend`): the gradient norm
   and update/weight ratio of the weights at that layer (or the nearest weights feeding it)
   over the last :data:`TREND_POINTS` measurements;
3. fills the error's fields (:meth:`DivergenceError.locate
   <neuronlab.train.DivergenceError.locate>`), hence its message, ``history.info`` and the
   ``lr_too_high`` diagnosis.

The replay leaves no trace: it runs on a deep copy of the layers (their gradients, caches,
batch-norm running averages and random generators are the copy's) and a copy of the loss,
only after a divergence. Stochastic layers: a :class:`~neuronlab.layers.Dropout` reuses the
mask the failing step drew (it is still cached in the layer), so the replay sees the same
mask; any other stochastic layer draws from a copy of its generator, new noise, and a replay
that finds everything finite then says it "could not reproduce" the failure (and why). A
replay that cannot run at all (a model without ``layers``, a layer that raises) says so too:
the sentinel never replaces the DivergenceError with an error of its own.

:func:`update_spike_rule` is a diagnosis rule over a run's history: update/weight ratios that
jump far above their running median while the loss has not grown yet, the early sign of a
loss spike.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab.babysit.findings import Finding

if TYPE_CHECKING:
    from neuronlab.babysit.runview import RunView
    from neuronlab.train.errors import DivergenceError

__all__ = [
    "SPIKE_FACTOR",
    "SPIKE_HISTORY",
    "SPIKE_LOSS_GROWTH",
    "SPIKE_WINDOW",
    "TREND_POINTS",
    "Origin",
    "explain",
    "locate",
    "trend",
    "update_spike_rule",
]

#: Monitor measurements quoted before a divergence ("0.001 → 0.4 over the last 3").
TREND_POINTS = 3
#: An update/weight ratio this many times its running median is a spike. Healthy runs move
#: their ratios by a factor of 2-3 between measurements (lr decay, Adam's early steps); a step
#: ten times larger than usual rewrites the weights at ten times the usual speed.
SPIKE_FACTOR = 10.0
#: Measurements of an array needed before its running median is trusted.
SPIKE_HISTORY = 3
#: The running median is over at most this many previous measurements.
SPIKE_WINDOW = 10
#: The loss "has grown" when its mean over the few steps up to the spike is above this factor
#: times its median over the steps of the previous measurements: then the spike is no early
#: warning any more (``lr_too_high`` reads the loss itself).
SPIKE_LOSS_GROWTH = 1.5


# -- what the replay found ----------------------------------------------------------------------
@dataclass(frozen=True)
class Origin:
    """Where a replay of the failing step saw the first non-finite number.

    Attributes
    ----------
    reproduced : bool
        The replay found a non-finite array (False: everything was finite, or the replay
        could not run; ``note`` says which).
    direction : {"parameters", "forward", "loss", "backward", "regularizer"} or None
        ``"parameters"``: a layer's parameters are non-finite already (an earlier update
        wrote them: no guard, or a line search); the other four as in
        :class:`~neuronlab.train.DivergenceError`.
    layer : int or None
        Index of the layer in the Sequential (None for the loss and when not reproduced).
    layer_type : str or None
        Its class name.
    param : str or None
        Dotted name of the first non-finite parameter gradient of that layer.
    kind : str
        What was found: ``"NaN"``, ``"Inf"``, ``"-Inf"``, ``"NaN and Inf"``... ("" if nothing).
    sentence : str
        The origin in words, with the numbers (``"layer 3 (Log) produced NaN in the forward
        pass (its input had max |x| 3.4 and min -2.1)"``); "" when not reproduced.
    stats : dict
        The numbers in the sentence: ``input_min``, ``input_max``, ``input_max_abs`` (the
        failing layer's forward input), ``grad_in_max_abs`` (backward: the gradient it
        received), ``bad`` and ``size`` (non-finite elements of the offending array).
    note : str
        Why the replay did not reproduce the failure ("" when it did).
    """

    reproduced: bool
    direction: str | None = None
    layer: int | None = None
    layer_type: str | None = None
    param: str | None = None
    kind: str = ""
    sentence: str = ""
    stats: dict[str, Any] | None = None
    note: str = ""


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _finite(a: Any) -> bool:
    arr = np.asarray(a)
    return bool(np.isfinite(arr).all()) if arr.dtype.kind in "fc" else True


def _kind(a: np.ndarray) -> tuple[str, int]:
    """"NaN", "Inf", "-Inf" or a combination ("NaN and Inf"), and how many elements."""
    nan, pos, neg = np.isnan(a), np.isposinf(a), np.isneginf(a)
    parts = [w for w, m in (("NaN", nan), ("Inf", pos), ("-Inf", neg)) if m.any()]
    if len(parts) == 3:
        parts = ["NaN", "±Inf"]
    elif parts == ["Inf", "-Inf"]:
        parts = ["±Inf"]
    return " and ".join(parts), int(np.count_nonzero(nan | pos | neg))


def _range(a: np.ndarray) -> dict[str, float]:
    """min, max and max |value| over the finite elements of ``a`` (nan when none)."""
    fin = a[np.isfinite(a)] if not _finite(a) else a
    if fin.size == 0:
        return {"min": math.nan, "max": math.nan, "max_abs": math.nan}
    lo, hi = float(fin.min()), float(fin.max())
    return {"min": lo, "max": hi, "max_abs": max(abs(lo), abs(hi))}


def _input_words(x: np.ndarray) -> tuple[str, dict[str, Any]]:
    r = _range(x)
    return (f"its input had max |x| {_fmt(r['max_abs'])} and min {_fmt(r['min'])}",
            {"input_min": r["min"], "input_max": r["max"], "input_max_abs": r["max_abs"]})


def _label(i: int, layer: Any) -> str:
    return f"layer {i} ({type(layer).__name__})"


def _count(bad: int, size: int) -> str:
    return "every value" if bad == size else f"{bad} of {size} values"


class _Replayed(Exception):
    """A replay step that raised: carries the words for the note."""


def _forward(layer: Any, x: np.ndarray) -> tuple[np.ndarray, str]:
    """One layer's training forward in the replay; returns (output, note on randomness).

    A Dropout reuses the mask of the failing step, still cached in the layer (its forward
    returns ``x * mask``): the same mask, so the same output. Any other stochastic layer
    draws from its own (copied) generator: new noise, said in the note."""
    from neuronlab.layers.noise import Dropout

    if isinstance(layer, Dropout) and not layer.noise_off:
        mask = getattr(layer, "_mask", None)
        if isinstance(mask, np.ndarray) and mask.shape == x.shape:
            out: np.ndarray = x * mask
            return out, ""
        if layer.rate == 0.0:
            return layer.forward(x, training=True), ""
    y = layer.forward(x, training=True)
    noisy = getattr(layer, "stochastic", False) and not getattr(layer, "noise_off", False)
    return y, "drew new noise" if noisy else ""


def locate(model: Any, loss: Any, x: np.ndarray, y: np.ndarray, *, regularizer: Any = None,
           sample_weight: np.ndarray | None = None) -> Origin:
    """Replay one training step layer by layer and find where it first turns non-finite.

    The replay runs on a deep copy of ``model.layers`` and of ``loss``, so the model, its
    gradients, caches, buffers and random generators are left exactly as they were.

    Parameters
    ----------
    model : Sequential
        At the weights of the step to replay (a model without a ``layers`` list cannot be
        replayed: the result says so).
    loss : Loss
    x : ndarray of shape (n_batch, n_features)
        The step's batch, as the step function saw it (finite, in the model's dtype).
    y : ndarray
        Its targets.
    regularizer : object with ``loss(model)`` and ``add_grad(model)``, optional
    sample_weight : ndarray of shape (n_batch,), optional
        The rows' weights, as the step used them.

    Returns
    -------
    Origin
        The first non-finite place in the order forward (layer 0 first), loss, backward
        (last layer first), regulariser; or ``reproduced=False`` with a note.
    """
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list) or not layers:
        return Origin(False, note=f"a {type(model).__name__} has no layers to replay")
    try:
        with np.errstate(all="ignore"):
            return _replay(model, layers, loss, x, y, regularizer, sample_weight)
    except _Replayed as e:
        return Origin(False, note=str(e))
    except Exception as e:  # noqa: BLE001 - the replay must never hide the DivergenceError
        return Origin(False, note=f"the replay failed ({type(e).__name__}: {e})")


def _replay(model: Any, layers: list[Any], loss: Any, x: np.ndarray, y: np.ndarray,
            regularizer: Any, sample_weight: np.ndarray | None) -> Origin:
    replica, loss = copy.deepcopy(layers), copy.deepcopy(loss)
    inputs: list[np.ndarray] = []
    noisy: list[str] = []
    h = x
    # -- forward, first layer first -------------------------------------------------------
    for i, layer in enumerate(replica):
        inputs.append(h)
        bad_params = [k for k, v in layer.params.items() if not _finite(v)]
        if bad_params:  # written by an earlier update (no guard, or a line search)
            pname, p = f"{i}.{bad_params[0]}", layer.params[bad_params[0]]
            kind, bad = _kind(p)
            return Origin(True, "parameters", i, type(layer).__name__, pname, kind,
                          f"{_label(i, layer)} holds {kind} in its parameter {pname} "
                          f"({_count(bad, p.size)}): an update wrote them before this step "
                          "(without NonFiniteGuard, or in an L-BFGS line search)",
                          {"bad": bad, "size": int(p.size)})
        try:
            h, note = _forward(layer, h)
        except Exception as e:  # noqa: BLE001
            raise _Replayed(
                f"{_label(i, layer)} raised {type(e).__name__} in the replay: {e}") from e
        if note:
            noisy.append(f"{_label(i, layer)} {note}")
        if not _finite(h):
            kind, bad = _kind(h)
            words, stats = _input_words(inputs[i])
            stats.update(bad=bad, size=int(h.size))
            return Origin(True, "forward", i, type(layer).__name__, None, kind,
                          f"{_label(i, layer)} produced {kind} in the forward pass "
                          f"({_count(bad, h.size)}; {words})", stats)
    scores = h
    # -- the loss, from finite scores -----------------------------------------------------
    name = type(loss).__name__
    r = _range(scores)
    sstats = {"scores_min": r["min"], "scores_max": r["max"], "scores_max_abs": r["max_abs"]}
    weighted = sample_weight is None or bool(sample_weight.any())  # else no data loss at all
    if weighted:
        value = (loss.forward(scores, y) if sample_weight is None
                 else loss.forward(scores, y, sample_weight=sample_weight))
        if not math.isfinite(float(value)):
            return Origin(True, "loss", None, None, None, _kind(np.asarray(value))[0],
                          f"the loss ({name}) produced {value} from finite scores "
                          f"(max |score| {_fmt(r['max_abs'])})", sstats)
    if regularizer is not None:  # the objective's other term, still the forward direction
        origin = _penalty(model, replica, regularizer)
        if origin is not None:
            return origin
    dscores = loss.backward() if weighted else np.zeros_like(scores)
    if not _finite(dscores):
        kind, bad = _kind(dscores)
        sstats.update(bad=bad, size=int(dscores.size))
        return Origin(True, "loss", None, None, None, kind,
                      f"the gradient of the loss ({name}) has {kind} "
                      f"({_count(bad, dscores.size)}) although the scores are finite "
                      f"(max |score| {_fmt(r['max_abs'])})", sstats)
    # -- backward, last layer first -------------------------------------------------------
    for layer in replica:
        layer.zero_grad()
    d: np.ndarray | None = dscores
    for i in range(len(replica) - 1, -1, -1):
        layer, d_in = replica[i], d
        assert d_in is not None  # only layer 0 returns None
        try:
            d = layer.backward(d_in, input_grad=i > 0)
        except Exception as e:  # noqa: BLE001
            raise _Replayed(f"{_label(i, layer)} raised {type(e).__name__} in the replayed "
                            f"backward pass: {e}") from e
        bad_params = [k for k, g in layer.grads.items() if not _finite(g)]
        bad_input = d is not None and not _finite(d)
        if bad_params or bad_input:
            g_in = _range(d_in)
            words, stats = _input_words(inputs[i])
            stats["grad_in_max_abs"] = g_in["max_abs"]
            received = f"the gradient it received had max |g| {_fmt(g_in['max_abs'])}; {words}"
            if bad_params:
                param: str | None = f"{i}.{bad_params[0]}"
                arr = layer.grads[bad_params[0]]
                also = " (and in its input gradient)" if bad_input else ""
                where = f"the gradient of parameter {param!r}{also}"
            else:
                assert d is not None
                param, arr, where = None, d, "its input gradient"
            kind, bad = _kind(arr)
            stats.update(bad=bad, size=int(arr.size))
            return Origin(True, "backward", i, type(layer).__name__, param, kind,
                          f"{_label(i, layer)} produced {kind} in the backward pass, in {where} "
                          f"({received})", stats)
    # -- the regulariser's gradient -------------------------------------------------------
    if regularizer is not None:
        regularizer.add_grad(_view(model, replica))
        for i, layer in enumerate(replica):
            for k, g in layer.grads.items():
                if not _finite(g):
                    kind, _ = _kind(g)
                    w = _range(layer.params[k])
                    return Origin(True, "regularizer", i, type(layer).__name__, f"{i}.{k}", kind,
                                  f"the regulariser ({type(regularizer).__name__}) made the "
                                  f"gradient of {i}.{k} {kind} (the weights have max |w| "
                                  f"{_fmt(w['max_abs'])})", {"weight_max_abs": w["max_abs"]})
    why = ("; ".join(noisy) + ", so the replay is not the failing step"
           if noisy else "the failing values may come from outside the layers, e.g. a callback")
    return Origin(False, note="a replay of the step's batch found every layer's output, the "
                  f"loss and every gradient finite ({why})")


def _view(model: Any, replica: list[Any]) -> Any:
    """The same model class over the replica's layers (what a regulariser reads)."""
    view = copy.copy(model)
    view.layers = replica
    return view


def _penalty(model: Any, replica: list[Any], regularizer: Any) -> Origin | None:
    """The regulariser's penalty, when it is what overflows (weights too large to square)."""
    value = float(regularizer.loss(_view(model, replica)))
    if math.isfinite(value):
        return None
    sizes = {f"{i}.{k}": _range(layer.params[k])["max_abs"] for i, layer in enumerate(replica)
             for k in getattr(layer, "weight_names", ()) if k in layer.params}
    name = type(regularizer).__name__
    if not sizes:
        return Origin(True, "regularizer", None, None, None, _kind(np.asarray(value))[0],
                      f"the regulariser's penalty ({name}) is {value}", {})
    top = max(sizes, key=sizes.__getitem__)
    i = int(top.partition(".")[0])
    return Origin(True, "regularizer", i, type(replica[i]).__name__, top,
                  _kind(np.asarray(value))[0],
                  f"the regulariser's penalty ({name}) is {value}: the weights are too large "
                  f"for their dtype (max |w| {_fmt(sizes[top])}, in {top} of "
                  f"{_label(i, replica[i])})",
                  {"weight_max_abs": sizes[top]})


# -- what the Monitor saw before --------------------------------------------------------------
def _param_records(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if isinstance(r, dict) and r.get("kind") == "param" and isinstance(r.get("param"), str):
            out.setdefault(r["param"], []).append(r)
    return out


def _layer_of(recs: list[dict[str, Any]]) -> int | None:
    layer = recs[0].get("layer")
    return int(layer) if isinstance(layer, str) and layer.isdigit() else None


def _pick(params: dict[str, list[dict[str, Any]]], layer: int | None, direction: str | None,
          name: str | None) -> str | None:
    """The array whose history to quote: a weight of the failing layer, else of the nearest
    layer feeding it (the one before it; backward: the one after it, whose gradient it
    received), else the named parameter, else the weight with the largest last ratio."""
    by_layer: dict[int, list[str]] = {}
    for p, recs in params.items():
        i = _layer_of(recs)
        if i is not None:
            by_layer.setdefault(i, []).append(p)

    def best(names: list[str]) -> str:
        weights = [p for p in names if params[p][0].get("role") == "weight"]
        return sorted(weights or names)[0]

    if direction == "loss" and by_layer:
        return best(by_layer[max(by_layer)])
    if layer is not None and by_layer:
        if layer in by_layer:
            return best(by_layer[layer])
        before = [i for i in by_layer if i < layer]
        after = [i for i in by_layer if i > layer]
        order = ([min(after)] if after else []) + ([max(before)] if before else [])
        if direction != "backward":
            order.reverse()
        if order:
            return best(by_layer[order[0]])
    if name is not None and name in params:
        return name
    ratios: dict[str, float] = {}
    for p, recs in params.items():
        v = recs[-1].get("update_ratio")
        if recs[-1].get("role") == "weight" and isinstance(v, (int, float)) and math.isfinite(v):
            ratios[p] = float(v)
    return max(ratios, key=ratios.__getitem__) if ratios else None


def _series(word: str, vals: list[float]) -> str:
    shown = [_fmt(v) for v in vals]
    if len(vals) == 1:
        return f"{word} was {shown[0]}"
    if len(set(shown)) == 1:
        return f"{word} stayed at {shown[0]}"
    verb = "rose" if vals[-1] > vals[0] else ("fell" if vals[-1] < vals[0] else "went")
    return f"{word} {verb} {' → '.join(shown)}"


def trend(records: list[dict[str, Any]], *, layer: int | None = None,
          direction: str | None = None, name: str | None = None,
          before: int | None = None, points: int = TREND_POINTS) -> tuple[str, dict[str, Any]]:
    """The Monitor's last measurements of the weights nearest a divergence, in words.

    Parameters
    ----------
    records : list of dict
        ``history.monitor`` (the ``kind = "param"`` records are read).
    layer, direction : as in :class:`Origin`
        Which weights to quote: the failing layer's, else those of the nearest layer that
        feeds it (see the module docstring).
    name : str, optional
        The parameter the step named (used when no layer is known).
    before : int, optional
        Only records of steps before this one.
    points : int
        How many measurements to quote (the last ones).

    Returns
    -------
    (str, dict)
        ``"before that, the update/weight ratio of 2.W rose 0.001 → 0.4 and its gradient
        norm rose 0.5 → 12 over the last 3 measurements (steps 200-400)"`` and the numbers
        (``param``, ``steps``, ``update_ratio``, ``grad_norm``); ``("", {})`` without records.
    """
    params = _param_records([r for r in records if before is None
                             or (isinstance(r, dict) and isinstance(r.get("step"), int)
                                 and r["step"] < before)])
    p = _pick(params, layer, direction, name)
    if p is None:
        return "", {}
    recs = params[p][-points:]
    steps = [int(r["step"]) for r in recs]
    series = {key: [(int(r["step"]), float(r[key])) for r in recs if r.get(key) is not None]
              for key in ("update_ratio", "grad_norm")}
    parts = []
    for key, word in (("update_ratio", f"the update/weight ratio of {p}"),
                      ("grad_norm", "its gradient norm" if series["update_ratio"]
                       else f"the gradient norm of {p}")):
        pts = series[key]
        if not pts:
            continue
        part = _series(word, [v for _, v in pts])
        if len(pts) < len(recs):  # some measurements were not finite: say which steps these are
            at = ", ".join(str(s) for s, _ in pts)
            part += f" (step {at})" if len(pts) == 1 else f" (steps {at})"
        parts.append(part)
    if not parts:
        return "", {}
    span = (f"over the last {len(recs)} measurements (steps {steps[0]}-{steps[-1]})"
            if len(recs) > 1 else f"at the last measurement (step {steps[0]})")
    return (f"before that, {' and '.join(parts)} {span}",
            {"param": p, "steps": steps, "update_ratio": [v for _, v in series["update_ratio"]],
             "grad_norm": [v for _, v in series["grad_norm"]]})


# -- the trainer's hook ------------------------------------------------------------------------
def explain(trainer: Any, err: DivergenceError, x: np.ndarray, y: np.ndarray,
            sample_weight: np.ndarray | None = None) -> Origin:
    """Locate a divergence the trainer caught and write it into ``err`` (in place).

    Called by :meth:`Trainer.fit <neuronlab.train.Trainer.fit>` only after a
    :class:`~neuronlab.train.DivergenceError` whose step's update was not applied, with that
    step's batch. Replays it (:func:`locate`), reads the Monitor's records before it
    (:func:`trend`) and calls ``err.locate(...)``. Never raises: a failure of the sentinel
    itself becomes a note in the error's context.

    Parameters
    ----------
    trainer : Trainer
        The trainer whose ``fit`` caught the error (its model, loss, regulariser and
        Monitor records are read).
    err : DivergenceError
        The error to complete.
    x : ndarray of shape (n_batch, n_features)
        The failing step's batch, in the model's dtype.
    y : ndarray
        Its targets.
    sample_weight : ndarray of shape (n_batch,), optional
        The batch's row weights, as the step used them.

    Returns
    -------
    Origin
    """
    try:
        origin = locate(trainer.model, trainer.loss, x, y, regularizer=trainer.regularizer,
                        sample_weight=sample_weight)
        records = getattr(getattr(trainer, "history", None), "monitor", None) or []
        name = err.name if err.name not in ("loss", "scores") else None
        words, _ = trend(records, layer=origin.layer, direction=origin.direction, name=name,
                         before=err.step)
        context = "; ".join(s for s in (
            "" if origin.reproduced else f"could not reproduce where it started: {origin.note}",
            words) if s)
        err.locate(layer=origin.layer, layer_type=origin.layer_type,
                   direction=origin.direction, param=origin.param,
                   origin=origin.sentence or None, context=context or None)
        return origin
    except Exception as e:  # noqa: BLE001 - never replace the DivergenceError
        note = f"the stability sentinel failed ({type(e).__name__}: {e})"
        err.locate(context=note)
        return Origin(False, note=note)


# -- the rule ----------------------------------------------------------------------------------
def update_spike_rule(run: RunView) -> Finding | None:
    """Warn when a weight array's update/weight ratio spikes while the loss has not grown yet.

    At a monitor step, a weight array's ratio ‖Δw‖/‖w‖ above :data:`SPIKE_FACTOR` times the
    median of its previous measurements (at least :data:`SPIKE_HISTORY`, at most
    :data:`SPIKE_WINDOW` of them), while the mean loss over the steps since the previous
    measurement is at most :data:`SPIKE_LOSS_GROWTH` times its median over the earlier
    window: the update norms spike before the loss does, so this is the early warning of a
    loss spike or a divergence. The first such spike (by step) is reported, naming the array
    and the step.

    Parameters
    ----------
    run : RunView
        The run's history as the rules read it.

    Returns
    -------
    Finding or None
        ``rule="update_spike"``, severity ``"warning"``.
    """
    loss = run.loss
    found: list[tuple[int, float, str, dict[str, Any]]] = []
    for name, recs in run.params.items():
        vals = [(int(r["step"]), float(r["update_ratio"])) for r in recs
                if r.get("role") == "weight" and r.get("update_ratio") is not None]
        for k in range(SPIKE_HISTORY, len(vals)):
            prev = vals[max(0, k - SPIKE_WINDOW):k]
            median = float(np.median([v for _, v in prev]))
            step, ratio = vals[k]
            if not (median > 0 and ratio > SPIKE_FACTOR * median):
                continue
            if step >= loss.size:
                continue
            base = loss[prev[0][0]:prev[-1][0] + 1]
            recent = loss[prev[-1][0] + 1:step + 1]
            base, recent = base[np.isfinite(base)], recent[np.isfinite(recent)]
            if not base.size or recent.size != step - prev[-1][0]:
                continue  # no reference, or a non-finite loss already: lr_too_high's case
            ref, now = float(np.median(base)), float(recent.mean())
            if now > SPIKE_LOSS_GROWTH * ref:
                continue  # the loss has grown already: no early warning
            found.append((step, -ratio / median, name, {
                "param": name, "step": step, "update_ratio": ratio, "running_median": median,
                "factor": ratio / median, "loss_before": ref, "loss_at_spike": now,
                "steps": [prev[0][0], step]}))
            break  # the first spike of this array
    if not found:
        return None
    found.sort(key=lambda f: (f[0], f[1]))
    step, _, name, ev = found[0]
    others = sorted({f[2] for f in found} - {name})
    ev["arrays"] = [name, *others]
    plural = "s" if len(others) > 1 else ""
    also = f" ({len(others)} more array{plural} spiked later)" if others else ""
    return Finding(
        "update_spike", "warning",
        f"the update/weight ratio of {name} jumped to {_fmt(ev['update_ratio'])} at step {step}, "
        f"{ev['factor']:.3g}x its running median {_fmt(ev['running_median'])}, while the loss had "
        f"not grown yet ({_fmt(ev['loss_at_spike'])} vs {_fmt(ev['loss_before'])} before){also}: "
        "update norms spike before the loss does",
        ev,
        "lower the learning rate or clip gradients (clip_norm); a warm-up schedule helps when "
        "the spike comes early; watch the loss after that step",
    )
