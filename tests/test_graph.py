"""The gate-level engine (neuronlab.graph): the notes' worked examples of backprop, every
gradient against centered finite differences in float64, the neuron against the library's
own layers, the step-by-step trace and its drawing."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.graph import (
    GATES,
    Value,
    backward_steps,
    exp,
    format_number,
    format_trace,
    layout_graph,
    log,
    maximum,
    relu,
    sigmoid,
    sigmoid_neuron,
    simple_circuit,
    staged_circuit,
    tanh,
    to_svg,
    topological_order,
    two_layer_net,
)

SVG = "{http://www.w3.org/2000/svg}"


# -- finite differences ------------------------------------------------------------------------
def central_differences(build: Callable[..., Value], point: dict[str, float],
                        h: float = 1e-5) -> dict[str, float]:
    """d build(**point) / d point[k] for every k, by (f(p + h) - f(p - h)) / 2h."""
    out = {}
    for k in point:
        up, down = dict(point), dict(point)
        up[k] += h
        down[k] -= h
        out[k] = (build(**up).data - build(**down).data) / (2 * h)
    return out


def assert_close(analytic: float, numeric: float, tol: float = 1e-8) -> None:
    assert abs(analytic - numeric) <= tol * max(1.0, abs(analytic), abs(numeric)), (
        analytic, numeric)


def check_against_differences(build: Callable[..., Value], point: dict[str, float]) -> None:
    """Build at ``point`` with inputs labelled by the keys, backprop, compare every input."""
    out = build(**point)
    out.backward()
    leaves = {v.label: v for v in topological_order(out) if not v.inputs}
    numeric = central_differences(build, point)
    for k, n in numeric.items():
        assert_close(leaves[k].grad, n)


def by_label(out: Value) -> dict[str, Value]:
    return {v.label: v for v in topological_order(out) if v.label}


# -- the notes' first example: f = (x + y) z ---------------------------------------------------
def test_add_then_multiply_reproduces_the_notes():
    c = simple_circuit()  # x = -2, y = 5, z = -4
    c.output.backward()
    nodes = by_label(c.output)
    assert nodes["q"].data == 3.0 and nodes["f"].data == -12.0
    # df/dz = q; df/dq = z, and the add gate hands it unchanged to x and y
    assert (nodes["f"].grad, nodes["q"].grad) == (1.0, -4.0)
    assert (float(c.grad("x")), float(c.grad("y")), float(c.grad("z"))) == (-4.0, -4.0, 3.0)


def test_add_then_multiply_against_differences():
    def build(x: float, y: float, z: float) -> Value:
        return simple_circuit(x, y, z).output
    check_against_differences(build, {"x": -2.0, "y": 5.0, "z": -4.0})
    check_against_differences(build, {"x": 0.3, "y": -1.7, "z": 2.5})


# -- the notes' 2-D neuron, f = 1 / (1 + e^-(w0 x0 + w1 x1 + w2)) ------------------------------
W, X = [2.0, -3.0, -3.0], [-1.0, -2.0]


def test_neuron_gates_reproduce_the_circuit_diagram():
    c = sigmoid_neuron(W, X, gates="elementary")
    c.output.backward()
    gates = [v for v in topological_order(c.output) if v.inputs]
    assert [g.op for g in gates] == ["*", "*", "+", "+", "*-1", "exp", "+1", "1/x"]
    e = math.exp(-1.0)
    # forward: w0x0 = -2, w1x1 = 6, sum 4, + w2 = 1, *-1, exp, +1, 1/x = 0.73
    values = [-2.0, 6.0, 4.0, 1.0, -1.0, e, 1 + e, 1 / (1 + e)]
    # backward, right to left: 1/x sends -1/(1+e)^2 = -0.53, +1 passes it, exp multiplies
    # by its output e^-1 (-0.20), *-1 flips the sign (0.20), and the add gates hand 0.20 on
    d_inv = -1 / (1 + e) ** 2
    grads = [d_inv * -e] * 4 + [d_inv * e, d_inv, d_inv, 1.0]
    for g, v, d in zip(gates, values, grads):
        assert g.data == pytest.approx(v, rel=1e-15, abs=1e-15)
        assert g.grad == pytest.approx(d, rel=1e-14)
    # the diagram's two-decimal numbers
    assert [round(g.data, 2) for g in gates] == [-2.0, 6.0, 4.0, 1.0, -1.0, 0.37, 1.37, 0.73]
    assert [round(g.grad, 2) for g in gates] == [0.2, 0.2, 0.2, 0.2, -0.2, -0.53, -0.53, 1.0]


@pytest.mark.parametrize("gates", ["elementary", "sigmoid"])
def test_neuron_reproduces_the_notes_gradients(gates):
    c = sigmoid_neuron(W, X, gates=gates)
    c.output.backward()
    s = 1 / (1 + math.exp(-1.0))  # w·x + b = 2·(-1) + (-3)·(-2) - 3 = 1
    ds = s * (1 - s)  # the sigmoid gate's local gradient, 0.1966
    assert c.output.data == pytest.approx(s, rel=1e-15)
    np.testing.assert_allclose(c.grad("w"), [X[0] * ds, X[1] * ds, ds], rtol=1e-14)
    np.testing.assert_allclose(c.grad("x"), [W[0] * ds, W[1] * ds], rtol=1e-14)
    assert round(c.output.data, 2) == 0.73
    assert np.round(c.grad("w"), 2).tolist() == [-0.2, -0.39, 0.2]
    assert np.round(c.grad("x"), 2).tolist() == [0.39, -0.59]


def _neuron_by_layers(w: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """The same neuron as nl.Linear(n, 1) then nl.Sigmoid: (f, dW, db, dx)."""
    lin, sig = nl.Linear(len(x), 1, dtype=np.float64), nl.Sigmoid()
    lin.params["W"][:] = w[:-1, None]
    lin.params["b"][:] = w[-1]
    lin.zero_grad()
    f = sig.forward(lin.forward(x[None, :]))
    dx = lin.backward(sig.backward(np.ones((1, 1))))
    assert dx is not None
    return float(f[0, 0]), lin.grads["W"][:, 0].copy(), lin.grads["b"].copy(), dx[0]


@pytest.mark.parametrize("seed", [None, 0, 1, 2])
@pytest.mark.parametrize("gates", ["elementary", "sigmoid"])
def test_neuron_agrees_with_linear_and_sigmoid_layers(seed, gates):
    rng = np.random.default_rng(seed)
    w, x = (np.array(W), np.array(X)) if seed is None else (
        rng.standard_normal(4), rng.standard_normal(3))
    c = sigmoid_neuron(w, x, gates=gates)
    c.output.backward()
    f, dW, db, dx = _neuron_by_layers(w, x)
    assert abs(c.output.data - f) < 1e-12
    np.testing.assert_allclose(c.grad("w")[:-1], dW, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c.grad("w")[-1:], db, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c.grad("x"), dx, rtol=0, atol=1e-12)


@pytest.mark.parametrize("gates", ["elementary", "sigmoid"])
def test_neuron_against_differences(gates):
    def build(w0: float, w1: float, w2: float, x0: float, x1: float) -> Value:
        return sigmoid_neuron([w0, w1, w2], [x0, x1], gates=gates).output
    check_against_differences(build, {"w0": 2.0, "w1": -3.0, "w2": -3.0, "x0": -1.0, "x1": -2.0})
    check_against_differences(build, {"w0": 0.4, "w1": 1.1, "w2": -0.2, "x0": 0.7, "x1": -1.3})


# -- the notes' staged example, f = (x + σ(y)) / (σ(x) + (x + y)²) -----------------------------
def _staged_by_hand(x: float, y: float) -> tuple[dict[str, float], float, float]:
    """The notes' staged forward and backward, one line per stage: ({stage: value,
    "d" + stage: gradient}, dx, dy)."""
    sigy = 1.0 / (1 + math.exp(-y))  # (1)
    num = x + sigy  # (2)
    sigx = 1.0 / (1 + math.exp(-x))  # (3)
    xpy = x + y  # (4)
    xpysqr = xpy**2  # (5)
    den = sigx + xpysqr  # (6)
    invden = 1.0 / den  # (7)
    f = num * invden  # (8)
    dnum = invden  # backprop f = num * invden
    dinvden = num
    dden = (-1.0 / den**2) * dinvden  # (7)
    dsigx = 1 * dden  # (6)
    dxpysqr = 1 * dden
    dxpy = (2 * xpy) * dxpysqr  # (5)
    dx = 1 * dxpy  # (4)
    dy = 1 * dxpy
    dx += ((1 - sigx) * sigx) * dsigx  # (3): note +=, x is used again
    dx += 1 * dnum  # (2)
    dsigy = 1 * dnum
    dy += ((1 - sigy) * sigy) * dsigy  # (1)
    values = dict(sigy=sigy, num=num, sigx=sigx, xpy=xpy, xpysqr=xpysqr, den=den,
                  invden=invden, f=f)
    grads = dict(num=dnum, invden=dinvden, den=dden, sigx=dsigx, xpysqr=dxpysqr, xpy=dxpy,
                 sigy=dsigy, f=1.0)
    return {**values, **{f"d{k}": g for k, g in grads.items()}}, dx, dy


@pytest.mark.parametrize(("x", "y"), [(3.0, -4.0), (-0.5, 1.5)])
def test_staged_example_matches_the_notes_stage_by_stage(x, y):
    c = staged_circuit(x, y)
    c.output.backward()
    expected, dx, dy = _staged_by_hand(x, y)
    nodes = by_label(c.output)
    for name in ["sigy", "num", "sigx", "xpy", "xpysqr", "den", "invden", "f"]:
        assert nodes[name].data == pytest.approx(expected[name], rel=1e-14)
        assert nodes[name].grad == pytest.approx(expected[f"d{name}"], rel=1e-14)
    assert float(c.grad("x")) == pytest.approx(dx, rel=1e-14)
    assert float(c.grad("y")) == pytest.approx(dy, rel=1e-14)


def test_staged_example_against_differences():
    def build(x: float, y: float) -> Value:
        return staged_circuit(x, y).output
    check_against_differences(build, {"x": 3.0, "y": -4.0})
    check_against_differences(build, {"x": -0.5, "y": 1.5})


# -- a tiny two-layer network ------------------------------------------------------------------
LAYERS = {"sigmoid": nl.Sigmoid, "tanh": nl.Tanh, "relu": nl.ReLU}


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_two_layer_net_agrees_with_the_layers(activation):
    rng = np.random.default_rng(7)
    x, W1, b1 = rng.standard_normal(3), rng.standard_normal((3, 4)), rng.standard_normal(4)
    W2, b2 = rng.standard_normal((4, 1)), rng.standard_normal(1)
    c = two_layer_net(x, W1, b1, W2, b2, activation=activation)
    c.output.backward()

    l1, act, l2 = (nl.Linear(3, 4, dtype=np.float64), LAYERS[activation](),
                   nl.Linear(4, 1, dtype=np.float64))
    l1.params["W"][:], l1.params["b"][:], l2.params["W"][:], l2.params["b"][:] = W1, b1, W2, b2
    l1.zero_grad()
    l2.zero_grad()
    f = l2.forward(act.forward(l1.forward(x[None, :])))
    dx = l1.backward(act.backward(l2.backward(np.ones((1, 1)))))
    assert dx is not None
    assert abs(c.output.data - f[0, 0]) < 1e-12
    for name, grad in [("W1", l1.grads["W"]), ("b1", l1.grads["b"]), ("W2", l2.grads["W"]),
                       ("b2", l2.grads["b"]), ("x", dx[0])]:
        np.testing.assert_allclose(c.grad(name), grad, rtol=0, atol=1e-12, err_msg=name)


def test_two_layer_net_against_differences():
    rng = np.random.default_rng(3)
    x, W1, b1, W2 = (rng.standard_normal(2), rng.standard_normal((2, 3)),
                     rng.standard_normal(3), rng.standard_normal(3))
    point = {"x0": x[0], "x1": x[1], "b2": 0.3,
             **{f"W1[{i},{j}]": W1[i, j] for i in range(2) for j in range(3)},
             **{f"b1[{j}]": b1[j] for j in range(3)}, **{f"W2[{j}]": W2[j] for j in range(3)}}

    def build(**p: float) -> Value:
        return two_layer_net([p["x0"], p["x1"]],
                             [[p[f"W1[{i},{j}]"] for j in range(3)] for i in range(2)],
                             [p[f"b1[{j}]"] for j in range(3)], [p[f"W2[{j}]"] for j in range(3)],
                             p["b2"], activation="tanh").output
    check_against_differences(build, point)


# -- each gate's rule --------------------------------------------------------------------------
GATE_CASES: list[tuple[str, Callable[[Value, Value], Value]]] = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("max", lambda a, b: maximum(a, b)),
    ("constants", lambda a, b: 2.5 - (3 * a + 1) / 4 + 1 / b - a / -2 + (b - 1.5) * 2),
    ("pow", lambda a, b: a**3 + b**-2 + (b * b) ** 0.5), ("exp", lambda a, b: exp(a * b)),
    ("log", lambda a, b: log(a * a + b)), ("sigmoid", lambda a, b: sigmoid(a - b)),
    ("tanh", lambda a, b: tanh(a * b)), ("relu", lambda a, b: relu(a) + relu(-b)),
    ("neg", lambda a, b: -a * b),
    ("numpy scalars", lambda a, b: np.float64(2) * a + np.float32(3) * b),
]


@pytest.mark.parametrize(("name", "fn"), GATE_CASES, ids=[c[0] for c in GATE_CASES])
@pytest.mark.parametrize(("a", "b"), [(1.3, 0.7), (-0.9, 2.1)])
def test_every_gate_against_differences(name, fn, a, b):
    check_against_differences(lambda a, b: fn(Value(a, "a"), Value(b, "b")), {"a": a, "b": b})


def test_add_distributes_multiply_swaps_max_routes():
    a, b = Value(3.0, "a"), Value(-2.0, "b")
    for f, da, db in [(a + b, 1.0, 1.0), (a * b, -2.0, 3.0), (maximum(a, b), 1.0, 0.0),
                      (maximum(b, a), 1.0, 0.0), (a.relu(), 1.0, 0.0), (b.relu(), 0.0, 0.0)]:
        a.grad = b.grad = 0.0  # backward zeroes only the nodes of its own graph
        g = (f * 5.0).named("g")  # upstream gradient 5 at f
        g.backward()
        assert (a.grad, b.grad) == (5 * da, 5 * db)


def test_relu_at_zero_follows_the_layer():
    x = Value(0.0)
    x.relu().backward()
    layer = nl.ReLU()
    layer.forward(np.zeros((1, 1)))
    assert x.grad == layer.backward(np.ones((1, 1)))[0, 0] == 0.0  # type: ignore[index]


def test_gradients_add_up_where_a_node_is_used_twice():
    x, y = Value(3.0, "x"), Value(-2.0, "y")
    (x * x).backward()
    assert x.grad == 6.0  # the multiply gate sends y·1 = 3 twice
    (x * y + x).backward()
    assert (x.grad, y.grad) == (-1.0, 3.0)  # y + 1 from the two uses of x
    steps = backward_steps(x * y + x)
    last = [s for s in steps if s.node is x and s.phase == "backward"][0]
    assert [c.amount for c in last.contributions] == [1.0, -2.0]  # from the add, then the mul


def test_backward_twice_gives_the_same_numbers():
    c = sigmoid_neuron(W, X)
    c.output.backward()
    first = c.grad("w")
    c.output.backward()
    np.testing.assert_array_equal(c.grad("w"), first)


def test_a_long_chain_needs_no_recursion():
    x = Value(0.5, "x")
    total = x
    for _ in range(5000):
        total = total + x
    total.backward()
    assert x.grad == 5001.0


def test_bad_inputs_get_clear_errors():
    x = Value(2.0, "x")
    with pytest.raises(ValueError, match="finite"):
        Value(float("nan"))
    with pytest.raises(TypeError, match="real number"):
        Value("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exponent"):
        x ** x  # type: ignore[operator]
    with pytest.raises(TypeError, match="exponent"):
        2 ** x  # type: ignore[operator]
    with pytest.raises(ValueError, match="positive"):
        log(-x)
    with pytest.raises(ValueError, match="too large"):
        exp(x * 1000)
    with pytest.raises(ValueError, match="not a finite real number"):
        (-x) ** 0.5
    with pytest.raises(ValueError, match="one weight per input plus the bias"):
        sigmoid_neuron([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="activation must be one of"):
        two_layer_net([1.0], [[1.0]], [0.0], [1.0], 0.0, activation="elu")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="no input array 'v'"):
        simple_circuit().grad("v")
    assert set(GATES) >= {"add", "mul", "max", "sigmoid", "input"}


# -- the step-by-step trace --------------------------------------------------------------------
TRACE = """\
 1  forward   x = -2   (input)
 2  forward   y = 5   (input)
 3  forward   q = x + y = 3   (add)
 4  forward   z = -4   (input)
 5  forward   f = q * z = -12   (mul)
 6  backward  df/df = 1   (the output's gradient with respect to itself)
 7  backward  df/dz = 3 × 1 = 3   (from f = q * z: mul swaps its inputs)
 8  backward  df/dq = -4 × 1 = -4   (from f = q * z: mul swaps its inputs)
 9  backward  df/dy = 1 × (-4) = -4   (from q = x + y: add distributes the gradient equally)
10  backward  df/dx = 1 × (-4) = -4   (from q = x + y: add distributes the gradient equally)"""


def test_trace_of_the_first_example():
    steps = backward_steps(simple_circuit().output)
    assert format_trace(steps) == TRACE
    assert [(s.phase, s.name, s.result) for s in steps] == [
        ("forward", "x", -2.0), ("forward", "y", 5.0), ("forward", "q", 3.0),
        ("forward", "z", -4.0), ("forward", "f", -12.0), ("backward", "f", 1.0),
        ("backward", "z", 3.0), ("backward", "q", -4.0), ("backward", "y", -4.0),
        ("backward", "x", -4.0)]


@pytest.mark.parametrize("build", [lambda: simple_circuit().output,
                                   lambda: staged_circuit().output,
                                   lambda: sigmoid_neuron(W, X).output])
def test_trace_order_forward_then_backward(build):
    out = build()
    steps = backward_steps(out)
    nodes = topological_order(out)
    assert [s.number for s in steps] == list(range(1, 2 * len(nodes) + 1))
    assert [s.phase for s in steps] == ["forward"] * len(nodes) + ["backward"] * len(nodes)
    at = {(s.phase, s.node): s.number for s in steps}
    for node in nodes:
        for inp in node.inputs:  # forward: after its inputs; backward: after its users
            assert at["forward", inp] < at["forward", node]
            assert at["backward", node] < at["backward", inp]
    for s in steps:
        if s.phase == "backward":
            assert s.result == s.node.grad
            if s.node is not out:  # the chain rule: the terms add up to the gradient
                assert math.fsum(c.amount for c in s.contributions) == pytest.approx(
                    s.result, rel=1e-15, abs=1e-300)
        else:
            assert s.result == s.node.data


def test_steps_as_json():
    import json

    steps = backward_steps(staged_circuit().output)
    data = json.loads(json.dumps([s.to_dict() for s in steps]))
    assert data[0] == {"number": 1, "phase": "forward", "name": "x", "result": 3.0,
                       "expression": "", "equation": "x = 3", "reasons": ["input"],
                       "contributions": []}
    last = data[-1]  # x, used three times: three terms that add up
    assert last["name"] == "x" and len(last["contributions"]) == 3
    assert last["reasons"][0] == "a fork: the terms add up"
    assert math.fsum(c["amount"] for c in last["contributions"]) == pytest.approx(last["result"])


def test_trace_names_unlabelled_gates_by_position():
    steps = backward_steps(sigmoid_neuron(W, X).output)
    assert steps[2].describe() == "n3 = w0 * x0 = -2   (mul)"
    assert steps[18].equation() == "df/dw2 = 1 × 0.1966 = 0.1966"


# -- layout and drawing ------------------------------------------------------------------------
def test_layout_puts_inputs_left_output_right_by_longest_path():
    out = staged_circuit().output
    lay = layout_graph(out)
    assert lay.columns[-1] == (out,)
    assert {v.label for v in lay.columns[0]} == {"x", "y"}
    for node in topological_order(out):
        if node.inputs:
            assert lay.column(node) == 1 + max(lay.column(i) for i in node.inputs)
    assert sorted(len(r) for r in lay.routes.values())[-1] == 4  # x → num crosses 2 columns


def _crossings_pair_by_pair(lay) -> int:
    """Crossings counted from the routes, every pair of pieces between two columns."""
    pieces: dict[int, list[tuple[float, float]]] = {}
    for (inp, _, _), route in lay.routes.items():
        for c, (a, b) in enumerate(zip(route, route[1:]), start=lay.column(inp)):
            pieces.setdefault(c, []).append((a, b))
    return sum((a - p) * (b - q) < 0 for col in pieces.values()
               for i, (a, b) in enumerate(col) for p, q in col[i + 1:])


def test_layout_ordering_reduces_crossings():
    rng = np.random.default_rng(0)
    for out in [staged_circuit().output, two_layer_net(
            rng.standard_normal(3), rng.standard_normal((3, 2)), rng.standard_normal(2),
            rng.standard_normal(2), 0.1).output]:
        sorted_, unsorted = layout_graph(out), layout_graph(out, sweeps=0)
        assert sorted_.crossings < unsorted.crossings
        for lay in (sorted_, unsorted):
            assert lay.crossings == _crossings_pair_by_pair(lay)
    assert layout_graph(sigmoid_neuron(W, X).output).crossings == 0


def _svg_nodes(svg: str) -> dict[str, dict[str, str]]:
    """Each node group's texts by class, keyed by its name (label text)."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    out = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class", "").startswith("node"):
            texts = {t.get("class", "").split()[0]: t.text or "" for t in g.iter(f"{SVG}text")}
            texts["class"] = g.get("class", "")
            out[texts["label"]] = texts
    return out


def test_svg_shows_every_value_and_gradient():
    out = staged_circuit().output
    svg = to_svg(out)
    nodes = _svg_nodes(svg)
    assert len(nodes) == len(topological_order(out))
    for v in topological_order(out):
        assert nodes[v.label]["value"] == format_number(v.data, 3)
        assert nodes[v.label]["grad"] == format_number(v.grad, 3)
        assert nodes[v.label].get("op", "") == v.op
    assert nodes["invden"]["op"] == "1/x" and nodes["f"]["value"] == "1.55"
    for bad in ("<script", "<image", "href=\"http", "<foreignObject", "@import"):
        assert bad not in svg


def test_svg_for_a_step_shows_what_is_known_then():
    out = simple_circuit().output
    steps = backward_steps(out)
    bare = _svg_nodes(to_svg(out, step=0)).values()
    assert all("value" not in n and "grad" not in n for n in bare)
    for k in range(1, len(steps) + 1):
        nodes = _svg_nodes(to_svg(out, step=k))
        valued = {s.name for s in steps[:k] if s.phase == "forward"}
        graded = {s.name for s in steps[:k] if s.phase == "backward"}
        assert {n for n, t in nodes.items() if "value" in t} == valued
        assert {n for n, t in nodes.items() if "grad" in t} == graded
        assert [n for n, t in nodes.items() if "current" in t["class"]] == [steps[k - 1].name]
    after_4 = _svg_nodes(to_svg(out, step=4))
    assert after_4["q"]["value"] == "3" and "grad" not in after_4["q"]
    assert "value" not in after_4["f"]
    after_8 = _svg_nodes(to_svg(out, step=8))
    assert (after_8["z"]["grad"], after_8["q"]["grad"]) == ("3", "-4")
    assert "grad" not in after_8["x"]
    with pytest.raises(ValueError, match="step must be an int from 0 to 10"):
        to_svg(out, step=11)


def test_svg_escapes_labels():
    a, b = Value(1.0, "<a & b>"), Value(2.0, 'say "hi"')
    svg = to_svg((a * b).named("</svg>"))
    nodes = _svg_nodes(svg)  # parses
    assert set(nodes) == {"<a & b>", 'say "hi"', "</svg>"}
    assert nodes["</svg>"]["value"] == "2" and nodes["<a & b>"]["grad"] == "2"


def test_docstring_examples_run():
    import doctest

    import neuronlab.graph
    import neuronlab.graph.trace

    for module in (neuronlab.graph, neuronlab.graph.trace):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
