"""The diagnosis rules, by name and in report order, and the learning-rate-too-high rule.

Each rule lives in the module of the quantity it reads (its measure, thresholds and plot
beside it): :mod:`~.update_ratio`, :mod:`~.initial_loss`, :mod:`~.fit`, :mod:`~.dead_units`,
:mod:`~.saturation`, :mod:`~.gradient_flow`, :mod:`~.activations`. A rule reads a
:class:`~neuronlab.babysit.runview.RunView` and returns a :class:`Finding` or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from neuronlab.babysit.activations import activation_scale_rule
from neuronlab.babysit.dead_units import dead_relu_rule
from neuronlab.babysit.findings import Finding
from neuronlab.babysit.fit import overfitting_rule, underfitting_rule
from neuronlab.babysit.gradient_flow import gradient_flow_rule
from neuronlab.babysit.gradient_noise import noise_scale_rule
from neuronlab.babysit.initial_loss import initial_loss_rule
from neuronlab.babysit.regularization import regularization_rule
from neuronlab.babysit.runview import RunView, fmt, window
from neuronlab.babysit.saturation import saturation_rule
from neuronlab.babysit.sentinel import update_spike_rule
from neuronlab.babysit.sharpness import edge_of_stability_rule
from neuronlab.babysit.update_ratio import HIGH_RATIO, LOSS_GROWTH, TARGET_RATIO, lr_too_low_rule

__all__ = ["RULES", "Finding"]


def _lr_too_high(run: RunView) -> Finding | None:
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
        # where it started (the stability sentinel's replay, babysit/sentinel.py), if located
        origin, context = run.info.get("diverged_origin"), run.info.get("diverged_context")
        layer, kind = run.info.get("diverged_layer"), run.info.get("diverged_layer_type")
        evidence.update({k: run.info[k] for k in ("diverged_layer", "diverged_layer_type",
                                                  "diverged_direction", "diverged_param")
                         if run.info.get(k) is not None})
        msg = f"training diverged at step {i}: " + (
            f"{origin}, so {what} became NaN or Inf" if origin else f"{what} became NaN or Inf")
        if finite.size:
            evidence.update(loss_start=float(finite[0]), loss_last=float(finite[-1]))
            msg += f" (the loss went from {fmt(finite[0])} to {fmt(finite[-1])} before)"
        if context:
            msg += f"; {context}"
        first = f"look at layer {layer} ({kind}) first; " if layer is not None else ""
        return Finding("lr_too_high", "error", msg, evidence,
                       f"{first}lower the learning rate (try 10x smaller), clip gradients "
                       "(clip_norm), check the data for extreme values")
    if bad.size:
        i = int(bad[0])
        last_good = float(loss[i - 1]) if i > 0 else None
        return Finding("lr_too_high", "error",
                       f"the loss became non-finite at step {i}"
                       + (f" (last finite value {fmt(last_good)})" if last_good is not None else ""),
                       {"first_non_finite_step": i, "last_finite_loss": last_good,
                        "steps": [0, len(loss) - 1]},
                       "lower the learning rate (try 10x smaller), clip gradients, check the "
                       "data for extreme values; NonFiniteGuard stops a run at the first bad step")
    evidence = {}
    reasons = []
    if len(loss) >= 20:
        w = window(len(loss))
        start, end = float(loss[:w].mean()), float(loss[-w:].mean())
        if end > LOSS_GROWTH * start:
            reasons.append(f"the loss grew from {fmt(start)} to {fmt(end)}")
            evidence.update({"loss_start": start, "loss_end": end, "steps": [0, len(loss) - 1]})
    high = {k: v for k, v in ratios.items() if v[0] > HIGH_RATIO}
    # most weight arrays must move too fast: one small array (a last layer initialised tiny)
    # can have large ratios under a good learning rate
    if high and 2 * len(high) > len(ratios):
        worst = max(high, key=lambda k: high[k][0])
        reasons.append(f"update/weight ratios are above {HIGH_RATIO:g} in {len(high)} of "
                       f"{len(ratios)} weight arrays (median over steps, up to "
                       f"{fmt(high[worst][0])} in {worst}) against the healthy ≈ {TARGET_RATIO:g}")
        evidence["median_update_ratio"] = {k: v[0] for k, v in high.items()}
        evidence["ratio_steps"] = high[worst][1]
    if not reasons:
        return None
    return Finding("lr_too_high", "warning", "; ".join(reasons),
                   evidence, "lower the learning rate (by 3-10x) until update/weight ratios are "
                   "near 1e-3")


RULES: dict[str, Callable[..., Finding | None]] = {
    "lr_too_high": _lr_too_high,
    "update_spike": update_spike_rule,
    "edge_of_stability": lambda run: edge_of_stability_rule(run.by_kind["sharpness"]),
    "lr_too_low": lr_too_low_rule,
    "initial_loss": initial_loss_rule,
    "overfitting": overfitting_rule,
    "regularization_too_strong": regularization_rule,
    "underfitting": underfitting_rule,
    "dead_relu": dead_relu_rule,
    "saturation": saturation_rule,
    "vanishing_gradients": lambda run: gradient_flow_rule(run, True),
    "exploding_gradients": lambda run: gradient_flow_rule(run, False),
    "activations_collapsing": lambda run: activation_scale_rule(run, True),
    "activations_exploding": lambda run: activation_scale_rule(run, False),
    "noise_scale": lambda run: noise_scale_rule(run.by_kind["noise"], run.info.get("batch_size"))
    if run.info.get("batch_size") else None,
}
"""The rules by name, in report order."""
