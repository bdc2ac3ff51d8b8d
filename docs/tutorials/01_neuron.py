# %% [markdown]
# # The neuron and its activation functions
#
# The lecture notes start from a (very rough) model of a biological neuron: the dendrites
# carry input signals `x_i`, each multiplied by a synaptic strength `w_i`; the cell body sums
# them with a bias `b`, and the neuron "fires" at a rate given by an **activation function**
# `f` of that sum. One neuron computes
#
#     output = f(w · x + b)
#
# This page builds that neuron from neuronlab's layers, shows that on its own it is a linear
# classifier, and then walks through the activation functions the notes compare (sigmoid,
# tanh, ReLU, leaky ReLU, maxout, ELU), with their shapes, their derivatives and their
# trade-offs. Every claim the page makes is an `assert` that runs when the docs are built.

# %% [markdown]
# ## One neuron, two ways
#
# The notes write the neuron as a few lines of NumPy: a weighted sum plus a bias, then a
# sigmoid. In neuronlab the same neuron is a `Linear` layer with one output unit followed by
# a `Sigmoid` layer. A `Linear` layer computes `x @ W + b` for a whole batch of rows at once;
# its parameters live in the dict `layer.params`.

# %%
import numpy as np

import neuronlab as nl

inputs = np.array([0.5, -1.0, 2.0])
weights = np.array([0.2, 0.4, -0.1])
bias = 0.3

# the notes' Neuron.forward
cell_body_sum = np.sum(inputs * weights) + bias
firing_rate = 1.0 / (1.0 + np.exp(-cell_body_sum))

# the same neuron as two layers (float64, so the two agree to the last bits)
linear = nl.Linear(3, 1, dtype=np.float64, rng=0)
linear.params["W"][:, 0] = weights
linear.params["b"][:] = bias
sigmoid = nl.Sigmoid()
out = sigmoid.forward(linear.forward(inputs.reshape(1, 3)))

print(f"weighted sum {cell_body_sum:.4f}, firing rate {firing_rate:.4f}, layers {out[0, 0]:.4f}")
assert abs(out[0, 0] - firing_rate) < 1e-15

# %% [markdown]
# ## A single neuron is a linear classifier
#
# Read the sigmoid's output as the probability of the positive class: the neuron predicts
# "positive" when `σ(w · x + b) > 0.5`, that is when `w · x + b > 0`. The boundary between
# the two decisions is the hyperplane `w · x + b = 0`, so a neuron trained with the
# cross-entropy loss is a **binary softmax (logistic regression) classifier**; trained with
# a hinge loss it is a **binary SVM**.
#
# `nl.mlp(2, [], 1)` is a network with no hidden layer: one `Linear` unit. We train it with
# `SigmoidCrossEntropy` (the sigmoid lives inside the loss) on two Gaussian blobs, which a line
# separates, and on the XOR pattern, which no line separates.

# %%
def train_single_neuron(X, y):
    neuron = nl.mlp(2, [], 1, rng=0)
    trainer = nl.Trainer(neuron, nl.SigmoidCrossEntropy(), nl.Adam(lr=0.05), monitor=False)
    history = trainer.fit(X, y, epochs=60, batch_size=32, seed=0)
    return neuron, history.epochs[-1]["acc"]


rng = np.random.default_rng(0)
y_blobs = np.repeat([0, 1], 100)
X_blobs = (rng.standard_normal((200, 2)) + np.where(y_blobs[:, None] == 1, 1.5, -1.5)).astype(np.float32)
X_xor, y_xor = nl.data.xor(n=200, seed=0)
neuron_blobs, acc_blobs = train_single_neuron(X_blobs, y_blobs)
neuron_xor, acc_xor = train_single_neuron(X_xor, y_xor)
print(f"training accuracy: blobs {acc_blobs:.2f}, xor {acc_xor:.2f}")
assert acc_blobs > 0.95  # a line is all the blobs need
assert acc_xor < 0.75  # no line solves XOR: a hidden layer is needed (next tutorial)

# %% [markdown]
# The decision regions are half-planes: the boundary of one neuron is always a straight line.

# %%
from matplotlib.figure import Figure

import neuronlab.plots

fig = Figure(figsize=(10, 4.5))
for ax, model, X, y, title in [
    (fig.add_subplot(1, 2, 1), neuron_blobs, X_blobs, y_blobs, f"blobs: accuracy {acc_blobs:.2f}"),
    (fig.add_subplot(1, 2, 2), neuron_xor, X_xor, y_xor, f"XOR: accuracy {acc_xor:.2f}"),
]:
    neuronlab.plots.plot_decision_regions(model, X, y, ax=ax, resolution=150)
    ax.set_title(title)
fig

# %% [markdown]
# ## The activation functions
#
# Every activation in neuronlab is a small layer with both directions: `forward(x)` gives
# `f(x)` and, after it, `backward(dout)` gives `dout · f'(x)`. Feeding `dout = 1` reads off the
# derivative itself. (Sigmoid and tanh compute their derivative from their own output:
# `σ' = σ(1 − σ)` and `tanh' = 1 − tanh²`.)
#
# | activation | f(x) | range | notes' verdict |
# |---|---|---|---|
# | sigmoid | 1 / (1 + e^−x) | (0, 1) | saturates and kills gradients; not zero-centred |
# | tanh | (e^x − e^−x) / (e^x + e^−x) | (−1, 1) | still saturates, but zero-centred |
# | ReLU | max(0, x) | [0, ∞) | fast to compute and to train; units can die |
# | leaky ReLU | x if x > 0 else αx | ℝ | a small slope α for x < 0 against dying units |
# | maxout | max(w1·x + b1, w2·x + b2) | ℝ | generalises (leaky) ReLU; twice the parameters |
# | ELU | x if x > 0 else α(e^x − 1) | (−α, ∞) | not in the notes: a smooth ReLU whose negative outputs pull the mean towards 0 |

# %%
def value_and_slope(layer, x):
    """f(x) and f'(x) on a column of points, through the layer's forward and backward."""
    y = layer.forward(x)
    slope = layer.backward(np.ones_like(y))
    return y[:, 0], slope[:, 0]


x = np.linspace(-6.0, 6.0, 1201).reshape(-1, 1)  # float64: the layers compute in it
i0 = 600  # x[i0] == 0
assert x[i0, 0] == 0.0

# maxout in one dimension: the max of two lines, here max(x, -0.5 x - 1)
maxout = nl.Maxout(1, 1, pieces=2, rng=0, dtype=np.float64)
maxout.params["W"][...] = [[[1.0, -0.5]]]
maxout.params["b"][...] = [[0.0, -1.0]]

activations = {
    "sigmoid": nl.Sigmoid(),
    "tanh": nl.Tanh(),
    "ReLU": nl.ReLU(),
    "leaky ReLU (α = 0.1)": nl.LeakyReLU(alpha=0.1),
    "maxout (2 pieces)": maxout,
    "ELU (α = 1)": nl.ELU(alpha=1.0),
}
curves = {name: value_and_slope(layer, x) for name, layer in activations.items()}

# %% [markdown]
# Top row: the functions; bottom row: their derivatives, computed by each layer's `backward`.

# %%
fig = Figure(figsize=(15, 5))
for k, (name, (value, slope)) in enumerate(curves.items()):
    top, bottom = fig.add_subplot(2, 6, k + 1), fig.add_subplot(2, 6, k + 7)
    top.plot(x[:, 0], value, color="C0")
    bottom.plot(x[:, 0], slope, color="C3")
    top.set_title(name, fontsize="medium")
    for ax in (top, bottom):
        ax.axhline(0, color="0.7", lw=0.8)
        ax.axvline(0, color="0.7", lw=0.8)
        ax.tick_params(labelsize="x-small")
    bottom.set_xlabel("x", fontsize="small")
fig.axes[0].set_ylabel("f(x)")
fig.axes[1].set_ylabel("f'(x)")
fig.tight_layout()
fig

# %% [markdown]
# ### Sigmoid: saturation kills gradients
#
# The sigmoid's slope is largest at 0, where `σ'(0) = σ(0)(1 − σ(0)) = 0.5 · 0.5 = 0.25`, and
# it all but vanishes once `|x|` is a few units: at `x = ±6` it is about 0.0025, at `±10` less than
# 5e-5. In backpropagation this local gradient multiplies everything that flows back through
# the unit, so a saturated sigmoid lets (almost) no signal through to its weights and to the
# layers below. Even at its best a sigmoid divides the gradient by 4: through ten sigmoid
# layers the factor is at most 0.25^10 ≈ 1e-6.

# %%
sig_value, sig_slope = curves["sigmoid"]
assert sig_slope[i0] == 0.25 and sig_slope.max() == 0.25  # σ'(0) = 1/4 is the maximum
assert sig_slope[0] < 0.0025 and sig_slope[-1] < 0.0025  # saturated at |x| = 6

big = nl.Sigmoid()
big.forward(np.array([[-10.0, 10.0]]))
slope_at_10 = big.backward(np.ones((1, 2)))
print("σ'(±10) =", slope_at_10[0])
assert np.all(slope_at_10 < 5e-5)
print(f"best case through 10 sigmoid layers: 0.25**10 = {0.25**10:.1e}")

# %% [markdown]
# ### Sigmoid is not zero-centred; tanh is
#
# Sigmoid outputs are always positive. If the inputs `x` of the next neuron are all positive,
# the gradient on its weights, `dL/dw = dL/df · x`, has the sign of `dL/df` in every
# component: all positive or all negative for a given example. The weights can then only
# move in zig-zags. Summing over a batch of examples softens this, so the notes call it an
# inconvenience rather than a disaster. Tanh, `tanh(x) = 2σ(2x) − 1`, is a sigmoid stretched
# to (−1, 1) and centred on 0, which is why it is always preferred to the sigmoid.

# %%
rng = np.random.default_rng(0)
z = rng.standard_normal((1, 8))  # one example's pre-activations in the layer below
next_neuron = nl.Linear(8, 1, dtype=np.float64, rng=0)
upstream = np.array([[-0.7]])  # dL/df for this example

next_neuron.forward(nl.Sigmoid().forward(z))
next_neuron.backward(upstream)
dw_after_sigmoid = next_neuron.grads["W"][:, 0].copy()

next_neuron.zero_grad()
next_neuron.forward(nl.Tanh().forward(z))
next_neuron.backward(upstream)
dw_after_tanh = next_neuron.grads["W"][:, 0].copy()

print("signs of dL/dw after sigmoid:", np.sign(dw_after_sigmoid).astype(int))
print("signs of dL/dw after tanh:   ", np.sign(dw_after_tanh).astype(int))
assert np.all(dw_after_sigmoid < 0)  # every component has the sign of dL/df
assert len(set(np.sign(dw_after_tanh))) == 2  # tanh's outputs have both signs

# tanh is a scaled and shifted sigmoid
tanh_value, tanh_slope = curves["tanh"]
stretched = nl.Sigmoid().forward(2 * x)[:, 0]
assert np.max(np.abs(tanh_value - (2 * stretched - 1))) < 1e-12
assert tanh_slope[i0] == 1.0 and tanh_slope.max() == 1.0  # tanh'(0) = 1 is the maximum

# %% [markdown]
# ### ReLU, leaky ReLU, maxout and ELU
#
# ReLU thresholds at zero: its gradient is exactly 1 for `x > 0` and exactly 0 for `x < 0`
# (neuronlab takes 0 at the kink). Leaky ReLU keeps a small slope α on the left, so a unit
# with negative inputs still passes some gradient. Maxout takes the max of several linear
# pieces: with the pieces `x` and `0` it *is* a ReLU, and with `x` and `αx` a leaky ReLU,
# which is why the notes say it generalises both. ELU follows `α(e^x − 1)` on the left,
# tending to `−α`, and for α = 1 its slope is continuous at 0.

# %%
left, right = x[:, 0] < 0, x[:, 0] > 0
relu_value, relu_slope = curves["ReLU"]
assert np.all(relu_slope[left] == 0.0) and np.all(relu_slope[right] == 1.0)
assert np.all(relu_value[left] == 0.0)

leaky_value, leaky_slope = curves["leaky ReLU (α = 0.1)"]
assert np.allclose(leaky_slope[left], 0.1) and np.all(leaky_slope[right] == 1.0)

elu_value, elu_slope = curves["ELU (α = 1)"]
assert abs(elu_value[0] - (np.exp(-6.0) - 1.0)) < 1e-15  # α(e^x − 1) at x = −6
assert abs(elu_slope[i0 - 1] - 1.0) < 0.011 and elu_slope[i0 + 1] == 1.0  # smooth at 0

# maxout with pieces (x, 0) is ReLU; with pieces (x, αx) it is leaky ReLU
as_relu = nl.Maxout(1, 1, pieces=2, rng=0, dtype=np.float64)
as_relu.params["W"][...] = [[[1.0, 0.0]]]
as_relu.params["b"][...] = 0.0
as_leaky = nl.Maxout(1, 1, pieces=2, rng=0, dtype=np.float64)
as_leaky.params["W"][...] = [[[1.0, 0.1]]]
as_leaky.params["b"][...] = 0.0
assert np.array_equal(as_relu.forward(x)[:, 0], relu_value)
assert np.allclose(as_leaky.forward(x)[:, 0], leaky_value, rtol=0, atol=1e-15)
print("maxout parameters per unit (1 input, 2 pieces):", as_relu.counts()["params"],
      "against", nl.Linear(1, 1, rng=0).counts()["params"], "for a ReLU unit")

# %% [markdown]
# ### ReLU trains faster
#
# The notes quote Krizhevsky et al.: ReLU networks converged about six times faster than
# tanh networks. Part of the reason is that a ReLU does not saturate for positive inputs.
# Here the same two-layer network (100 hidden units, the same initial weights scaled for each
# activation, plain SGD at the same learning rate) learns the notes' three-class spiral.

# %%
X_spiral, y_spiral = nl.data.spiral(n_per_class=100, n_classes=3, seed=0)
epoch_losses = {}
for act in ["sigmoid", "tanh", "relu"]:
    model = nl.mlp(2, [100], 3, activation=act, init="he" if act == "relu" else "glorot", rng=0)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.2), monitor=False)
    history = trainer.fit(X_spiral, y_spiral, epochs=100, batch_size=32, seed=0)
    epoch_losses[act] = history["loss"]
    print(f"{act:>8}: loss after 100 epochs {history['loss'][-1]:.3f}, "
          f"accuracy {history['acc'][-1]:.2f}")
assert epoch_losses["relu"][-1] < epoch_losses["tanh"][-1] < epoch_losses["sigmoid"][-1]
assert epoch_losses["relu"][-1] < 0.5 * epoch_losses["tanh"][-1]

# %%
fig = Figure(figsize=(6.4, 4))
ax = fig.add_subplot()
for act, losses in epoch_losses.items():
    ax.plot(np.arange(1, len(losses) + 1), losses, label=act)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss (epoch mean)")
ax.set_yscale("log")
ax.set_title("Spiral, 2-100-3 network, SGD lr 0.2")
ax.legend()
fig

# %% [markdown]
# ### Dying ReLUs
#
# The price of ReLU: a unit whose weights are knocked (by one large update) to where
# `w · x + b < 0` for every training example outputs 0 everywhere, so its gradient is 0
# everywhere and no later update can revive it. The notes warn that with a learning rate
# set too high as much as 40% of a network can die. We train the spiral network again, once
# with a sensible learning rate and once with a far too large one, and count the hidden units
# that never fire on any training example (`nl.babysit.dead_units.dead_fraction`, which the
# `Monitor` records during training).

# %%
import neuronlab.babysit.dead_units

dead = {}
for lr in [1.0, 4.0]:
    model = nl.mlp(2, [100], 3, activation="relu", rng=0)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=lr), monitor=False)
    trainer.fit(X_spiral, y_spiral, epochs=20, batch_size=32, seed=0)
    hidden = model[1].forward(model[0].forward(X_spiral))  # Linear, then ReLU
    dead[lr] = nl.babysit.dead_units.dead_fraction(hidden)
    print(f"lr {lr}: {dead[lr]:.0%} of the hidden ReLUs are dead")
assert dead[1.0] < 0.05 and dead[4.0] > 0.25

# %% [markdown]
# A dead unit's weights get exactly zero gradient from the whole training set:

# %%
model.zero_grad()
loss = nl.SoftmaxCrossEntropy()
loss.forward(model.forward(X_spiral), y_spiral)
model.backward(loss.backward())
dead_units = hidden.max(axis=0) <= 0
print(f"{dead_units.sum()} dead units; largest |dL/dW| over their columns:",
      np.abs(model.grads["0.W"][:, dead_units]).max())
assert np.all(model.grads["0.W"][:, dead_units] == 0)
assert np.all(model.grads["0.b"][dead_units] == 0)

# %% [markdown]
# ## What to use
#
# The notes' advice, in one line each:
#
# - Use **ReLU**, be careful with the learning rate, and perhaps watch the fraction of dead
#   units (the `Monitor` does, and `nl.diagnose` complains when it is high).
# - If dying units worry you, try **leaky ReLU** or **maxout** (at twice the parameters).
# - **Never use sigmoid** in hidden layers. Try **tanh** if you like, but expect it to do
#   worse than ReLU or maxout.
# - Mixing different activations in one network is rare, though nothing forbids it.
#
# Next: [layered architectures](02_architectures.md), where neurons are stacked into
# networks.
