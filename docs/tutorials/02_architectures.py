# %% [markdown]
# # Layered architectures: size, power and overfitting
#
# Neurons are wired into networks as an acyclic graph, and for regular networks the graph is
# organised in **layers**. In a *fully-connected* layer every neuron is connected to every
# neuron of the layer before, and neurons within a layer share no connections. This page
# follows the lecture notes' section on architectures:
#
# - naming: an *N-layer* network does not count the input layer, so a single-layer network
#   maps inputs straight to outputs (logistic regression and SVMs are special cases);
# - the output layer has no activation function: it produces class scores;
# - the size of a network, counted in neurons and in learnable parameters;
# - the forward pass as matrix multiplications interleaved with activations;
# - representational power, and why you should use a network as big as you can afford and
#   control overfitting with regularisation rather than with fewer neurons.

# %% [markdown]
# ## Counting neurons and parameters
#
# The notes' two example networks take 3 inputs. The first is a 2-layer network with one
# hidden layer of 4 neurons and 2 outputs; the second is a 3-layer network with two hidden
# layers of 4 neurons and 1 output. `nl.mlp(n_in, hidden, n_out)` builds exactly these
# (`Linear → activation` for each hidden layer, then a plain `Linear` for the scores), and
# `summary()` counts for each layer the neurons (inputs not counted), the weights, the biases
# and the learnable parameters.

# %%
import numpy as np

import neuronlab as nl

two_layer = nl.mlp(3, [4], 2, activation="sigmoid", rng=0)
print(two_layer.summary())

# %% [markdown]
# 4 + 2 = 6 neurons, [3 × 4] + [4 × 2] = 20 weights and 4 + 2 = 6 biases: 26 learnable
# parameters, as the notes count them.

# %%
s = two_layer.summary()
assert (s.neurons, s.weights, s.biases, s.params) == (6, 20, 6, 26)
assert sum(p.size for p in two_layer.params.values()) == 26

three_layer = nl.mlp(3, [4, 4], 1, activation="sigmoid", rng=0, dtype=np.float64)
print(three_layer.summary())
s = three_layer.summary()
assert (s.neurons, s.weights, s.biases, s.params) == (9, 12 + 16 + 4, 4 + 4 + 1, 41)

# %% [markdown]
# 4 + 4 + 1 = 9 neurons, [3 × 4] + [4 × 4] + [4 × 1] = 32 weights and 9 biases: 41
# parameters. (Modern convolutional networks have on the order of 100 million parameters
# in 10-20 layers.)

# %% [markdown]
# ## The forward pass is matrix multiplications and activations
#
# Organising neurons in layers is what makes networks fast: all the neurons of a layer are
# evaluated by one matrix product. The notes write the 3-layer network's forward pass for a
# column vector `x` as
#
#     h1 = f(W1 x + b1); h2 = f(W2 h1 + b2); out = W3 h2 + b3
#
# neuronlab stores a batch as **rows** (shape `(n_samples, n_features)`) and a layer's
# weights as `W` of shape `(n_in, n_out)`, so the same computation reads `x @ W + b`, for a
# whole batch at once. The parameters are in `model.params` under dotted names: `"0.W"` is
# the `W` of layer 0. Written out by hand, the forward pass gives exactly what the model
# computes:

# %%
def f(z):
    return 1.0 / (1.0 + np.exp(-z))  # the notes' sigmoid


p = three_layer.params
x = np.random.default_rng(0).standard_normal((5, 3))  # 5 examples of 3 inputs, as rows
h1 = f(x @ p["0.W"] + p["0.b"])  # first hidden layer (5 x 4)
h2 = f(h1 @ p["2.W"] + p["2.b"])  # second hidden layer (5 x 4)
out = h2 @ p["4.W"] + p["4.b"]  # output neuron (5 x 1), no activation
print([f"{name}: {type(layer).__name__}" for name, layer in enumerate(three_layer)])
assert np.allclose(out, three_layer.forward(x), rtol=0, atol=1e-12)

# %% [markdown]
# The non-linearity is essential. Without it two layers collapse into one: `(x W1 + b1) W2 +
# b2 = x (W1 W2) + (b1 W2 + b2)`, still a linear function of the input.

# %%
first = nl.Linear(3, 4, rng=1, dtype=np.float64)
second = nl.Linear(4, 2, rng=2, dtype=np.float64)
stacked = nl.Sequential([first, second])
merged = nl.Linear(3, 2, rng=3, dtype=np.float64)
merged.params["W"][...] = first.params["W"] @ second.params["W"]
merged.params["b"][...] = first.params["b"] @ second.params["W"] + second.params["b"]
assert np.allclose(stacked.forward(x), merged.forward(x), rtol=0, atol=1e-12)

# %% [markdown]
# ## Representational power
#
# A network with at least one hidden layer can approximate any continuous function to any
# accuracy (Cybenko, 1989), so depth is not needed in principle. In practice, deeper networks
# often work better because they express the smooth functions we meet in real data
# compactly and are easy to optimise; for fully-connected networks 3 layers often beat 2,
# while going deeper rarely helps much (convolutional networks on images are different:
# there, depth pays).
#
# More neurons mean more capacity: the network can represent more complicated functions. To
# see it we use two classes in the XOR layout whose clusters overlap: with noise 0.6 around
# the corners (±1, ±1), about 9% of the points fall in the other class's quadrant, so no
# classifier can do better than about 91% on fresh data. We train on 100 points and measure
# accuracy on 2,000 fresh ones.

# %%
from math import erf, sqrt

X, y = nl.data.xor(n=100, noise=0.6, seed=0)
X_val, y_val = nl.data.xor(n=2000, noise=0.6, seed=1)

right_side = 0.5 * (1 + erf((1 / 0.6) / sqrt(2)))  # P(a coordinate keeps its sign)
best_possible = right_side**2 + (1 - right_side) ** 2  # both signs kept, or both flipped
print(f"best possible accuracy: {best_possible:.3f}")


def train(hidden, l2=0.0, seed=0):
    """A 2-hidden-2 ReLU network, trained full-batch with Adam; returns it and its accuracies."""
    model = nl.mlp(2, [hidden], 2, rng=seed)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(lr=0.04),
                         regularizer=nl.L2(l2) if l2 else None, monitor=False)
    history = trainer.fit(X, y, epochs=500, batch_size=len(X), seed=0)
    return {
        "model": model,
        "loss": history["loss"][-1],
        "train_acc": float(np.mean(model.predict(X) == y)),
        "val_acc": float(np.mean(model.predict(X_val) == y_val)),
    }


runs = {3: train(3), 6: train(6), 20: train(20)}
for hidden, r in runs.items():
    print(f"{hidden:2d} hidden neurons: training accuracy {r['train_acc']:.2f}, "
          f"validation accuracy {r['val_acc']:.3f}")

# %% [markdown]
# The notes' picture, reproduced: with 20 hidden neurons the network fits the training data
# almost perfectly, at the price of carving the plane into many disjoint regions around
# individual points. With 3 neurons it can only make a coarse split, and treats the points
# inside the other class's territory as outliers (noise); on fresh data it does no worse
# than the 20-neuron network, whose extra regions were fitted to noise.

# %%
from matplotlib.figure import Figure

import neuronlab.plots

fig = Figure(figsize=(15, 4.8))
for k, (hidden, r) in enumerate(runs.items()):
    ax = fig.add_subplot(1, 3, k + 1)
    neuronlab.plots.plot_decision_regions(r["model"], X, y, ax=ax, resolution=150)
    ax.set_title(f"{hidden} hidden neurons: train {r['train_acc']:.2f}, val {r['val_acc']:.2f}")
fig

# %%
assert runs[20]["train_acc"] >= 0.97
assert runs[20]["train_acc"] > runs[6]["train_acc"] and runs[20]["train_acc"] > runs[3]["train_acc"]
assert runs[20]["train_acc"] - runs[20]["val_acc"] > 0.08  # overfitting: a large gap
assert runs[3]["val_acc"] > runs[20]["val_acc"] - 0.01  # the small network is no worse

# %% [markdown]
# ## Bigger networks, stronger regularisation
#
# Should we then prefer small networks when the data is simple? The notes say no: there are
# better ways to control overfitting (L2 regularisation, dropout, input noise), and small
# networks are *harder to train* with local methods such as gradient descent. Their loss has
# fewer local minima, but those minima are easy to converge to and many of them are bad
# (high loss), so the result depends a lot on the initialisation. A large network has many
# more minima, and almost all of them are about equally good: the outcome is reliable.
#
# We train five 3-neuron networks and five 20-neuron networks with L2 regularisation (λ =
# 0.01), differing only in the random seed of their initial weights.

# %%
seeds = range(5)
small = [runs[3]] + [train(3, seed=s) for s in seeds[1:]]
large = [train(20, l2=1e-2, seed=s) for s in seeds]
for name, group in [("3 neurons", small), ("20 neurons + L2", large)]:
    print(f"{name:>16}: final loss " + " ".join(f"{r['loss']:.3f}" for r in group)
          + "   validation accuracy " + " ".join(f"{r['val_acc']:.3f}" for r in group))

# %%
small_losses = np.array([r["loss"] for r in small])
large_losses = np.array([r["loss"] for r in large])
# Some small networks get stuck in poor minima; the large ones all end in the same place.
assert small_losses.max() > 2 * small_losses.min()
assert np.ptp(large_losses) < 0.01 and small_losses.std() > 10 * large_losses.std()
# Regularised, the large network generalises at least as well as the luckiest small one,
# close to the best possible accuracy, and its train/validation gap is small.
assert min(r["val_acc"] for r in large) >= max(r["val_acc"] for r in small) - 0.01
assert min(r["val_acc"] for r in small) < min(r["val_acc"] for r in large) - 0.1
assert best_possible - min(r["val_acc"] for r in large) < 0.03
assert large[0]["train_acc"] - large[0]["val_acc"] < 0.06
assert large[0]["val_acc"] > runs[20]["val_acc"]

# %% [markdown]
# Left: the unregularised 20-neuron network from above. Middle: the same size with L2, as
# smooth as the small network. Right: a small network that got stuck in a poor local
# minimum.

# %%
stuck = min(small, key=lambda r: r["val_acc"])
fig = Figure(figsize=(15, 4.8))
for k, (title, r) in enumerate([
    ("20 neurons, no regularisation", runs[20]),
    ("20 neurons, L2 λ = 0.01", large[0]),
    ("3 neurons, an unlucky seed", stuck),
]):
    ax = fig.add_subplot(1, 3, k + 1)
    neuronlab.plots.plot_decision_regions(r["model"], X, y, ax=ax, resolution=150)
    ax.set_title(f"{title}: val {r['val_acc']:.2f}")
fig

# %% [markdown]
# The notes' conclusion: **do not use a smaller network because you fear overfitting.** Use
# as large a network as your computational budget allows, and control overfitting with the
# regularisation strength (weight decay, dropout, ...). The
# [regularisation tutorial](07_regularization.md) varies that strength on a 20-neuron
# network and watches the decision regions smooth out.
