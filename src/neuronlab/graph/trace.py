"""Backprop one gate at a time: the forward and backward passes as a numbered list of steps.

``backward_steps(f)`` runs the backward pass of ``f`` (as ``f.backward()`` does) and returns
what happened, in order:

1. **forward**, one step per node in topological order (inputs first): the node's value.
   The values were computed when the expression was evaluated; the trace replays them in
   an order where every gate comes after its inputs.
2. **backward**, one step per node in the reverse order (output first): the node's
   gradient, with every term that made it: which gate sent it, the gate's local gradient,
   the upstream gradient it was multiplied by, and the gate's rule in words. The first
   backward step is the output's own gradient, 1. A node that feeds several gates has
   several terms, which add up.

For the notes' first example, ``f = (x + y) z`` at x = -2, y = 5, z = -4:

>>> from neuronlab.graph import simple_circuit
>>> f = simple_circuit(x=-2.0, y=5.0, z=-4.0).output
>>> print(format_trace(backward_steps(f)))
 1  forward   x = -2   (input)
 2  forward   y = 5   (input)
 3  forward   q = x + y = 3   (add)
 4  forward   z = -4   (input)
 5  forward   f = q * z = -12   (mul)
 6  backward  df/df = 1   (the output's gradient with respect to itself)
 7  backward  df/dz = 3 × 1 = 3   (from f = q * z: mul swaps its inputs)
 8  backward  df/dq = -4 × 1 = -4   (from f = q * z: mul swaps its inputs)
 9  backward  df/dy = 1 × (-4) = -4   (from q = x + y: add distributes the gradient equally)
10  backward  df/dx = 1 × (-4) = -4   (from q = x + y: add distributes the gradient equally)

``to_svg(f, step=k)`` draws the graph as it stands after step k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from neuronlab.graph.gates import Gate
from neuronlab.graph.value import Value, backpropagate

__all__ = ["Contribution", "Step", "backward_steps", "format_number", "format_trace",
           "node_names"]


@dataclass(frozen=True)
class Contribution:
    """One term of the chain rule: a gate sends ``local × upstream`` to one of its inputs.

    Attributes
    ----------
    gate_node : Value
        The node whose gate sent the term.
    gate_name : str
        Its name in the trace.
    gate_text : str
        Its computation in names: ``"q * z"``.
    local : float
        The gate's local gradient with respect to this input: ∂gate_node/∂input.
    upstream : float
        The gradient that had arrived at the gate: d(output)/d(gate_node).
    """

    gate_node: Value
    gate_name: str
    gate_text: str
    local: float
    upstream: float

    @property
    def gate(self) -> Gate:
        """The kind of gate that sent the term."""
        return self.gate_node.gate

    @property
    def amount(self) -> float:
        """``local * upstream``: what this term added to the input's gradient."""
        return self.local * self.upstream


@dataclass(frozen=True)
class Step:
    """One step of the trace.

    Attributes
    ----------
    number : int
        Position in the trace, from 1. ``to_svg(f, step=number)`` draws the graph after it.
    phase : {"forward", "backward"}
    node : Value
    name : str
        The node's label, or ``n<k>`` (its position k in the forward order) without one.
    result : float
        What the step computed: the node's value (forward) or gradient (backward).
    expression : str
        Forward: the computation in names (``"x + y"``); "" for an input.
    contributions : tuple of Contribution
        Backward: the terms that add up to the gradient, one per use of the node; empty for
        the output, whose gradient is 1 by definition, and for forward steps.
    output_name : str
        The name of the node being differentiated (the ``f`` of ``df/dx``).
    """

    number: int
    phase: Literal["forward", "backward"]
    node: Value
    name: str
    result: float
    expression: str
    contributions: tuple[Contribution, ...]
    output_name: str

    def describe(self, digits: int = 4) -> str:
        """The step in one line, numbers to ``digits`` significant digits: the equation,
        then why in parentheses."""
        return f"{self.equation(digits)}   ({'; '.join(self.reasons())})"

    def equation(self, digits: int = 4) -> str:
        """What the step computed: ``q = x + y = 3``, or ``df/dx = 1 × (-4) = -4``."""

        def n(v: float) -> str:
            return format_number(v, digits)

        if self.phase == "forward":
            if not self.expression:
                return f"{self.name} = {n(self.result)}"
            return f"{self.name} = {self.expression} = {n(self.result)}"
        d = f"d{self.output_name}/d{self.name}"
        if not self.contributions:
            return f"{d} = {n(self.result)}"
        terms = " + ".join(f"{n(c.local)} × {_paren(n(c.upstream))}" for c in self.contributions)
        return f"{d} = {terms} = {n(self.result)}"

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        """The step as plain JSON-ready data (for the playground or a notebook widget)."""
        return {
            "number": self.number, "phase": self.phase, "name": self.name,
            "result": self.result, "expression": self.expression,
            "equation": self.equation(digits), "reasons": self.reasons(),
            "contributions": [{"from": c.gate_name, "gate": c.gate.name, "local": c.local,
                               "upstream": c.upstream, "amount": c.amount}
                              for c in self.contributions],
        }  # fmt: skip

    def reasons(self) -> list[str]:
        """Why, in words: the input or gate (forward), or the rule of each gate that sent a
        term (backward; a fork, where terms add up, says so first)."""
        if self.phase == "forward":
            return [self.node.gate.name]
        if not self.contributions:
            return ["the output's gradient with respect to itself"]
        fork = ["a fork: the terms add up"] if len(self.contributions) > 1 else []
        return fork + list(dict.fromkeys(  # each gate once, in order (x * x sends two terms)
            f"from {c.gate_name} = {c.gate_text}: {c.gate.rule}" for c in self.contributions))


def backward_steps(output: Value) -> list[Step]:
    """Run backprop from ``output`` and return its steps: forward, then backward.

    Sets ``grad`` on every node, exactly as ``output.backward()`` does (it runs the same
    :func:`~neuronlab.graph.value.backpropagate`, listening to each term it adds).

    Parameters
    ----------
    output : Value
        The node to differentiate.

    Returns
    -------
    list of Step
        ``2 * n_nodes`` steps: ``n_nodes`` forward steps in topological order, then
        ``n_nodes`` backward steps in the reverse order, numbered from 1.
    """
    received: dict[Value, list[tuple[Value, float]]] = {}

    def on_push(gate_node: Value, inp: Value, local: float) -> None:
        received.setdefault(inp, []).append((gate_node, local))

    order = backpropagate(output, on_push)
    names = node_names(order)

    def text(node: Value) -> str:
        return node.formula.format(*(names[i] for i in node.inputs)) if node.inputs else ""

    steps: list[Step] = []
    for node in order:
        steps.append(Step(len(steps) + 1, "forward", node, names[node], node.data, text(node),
                          (), names[output]))
    for node in reversed(order):
        terms = tuple(Contribution(g, names[g], text(g), local, g.grad)
                      for g, local in received.get(node, []))
        steps.append(Step(len(steps) + 1, "backward", node, names[node], node.grad, "",
                          terms, names[output]))
    return steps


def format_trace(steps: Sequence[Step], digits: int = 4) -> str:
    """The steps as numbered lines of text (no trailing newline)."""
    width = len(str(len(steps)))
    return "\n".join(f"{s.number:>{width}}  {s.phase:<8}  {s.describe(digits)}" for s in steps)


def node_names(order: Sequence[Value]) -> dict[Value, str]:
    """Each node's label, or ``n<k>`` for an unlabelled one (k its position in ``order``,
    from 1)."""
    return {node: node.label or f"n{k}" for k, node in enumerate(order, start=1)}


def format_number(value: float, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits, as the trace and the drawing show it
    (``0.7311``, ``-12``; never ``-0``)."""
    text = f"{value:.{digits}g}"
    return "0" if text in ("-0", "0") else text


def _paren(text: str) -> str:
    return f"({text})" if text.startswith("-") else text
