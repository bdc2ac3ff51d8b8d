"""The diagnosis rules, by name and in report order.

Each rule lives in the module of the quantity it reads (its measure, thresholds and plot
beside it): :mod:`~.update_ratio`, :mod:`~.sentinel`, :mod:`~.sharpness`,
:mod:`~.initial_loss`, :mod:`~.fit`, :mod:`~.regularization`, :mod:`~.dead_units`,
:mod:`~.saturation`, :mod:`~.gradient_flow`, :mod:`~.activations`,
:mod:`~.gradient_noise`. A rule reads a
:class:`~neuronlab.babysit.runview.RunView` and returns a :class:`Finding` or None.
"""

from __future__ import annotations

from collections.abc import Callable

from neuronlab.babysit.activations import activation_scale_rule
from neuronlab.babysit.dead_units import dead_relu_rule
from neuronlab.babysit.findings import Finding
from neuronlab.babysit.fit import overfitting_rule, underfitting_rule
from neuronlab.babysit.gradient_flow import gradient_flow_rule
from neuronlab.babysit.gradient_noise import noise_scale_rule
from neuronlab.babysit.initial_loss import initial_loss_rule
from neuronlab.babysit.regularization import regularization_rule
from neuronlab.babysit.saturation import saturation_rule
from neuronlab.babysit.sentinel import update_spike_rule
from neuronlab.babysit.sharpness import edge_of_stability_rule
from neuronlab.babysit.update_ratio import lr_too_high_rule, lr_too_low_rule

__all__ = ["AFTER", "RULES", "Finding"]

_LR_RULES = frozenset({"lr_too_high", "update_spike", "edge_of_stability", "lr_too_low"})


RULES: dict[str, Callable[..., Finding | None]] = {
    "lr_too_high": lr_too_high_rule,
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
    # a batch-size note is beside the point while the learning rate is wrong
    "noise_scale": lambda run, fired: None if fired & _LR_RULES
    or not isinstance(run.info.get("batch_size"), int) or isinstance(run.info["batch_size"], bool)
    else noise_scale_rule(run.by_kind["noise"], run.info["batch_size"]),
}
"""The rules by name, in report order."""

AFTER = frozenset({"underfitting", "noise_scale"})
"""Rules called as ``rule(run, fired)``: they stay quiet when an earlier rule (in ``fired``)
explains what they would report."""
