# %% [markdown]
# # Backpropagation on computational graphs
#
# Writing down the gradient of a whole network by hand is hopeless, so the lecture notes
# describe a model as a **computational graph** of simple operations (gates) and compute
# every gradient by **backpropagation**: applying the chain rule recursively along the
# graph, from the output back to the inputs. Two facts make it work:
#
# - every gate can compute, on its own, its output *and* its **local gradient** (the
#   derivative of its output with respect to each of its inputs), knowing nothing about the
#   rest of the graph;
# - in the backward pass each gate receives the gradient of the final output with respect
#   to its own output (the *upstream* gradient) and multiplies it by its local gradient to
#   get the gradient for each input.
#
# `nl.graph` is a small engine that runs backprop on single numbers, one gate at a time, so
# every step can be printed and drawn. At the end we meet the same computation in neuronlab's
# layers, which do it on whole arrays.

# %% [markdown]
# ## A first example: f = (x + y) z
#
# The notes' first circuit has an add gate `q = x + y` and a multiply gate `f = q z`, at
# x = −2, y = 5, z = −4. Forward: q = 3, f = −12. Backward: `df/dz = q = 3` and
# `df/dq = z = −4`; the add gate has local gradient 1 for both inputs, so by the chain rule
# `df/dx = df/dq · dq/dx = −4 · 1` and likewise `df/dy = −4`.
#
# A `Value` is a number that records the expression it is computed in; `backward()` fills
# every node's `grad`.

# %%
import numpy as np

import neuronlab as nl
from neuronlab.graph import Value, backward_steps, format_trace

x, y, z = Value(-2.0, "x"), Value(5.0, "y"), Value(-4.0, "z")
q = (x + y).named("q")
f = (q * z).named("f")
f.backward()
print(f"q = {q.data}, f = {f.data}; df/dx = {x.grad}, df/dy = {y.grad}, df/dz = {z.grad}")
assert (q.data, f.data) == (3.0, -12.0)
assert (x.grad, y.grad, z.grad, q.grad) == (-4.0, -4.0, 3.0, -4.0)

# %% [markdown]
# `backward_steps` replays the two passes as numbered steps, each with the rule that
# produced it: the forward pass visits every gate after its inputs, the backward pass visits
# them in reverse.

# %%
print(format_trace(backward_steps(f)))

# %% [markdown]
# ## Drawing the circuit
#
# The notes draw circuits with values in green above the wires and gradients in red below.
# `nl.graph.draw(f)` makes that drawing (an SVG picture, shown here and in Jupyter;
# `nl.graph.to_svg(f)` is the same document as text, and `draw(f, step=k)` shows the graph
# after step k of the trace, so backprop can be watched gate by gate). Inputs are on the left,
# the output on the right.

# %%
from neuronlab.graph import draw, to_svg, topological_order

svg = to_svg(f)
assert svg.startswith("<svg") and "-12" in svg
print(f"to_svg gave a {len(svg):,}-character SVG document")
draw(f)

# %% [markdown]
# Stepping: after step 8 of the trace above, the forward values are all known and the
# backward pass has reached `q` (its gradient −4, in red) but not yet `x` and `y`.

# %%
draw(f, step=8)

# %% [markdown]
# ## What each gate does with the gradient
#
# Three patterns cover most of what happens in a network:
#
# - the **add** gate *distributes* the upstream gradient equally to all its inputs,
#   whatever their values;
# - the **max** gate *routes* the whole gradient to the input that was larger in the forward
#   pass, and gives the other one 0;
# - the **multiply** gate *swaps* its inputs: each input receives the *other* input's value
#   times the upstream gradient. (So scaling the data by 1000 scales the gradient on the
#   weights by 1000, one reason preprocessing matters.)
#
# The notes' example: `f = 2 (x y + max(z, w))` at x = 3, y = −4, z = 2, w = −1.

# %%
from neuronlab.graph import GATES

x, y, z, w = Value(3.0, "x"), Value(-4.0, "y"), Value(2.0, "z"), Value(-1.0, "w")
xy = (x * y).named("xy")
m = z.max(w).named("m")
f = ((xy + m) * 2.0).named("f")
f.backward()
for gate in ("add", "max", "mul"):
    print(f"{gate:>4}: {GATES[gate].rule}")
print(f"f = {f.data}; df/dx = {x.grad}, df/dy = {y.grad}, df/dz = {z.grad}, df/dw = {w.grad}")
assert f.data == -20.0
assert xy.grad == m.grad == 2.0  # the add gate passed 2 to both its inputs
assert (z.grad, w.grad) == (2.0, 0.0)  # the max gate routed everything to z = 2 > w = -1
assert (x.grad, y.grad) == (-8.0, 6.0)  # the multiply gate swapped: y · 2 and x · 2
draw(f)

# %% [markdown]
# ## A sigmoid neuron, gate by gate
#
# The notes' 2-D neuron is `f = σ(w0 x0 + w1 x1 + w2)` with weights `w = [2, −3, −3]` (the
# last is the bias) and inputs `x = [−1, −2]`. Its weighted sum is 1, so `f = σ(1) ≈ 0.73`.
# `nl.graph.sigmoid_neuron` builds it from elementary gates, the sigmoid spelled out as
# `1 / (1 + exp(−s))`: multiply by −1, exp, add 1, invert.

# %%
from neuronlab.graph import sigmoid_neuron

neuron = sigmoid_neuron(w=[2.0, -3.0, -3.0], x=[-1.0, -2.0])
neuron.output.backward()
f_value = neuron.output.data
dw, dx = neuron.grad("w"), neuron.grad("x")
print(f"f = {f_value:.4f}; dw = {np.round(dw, 2)}, dx = {np.round(dx, 2)}")
assert round(f_value, 2) == 0.73
assert np.allclose(dw, [-0.2, -0.39, 0.2], atol=0.005)
assert np.allclose(dx, [0.39, -0.59], atol=0.005)
draw(neuron.output)

# %% [markdown]
# The four gates of the sigmoid have one combined local gradient, which the notes derive:
# `dσ(s)/ds = (1 − σ(s)) σ(s)`. At s = 1 that is (1 − 0.73) · 0.73 ≈ 0.2, and then the
# multiply gates swap: `dw = 0.2 · [x0, x1, 1]` and `dx = 0.2 · [w0, w1]`. Grouping the four
# gates into one sigmoid gate (`gates="sigmoid"`) gives the same gradients with fewer
# steps: how far to break an expression into gates is a choice of convenience.

# %%
ds = f_value * (1 - f_value)
assert np.allclose(dw, ds * np.array([-1.0, -2.0, 1.0]), rtol=0, atol=1e-15)
assert np.allclose(dx, ds * np.array([2.0, -3.0]), rtol=0, atol=1e-15)

one_gate = sigmoid_neuron(w=[2.0, -3.0, -3.0], x=[-1.0, -2.0], gates="sigmoid")
steps_elementary = backward_steps(neuron.output)
steps_one_gate = backward_steps(one_gate.output)
print(f"{len(steps_elementary)} steps with elementary gates, {len(steps_one_gate)} with one "
      "sigmoid gate")
assert np.allclose(one_gate.grad("w"), dw, rtol=0, atol=1e-15)
assert len(steps_one_gate) < len(steps_elementary)

# %% [markdown]
# ## Staged computation, and gradients that add up at forks
#
# For a messier expression the notes compute the forward pass in stages, keeping every
# intermediate variable, and then backpropagate through the stages in reverse:
#
#     f(x, y) = (x + σ(y)) / (σ(x) + (x + y)²)      at x = 3, y = −4
#
# `x` is used three times and `y` twice. When a variable feeds several gates, its gradient
# is the **sum** of what comes back along each branch (the multivariable chain rule), so
# backward *adds* (`+=`) into gradients instead of overwriting them. The trace marks these
# forks.

# %%
from neuronlab.graph import staged_circuit

staged = staged_circuit(x=3.0, y=-4.0)
steps = backward_steps(staged.output)
forks = [s for s in steps if len(s.contributions) > 1]
for s in forks:
    print(f"{s.number:>2}  {s.describe()}")
uses = {s.name: len(s.contributions) for s in forks}
assert uses["x"] == 3 and uses["y"] == 2


# the same function in plain floats, to check the gradients by centered differences
def f_plain(x, y):
    def sig(v):
        return 1 / (1 + np.exp(-v))

    return (x + sig(y)) / (sig(x) + (x + y) ** 2)


h = 1e-6
numerical = [(f_plain(3 + h, -4) - f_plain(3 - h, -4)) / (2 * h),
             (f_plain(3, -4 + h) - f_plain(3, -4 - h)) / (2 * h)]
analytic = [float(staged.grad("x")), float(staged.grad("y"))]
print(f"f = {staged.output.data:.6f}; analytic gradient {np.round(analytic, 6)}, "
      f"numerical {np.round(numerical, 6)}")
assert abs(staged.output.data - f_plain(3, -4)) < 1e-15
assert np.allclose(analytic, numerical, rtol=1e-7, atol=1e-9)

# %%
draw(staged.output)

# %% [markdown]
# ## Layers: the same computation on whole arrays
#
# A network is the same idea at a coarser grain. The notes' "building blocks": each
# **layer** implements a forward pass that computes its output and caches what the
# backward pass will need, and a backward pass that turns the gradient on its output into
# gradients on its parameters and on its input. Layers then stack like bricks.
#
# In neuronlab the 2-D sigmoid neuron is a `Linear(2, 1)` layer (with `W = [[2], [−3]]`,
# `b = [−3]`) followed by a `Sigmoid` layer. Calling `backward` with `dout = 1` (df/df)
# reproduces the gate-level gradients: `grads["W"]` is `dw[:2]`, `grads["b"]` is `dw[2]`,
# and the returned input gradient is `dx`.

# %%
linear = nl.Linear(2, 1, rng=0, dtype=np.float64)
linear.params["W"][:, 0] = [2.0, -3.0]
linear.params["b"][:] = -3.0
act = nl.Sigmoid()
inputs = np.array([[-1.0, -2.0]])  # one example, as a row

out = act.forward(linear.forward(inputs))
dinputs = linear.backward(act.backward(np.ones_like(out)))
print(f"f = {out[0, 0]:.4f}; dW = {linear.grads['W'][:, 0]}, db = {linear.grads['b']}, "
      f"dx = {dinputs[0]}")
assert abs(out[0, 0] - f_value) < 1e-12
assert np.allclose(linear.grads["W"][:, 0], dw[:2], rtol=0, atol=1e-12)
assert np.allclose(linear.grads["b"], dw[2:], rtol=0, atol=1e-12)
assert np.allclose(dinputs[0], dx, rtol=0, atol=1e-12)

# %% [markdown]
# The same holds for a whole two-layer network. `nl.graph.two_layer_net` builds
# `f = σ(x W1 + b1) W2 + b2` for one example gate by gate, in the layout of `nl.Linear`, so
# its gradients compare entry by entry with a `Sequential` of layers.

# %%
from neuronlab.graph import two_layer_net

rng = np.random.default_rng(0)
x1 = rng.standard_normal(3)
W1, b1 = rng.standard_normal((3, 4)), rng.standard_normal(4)
W2, b2 = rng.standard_normal((4, 1)), rng.standard_normal(1)

gates = two_layer_net(x1, W1, b1, W2, b2, activation="sigmoid")
gates.output.backward()

net = nl.Sequential([nl.Linear(3, 4, rng=0, dtype=np.float64), nl.Sigmoid(),
                     nl.Linear(4, 1, rng=0, dtype=np.float64)])
for key, value in {"0.W": W1, "0.b": b1, "2.W": W2, "2.b": b2}.items():
    net.params[key][...] = value
scores = net.forward(x1.reshape(1, 3))
dx1 = net.backward(np.ones_like(scores))

assert abs(scores[0, 0] - gates.output.data) < 1e-12
for key, name in {"0.W": "W1", "0.b": "b1", "2.W": "W2", "2.b": "b2"}.items():
    assert np.allclose(net.grads[key], gates.grad(name), rtol=0, atol=1e-12), key
assert np.allclose(dx1[0], gates.grad("x"), rtol=0, atol=1e-12)
n_nodes = len(topological_order(gates.output))
print(f"{n_nodes} gates and inputs in the graph; 3 layers in the network; same gradients")

# %% [markdown]
# ## Your own layer
#
# Because a layer is just `forward` (caching what it needs) and `backward` (adding into
# `grads` and returning the input gradient), a new building block is a few lines. Here is a
# softplus activation, `ln(1 + e^x)`, whose derivative is the sigmoid. `nl.gradcheck`
# compares its backward with centered finite differences, as the notes recommend for every
# new piece of backprop code.

# %%
class Softplus(nl.Layer):
    """y = ln(1 + e^x), elementwise; dy/dx = σ(x)."""

    def forward(self, x, *, training=False):
        self.x = x  # the cache: what backward needs
        return np.logaddexp(0.0, x)

    def backward(self, dout, *, input_grad=True):
        return dout / (1.0 + np.exp(-self.x))


report = nl.gradcheck(Softplus(), x=np.random.default_rng(1).standard_normal((4, 5)))
print(report)
assert report.passed and report.max_error < 1e-7

# %% [markdown]
# Stacked between `Linear` layers it trains like any built-in activation; the rest of the
# library (gradient checks, the trainer, the monitor) needs nothing more.

# %%
model = nl.Sequential([nl.Linear(2, 50, rng=0), Softplus(), nl.Linear(50, 3, init="normal", rng=1)])
X, y = nl.data.spiral(n_per_class=100, n_classes=3, seed=0)
loss = nl.SoftmaxCrossEntropy()
first = loss.forward(model.forward(X), y)
trainer = nl.Trainer(model, loss, nl.Adam(lr=0.05), monitor=False)
history = trainer.fit(X, y, epochs=100, batch_size=32, seed=0)
print(f"loss {first:.3f} -> {history['loss'][-1]:.3f}, training accuracy {history['acc'][-1]:.2f}")
assert abs(first - np.log(3)) < 0.01  # small output weights: the loss starts at ln 3
assert history["loss"][-1] < 0.2 and history["acc"][-1] > 0.9

# %% [markdown]
# Next: [data preprocessing](04_preprocessing.md).
