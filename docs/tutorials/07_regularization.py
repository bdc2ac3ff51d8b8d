# %% [markdown]
# # Regularisation
#
# The [architectures tutorial](02_architectures.md) ended with the notes' advice: use a
# network as large as you can afford, and control overfitting with regularisation, not with
# fewer neurons. This page goes through the notes' regularisers:
#
# - **L2** (weight decay), the most common: add `½ λ Σ w²` to the loss;
# - **L1**, `λ Σ |w|`, which makes weights sparse, and the **elastic net**, both together;
# - **max norm**, a hard bound on the length of every neuron's weight vector;
# - **dropout**, which switches units off at random during training;
# - **input noise**, added to the data during training.
#
# neuronlab's penalties (`nl.L2`, `nl.L1`, `nl.ElasticNet`) are passed to the `Trainer` as
# `regularizer=`; the max-norm constraint (`nl.MaxNorm`) as `constraints=[...]`; dropout and
# noise are layers (`nl.Dropout`, `nl.GaussianNoise`, or `dropout=` in `nl.mlp`).

# %% [markdown]
# ## L2 regularisation
#
# L2 adds `½ λ w²` for every weight `w` to the loss (the ½ makes the gradient simply `λ w`).
# It penalises peaky weight vectors and prefers diffuse ones, so the network uses all of its
# inputs a little rather than a few of them a lot. As the notes point out, biases are not
# regularised: they do not multiply the data, and penalising them changes little. A
# penalty's `loss(model)` and `add_grad(model)` act on `model.weight_keys` only.

# %%
import numpy as np

import neuronlab as nl

model = nl.mlp(2, [20], 2, rng=0, dtype=np.float64)
print("weights:", model.weight_keys, " all parameters:", list(model.params))
lam = 1e-2
l2 = nl.L2(lam)

by_hand = 0.5 * lam * sum(np.sum(model.params[k] ** 2) for k in model.weight_keys)
assert np.isclose(l2.loss(model), by_hand, rtol=1e-12)

model.zero_grad()
l2.add_grad(model)
assert np.allclose(model.grads["0.W"], lam * model.params["0.W"], rtol=0, atol=1e-15)
assert np.all(model.grads["0.b"] == 0)  # biases untouched
print(f"L2 penalty {l2.loss(model):.6f} = ½ λ Σ w² over the weights only")

# %% [markdown]
# ### L2 is weight decay
#
# With plain SGD, the gradient `λ w` shrinks every weight by the same fraction at each
# step: `w ← w − lr (g + λ w) = (1 − lr λ) w − lr g`. That is why L2 is also called *weight
# decay*. neuronlab's optimizers also have a decoupled `weight_decay=` option, which
# multiplies the weights by `(1 − lr λ)` after the update; for SGD the two differ only by
# `lr² λ g` per step. (For adaptive methods such as Adam they are genuinely different: that
# is the point of AdamW.)

# %%
rng = np.random.default_rng(0)
g = {k: rng.standard_normal(v.shape) for k, v in model.params.items()}  # some gradient
lr = 0.1
w_l2 = {k: v.copy() for k, v in model.params.items()}
w_decay = {k: v.copy() for k, v in model.params.items()}

grads_l2 = {k: g[k] + (lam * w_l2[k] if k in model.weight_keys else 0) for k in g}
nl.SGD(lr=lr).step(w_l2, grads_l2)
nl.SGD(lr=lr, weight_decay=lam).step(w_decay, {k: v.copy() for k, v in g.items()},
                                     decay_keys=model.weight_keys)
for k in model.weight_keys:
    assert np.allclose(w_decay[k] - w_l2[k], lr**2 * lam * g[k], rtol=0, atol=1e-15)
assert np.array_equal(w_decay["0.b"], w_l2["0.b"])  # no decay on the biases either way

# %% [markdown]
# ### The regularisation strength
#
# The notes' picture: the same 20-neuron network trained with three L2 strengths, λ =
# 0.001, 0.01 and 0.1. The data are the overlapping XOR classes of the architectures
# tutorial (100 training points; about 9% of the points lie in the other class's quadrant,
# so about 91% is the best any classifier can do on fresh data), and we measure accuracy on
# 2,000 fresh points.

# %%
X, y = nl.data.xor(n=100, noise=0.6, seed=0)
X_val, y_val = nl.data.xor(n=2000, noise=0.6, seed=1)


def weight_norm(model):
    return float(np.sqrt(sum(np.sum(model.params[k] ** 2) for k in model.weight_keys)))


def train(regularizer=None, *, hidden=20, dropout=0.0, constraints=()):
    """A 2-hidden-2 ReLU network trained full-batch with Adam; its accuracies and weight norm."""
    model = nl.mlp(2, [hidden], 2, dropout=dropout, rng=0)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(lr=0.04),
                         regularizer=regularizer, constraints=constraints, monitor=False)
    trainer.fit(X, y, epochs=500, batch_size=len(X), seed=0)
    train_acc = float(np.mean(model.predict(X) == y))
    val_acc = float(np.mean(model.predict(X_val) == y_val))
    return {"model": model, "train": train_acc, "val": val_acc, "gap": train_acc - val_acc,
            "norm": weight_norm(model)}


strengths = [0.001, 0.01, 0.1]
runs = {lam: train(nl.L2(lam)) for lam in strengths}
for lam, r in runs.items():
    print(f"λ = {lam:<5}: train {r['train']:.2f}, validation {r['val']:.3f}, "
          f"gap {r['gap']:+.3f}, weight norm {r['norm']:.2f}")

# %%
from matplotlib.figure import Figure

import neuronlab.plots

fig = Figure(figsize=(15, 4.8))
for k, (lam, r) in enumerate(runs.items()):
    ax = fig.add_subplot(1, 3, k + 1)
    neuronlab.plots.plot_decision_regions(r["model"], X, y, ax=ax, resolution=150)
    ax.set_title(f"λ = {lam}: train {r['train']:.2f}, val {r['val']:.2f}")
fig

# %% [markdown]
# Stronger regularisation gives smaller weights and smoother decision regions: the
# training accuracy drops (the network stops fitting individual noisy points) and so does
# the gap between training and validation accuracy. Too strong, and the network starts to
# underfit: here λ = 0.01 generalises best. In practice λ is chosen on validation data
# (`neuronlab search` and [`nl.search`](../../api/search.md) automate that).

# %%
norms = [runs[lam]["norm"] for lam in strengths]
assert norms[0] > norms[1] > norms[2]  # stronger L2, smaller weights
assert runs[0.001]["train"] > runs[0.01]["train"] > runs[0.1]["train"]
assert runs[0.001]["gap"] > runs[0.1]["gap"]
assert runs[0.01]["val"] >= max(runs[0.001]["val"], runs[0.1]["val"])

# %% [markdown]
# ## L1 and the elastic net
#
# L1 adds `λ |w|`, whose gradient `λ sign(w)` pulls every weight towards zero by the same
# amount, however small it already is. Weights that the data does not need end up at (or
# very near) zero: L1 makes the weight vectors **sparse**, and the network uses only a few
# of its inputs, becoming nearly invariant to the noisy ones. L2, in contrast, leaves many
# small but non-zero weights. The elastic net combines both (`λ1 |w| + ½ λ2 w²`).
#
# To see it, add 8 inputs of pure noise to XOR data: only the first two inputs matter.

# %%
noise = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
X_xor, y_xor = nl.data.xor(n=200, noise=0.3, seed=0)
X_wide = np.hstack([X_xor, noise])

first_layer = {}
for name, reg in [("L2 λ = 0.01", nl.L2(1e-2)), ("L1 λ = 0.001", nl.L1(1e-3)),
                  ("elastic net", nl.ElasticNet(l1=1e-3, l2=1e-2))]:
    model = nl.mlp(10, [20], 2, rng=0)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(lr=0.01), regularizer=reg,
                         monitor=False)
    history = trainer.fit(X_wide, y_xor, epochs=200, batch_size=32, seed=0)
    W = first_layer[name] = model.params["0.W"].copy()
    print(f"{name:>13}: training accuracy {history['acc'][-1]:.2f}; first-layer weights "
          f"with |w| < 0.01: {np.mean(np.abs(W) < 0.01):.0%}; share of |w| on the noise "
          f"inputs: {np.abs(W[2:]).sum() / np.abs(W).sum():.0%}")

# %%
small = {name: float(np.mean(np.abs(W) < 0.01)) for name, W in first_layer.items()}
noise_share = {name: np.abs(W[2:]).sum() / np.abs(W).sum() for name, W in first_layer.items()}
assert small["L1 λ = 0.001"] > 0.7 and small["L1 λ = 0.001"] > 2 * small["L2 λ = 0.01"]
assert noise_share["L1 λ = 0.001"] < noise_share["L2 λ = 0.01"]
# the elastic net with λ1 = 0 is exactly L2
assert np.isclose(nl.ElasticNet(l1=0.0, l2=0.01).loss(runs[0.01]["model"]),
                  nl.L2(0.01).loss(runs[0.01]["model"]), rtol=1e-12)

# %% [markdown]
# The magnitudes of the first-layer weights, on a log scale. L2 shrinks the noise inputs'
# weights to around 0.01 but keeps every real input's weight sizeable. L1 keeps a few large
# weights and pushes almost everything else, the noise inputs' weights and those of the
# hidden units it does not need, to 0.001 and below.

# %%
fig = Figure(figsize=(10, 3.6))
bins = np.linspace(-6, 1, 50)
for k, name in enumerate(["L2 λ = 0.01", "L1 λ = 0.001"]):
    ax = fig.add_subplot(1, 2, k + 1)
    W = first_layer[name]
    ax.hist(np.log10(np.abs(W[:2]).ravel() + 1e-12), bins=bins, color="C2", label="2 real inputs")
    ax.hist(np.log10(np.abs(W[2:]).ravel() + 1e-12), bins=bins, color="C7", alpha=0.7,
            label="8 noise inputs")
    ax.set_title(f"first-layer weights, {name}")
    ax.set_xlabel("log10 |w|")
    ax.legend(fontsize="small")
fig

# %% [markdown]
# Unless you want explicit feature selection, the notes say, L2 can be expected to work
# better than L1.
#
# ## Max norm constraints
#
# Instead of a penalty, put an absolute upper bound on the length of every neuron's
# incoming weight vector, `‖w‖₂ ≤ c` (typical c: 3 or 4): after each update, any vector
# that got longer is scaled back onto the ball. The network cannot "explode" even with a
# large learning rate, because the weights are always bounded. `nl.MaxNorm(c)` does it, passed
# to the `Trainer` in `constraints`.

# %%
free = train()
bounded = train(constraints=[nl.MaxNorm(3.0)])


def longest_unit(model):
    """The largest L2 norm of any unit's incoming weight vector (a column of a W)."""
    return max(float(np.linalg.norm(model.params[k], axis=0).max()) for k in model.weight_keys)


print(f"largest weight-vector norm: unconstrained {longest_unit(free['model']):.2f}, "
      f"with MaxNorm(3) {longest_unit(bounded['model']):.4f}")
print(f"validation accuracy: unconstrained {free['val']:.3f}, with MaxNorm(3) {bounded['val']:.3f}")
assert longest_unit(free["model"]) > 3
assert longest_unit(bounded["model"]) <= 3 + 1e-5  # float32 rounding

# %% [markdown]
# ## Dropout
#
# Dropout (Srivastava et al.) is extremely effective and simple, and complements the other
# methods. While training, each unit is kept with probability `p` and set to zero
# otherwise, a different random subset at every step: the network cannot rely on any one
# unit, and training samples a huge ensemble of thinned networks that share weights. At test
# time all units are kept.
#
# Kept as is, a unit's expected output during training would be `p x`, but `x` at test
# time. *Inverted* dropout, the version the notes recommend and `nl.Dropout` implements,
# divides the kept units by `p` during training, so the expectation is `x` in both
# phases and the test-time network needs no change at all. (`nl.Dropout(rate)` takes the
# probability of *dropping* a unit, `rate = 1 − p`.)

# %%
x = np.full((2000, 500), 1.5)
drop = nl.Dropout(0.5, rng=0)
out = drop.forward(x, training=True)
kept = out != 0
print(f"training: kept {kept.mean():.4f} of the units, each scaled to {out[kept][0]}; "
      f"mean output {out.mean():.4f} (input 1.5)")
assert np.all(out[kept] == 1.5 / 0.5)  # survivors scaled by 1/p
assert abs(kept.mean() - 0.5) < 0.005
assert abs(out.mean() - 1.5) < 0.01  # the expectation is preserved

# the gradient flows back only through the units that were kept, with the same scale
dx = drop.backward(np.ones_like(out))
assert np.array_equal(dx != 0, kept) and np.all(dx[kept] == 2.0)

assert np.array_equal(drop.forward(x, training=False), x)  # test time: the identity

# %% [markdown]
# On the XOR data, a larger network (100 hidden units) with dropout after its hidden layer
# fits the training set less tightly: the gap between training and validation accuracy
# narrows as the drop rate grows.

# %%
dropout_runs = {rate: train(hidden=100, dropout=rate) for rate in [0.0, 0.3, 0.5]}
for rate, r in dropout_runs.items():
    print(f"drop rate {rate}: train {r['train']:.2f}, validation {r['val']:.3f}, gap {r['gap']:+.3f}")
assert dropout_runs[0.0]["gap"] > dropout_runs[0.3]["gap"] > dropout_runs[0.5]["gap"]

# %% [markdown]
# ## Input noise
#
# Dropout belongs to a wider family: inject noise in the forward pass during training and
# average it out (analytically, as inverted dropout does, or numerically) at test time.
# The simplest is Gaussian noise on the inputs, `nl.GaussianNoise(std)`: fresh noise at
# every training step, the identity at test time, and the gradient passes through
# unchanged. The mean is preserved and the variance grows by `std²`.

# %%
z = np.random.default_rng(1).standard_normal((4000, 50))
noisy = nl.GaussianNoise(0.5, rng=0)
zn = noisy.forward(z, training=True)
print(f"mean {z.mean():+.4f} -> {zn.mean():+.4f}, variance {z.var():.3f} -> {zn.var():.3f} "
      f"(expected {z.var() + 0.25:.3f})")
assert abs(zn.mean() - z.mean()) < 0.01 and abs(zn.var() - (z.var() + 0.25)) < 0.01
assert np.array_equal(noisy.forward(z, training=False), z)
assert np.array_equal(noisy.backward(np.ones_like(z)), np.ones_like(z))

# %% [markdown]
# ## In practice
#
# The notes' recipe: use a single, global L2 regularisation strength chosen on validation
# data, and combine it with dropout applied after all layers, `p = 0.5` being a reasonable
# default (tune it on validation data too). Max norm constraints go well with dropout.
# Biases are not regularised. With neuronlab:
#
# ```python
# model = nl.mlp(n_in, [512, 512], n_classes, dropout=0.5)
# trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(lr=1e-3),
#                      regularizer=nl.L2(1e-4), constraints=[nl.MaxNorm(4.0)])
# ```
#
# The babysitting tools then tell you if the strength is off: a widening gap between
# training and validation accuracy means more regularisation; no gap and poor accuracy on
# both means less.
