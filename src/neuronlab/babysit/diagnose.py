"""Plain-language diagnosis of a training run: the notes' rules of thumb, applied to a History.

:func:`diagnose` reads what a run recorded (per-step loss and lr, per-epoch metrics, the
:class:`~neuronlab.babysit.monitor.Monitor` records and ``history.info``) and returns
:class:`Finding` objects, each with the numbers it rests on and what to try. The rules, in
the order they are reported (thresholds are module constants, so they are easy to cite):

=========================  ==================================================================
``lr_too_high``            the loss becomes NaN/Inf, or grows, or update/weight ratios ≫ 1e-3 (L-BFGS: not its ratios)
``update_spike``           an update/weight ratio jumps 10x its running median before the loss grows
``edge_of_stability``      the Hessian's top eigenvalue is above the optimizer's stability bound (2/lr for SGD)
``lr_too_low``             update/weight ratios ≪ 1e-3 and the loss barely moves (L-BFGS: its iterations stop)
``initial_loss``           the first loss is far from its expected value (ln C for softmax; L-BFGS: none)
``overfitting``            a large, growing gap between training and validation accuracy
``regularization_too_strong`` the penalty is most of the objective while the network underfits (L-BFGS: by accuracy)
``underfitting``           training accuracy low and flat, validation just as low
``dead_relu``              many ReLU units output 0 on every example of the sample
``saturation``             most sigmoid/tanh outputs sit near their asymptotes
``vanishing_gradients``    the backpropagated signal shrinks by orders of magnitude with depth
``exploding_gradients``    the backpropagated signal grows by orders of magnitude with depth
``activations_collapsing`` hidden activations shrink towards 0 from layer to layer
``activations_exploding``  hidden activations grow from layer to layer
``noise_scale``            (info) the batch size is 10x away from the gradient noise scale B_simple
=========================  ==================================================================

Each rule and its thresholds live in the module of the quantity it reads (see :mod:`neuronlab.babysit`).
"""

from __future__ import annotations

from typing import Any

from neuronlab.babysit.findings import Finding
from neuronlab.babysit.rules import AFTER, RULES
from neuronlab.babysit.runview import RunView

__all__ = ["Finding", "diagnose", "format_findings"]  # RULES: neuronlab.babysit.rules


def diagnose(history: Any, *, model: Any = None) -> list[Finding]:
    """Apply every rule in :data:`RULES` to a run's history.

    Parameters
    ----------
    history : History or dict
        A :class:`~neuronlab.train.History` (or its ``to_dict()``); the monitor records and
        ``history.info`` feed most rules, so train with the default Monitor.
    model : Sequential, optional
        Not needed by the current rules (kept so rules about the architecture can use it).

    Returns
    -------
    list of Finding
        Errors first, then warnings, each group in rule order; empty when nothing is wrong.
    """
    run = RunView(history)
    findings: list[Finding] = []
    fired: set[str] = set()
    for name, rule in RULES.items():
        found = rule(run, fired) if name in AFTER else rule(run)
        if found is not None:
            findings.append(found)
            fired.add(name)
    rank = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: rank.get(f.severity, 3))


def format_findings(findings: list[Finding]) -> str:
    """The text block ``neuronlab train`` prints at the end: one numbered entry per finding.

    Parameters
    ----------
    findings : list of Finding
        What :func:`diagnose` returned.

    Returns
    -------
    str
        "Diagnosis: no problems found." for an empty list; else a count line, then per
        finding its severity, rule and message, and a ``try:`` line with its action.

    Examples
    --------
    >>> print(format_findings([Finding("dead_relu", "warning", "40% of layer 1 is dead",
    ...                                {}, "lower the learning rate")]))
    Diagnosis: 1 finding
    1. [warning] dead_relu: 40% of layer 1 is dead
       try: lower the learning rate
    """
    if not findings:
        return "Diagnosis: no problems found."
    lines = [f"Diagnosis: {len(findings)} finding{'s' if len(findings) > 1 else ''}"]
    for i, f in enumerate(findings, 1):
        lines.append(f"{i}. [{f.severity}] {f.rule}: {f.message}")
        lines.append(f"   try: {f.action}")
    return "\n".join(lines)
