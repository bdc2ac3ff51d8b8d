# %% [markdown]
# # Weight initialisation
#
# Before training starts every weight needs a value, and the lecture notes show that the
# choice matters far more than it seems: a bad one makes a deep network learn nothing at all.
# This page follows the notes from the pitfall (all zeros) through small random numbers and
# variance calibration (1/n, Glorot's 2/(n_in + n_out), He's 2/n for ReLU) to the notes'
# experiment with a 10-layer network.
#
# In neuronlab an initialiser is a pure function of a shape and a random generator, chosen
# by name: `nl.initialize(name, shape, rng)`, or `init=name` for a `Linear` layer or
# `nl.mlp`. The names are `zeros`, `normal` (small random numbers, std 0.01 unless given),
# `lecun` (variance 1/n_in), `glorot` (2/(n_in + n_out)), `he` (2/n_in) and `sparse`.

# %% [markdown]
# ## The pitfall: all zeros
#
# With all weights equal, every neuron of a layer computes the same output, receives the
# same gradient and makes the same update: the neurons stay identical forever, and the
# layer is no better than a single neuron. All zeros is the extreme case, and neuronlab
# warns about it.

# %%
import warnings

import numpy as np

import neuronlab as nl

X, y = nl.data.spiral(n_per_class=100, n_classes=3, seed=0)

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    zero_model = nl.mlp(2, [8], 3, activation="tanh", init="zeros", out_init="zeros", rng=0)
print("warning:", caught[0].message)

# %% [markdown]
# One backward pass shows the symmetry: every hidden unit gets exactly the same gradient
# (here all zeros: with zero outgoing weights no signal reaches the hidden layer at all),
# and the output weights get identical rows, one per hidden unit. Training changes nothing:
# after 50 epochs the hidden weights are still exactly zero and the network is stuck at
# the loss of uniform guessing, ln 3.

# %%
loss = nl.SoftmaxCrossEntropy()
loss.forward(zero_model.forward(X), y)
zero_model.backward(loss.backward())
dW1, dW2 = zero_model.grads["0.W"], zero_model.grads["2.W"]
assert np.all(dW1 == dW1[:, :1])  # all hidden units: identical gradient columns
assert np.all(dW2 == dW2[:1, :])  # identical rows in the layer above

trainer = nl.Trainer(zero_model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.5), monitor=False)
history = trainer.fit(X, y, epochs=50, batch_size=32, seed=0)
print(f"after training: largest |W1| = {np.abs(zero_model.params['0.W']).max()}, "
      f"loss {history['loss'][-1]:.4f} (ln 3 = {np.log(3):.4f})")
assert np.all(zero_model.params["0.W"] == 0)
assert abs(history["loss"][-1] - np.log(3)) < 0.02

# %% [markdown]
# Equal *non-zero* weights fare no better: the hidden units move, but in lockstep.

# %%
same = nl.mlp(2, [8], 3, activation="tanh", rng=0)
same.params["0.W"][...] = 0.5
same.params["2.W"][...] = 0.1
nl.Trainer(same, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.5), monitor=False).fit(
    X, y, epochs=20, batch_size=32, seed=0)
W1 = same.params["0.W"]
print("hidden weights after training, first three units:\n", W1[:, :3])
assert not np.allclose(W1, 0.5)  # they changed...
assert np.all(W1 == W1[:, :1])  # ...but every unit is still a copy of the first

# %% [markdown]
# ## Small random numbers, and calibrating the variance
#
# Breaking the symmetry takes random weights; the classic choice is small ones,
# `W = 0.01 * np.random.randn(n_in, n_out)` (`init="normal"`). But the spread of a neuron's
# output grows with its number of inputs. For `s = Σ_i w_i x_i` with independent, zero-mean
# weights and inputs,
#
#     Var(s) = Σ_i Var(w_i x_i) = n · Var(w) · Var(x)
#
# so to keep `Var(s) = Var(x)` the weights need `Var(w) = 1/n`: draw them as
# `randn(n) / sqrt(n)` (`init="lecun"`). Glorot and Bengio suggest `Var(w) = 2/(n_in +
# n_out)` (`init="glorot"`), which balances the forward and the backward pass. He et al.
# work it out for ReLUs, which zero half of their inputs and so halve the variance:
# `Var(w) = 2/n` (`init="he"`), the notes' recommendation for ReLU networks.
#
# The notes' example of what goes wrong otherwise: 1,000 inputs, half 0 and half 1, and
# weights drawn with standard deviation 1. The weighted sum adds 500 unit-variance terms
# (plus a unit-variance bias), so its variance is 501: a neuron that starts deep in
# saturation.

# %%
rng = np.random.default_rng(0)
x = np.zeros((1, 1000))
x[0, :500] = 1.0
n_trials = 4000
W = nl.initialize("normal", (1000, n_trials), rng, dtype=np.float64, std=1.0)
b = rng.standard_normal(n_trials)
s = x @ W + b  # n_trials neurons, each seeing the same input
print(f"variance of the weighted sum with std-1 weights: {s.var():.0f} (the notes: 501)")
assert abs(s.var() / 501 - 1) < 0.1

# %% [markdown]
# Each initialiser draws with the variance its formula says:

# %%
n_in, n_out = 500, 300
expected = {"normal": 0.01**2, "lecun": 1 / n_in, "glorot": 2 / (n_in + n_out), "he": 2 / n_in}
for name, var in expected.items():
    W = nl.initialize(name, (n_in, n_out), rng=0, dtype=np.float64)
    print(f"{name:>7}: std {W.std():.4f}, expected {np.sqrt(var):.4f}")
    assert abs(W.var() / var - 1) < 0.02

# %% [markdown]
# ## The notes' experiment: a deep tanh network
#
# Take a 10-layer network with 500 tanh units per layer, feed it 1,000 examples of
# unit-Gaussian data, and look at the activations of every layer after the forward pass.
# Each `Linear` layer gets its initial weights from the initialiser being tested (the biases
# start at 0).

# %%
X_deep = np.random.default_rng(0).standard_normal((1000, 500)).astype(np.float32)


def deep_net(activation, init, *, std=None):
    """10 x (Linear(500, 500) -> activation); with `std`, weights drawn as N(0, std²)."""
    layers = []
    for i in range(10):
        linear = nl.Linear(500, 500, init=init, rng=i)
        if std is not None:
            linear.params["W"][...] = nl.initialize("normal", (500, 500), rng=i, std=std)
        layers += [linear, nl.Tanh() if activation == "tanh" else nl.ReLU()]
    return nl.Sequential(layers)


def activations(model):
    """The output of every nonlinearity, layer by layer."""
    out, acts = X_deep, []
    for layer in model:
        out = layer.forward(out)
        if not isinstance(layer, nl.Linear):
            acts.append(out)
    return acts


cases = {
    "tanh, std 0.01": deep_net("tanh", "normal"),
    "tanh, std 1": deep_net("tanh", "normal", std=1.0),
    "tanh, 1/n (Glorot)": deep_net("tanh", "glorot"),
    "ReLU, 1/n (Glorot)": deep_net("relu", "glorot"),
    "ReLU, 2/n (He)": deep_net("relu", "he"),
}
acts = {name: activations(model) for name, model in cases.items()}
stds = {name: np.array([a.std() for a in layer_acts]) for name, layer_acts in acts.items()}
for name, s in stds.items():
    print(f"{name:>19}: std per layer " + " ".join(f"{v:8.2g}" for v in s))

# %% [markdown]
# The histograms of each layer's activations tell three stories.
#
# - **std 0.01: the activations collapse to zero.** Each layer multiplies the spread by about
#   `0.01 · sqrt(500) ≈ 0.22` (tanh is nearly the identity near 0), so after ten layers it is
#   a million times smaller. In the backward pass the gradient on a layer's weights is the
#   layer's input times the gradient from above: tiny inputs mean tiny weight gradients, and
#   the network barely learns.
# - **std 1: the units saturate.** The weighted sums are about `sqrt(500) ≈ 22` times too
#   large, so almost every tanh sits at −1 or +1, where its gradient is zero.
# - **Glorot (1/n): the spread is kept**, shrinking only slowly with depth (for this square
#   network Glorot's 2/(n_in + n_out) equals 1/n).

# %%
from matplotlib.figure import Figure


def histogram_grid(names, xlim):
    """One row per case: the histogram of every layer's activations, side by side on a
    common x range, each scaled to its own peak (small multiples in one Axes per row)."""
    lo, hi = xlim
    span = (hi - lo) * 1.25  # room between neighbouring histograms
    fig = Figure(figsize=(16, 1.4 * len(names) + 0.4))
    for r, name in enumerate(names):
        ax = fig.add_subplot(len(names), 1, r + 1)
        for c, a in enumerate(acts[name]):
            # for ReLUs (xlim starting at 0) leave out the exact zeros, about half the values
            values = a[a > 0] if lo == 0 else a
            counts, edges = np.histogram(values, bins=50, range=xlim)
            shift = c * span - lo
            ax.stairs(counts / counts.max(), edges + shift, fill=True, color=f"C{r}")
            ax.plot([lo + shift, hi + shift], [0, 0], color="0.6", lw=0.8)
            ax.text((lo + hi) / 2 + shift, -0.06, f"std {a.std():.2g}", ha="center",
                    va="top", fontsize="x-small")
        ax.set_xticks([c * span + (hi - lo) / 2 for c in range(10)],
                      [f"layer {c + 1}" for c in range(10)] if r == 0 else [""] * 10)
        ax.xaxis.set_ticks_position("top")
        ax.tick_params(length=0, labelsize="small")
        ax.set_yticks([])
        ax.set_ylim(-0.3, 1.02)
        ax.set_ylabel(name, fontsize="small")
        for side in ("left", "right", "top", "bottom"):
            ax.spines[side].set_visible(False)
    fig.text(0.5, 0.01, f"each panel: activations from {lo} to {hi}", ha="center",
             fontsize="small")
    return fig


histogram_grid(["tanh, std 0.01", "tanh, std 1", "tanh, 1/n (Glorot)"], (-1, 1))

# %%
ratio = {name: s[-1] / s[0] for name, s in stds.items()}
saturated = {name: [float(np.mean(np.abs(a) > 0.99)) for a in acts[name]]
             for name in ("tanh, std 1", "tanh, 1/n (Glorot)")}

# std 0.01: the spread shrinks by ~0.01 * sqrt(500) per layer, ~1e-6 over nine layers
shrink = 0.01 * np.sqrt(500)
assert abs(stds["tanh, std 0.01"][0] / shrink - 1) < 0.1
assert 0.5 < ratio["tanh, std 0.01"] / shrink**9 < 2 and ratio["tanh, std 0.01"] < 1e-5
# std 1: the spread stays near 1 because everything is pinned at -1 or +1
assert min(saturated["tanh, std 1"]) > 0.85 and stds["tanh, std 1"].min() > 0.95
# Glorot: a healthy spread in every layer, and almost no saturation
assert 0.2 < ratio["tanh, 1/n (Glorot)"] < 0.6 and stds["tanh, 1/n (Glorot)"][-1] > 0.2
assert max(saturated["tanh, 1/n (Glorot)"]) < 0.05
print({name: f"{r:.2g}" for name, r in ratio.items()})

# %% [markdown]
# Gradients follow the activations. Send a unit-Gaussian gradient back from the last layer
# (as a loss would) and measure the gradient on each layer's weights: with std 0.01 every
# layer's weight gradient is about a hundred thousand times smaller than with Glorot's
# initialisation. (With std 1 it is the local gradient of the saturated tanh units,
# `1 − tanh²`, that is near zero: for nine units in ten it is below 0.02.)

# %%
dout = np.random.default_rng(1).standard_normal((1000, 500)).astype(np.float32)
grad_std = {}
for name in ("tanh, std 0.01", "tanh, 1/n (Glorot)"):
    model = cases[name]
    model.zero_grad()
    model.forward(X_deep)
    model.backward(dout)
    grad_std[name] = np.array([model.grads[f"{2 * i}.W"].std() for i in range(10)])
    print(f"{name:>19}: std of dL/dW per layer " + " ".join(f"{v:8.2g}" for v in grad_std[name]))

assert grad_std["tanh, std 0.01"].max() < 1e-4 * grad_std["tanh, 1/n (Glorot)"].min()

# %% [markdown]
# ## ReLU networks need He's 2/n
#
# With ReLU units the 1/n calibration is not enough: a ReLU zeroes about half of its inputs,
# halving the variance at every layer, so after nine more layers the spread is about
# `(1/sqrt 2)^9 ≈ 0.04` of the first layer's. He's 2/n doubles the variance to compensate,
# and the activations keep their spread through all ten layers. (The histograms leave out
# the exact zeros, about half of every ReLU layer's outputs.)

# %%
histogram_grid(["ReLU, 1/n (Glorot)", "ReLU, 2/n (He)"], (0, 3))

# %%
halving = (1 / np.sqrt(2)) ** 9
print(f"ReLU last/first std: 1/n {ratio['ReLU, 1/n (Glorot)']:.3f} "
      f"(expected about {halving:.3f}), 2/n {ratio['ReLU, 2/n (He)']:.2f}")
assert 0.5 < ratio["ReLU, 1/n (Glorot)"] / halving < 2
assert 0.7 < ratio["ReLU, 2/n (He)"] < 1.5

# %% [markdown]
# The spread of the activations through depth, for every case, on one log scale:

# %%
fig = Figure(figsize=(7, 4.2))
ax = fig.add_subplot()
for name, s in stds.items():
    ax.plot(np.arange(1, 11), s, marker="o", label=name)
ax.set_yscale("log")
ax.set_xlabel("layer")
ax.set_ylabel("std of the activations")
ax.set_xticks(range(1, 11))
ax.legend(fontsize="small")
fig

# %% [markdown]
# ## Biases, sparse initialisation and batch norm
#
# - **Biases** are usually initialised to zero: the random weights already break the
#   symmetry. Some start ReLU biases at a small constant such as 0.01 so that every unit
#   fires at first, though it is not clear this helps (`nl.Linear(..., bias=0.01)`).
# - **Sparse initialisation** sets all weights to zero except a few random connections per
#   unit (`init="sparse"`, 10 inputs per unit by default), which breaks the symmetry too.
# - **In practice**, the notes recommend ReLU units with He's `randn(n) * sqrt(2/n)`; it is
#   neuronlab's default (`nl.mlp(..., init="he")`).
# - **Batch normalisation** makes networks much more robust to a bad initialisation by
#   normalising the activations explicitly: the [next tutorial](06_batch_norm.md).

# %%
W = nl.initialize("sparse", (100, 20), rng=0)
connections = np.count_nonzero(W, axis=0)
print("non-zero weights per unit with sparse init:", connections[:5], "...")
assert np.all(connections == 10)
