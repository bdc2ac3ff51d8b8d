"""The gate-level engine: a scalar ``Value`` that records the graph of the expression it is in.

Write an expression with ordinary Python operators and the functions below, and every
intermediate result becomes a node of a computational graph::

    x, y, z = Value(-2.0, "x"), Value(5.0, "y"), Value(-4.0, "z")
    q = (x + y).named("q")          # q = 3
    f = (q * z).named("f")          # f = -12
    f.backward()                    # x.grad = -4, y.grad = -4, z.grad = 3

This is backpropagation as the notes describe it: "recursively apply the chain rule along
the structure of the computational graph". Each gate, as soon as it sees its inputs, can
compute two things on its own, without knowing anything about the rest of the graph:

1. its output value (the forward pass), and
2. its *local gradient*: the derivative of its output with respect to each input.

Backward then walks the graph from the output back to the inputs and multiplies: the
gradient that reaches an input is the gate's local gradient times the gradient that
arrived at the gate from above (the notes' "局部梯度" × "整体梯度", the local and the
upstream gradient). A node that feeds several gates receives one such term from each, and
the terms add up: *gradients add up at forks* (the multivariable chain rule).

Every number is a Python ``float`` (IEEE float64), so the engine is exact enough to check
against finite differences at 1e-8. A Python number used with a ``Value`` (``x + 1``,
``2 * x``, ``1 / x``, ``x ** 2``) is folded into the gate as a constant, as in the notes'
circuit diagrams, whose gates read ``+1``, ``*-1``, ``1/x`` and ``exp``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import ClassVar, Union

from neuronlab.graph.gates import (
    ADD,
    DIV,
    EXP,
    INPUT,
    LOG,
    MAX,
    MUL,
    POW,
    RELU,
    SIGMOID,
    SUB,
    TANH,
    Gate,
)

__all__ = [
    "Operand",
    "Value",
    "backpropagate",
    "exp",
    "log",
    "maximum",
    "relu",
    "sigmoid",
    "tanh",
    "topological_order",
]


#: What an operator accepts: another ``Value``, or a Python number taken as a constant.
Operand = Union["Value", float]


class Value:
    """A scalar in a computational graph: a number, its gradient, and the gate that made it.

    Parameters
    ----------
    data : float
        The number. Converted to a Python float (float64); it must be finite.
    label : str, optional
        A name for drawings and traces (``"x"``, ``"w0"``). See :meth:`named`.

    Attributes
    ----------
    data : float
        The forward value.
    grad : float
        d(output)/d(this node) after :meth:`backward` was called on some output; 0 before.
    label : str
        The node's name ("" when it has none; traces then call it ``n<k>``).
    gate : Gate
        The kind of gate that computed this node (:mod:`~neuronlab.graph.gates`);
        ``INPUT`` for a leaf.
    op : str
        The gate as the notes' circuit diagrams write it: ``"+"``, ``"*"``, ``"*-1"``,
        ``"+1"``, ``"1/x"``, ``"exp"``, ``"max"``, ... ("" for a leaf).
    formula : str
        The computation with ``{0}``, ``{1}`` standing for the inputs: ``"{0} + {1}"``.
    inputs : tuple of Value
        The gate's inputs, in order (the same node twice for ``x * x``).
    local_grads : tuple of float
        The gate's local gradient ∂self/∂inputs[i], one per input, worked out in the forward
        pass from the numbers the gate saw. Backward multiplies it by the upstream gradient.
    """

    __slots__ = ("data", "grad", "label", "gate", "op", "formula", "inputs", "local_grads")
    # NumPy scalars on the left (np.float64(2) * v) hand the operation to Value.__rmul__
    # instead of trying to build an object array.
    __array_ufunc__: ClassVar[None] = None

    def __init__(self, data: float, label: str = "") -> None:
        self.data = _finite(data, "Value data")
        self.grad = 0.0
        self.label = str(label)
        self.gate = INPUT
        self.op = ""
        self.formula = ""
        self.inputs: tuple[Value, ...] = ()
        self.local_grads: tuple[float, ...] = ()

    def named(self, label: str) -> Value:
        """Set the label and return the node itself: ``q = (x + y).named("q")``."""
        self.label = str(label)
        return self

    def __repr__(self) -> str:
        name = f", label={self.label!r}" if self.label else ""
        op = f", op={self.op!r}" if self.op else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{name}{op})"

    # -- the gates --------------------------------------------------------------------------
    # Each operator computes its output and its local gradient from the numbers it sees, and
    # records both in a new node (_gate below). Its docstring says why the local gradient is
    # what it is: that is the whole of backpropagation for this gate.

    def __add__(self, other: Operand) -> Value:
        """The add gate ``a + b``.

        Local gradient: ∂(a+b)/∂a = ∂(a+b)/∂b = 1. The add gate *distributes* the upstream
        gradient equally to all its inputs, whatever their values.
        """
        if isinstance(other, Value):
            return _gate(self.data + other.data, ADD, "+", "{0} + {1}", (self, other), (1.0, 1.0))
        c = _constant(other)
        sign = "+" if c >= 0 else "-"
        return _gate(self.data + c, ADD, f"{c:+g}", f"{{0}} {sign} {abs(c):g}", (self,), (1.0,))

    def __radd__(self, other: Operand) -> Value:
        return self + other  # addition commutes

    def __sub__(self, other: Operand) -> Value:
        """The subtract gate ``a - b``. Local gradient: 1 for a, -1 for b."""
        if isinstance(other, Value):
            return _gate(self.data - other.data, SUB, "-", "{0} - {1}", (self, other), (1.0, -1.0))
        return self + (-_constant(other))  # x - c is the add gate x + (-c)

    def __rsub__(self, other: Operand) -> Value:
        """``c - x`` for a constant c: local gradient -1."""
        c = _constant(other)
        return _gate(c - self.data, SUB, f"{c:g}-x", f"{c:g} - {{0}}", (self,), (-1.0,))

    def __mul__(self, other: Operand) -> Value:
        """The multiply gate ``a * b``.

        Local gradient: ∂(ab)/∂a = b and ∂(ab)/∂b = a. The multiply gate *swaps* its inputs:
        each input receives the *other* input's value times the upstream gradient. (So the
        smaller input gets the larger gradient: scale of the data matters for the weights.)
        A constant factor c simply scales the gradient by c.
        """
        if isinstance(other, Value):
            return _gate(self.data * other.data, MUL, "*", "{0} * {1}", (self, other),
                         (other.data, self.data))  # swapped
        c = _constant(other)
        return _gate(self.data * c, MUL, f"*{c:g}", f"{{0}} * {_paren(c)}", (self,), (c,))

    def __rmul__(self, other: Operand) -> Value:
        return self * other  # multiplication commutes

    def __neg__(self) -> Value:
        """``-x``: the notes' ``*-1`` gate (a multiply by the constant -1)."""
        return self * -1.0

    def __truediv__(self, other: Operand) -> Value:
        """The divide gate ``a / b``. Local gradient: 1/b for a, -a/b² for b."""
        if isinstance(other, Value):
            a, b = self.data, _nonzero(other.data)
            return _gate(a / b, DIV, "/", "{0} / {1}", (self, other), (1.0 / b, -a / (b * b)))
        c = _nonzero(_constant(other))
        return _gate(self.data / c, DIV, f"/{c:g}", f"{{0}} / {_paren(c)}", (self,), (1.0 / c,))

    def __rtruediv__(self, other: Operand) -> Value:
        """``c / x`` for a constant c (the notes' ``1/x`` gate): local gradient -c/x²."""
        c, x = _constant(other), _nonzero(self.data)
        return _gate(c / x, DIV, f"{c:g}/x", f"{c:g} / {{0}}", (self,), (-c / (x * x),))

    def __pow__(self, exponent: float) -> Value:
        """The power gate ``x ** c`` for a constant exponent c. Local gradient: c·x^(c-1)."""
        if isinstance(exponent, Value):
            raise TypeError("the exponent of ** must be a constant number; "
                            "for a variable exponent write exp(b * log(a))")
        c, x = _constant(exponent), self.data
        try:
            out = math.pow(x, c)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{x!r} ** {c!r} is not a finite real number") from None
        if c == 0:
            local = 0.0  # x**0 is the constant 1
        elif x == 0 and c < 1:
            raise ValueError(f"the derivative of x ** {c!r} at x = 0 is infinite")
        else:
            local = c * math.pow(x, c - 1)
        return _gate(out, POW, f"**{c:g}", f"{{0}}**{_paren(c)}", (self,), (local,))

    def __rpow__(self, base: float) -> Value:
        raise TypeError("a Value cannot be an exponent: write exp(x * log(c)) for c ** x")

    def exp(self) -> Value:
        """The exponential gate ``e^x``. Local gradient: e^x, the gate's own output."""
        try:
            out = math.exp(self.data)
        except OverflowError:
            raise ValueError(f"exp({self.data!r}) is too large for a float") from None
        return _gate(out, EXP, "exp", "exp({0})", (self,), (out,))

    def log(self) -> Value:
        """The natural logarithm ``ln x`` for x > 0. Local gradient: 1/x."""
        if self.data <= 0:
            raise ValueError(f"log needs a positive input, got {self.data!r}")
        return _gate(math.log(self.data), LOG, "log", "log({0})", (self,), (1.0 / self.data,))

    def max(self, other: Operand) -> Value:
        """The max gate ``max(a, b)``.

        Local gradient: 1 for the larger input, 0 for the other. The max gate *routes* the
        upstream gradient: all of it goes to the input that won the forward pass, none to the
        one that lost. On a tie the first input (``self``) wins.
        """
        if isinstance(other, Value):
            a_wins = self.data >= other.data
            return _gate(max(self.data, other.data), MAX, "max", "max({0}, {1})", (self, other),
                         (1.0, 0.0) if a_wins else (0.0, 1.0))
        c = _constant(other)
        wins = self.data >= c
        return _gate(self.data if wins else c, MAX, f"max(x,{c:g})", f"max({{0}}, {c:g})",
                     (self,), (1.0 if wins else 0.0,))

    def relu(self) -> Value:
        """The ReLU gate ``max(0, x)``: a max gate against 0.

        Local gradient: 1 where x > 0, else 0 (0 at x = 0 exactly, as ``neuronlab.ReLU``).
        """
        x = self.data
        return _gate(max(x, 0.0), RELU, "relu", "relu({0})", (self,), (1.0 if x > 0 else 0.0,))

    def sigmoid(self) -> Value:
        """The sigmoid gate ``σ(x) = 1 / (1 + e^{-x})``.

        Local gradient: σ(x)(1 − σ(x)), taken from the gate's own output, so backward needs
        nothing else. Written as a single gate it equals the notes' chain of four gates
        ``*-1 → exp → +1 → 1/x``, with far fewer steps.
        """
        x = self.data
        # the two forms never overflow: e^{-x} for x >= 0, e^{x} for x < 0
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return _gate(s, SIGMOID, "sigmoid", "sigmoid({0})", (self,), (s * (1.0 - s),))

    def tanh(self) -> Value:
        """The tanh gate. Local gradient: 1 − tanh²(x), from the gate's own output."""
        t = math.tanh(self.data)
        return _gate(t, TANH, "tanh", "tanh({0})", (self,), (1.0 - t * t,))

    # -- backward ---------------------------------------------------------------------------
    def backward(self) -> None:
        """Backpropagate from this node: set every node's ``grad`` to d(self)/d(node).

        The gradients of this graph's nodes are zeroed first, so calling it twice gives the
        same numbers. (To combine several outputs, add them into one ``Value`` and call
        ``backward`` on the sum.)
        """
        backpropagate(self)


def exp(x: Operand) -> Value:
    """``e^x`` as a gate; see :meth:`Value.exp`."""
    return _as_value(x).exp()


def log(x: Operand) -> Value:
    """``ln x`` as a gate; see :meth:`Value.log`."""
    return _as_value(x).log()


def maximum(a: Operand, b: Operand) -> Value:
    """``max(a, b)`` as a gate (the larger input gets all the gradient); see :meth:`Value.max`."""
    if isinstance(a, Value):
        return a.max(b)
    if isinstance(b, Value):
        return b.max(a)
    return Value(a).max(Value(b))


def relu(x: Operand) -> Value:
    """``max(0, x)`` as a gate; see :meth:`Value.relu`."""
    return _as_value(x).relu()


def sigmoid(x: Operand) -> Value:
    """``1 / (1 + e^{-x})`` as one gate; see :meth:`Value.sigmoid`."""
    return _as_value(x).sigmoid()


def tanh(x: Operand) -> Value:
    """``tanh x`` as a gate; see :meth:`Value.tanh`."""
    return _as_value(x).tanh()


# -- walking the graph ----------------------------------------------------------------------
def topological_order(output: Value) -> list[Value]:
    """Every node ``output`` depends on, each after all of its inputs; ``output`` last.

    A depth-first search that lists a node once all its inputs are listed (post-order),
    visiting inputs left to right. For ``(x + y) * z`` it gives ``x, y, x+y, z, f``: the
    order of the forward pass. Reversed, it is the order of the backward pass: a node's
    gradient is complete once every gate that uses it has been processed.
    """
    order: list[Value] = []
    seen: set[Value] = set()
    # An explicit stack instead of recursion: a long chain (a sum of 5,000 terms) would
    # exceed Python's recursion limit. (node, True) means "all its inputs are listed".
    stack: list[tuple[Value, bool]] = [(output, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            stack.extend((inp, False) for inp in reversed(node.inputs))
    return order


def backpropagate(
    output: Value, on_push: Callable[[Value, Value, float], None] | None = None
) -> list[Value]:
    """Fill ``grad`` on every node of ``output``'s graph; return the topological order.

    Parameters
    ----------
    output : Value
        The node to differentiate; it receives gradient 1 (d output / d output).
    on_push : callable, optional
        Called as ``on_push(gate_node, input_node, local_grad)`` right after each term is
        added into an input's gradient. The step-by-step trace listens here.

    Returns
    -------
    list of Value
        The nodes in topological order (inputs first, ``output`` last).
    """
    order = topological_order(output)
    for node in order:
        node.grad = 0.0
    output.grad = 1.0
    for node in reversed(order):  # every gate that uses `node` has already sent its part
        for inp, local in zip(node.inputs, node.local_grads):
            # The chain rule: local gradient × upstream gradient. `+=` because a node that
            # feeds several gates (or one gate twice, x * x) gets the sum of their terms.
            inp.grad += local * node.grad
            if on_push is not None:
                on_push(node, inp, local)
    return order


# -- helpers --------------------------------------------------------------------------------
def _gate(data: float, gate: Gate, op: str, formula: str, inputs: tuple[Value, ...],
          local_grads: tuple[float, ...]) -> Value:
    """A new node computed by ``gate`` from ``inputs``, with its local gradients."""
    if not math.isfinite(data):
        text = formula.format(*(_paren(i.data) for i in inputs))
        raise ValueError(f"the gate {text} gave {data!r}, not a finite number")
    out = Value(data)
    out.gate, out.op, out.formula = gate, op, formula
    out.inputs, out.local_grads = inputs, local_grads
    return out


def _finite(x: object, what: str) -> float:
    """``x`` as a float, or a ValueError naming ``what`` when it is not a finite real number."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {type(x).__name__}")
    f = float(x)
    if not math.isfinite(f):
        raise ValueError(f"{what} must be finite, got {f!r}")
    return f


def _nonzero(d: float) -> float:
    """A divisor, refused when it is 0 (a ValueError, like every other domain error here)."""
    if d == 0:
        raise ValueError("division by zero: the divide gate needs a non-zero divisor")
    return d


def _constant(c: object) -> float:
    """A Python number used with a Value: the constant of a gate."""
    if isinstance(c, Value):  # pragma: no cover - callers test for Value first
        raise TypeError("expected a constant number, got a Value")
    return _finite(c, "a constant")


def _as_value(x: Operand) -> Value:
    return x if isinstance(x, Value) else Value(x)


def _paren(c: float) -> str:
    """``c`` formatted for a formula, in parentheses when negative: ``x * (-1)``."""
    return f"({c:g})" if c < 0 else f"{c:g}"
