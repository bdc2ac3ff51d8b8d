"""Ready-made graphs: the notes' worked examples, a neuron and a tiny network, gate by gate.

Each builder returns a :class:`Circuit`: the output ``Value`` and the input ``Value`` nodes
grouped into named arrays, so the gradients read back in the shapes of the layers'
parameters (``circuit.grad("W1")`` has the shape of ``nl.Linear.params["W"]``).

- :func:`simple_circuit`: ``f = (x + y) z``, the first example of backprop.
- :func:`sigmoid_neuron`: the notes' 2-D neuron ``f = σ(w0 x0 + w1 x1 + w2)``, either from
  elementary gates (``*``, ``+``, ``*-1``, ``exp``, ``+1``, ``1/x``), as in the circuit
  diagram, or with one sigmoid gate.
- :func:`staged_circuit`: ``f = (x + σ(y)) / (σ(x) + (x + y)²)`` in the notes' stages
  (``sigy``, ``num``, ``sigx``, ``xpy``, ``xpysqr``, ``den``, ``invden``), where ``x`` and
  ``y`` are used several times and their gradients add up.
- :func:`two_layer_net`: ``f = act(x W1 + b1) W2 + b2`` for one example, the same
  computation as ``nl.Linear → activation → nl.Linear``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from neuronlab.graph.value import Value

__all__ = ["Circuit", "sigmoid_neuron", "simple_circuit", "staged_circuit", "two_layer_net"]

_ACTIVATIONS: dict[str, Callable[[Value], Value]] = {
    "sigmoid": Value.sigmoid,
    "tanh": Value.tanh,
    "relu": Value.relu,
}


@dataclass(frozen=True)
class Circuit:
    """A graph's output and its input nodes, grouped into named arrays.

    Attributes
    ----------
    output : Value
        The node the circuit computes.
    inputs : dict of str to ndarray of Value
        Each named array of input nodes (object arrays, in the shape of the numbers given).
    """

    output: Value
    inputs: Mapping[str, np.ndarray]

    def value(self, name: str) -> np.ndarray:
        """The values of input array ``name``, as float64 in its shape."""
        return self._numbers(name, lambda v: v.data)

    def grad(self, name: str) -> np.ndarray:
        """d output / d (input array ``name``), as float64 in its shape (after backward)."""
        return self._numbers(name, lambda v: v.grad)

    def _numbers(self, name: str, read: Callable[[Value], float]) -> np.ndarray:
        if name not in self.inputs:
            raise KeyError(f"no input array {name!r}; the circuit has {sorted(self.inputs)}")
        nodes = self.inputs[name]
        return np.array([read(v) for v in nodes.flat], dtype=np.float64).reshape(nodes.shape)


def simple_circuit(x: float = -2.0, y: float = 5.0, z: float = -4.0) -> Circuit:
    """``f = (x + y) z`` with ``q = x + y`` (the notes' numbers by default: q = 3, f = -12).

    Backward: df/dz = q = 3; df/dq = z = -4, which the add gate passes unchanged to both
    x and y: df/dx = df/dy = -4.
    """
    xv, yv, zv = Value(x, "x"), Value(y, "y"), Value(z, "z")
    q = (xv + yv).named("q")
    f = (q * zv).named("f")
    return Circuit(f, {"x": _scalar(xv), "y": _scalar(yv), "z": _scalar(zv)})


def sigmoid_neuron(
    w: Sequence[float] | np.ndarray = (2.0, -3.0, -3.0),
    x: Sequence[float] | np.ndarray = (-1.0, -2.0),
    *,
    gates: Literal["elementary", "sigmoid"] = "elementary",
) -> Circuit:
    """The notes' neuron ``f = σ(w0 x0 + w1 x1 + ... + w_n)``, the last weight the bias.

    Parameters
    ----------
    w : array-like of shape (n + 1,)
        Weights, then the bias. The notes: ``[2, -3, -3]``.
    x : array-like of shape (n,)
        Inputs. The notes: ``[-1, -2]``, giving w·x + b = 1 and f = σ(1) ≈ 0.73.
    gates : {"elementary", "sigmoid"}
        ``"elementary"``: σ(s) as the circuit diagram draws it, ``1 / (1 + exp(-s))``, four
        gates (``*-1``, ``exp``, ``+1``, ``1/x``). ``"sigmoid"``: one sigmoid gate, whose
        local gradient σ(1 − σ) is the four gates' chain rule done once by hand.

    Returns
    -------
    Circuit
        Inputs ``"w"`` (labelled w0, w1, ...) and ``"x"`` (x0, x1, ...); ``output`` is
        labelled ``f`` and the weighted sum ``s``.
    """
    wn, xn = _numbers("w", w, ndim=1), _numbers("x", x, ndim=1)
    if wn.shape[0] != xn.shape[0] + 1:
        raise ValueError(f"w needs one weight per input plus the bias: {xn.shape[0] + 1} "
                         f"numbers for {xn.shape[0]} inputs, got {wn.shape[0]}")
    if gates not in ("elementary", "sigmoid"):
        raise ValueError(f"gates must be 'elementary' or 'sigmoid', got {gates!r}")
    wv = _leaves("w", wn)
    xv = _leaves("x", xn)
    s = _weighted_sum(list(wv.flat[:-1]), list(xv.flat), wv.flat[-1]).named("s")
    f = 1.0 / (1.0 + (-s).exp()) if gates == "elementary" else s.sigmoid()
    return Circuit(f.named("f"), {"w": wv, "x": xv})


def staged_circuit(x: float = 3.0, y: float = -4.0) -> Circuit:
    """``f = (x + σ(y)) / (σ(x) + (x + y)²)``, computed in the notes' stages.

    The forward pass keeps every intermediate (``sigy``, ``num``, ``sigx``, ``xpy``,
    ``xpysqr``, ``den``, ``invden``); backward visits them in reverse, and ``x`` and ``y``,
    used three and two times, collect one term from each use.
    """
    xv, yv = Value(x, "x"), Value(y, "y")
    sigy = yv.sigmoid().named("sigy")  # sigmoid in the numerator     (1)
    num = (xv + sigy).named("num")  # numerator                      (2)
    sigx = xv.sigmoid().named("sigx")  # sigmoid in the denominator   (3)
    xpy = (xv + yv).named("xpy")  # (4)
    xpysqr = (xpy**2).named("xpysqr")  # (5)
    den = (sigx + xpysqr).named("den")  # denominator                 (6)
    invden = (1.0 / den).named("invden")  # (7)
    f = (num * invden).named("f")  # done                            (8)
    return Circuit(f, {"x": _scalar(xv), "y": _scalar(yv)})


def two_layer_net(
    x: Any,
    W1: Any,
    b1: Any,
    W2: Any,
    b2: Any,
    *,
    activation: Literal["sigmoid", "tanh", "relu"] = "sigmoid",
) -> Circuit:
    """``f = act(x W1 + b1) W2 + b2`` for one example, one gate at a time.

    The layout of the numbers is that of ``nl.Linear`` (``y = x W + b``), so the gradients
    compare directly with ``Linear.grads`` and the ``dx`` its backward returns.

    Parameters
    ----------
    x : array-like of shape (n_in,)
    W1 : array-like of shape (n_in, n_hidden)
    b1 : array-like of shape (n_hidden,)
    W2 : array-like of shape (n_hidden,) or (n_hidden, 1)
        One output: the graph differentiates a single number.
    b2 : float or array-like of shape (1,)
    activation : {"sigmoid", "tanh", "relu"}

    Returns
    -------
    Circuit
        Inputs ``"x"``, ``"W1"``, ``"b1"``, ``"W2"``, ``"b2"`` in the shapes given; hidden
        units labelled ``h[j]``, the output ``f``.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    act = _ACTIVATIONS[activation]
    xn, W1n, b1n = _numbers("x", x, ndim=1), _numbers("W1", W1, ndim=2), _numbers("b1", b1, 1)
    W2n, b2n = _numbers("W2", W2), _numbers("b2", b2)  # shapes checked below
    n_in, n_hidden = W1n.shape
    if xn.shape != (n_in,) or b1n.shape != (n_hidden,):
        raise ValueError(f"W1 has shape {W1n.shape}: x must have shape ({n_in},) and b1 "
                         f"({n_hidden},), got {xn.shape} and {b1n.shape}")
    if W2n.shape not in ((n_hidden,), (n_hidden, 1)) or b2n.shape not in ((), (1,)):
        raise ValueError(f"one output: W2 must have shape ({n_hidden},) or ({n_hidden}, 1) and "
                         f"b2 be one number, got {W2n.shape} and {b2n.shape}")
    xv, W1v, b1v = _leaves("x", xn), _leaves("W1", W1n), _leaves("b1", b1n)
    W2v, b2v = _leaves("W2", W2n), _leaves("b2", b2n)
    hidden = [act(_weighted_sum(list(W1v[:, j]), list(xv), b1v[j])).named(f"h[{j}]")
              for j in range(n_hidden)]
    f = _weighted_sum(list(W2v.flat), hidden, b2v.flat[0]).named("f")
    return Circuit(f, {"x": xv, "W1": W1v, "b1": b1v, "W2": W2v, "b2": b2v})


# -- helpers --------------------------------------------------------------------------------
def _weighted_sum(weights: Sequence[Value], inputs: Sequence[Value], bias: Value) -> Value:
    """``w0 x0 + w1 x1 + ... + bias``, one multiply gate per term and one add gate per sum,
    in the order of the notes' circuit: ((w0 x0 + w1 x1) + ...) + bias."""
    total = weights[0] * inputs[0]
    for w, x in zip(weights[1:], inputs[1:]):
        total = total + w * x
    return total + bias


def _numbers(name: str, value: Any, ndim: int | None = None) -> np.ndarray:
    """``value`` as a finite float64 array (with ``ndim`` dimensions if given), or a
    ValueError naming it."""
    a = np.asarray(value, dtype=np.float64)
    if (ndim is not None and a.ndim != ndim) or a.size == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {a!r}")
    return a


def _leaves(name: str, numbers: np.ndarray) -> np.ndarray:
    """An object array of input nodes, labelled as the notes write them: ``w0`` for a 1-D
    array, ``b1[0]`` when the name ends in a digit, ``W1[0,1]`` in 2-D."""
    nodes = np.empty(numbers.shape, dtype=object)
    for idx in np.ndindex(numbers.shape):
        if numbers.ndim == 1 and not name[-1].isdigit():
            label = f"{name}{idx[0]}"
        else:
            label = f"{name}[{','.join(map(str, idx))}]" if idx else name
        nodes[idx] = Value(float(numbers[idx]), label)
    return nodes


def _scalar(node: Value) -> np.ndarray:
    """A 0-d object array holding ``node``: ``circuit.grad("x")`` is then a 0-d float."""
    nodes = np.empty((), dtype=object)
    nodes[()] = node
    return nodes
