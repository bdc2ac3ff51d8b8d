"""Backprop you can step through: a gate-level engine, its trace and its drawing.

A teaching companion to the layers. Where ``nl.Linear`` and ``nl.Sigmoid`` run backprop on
whole arrays, this package runs it on single numbers, one gate at a time, the way the notes
explain it on computational graphs:

- :class:`Value` (:mod:`~neuronlab.graph.value`): a float64 scalar that records the graph of
  the expression it is computed in (``+ - * / **``, ``exp``, ``log``, ``maximum``,
  ``relu``, ``sigmoid``, ``tanh``); ``f.backward()`` fills every node's ``grad``.
- :func:`backward_steps` (:mod:`~neuronlab.graph.trace`): the forward and backward passes as
  numbered steps: which node, its value or gradient, and from which gate's rule.
- :func:`to_svg` (:mod:`~neuronlab.graph.svg`): the graph drawn left to right, values in
  green and gradients in red; ``step=k`` draws it after step k.
- :mod:`~neuronlab.graph.circuits`: the notes' examples, a sigmoid neuron and a tiny
  two-layer network built from gates.

Example
-------
>>> from neuronlab.graph import Value, backward_steps, format_trace
>>> x, y, z = Value(-2.0, "x"), Value(5.0, "y"), Value(-4.0, "z")
>>> f = ((x + y).named("q") * z).named("f")
>>> f.backward()
>>> x.grad, y.grad, z.grad
(-4.0, -4.0, 3.0)
"""

from neuronlab.graph.circuits import (
    Circuit,
    sigmoid_neuron,
    simple_circuit,
    staged_circuit,
    two_layer_net,
)
from neuronlab.graph.gates import GATES, Gate
from neuronlab.graph.layout import Layout, layout_graph
from neuronlab.graph.svg import Drawing, draw, to_svg
from neuronlab.graph.trace import (
    Contribution,
    Step,
    backward_steps,
    format_number,
    format_trace,
    node_names,
)
from neuronlab.graph.value import (
    Value,
    backpropagate,
    exp,
    log,
    maximum,
    relu,
    sigmoid,
    tanh,
    topological_order,
)

__all__ = [
    "Drawing",
    "draw",
    # the engine
    "GATES", "Gate", "Value", "backpropagate", "exp", "log", "maximum", "relu", "sigmoid",
    "tanh", "topological_order",
    # stepping through
    "Contribution", "Step", "backward_steps", "format_number", "format_trace", "node_names",
    # drawing
    "Layout", "layout_graph", "to_svg",
    # ready-made graphs
    "Circuit", "sigmoid_neuron", "simple_circuit", "staged_circuit", "two_layer_net",
]  # fmt: skip
