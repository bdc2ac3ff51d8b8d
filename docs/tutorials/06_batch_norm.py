# %% [markdown]
# # Batch normalisation
#
# The [initialisation tutorial](05_initialization.md) showed how easily the activations of a
# deep network collapse to zero or saturate. Batch normalisation (Ioffe and Szegedy, 2015)
# attacks the problem head on: since normalising a batch to zero mean and unit variance is a
# differentiable operation, put it *inside* the network, between each fully-connected layer
# and its nonlinearity, and the activations are unit-Gaussian at the start of training
# whatever the weights. In the notes' words, it makes networks significantly more robust to
# bad initialisation.
#
# For each unit (feature) `k`, over a minibatch `x` of N examples, `nl.BatchNorm` computes
#
#     x̂_k = (x_k − mean_B(x_k)) / sqrt(var_B(x_k) + eps)      normalise over the batch
#     y_k = γ_k x̂_k + β_k                                    scale and shift (learned)
#
# The learned `γ` and `β` let the network undo the normalisation if that is what the loss
# wants (γ = sqrt(var), β = mean gives back the identity), so nothing is lost. At test time
# there is no batch to average over: running averages of the means and variances, collected
# during training, take the batch statistics' place.

# %% [markdown]
# ## Forward: normalise each unit over the batch

# %%
import numpy as np

import neuronlab as nl

rng = np.random.default_rng(0)
# a batch of 64 examples of 4 units with very different means and scales
x = rng.normal(loc=[5.0, -3.0, 0.0, 100.0], scale=[2.0, 1.5, 10.0, 30.0], size=(64, 4))
bn = nl.BatchNorm(4, dtype=np.float64)
print("gamma", bn.params["gamma"], " beta", bn.params["beta"])

x_hat = bn.forward(x, training=True)  # γ = 1, β = 0 at the start: the output is x̂ itself
print("batch means of x̂    ", x_hat.mean(axis=0).round(12) + 0.0)
print("batch variances of x̂", x_hat.var(axis=0).round(6))
assert np.allclose(x_hat.mean(axis=0), 0, atol=1e-12)
assert np.allclose(x_hat.var(axis=0), 1, atol=1e-5)  # 1 − eps / var: eps = 1e-5 is added
assert np.allclose(x_hat, (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + bn.eps))

# %% [markdown]
# The scale and shift then set each unit's mean and standard deviation to β and γ; and the
# right γ and β undo the normalisation entirely.

# %%
bn.params["gamma"][...] = [1.0, 2.0, 0.5, 3.0]
bn.params["beta"][...] = [0.0, 1.0, -1.0, 10.0]
y = bn.forward(x, training=True)
assert np.allclose(y.mean(axis=0), bn.params["beta"], atol=1e-12)
assert np.allclose(y.std(axis=0), bn.params["gamma"], rtol=1e-4)

bn.params["gamma"][...] = np.sqrt(x.var(axis=0) + bn.eps)
bn.params["beta"][...] = x.mean(axis=0)
assert np.allclose(bn.forward(x, training=True), x, rtol=0, atol=1e-10)  # the identity

# %% [markdown]
# ## Inference: running averages
#
# In training, each example's output depends on the other examples of its batch. At test
# time that would make a prediction depend on what it happens to be batched with, so
# `forward(x, training=False)` uses the running averages `running_mean` and `running_var`
# instead, updated at every training step as `r ← 0.9 r + 0.1 · batch value` (the
# `momentum` argument). After enough batches they are the population's mean and variance.

# %%
bn = nl.BatchNorm(1, dtype=np.float64)
for _ in range(200):  # 200 training batches of 32 from N(3, 2²)
    bn.forward(rng.normal(3.0, 2.0, size=(32, 1)), training=True)
running_mean, running_var = bn.buffers["running_mean"][0], bn.buffers["running_var"][0]
print(f"running mean {running_mean:.3f} (population 3), running variance {running_var:.3f} "
      "(population 4; batch variances are biased, E = 4 · 31/32 = 3.875)")
assert abs(running_mean - 3.0) < 0.15 and abs(running_var - 4 * 31 / 32) < 0.3

batch = rng.normal(3.0, 2.0, size=(8, 1))
alone = np.vstack([bn.forward(row[None], training=False) for row in batch])
together = bn.forward(batch, training=False)
assert np.array_equal(alone, together)  # inference: each output is a function of its input only
in_training = bn.forward(batch, training=True)
assert not np.allclose(in_training, together)  # training: it depends on the batch

# %% [markdown]
# ## Backward, checked numerically
#
# Because the batch mean and variance depend on every example, the gradient of a batch-norm
# layer couples the examples of a batch. Its closed form (what `BatchNorm.backward` computes)
# is
#
#     dx = γ / sqrt(var + eps) · (dout − mean(dout) − x̂ · mean(dout · x̂))
#
# with the means over the batch, plus `dγ = Σ dout · x̂` and `dβ = Σ dout`. As with any new
# piece of backprop, the notes' advice is to compare it with centered finite differences:
# `nl.gradcheck` does, in float64, on the layer alone and inside a network.

# %%
layer = nl.BatchNorm(6, dtype=np.float64)
layer.params["gamma"][...] = rng.uniform(0.5, 2.0, size=6)
layer.params["beta"][...] = rng.normal(size=6)
report = nl.gradcheck(layer, x=rng.normal(2.0, 3.0, size=(10, 6)))
print(report)
assert report.passed and report.max_error < 1e-7

X_spiral, y_spiral = nl.data.spiral(n_per_class=20, n_classes=3, seed=0)
net = nl.mlp(2, [16, 16], 3, activation="tanh", batchnorm=True, rng=0)
net_report = nl.gradcheck(net, nl.SoftmaxCrossEntropy(), X_spiral[::6], y_spiral[::6])
print(net_report)
assert net_report.passed

# %% [markdown]
# ## Where it goes in a network
#
# `nl.mlp(..., batchnorm=True)` inserts a `BatchNorm` between every hidden `Linear` layer and
# its activation, as the notes place it. Those `Linear` layers have no bias: the mean
# subtraction would cancel it (its gradient would be exactly 0), and β takes its place.

# %%
print(nl.mlp(64, [100, 100], 10, batchnorm=True, rng=0).summary())

# %% [markdown]
# ## A bad initialisation, rescued
#
# Take a deep network, 8 hidden ReLU layers of 100 units, and initialise its weights with
# the small random numbers that failed in the previous tutorial (std 0.01). Without batch
# norm the signal dies on the way through and the loss never leaves ln 10: the network
# learns nothing. With batch norm, the same bad weights train well, if not quite as fast
# as a network with He initialisation. The data are the 8×8 digits, standardised with
# training statistics.

# %%
X, y = nl.data.digits()
X_train, y_train, X_val, y_val, X_test, y_test = nl.data.train_val_test_split(
    X, y, val_size=0.1, test_size=0.25, seed=0
)
scaler = nl.Standardize().fit(X_train)
Z_train, Z_val = scaler.transform(X_train), scaler.transform(X_val)

runs = {}
for name, init, batchnorm in [
    ("std 0.01, no batch norm", "normal", False),
    ("std 0.01, batch norm", "normal", True),
    ("He, no batch norm", "he", False),
]:
    model = nl.mlp(64, [100] * 8, 10, init=init, batchnorm=batchnorm, rng=0)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Momentum(lr=0.05, momentum=0.9),
                         monitor=False)
    history = trainer.fit(Z_train, y_train, validation=(Z_val, y_val), epochs=10,
                          batch_size=64, seed=0)
    runs[name] = history
    print(f"{name:>24}: first loss {history.loss[0]:.3f}, last epoch {history['loss'][-1]:.3f}, "
          f"validation accuracy {history['val_acc'][-1]:.3f}")

# %%
stuck, rescued, good = (runs[k] for k in runs)
assert abs(stuck["loss"][-1] - np.log(10)) < 0.01 and stuck["val_acc"][-1] < 0.2  # nothing learnt
assert rescued["loss"][-1] < 0.5 and rescued["val_acc"][-1] > 0.9
assert good["val_acc"][-1] > 0.9

# %% [markdown]
# The loss at every step (thin) and its running mean over 10 steps:

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(7, 4.2))
ax = fig.add_subplot()
for k, (name, history) in enumerate(runs.items()):
    loss = np.asarray(history.loss)
    ax.plot(loss, color=f"C{k}", alpha=0.25, lw=0.8)
    smooth = np.convolve(loss, np.ones(10) / 10, mode="valid")
    ax.plot(np.arange(9, len(loss)), smooth, color=f"C{k}", label=name)
ax.axhline(np.log(10), color="0.5", ls=":", lw=1)
ax.text(0, np.log(10) + 0.05, "ln 10", color="0.4", fontsize="small")
ax.set_xlabel("step")
ax.set_ylabel("training loss")
ax.set_title("8 hidden ReLU layers on digits, momentum SGD")
ax.legend()
fig

# %% [markdown]
# Why it works: at the first step, the input of every ReLU in the batch-normalised network
# has unit variance per unit (up to `eps`), however small the weights before it, while
# without batch norm the spread shrinks at each layer by a factor of about
# `0.01 · sqrt(100 / 2) ≈ 0.07` (the ReLU halves the variance, the weights scale it by
# 100 · 0.01²).

# %%
def relu_input_stds(model, X):
    """The std of the input of every ReLU, for one training-mode pass over X."""
    out, stds = X, []
    for layer in model:
        if isinstance(layer, nl.ReLU):
            stds.append(float(out.std()))
        out = layer.forward(out, training=True)
    return np.array(stds)


plain = relu_input_stds(nl.mlp(64, [100] * 8, 10, init="normal", rng=0), Z_train)
normed = relu_input_stds(nl.mlp(64, [100] * 8, 10, init="normal", batchnorm=True, rng=0), Z_train)
print("std of the ReLU inputs, no batch norm:", " ".join(f"{v:.1e}" for v in plain))
print("std of the ReLU inputs, batch norm:   ", " ".join(f"{v:.3f}" for v in normed))
assert plain[-1] < 1e-8 and np.all(plain[1:] / plain[:-1] < 0.1)
assert np.allclose(normed, 1.0, atol=5e-3)  # var / (var + eps): eps = 1e-5 against var ~ 1e-2

# %% [markdown]
# In the notes' words, batch norm is a remedy against vanishing gradients: it keeps the
# scale of the activations from shrinking layer after layer. Reach for it when a network
# trains very slowly, or not at all, or when its gradients explode; in ordinary cases it
# often speeds training up and improves accuracy too. (Its authors add that it tolerates
# higher learning rates and acts as a mild regulariser, since each example's output is
# jittered by its batch companions.) `neuronlab train --batchnorm` and the
# `batchnorm=True` of `nl.mlp` switch it on.
#
# Next: [regularisation](07_regularization.md).
