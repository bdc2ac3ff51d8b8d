"""The rules behind :func:`neuronlab.babysit.diagnose`: thresholds, the history reader, one function
per rule. Each rule reads a :class:`_Run` and returns a :class:`Finding` or None; the
thresholds are module constants so messages and docs can cite them.

Gradient flow is read from the bias gradients of the weight layers: ``db = Σ_n δ_n`` is the
backpropagated signal δ at that layer summed over the batch, free of the scale of the
layer's input (``dW = xᵀδ`` is not: in a ReLU net the growth of x forward and of δ backward
cancel in ``‖dW‖/‖W‖``). Its root mean square per unit is compared between the first and the
last weight layer.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from neuronlab.babysit.findings import Finding

__all__ = ["RULES", "Finding"]

TARGET_RATIO = 1e-3  # the notes: updates about a thousandth of the weights
HIGH_RATIO = 3e-2  # 30x the target: steps that rewrite the weights quickly
LOW_RATIO = 1e-5  # 100x below the target: the weights hardly move
LOSS_GROWTH = 1.5  # loss at the end this many times the start: it is growing
LOW_DROP = 0.05  # relative loss decrease below which the loss "barely moved"
INITIAL_FACTOR = 2.0  # initial loss off its expected value by more than this factor
OVERFIT_GAP = 0.10  # train - val accuracy at the end
OVERFIT_GROWTH = 0.05  # ... having grown by at least this since its smallest value
UNDERFIT_ACC = 0.90  # training accuracy below this at the end
UNDERFIT_GAP = 0.05  # ... with validation within this of it
PLATEAU = 0.02  # accuracy gained over the last half of the epochs: flat
DEAD_FRACTION = 0.30  # the notes: "as much as 40% of your network can be dead"
SATURATED_FRACTION = 0.50
DEPTH_FACTOR = 100.0  # first vs last layer: two orders of magnitude
ACTIVATION_FACTOR = 100.0
ACTIVATION_TYPES = frozenset({"ReLU", "LeakyReLU", "PReLU", "ELU", "Sigmoid", "Tanh", "Maxout"})


# -- reading a history -------------------------------------------------------------------------
class _Run:
    """The parts of a History the rules read, as arrays and per-step groups."""

    def __init__(self, history: Any) -> None:
        if isinstance(history, dict):
            get = history.get
        elif hasattr(history, "loss") and hasattr(history, "epochs"):
            def get(key: str, default: Any = None) -> Any:
                return getattr(history, key, default)
        else:
            raise TypeError(f"history must be a History or its to_dict(), got {type(history).__name__}")
        self.loss = np.array([math.nan if v is None else float(v) for v in get("loss", [])], dtype=float)
        self.epochs: list[dict[str, Any]] = list(get("epochs", []) or [])
        self.info: dict[str, Any] = dict(get("info", {}) or {})
        records = list(get("monitor", []) or [])
        self.params: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.layers: dict[int, list[dict[str, Any]]] = defaultdict(list)  # step -> records
        for r in records:
            if r.get("kind") == "param":
                self.params[r["param"]].append(r)
            elif r.get("kind") == "layer":
                self.layers[int(r["step"])].append(r)
        self.steps = sorted(self.layers)

    def weight_ratios(self) -> dict[str, tuple[float, list[int]]]:
        """{param: (median update ratio, [first step, last step])} over the weight arrays."""
        out = {}
        for name, recs in self.params.items():
            vals = [(r["step"], r["update_ratio"]) for r in recs
                    if r.get("role") == "weight" and r.get("update_ratio") is not None]
            if vals:
                out[name] = (float(np.median([v for _, v in vals])), [vals[0][0], vals[-1][0]])
        return out

    def metric(self, key: str) -> list[float] | None:
        vals: list[Any] = [e.get(key) for e in self.epochs]
        if not vals or any(v is None for v in vals):
            return None
        return [float(v) for v in vals]


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _window(n: int) -> int:
    return max(1, min(50, n // 10))


# -- the rules --------------------------------------------------------------------------------
def _lr_too_high(run: _Run) -> Finding | None:
    loss = run.loss
    bad = np.flatnonzero(~np.isfinite(loss))
    ratios = run.weight_ratios()
    if "diverged_step" in run.info:
        i = int(run.info["diverged_step"])
        what = run.info.get("diverged_at")
        what = "the network's output" if what == "scores" else (
            "the loss" if what == "loss" else f"the gradient of {what}")
        finite = loss[np.isfinite(loss)]
        evidence: dict[str, Any] = {"diverged_step": i, "diverged_at": run.info.get("diverged_at"),
                                    "steps": [0, i]}
        msg = f"training diverged at step {i}: {what} became NaN or Inf"
        if finite.size:
            evidence.update(loss_start=float(finite[0]), loss_last=float(finite[-1]))
            msg += f" (the loss went from {_fmt(finite[0])} to {_fmt(finite[-1])} before)"
        return Finding("lr_too_high", "error", msg, evidence,
                       "lower the learning rate (try 10x smaller), clip gradients (clip_norm), "
                       "check the data for extreme values")
    if bad.size:
        i = int(bad[0])
        last_good = float(loss[i - 1]) if i > 0 else None
        return Finding("lr_too_high", "error",
                       f"the loss became non-finite at step {i}"
                       + (f" (last finite value {_fmt(last_good)})" if last_good is not None else ""),
                       {"first_non_finite_step": i, "last_finite_loss": last_good,
                        "steps": [0, len(loss) - 1]},
                       "lower the learning rate (try 10x smaller), clip gradients, check the "
                       "data for extreme values; NonFiniteGuard stops a run at the first bad step")
    evidence = {}
    reasons = []
    if len(loss) >= 20:
        w = _window(len(loss))
        start, end = float(loss[:w].mean()), float(loss[-w:].mean())
        if end > LOSS_GROWTH * start:
            reasons.append(f"the loss grew from {_fmt(start)} to {_fmt(end)}")
            evidence.update({"loss_start": start, "loss_end": end, "steps": [0, len(loss) - 1]})
    high = {k: v for k, v in ratios.items() if v[0] > HIGH_RATIO}
    # most weight arrays must move too fast: one small array (a last layer initialised tiny)
    # can have large ratios under a good learning rate
    if high and 2 * len(high) > len(ratios):
        worst = max(high, key=lambda k: high[k][0])
        reasons.append(f"update/weight ratios are above {HIGH_RATIO:g} in {len(high)} of "
                       f"{len(ratios)} weight arrays (median over steps, up to "
                       f"{_fmt(high[worst][0])} in {worst}) against the healthy ≈ {TARGET_RATIO:g}")
        evidence["median_update_ratio"] = {k: v[0] for k, v in high.items()}
        evidence["ratio_steps"] = high[worst][1]
    if not reasons:
        return None
    return Finding("lr_too_high", "warning", "; ".join(reasons),
                   evidence, "lower the learning rate (by 3-10x) until update/weight ratios are "
                   "near 1e-3")


def _lr_too_low(run: _Run) -> Finding | None:
    ratios = run.weight_ratios()
    if not ratios:
        return None
    top = max(v[0] for v in ratios.values())
    if top >= LOW_RATIO:
        return None
    evidence: dict[str, Any] = {"median_update_ratio": {k: v[0] for k, v in ratios.items()},
                                "ratio_steps": [min(v[1][0] for v in ratios.values()),
                                                max(v[1][1] for v in ratios.values())]}
    msg = f"update/weight ratios are at most {_fmt(top)} (median per weight array), " \
          f"far below the healthy ≈ {TARGET_RATIO:g}: the weights hardly change"
    finite = run.loss[np.isfinite(run.loss)]
    if finite.size >= 2:
        w = _window(finite.size)
        start, end = float(finite[:w].mean()), float(finite[-w:].mean())
        drop = (start - end) / abs(start) if start else 0.0
        if drop > LOW_DROP:  # the loss still falls well: small updates are enough here
            return None
        evidence.update({"loss_start": start, "loss_end": end, "relative_drop": drop,
                         "steps": [0, len(run.loss) - 1]})
        msg += f"; the loss went from {_fmt(start)} to {_fmt(end)} ({-drop:+.1%})"
    return Finding("lr_too_low", "warning", msg, evidence,
                   "raise the learning rate (try 10x larger) until ratios are near 1e-3")


def _initial_loss(run: _Run) -> Finding | None:
    expected = run.info.get("expected_initial_loss")
    observed = run.info.get("initial_loss")
    if observed is None and run.loss.size and math.isfinite(run.loss[0]):
        observed = float(run.loss[0])
    if expected is None or observed is None or expected <= 0 or observed <= 0:
        return None
    factor = observed / expected
    if 1 / INITIAL_FACTOR <= factor <= INITIAL_FACTOR:
        return None
    return Finding("initial_loss", "warning",
                   f"the initial loss {_fmt(observed)} is {factor:.2g}x its expected value "
                   f"{_fmt(expected)} ({run.info.get('loss', 'loss')} with "
                   f"{run.info.get('n_outputs')} outputs and small weights)",
                   {"initial_loss": observed, "expected_initial_loss": expected, "factor": factor,
                    "steps": [0, 0]},
                   "check the initialisation scale (weights too large make confident wrong "
                   "scores), the preprocessing and the loss; run nl.sanity_check")


def _accuracy_pair(run: _Run) -> tuple[list[float], list[float]] | None:
    acc, val = run.metric("acc"), run.metric("val_acc")
    return None if acc is None or val is None else (acc, val)


def _overfitting(run: _Run) -> Finding | None:
    pair = _accuracy_pair(run)
    if pair is None or len(pair[0]) < 2:
        return None
    acc, val = pair
    gaps = [a - v for a, v in zip(acc, val)]
    smallest = int(np.argmin(gaps))
    if gaps[-1] < OVERFIT_GAP or gaps[-1] - gaps[smallest] < OVERFIT_GROWTH:
        return None
    last = len(gaps) - 1
    return Finding("overfitting", "warning",
                   f"training accuracy {acc[-1]:.1%} vs validation {val[-1]:.1%}: the gap grew from "
                   f"{gaps[smallest]:.1%} (epoch {smallest}) to {gaps[-1]:.1%} (epoch {last})",
                   {"acc": acc[-1], "val_acc": val[-1], "gap": gaps[-1],
                    "smallest_gap": gaps[smallest], "epochs": [smallest, last]},
                   "regularise more (larger L2 strength, dropout), get more training data, or "
                   "stop earlier (EarlyStopping on val_loss)")


def _underfitting(run: _Run, fired: set[str]) -> Finding | None:
    if fired & {"lr_too_high", "lr_too_low"}:  # the learning rate explains it
        return None
    pair = _accuracy_pair(run)
    if pair is None or len(pair[0]) < 4:
        return None
    acc, val = pair
    half = len(acc) // 2
    gained = acc[-1] - max(acc[:half])
    if acc[-1] >= UNDERFIT_ACC or abs(acc[-1] - val[-1]) > UNDERFIT_GAP or gained > PLATEAU:
        return None
    return Finding("underfitting", "warning",
                   f"training accuracy is only {acc[-1]:.1%} and validation {val[-1]:.1%}, and "
                   f"training accuracy gained {gained:+.1%} over the second half of the run",
                   {"acc": acc[-1], "val_acc": val[-1], "gain_second_half": gained,
                    "epochs": [half, len(acc) - 1]},
                   "use a bigger model (wider or deeper layers), regularise less, or train longer")


def _last_layer_values(run: _Run, key: str, types: set[str] | None = None
                       ) -> tuple[int, list[dict[str, Any]]] | None:
    for step in reversed(run.steps):
        recs = [r for r in run.layers[step] if r.get(key) is not None
                and (types is None or r.get("type") in types)]
        if recs:
            return step, recs
    return None


def _dead_relu(run: _Run) -> Finding | None:
    found = _last_layer_values(run, "dead_fraction")
    if found is None:
        return None
    step, recs = found
    bad = {r["layer"]: r["dead_fraction"] for r in recs if r["dead_fraction"] >= DEAD_FRACTION}
    if not bad:
        return None
    since = min((s for s in run.steps for r in run.layers[s]
                 if r["layer"] in bad and (r.get("dead_fraction") or 0) >= DEAD_FRACTION), default=step)
    worst = max(bad, key=bad.__getitem__)
    return Finding("dead_relu", "warning",
                   f"{bad[worst]:.0%} of the ReLU units of layer {worst} are dead (output 0 on every "
                   f"example of the sample) at step {step}, since step {since}",
                   {"dead_fraction": bad, "steps": [since, step]},
                   "lower the learning rate, use LeakyReLU/PReLU or maxout, check the init "
                   "(He) and that biases are not negative")


def _saturation(run: _Run) -> Finding | None:
    found = _last_layer_values(run, "saturation")
    if found is None:
        return None
    step, recs = found
    bad = {r["layer"]: r["saturation"] for r in recs if r["saturation"] >= SATURATED_FRACTION}
    if not bad:
        return None
    types = {r["layer"]: r["type"] for r in recs}
    worst = max(bad, key=bad.__getitem__)
    return Finding("saturation", "warning",
                   f"{bad[worst]:.0%} of the outputs of layer {worst} ({types[worst]}) sit near its "
                   f"asymptotes at step {step}, where its gradient is nearly 0",
                   {"saturation": bad, "types": {k: types[k] for k in bad}, "steps": [step, step]},
                   "use a smaller initialisation (glorot/lecun), add batch norm before the "
                   "activation, or switch to ReLU")


def _signal_per_layer(run: _Run) -> tuple[list[int], dict[str, list[float]]]:
    """RMS bias gradient of each weight layer (first to last), per sampled step."""
    bias = {name: recs for name, recs in run.params.items()
            if recs and recs[0].get("role") == "bias" and recs[0].get("type") in ("Linear", "Maxout")}
    names = sorted(bias, key=lambda n: int(bias[n][0]["layer"]))
    steps: dict[int, dict[str, float]] = defaultdict(dict)
    for n in names:
        for r in bias[n]:
            if r.get("grad_norm") is not None:
                steps[int(r["step"])][n] = r["grad_norm"] / math.sqrt(r["size"])
    full = sorted(s for s, v in steps.items() if len(v) == len(names))
    return full, {n: [steps[s][n] for s in full] for n in names}


def _gradient_flow(run: _Run, vanishing: bool) -> Finding | None:
    steps, per = _signal_per_layer(run)
    if len(per) < 3 or not steps:
        return None
    names = list(per)
    first, last = np.array(per[names[0]]), np.array(per[names[-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.median(first / last))  # ∞ / NaN when the last layer gets nothing
    if not math.isfinite(ratio):
        return None
    rule = "vanishing_gradients" if vanishing else "exploding_gradients"
    if (vanishing and ratio >= 1 / DEPTH_FACTOR) or (not vanishing and ratio <= DEPTH_FACTOR):
        return None
    medians = {n: float(np.median(v)) for n, v in per.items()}
    word = "smaller" if vanishing else "larger"
    factor = (1 / ratio if ratio > 0 else math.inf) if vanishing else ratio
    action = ("use ReLU-family activations instead of sigmoid/tanh, He/Glorot initialisation, "
              "batch norm" if vanishing else
              "use a smaller initialisation (He for ReLU, Glorot for tanh), batch norm, "
              "gradient clipping (clip_norm)")
    size = "no gradient at all" if math.isinf(factor) else f"a gradient {factor:.3g}x {word}"
    return Finding(rule, "warning",
                   f"the first weight layer ({names[0]}) receives {size} compared with the last "
                   f"({names[-1]}) (median RMS bias gradient over steps {steps[0]}-{steps[-1]})",
                   {"rms_bias_gradient": medians, "first_over_last": ratio,
                    "steps": [steps[0], steps[-1]]}, action)


def _activation_scale(run: _Run, collapsing: bool) -> Finding | None:
    rule = "activations_collapsing" if collapsing else "activations_exploding"
    for step in run.steps[:1] + run.steps[-1:]:  # at initialisation, then at the end
        hidden = [r for r in run.layers[step] if r.get("type") in ACTIVATION_TYPES
                  and r.get("act_std") is not None]
        if len(hidden) < 2:
            continue
        s0, s1 = hidden[0]["act_std"], hidden[-1]["act_std"]
        if s0 <= 0:
            continue
        ratio = s1 / s0
        if (collapsing and ratio < 1 / ACTIVATION_FACTOR) or (not collapsing and ratio > ACTIVATION_FACTOR):
            stds = {r["layer"]: r["act_std"] for r in hidden}
            word = "shrinks" if collapsing else "grows"
            return Finding(rule, "warning",
                           f"at step {step} the standard deviation of the hidden activations "
                           f"{word} from {_fmt(s0)} (layer {hidden[0]['layer']}) to {_fmt(s1)} "
                           f"(layer {hidden[-1]['layer']})",
                           {"act_std": stds, "last_over_first": ratio, "steps": [step, step]},
                           "scale the initialisation to the layer width (He for ReLU: var 2/n; "
                           "Glorot/LeCun for tanh: var 1/n) or add batch norm")
    return None


RULES: dict[str, Callable[..., Finding | None]] = {
    "lr_too_high": _lr_too_high,
    "lr_too_low": _lr_too_low,
    "initial_loss": _initial_loss,
    "overfitting": _overfitting,
    "underfitting": _underfitting,
    "dead_relu": _dead_relu,
    "saturation": _saturation,
    "vanishing_gradients": lambda run: _gradient_flow(run, True),
    "exploding_gradients": lambda run: _gradient_flow(run, False),
    "activations_collapsing": lambda run: _activation_scale(run, True),
    "activations_exploding": lambda run: _activation_scale(run, False),
}
"""The rules by name, in report order."""
