"""The kinds of gate in a computational graph, and what each does with the gradient.

The lecture's intuitions for backward, one line each. The arithmetic of every rule lives with
its gate in :class:`~neuronlab.graph.value.Value` (``__add__``, ``__mul__``, ``max``, ...);
here is what the step-by-step trace says about it:

- the **add** gate distributes the upstream gradient equally to all its inputs;
- the **multiply** gate swaps its inputs: each receives the other's value times the upstream
  gradient;
- the **max** gate routes the upstream gradient to the larger input and gives the other 0.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ADD", "DIV", "EXP", "GATES", "INPUT", "LOG", "MAX", "MUL", "POW", "RELU", "SIGMOID",
           "SUB", "TANH", "Gate"]


@dataclass(frozen=True)
class Gate:
    """A kind of gate, and in a few words what its backward does with the upstream gradient.

    Parameters
    ----------
    name : str
        ``"add"``, ``"mul"``, ... or ``"input"`` for the leaves of a graph.
    rule : str
        The gate's backward rule in words, shown by the step-by-step trace.
    """

    name: str
    rule: str


INPUT = Gate("input", "an input: it only collects gradient")
ADD = Gate("add", "add distributes the gradient equally")
SUB = Gate("sub", "sub passes the gradient to a, its negative to b")
MUL = Gate("mul", "mul swaps its inputs")
DIV = Gate("div", "div a/b sends 1/b to a, -a/b^2 to b")
POW = Gate("pow", "pow x**c sends c*x**(c-1)")
EXP = Gate("exp", "exp sends its own output e^x")
LOG = Gate("log", "log x sends 1/x")
MAX = Gate("max", "max routes the gradient to the larger input")
RELU = Gate("relu", "relu passes the gradient only where x > 0")
SIGMOID = Gate("sigmoid", "sigmoid sends s*(1-s), from its output s")
TANH = Gate("tanh", "tanh sends 1-t^2, from its output t")

#: Every gate by name.
GATES: dict[str, Gate] = {
    g.name: g for g in (INPUT, ADD, SUB, MUL, DIV, POW, EXP, LOG, MAX, RELU, SIGMOID, TANH)
}
