# %% [markdown]
# # Parameter updates and learning-rate annealing
#
# Once backpropagation gives the gradient, an *update rule* turns it into a step. The
# notes go from plain gradient descent to momentum, to rules that adapt a learning rate
# per parameter (Adagrad, RMSprop, Adam), then to second-order methods (Newton, L-BFGS),
# and discuss how to lower the learning rate over time (annealing).
#
# Every rule in neuronlab is an `Optimizer` with one method,
# `step(params, grads, lr=None)`, which updates a dict of arrays in place. It does not
# care whether the arrays belong to a network: we start on a two-parameter toy problem
# where every step can be drawn.

# %%
import numpy as np

import neuronlab as nl

# %% [markdown]
# ## A long, narrow valley
#
# The loss f(w) = ½ (w₁² + 25 w₂²) is a valley 25 times steeper across (w₂) than along
# (w₁). Its gradient is (w₁, 25 w₂) and its minimum is at 0. Such ill-conditioned valleys
# are what makes plain gradient descent slow: a learning rate small enough for the steep
# direction crawls along the flat one.

# %%
curvature = np.array([1.0, 25.0])


def loss(w):
    return 0.5 * float(np.sum(curvature * w**2))


def descend(optimizer, steps=60, start=(-4.0, 1.5)):
    """Run ``optimizer`` on the valley; return the path, one row per step."""
    params = {"w": np.array(start)}
    grads = {"w": np.zeros(2)}
    path = [params["w"].copy()]
    for _ in range(steps):
        grads["w"][...] = curvature * params["w"]  # the gradient at the current point
        optimizer.step(params, grads)
        path.append(params["w"].copy())
    return np.array(path)


# %% [markdown]
# ## Vanilla SGD
#
# The simplest update follows the negative gradient:
#
#     x += − learning_rate · dx
#
# On a quadratic each direction with curvature λ is multiplied by (1 − lr·λ) per step, so
# the steep direction (λ = 25) converges only if lr < 2/25 = 0.08: just above it, the
# iterates bounce across the valley with growing amplitude.

# %%
for lr in (0.07, 0.085):
    path = descend(nl.SGD(lr=lr))
    print(f"SGD lr {lr}: loss {loss(path[0]):.1f} -> {loss(path[-1]):.3g} after 60 steps")
assert loss(descend(nl.SGD(lr=0.07))[-1]) < 1e-2
assert loss(descend(nl.SGD(lr=0.085))[-1]) > loss(descend(nl.SGD(lr=0.085))[0])  # diverges

# %% [markdown]
# ## Momentum and Nesterov momentum
#
# Momentum treats the parameters as a ball rolling down the loss surface: the gradient
# changes a velocity, and the velocity changes the position. μ (about 0.9) acts as
# friction:
#
#     v = mu · v − learning_rate · dx
#     x += v
#
# Along the flat direction successive gradients agree and the velocity builds up; across
# the valley they alternate and cancel. Nesterov momentum evaluates the gradient at the
# "looked-ahead" point x + μ·v, where the momentum is about to carry us:
#
#     x_ahead = x + mu · v
#     v = mu · v − learning_rate · dx_ahead
#     x += v
#
# `nl.Nesterov` stores the look-ahead point itself as the parameter (the usual change of
# variables), so it only ever needs the gradient at its own parameters. We check that it
# is the notes' rule: running the notes' formulas by hand, x_ahead after every step is
# exactly what `nl.Nesterov` holds.

# %%
mu, lr = 0.9, 0.02
x, v = np.array([-4.0, 1.5]), np.zeros(2)
lookahead = []
for _ in range(20):
    x_ahead = x + mu * v
    v = mu * v - lr * curvature * x_ahead
    x = x + v
    lookahead.append(x + mu * v)
library = descend(nl.Nesterov(lr=lr, momentum=mu), steps=20, start=(-4.0, 1.5))
assert np.allclose(library[1:], lookahead, rtol=1e-12, atol=1e-12)

# With mu = 0 momentum is plain SGD; with mu = 0.9 it gets far further in 60 steps.
assert np.array_equal(descend(nl.Momentum(lr=lr, momentum=0.0)), descend(nl.SGD(lr=lr)))
sgd_end, momentum_end = loss(descend(nl.SGD(lr=lr))[-1]), loss(descend(nl.Momentum(lr=lr))[-1])
print(f"after 60 steps at lr {lr}: SGD {sgd_end:.3g}, momentum {momentum_end:.3g}")
assert momentum_end < sgd_end / 10

# %% [markdown]
# ## Per-parameter adaptive learning rates
#
# **Adagrad** keeps, for every parameter, the sum of its squared gradients, and divides
# the step by its square root: parameters with large gradients get smaller steps, those
# with small gradients larger ones.
#
#     cache += dx**2
#     x += − learning_rate · dx / (sqrt(cache) + eps)
#
# **RMSprop** makes the cache a leaky average, so the effective rate does not shrink
# forever (decay_rate is typically 0.9, 0.99 or 0.999):
#
#     cache = decay_rate · cache + (1 − decay_rate) · dx**2
#     x += − learning_rate · dx / (sqrt(cache) + eps)
#
# **Adam** is RMSprop with momentum: m smooths the gradient, v its square. Both start at
# 0, so early on they are biased towards 0; the full algorithm divides by
# (1 − β^t) to correct this (β1 = 0.9, β2 = 0.999, eps = 1e-8):
#
#     m = beta1 · m + (1 − beta1) · dx
#     mt = m / (1 − beta1**t)
#     v = beta2 · v + (1 − beta2) · dx**2
#     vt = v / (1 − beta2**t)
#     x += − learning_rate · mt / (sqrt(vt) + eps)
#
# On the first step (t = 1) the correction makes mt = dx and vt = dx², so **every
# parameter moves by lr**, whatever its gradient's size. Here the two gradients differ by
# a factor of about 9 and both coordinates move by exactly lr:

# %%
def first_step(optimizer, start=(-4.0, 1.5)):
    return descend(optimizer, steps=1, start=start)[1] - np.array(start)


adam_lr = 0.3
step = first_step(nl.Adam(lr=adam_lr))
print("gradient at the start:", curvature * np.array([-4.0, 1.5]), "-> Adam's first step:", step)
assert np.allclose(np.abs(step), adam_lr, rtol=1e-6)

# Without the bias correction the first step would be lr (1 - beta1) / sqrt(1 - beta2):
uncorrected = adam_lr * (1 - 0.9) * 1.0 / (np.sqrt(1 - 0.999) * 1.0)
print(f"uncorrected first step: {uncorrected:.3f} = {uncorrected / adam_lr:.2f} lr")
assert abs(uncorrected / adam_lr - 3.162) < 1e-3

# Adagrad's first step is also lr per coordinate; RMSprop's is lr / sqrt(1 - decay).
assert np.allclose(np.abs(first_step(nl.Adagrad(lr=0.5))), 0.5)
assert np.allclose(np.abs(first_step(nl.RMSprop(lr=0.1, decay=0.99))), 0.1 / np.sqrt(0.01))

# %% [markdown]
# ## Trajectories
#
# Each rule with a learning rate that suits it, 60 steps from the same start. SGD zigzags
# across the valley and crawls along it; momentum overshoots and swings back; Nesterov's
# look-ahead damps the swings; the adaptive rules rescale the two directions and head
# more directly for the minimum.

# %%
optimizers = {
    "SGD (lr 0.07)": nl.SGD(lr=0.07),
    "Momentum (lr 0.02, μ 0.9)": nl.Momentum(lr=0.02, momentum=0.9),
    "Nesterov (lr 0.02, μ 0.9)": nl.Nesterov(lr=0.02, momentum=0.9),
    "Adagrad (lr 1)": nl.Adagrad(lr=1.0),
    "RMSprop (lr 0.1, decay 0.9)": nl.RMSprop(lr=0.1, decay=0.9),
    "Adam (lr 0.3)": nl.Adam(lr=0.3),
}
paths = {name: descend(opt) for name, opt in optimizers.items()}
for name, path in paths.items():
    print(f"{name:<28} loss after 10 steps {loss(path[10]):8.3g}, after 60 {loss(path[-1]):8.3g}")
assert all(loss(p[-1]) < 0.1 * loss(p[0]) for p in paths.values())

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(7.5, 4.6), layout="constrained")
ax = fig.add_subplot()
g1, g2 = np.meshgrid(np.linspace(-4.5, 1.5, 200), np.linspace(-2.0, 2.0, 200))
ax.contour(g1, g2, 0.5 * (g1**2 + 25 * g2**2), levels=np.geomspace(0.05, 60, 12),
           colors="0.8", linewidths=0.8)
for name, path in paths.items():
    ax.plot(path[:, 0], path[:, 1], "o-", ms=2, lw=1, label=name)
ax.plot([0], [0], "k*", ms=10)
ax.set_xlabel("w₁ (flat direction)")
ax.set_ylabel("w₂ (steep direction)")
ax.set_title("60 steps on f(w) = ½ (w₁² + 25 w₂²)")
ax.legend(fontsize="small", loc="upper right")
fig

# %% [markdown]
# The notes' recommendation: Adam is a good default; SGD with Nesterov momentum is worth
# trying too (it needs more tuning of the learning rate and its schedule).
#
# ## Annealing the momentum
#
# The notes mention a schedule for μ as well: start at about 0.5 and raise it to 0.99 over
# a few epochs, so that early, noisy gradients do not build up a large velocity. A
# momentum schedule is not a learning-rate schedule, but the optimizer's `momentum` is a
# plain attribute, so a small `Callback` can set it at the start of each epoch:

# %%
X, y = nl.data.digits()
X_train, y_train, X_val, y_val, X_test, y_test = nl.data.train_val_test_split(
    X, y, val_size=0.15, test_size=0.2, seed=0
)
scaler = nl.Standardize().fit(X_train)
X_train, X_val, X_test = (scaler.transform(a) for a in (X_train, X_val, X_test))
softmax = nl.SoftmaxCrossEntropy()


class MomentumRamp(nl.Callback):
    """Raise the optimizer's momentum linearly from ``start`` to ``end`` over ``epochs``."""

    def __init__(self, start=0.5, end=0.99, epochs=5):
        self.start, self.end, self.epochs, self.used = start, end, epochs, []

    def on_epoch_begin(self, trainer, epoch):
        frac = min(epoch / self.epochs, 1.0)
        trainer.optimizer.momentum = self.start + frac * (self.end - self.start)
        self.used.append(trainer.optimizer.momentum)


ramp = MomentumRamp()
net = nl.mlp(64, [64], 10, rng=0)
trainer = nl.Trainer(net, softmax, nl.Nesterov(lr=1e-2, momentum=0.5), callbacks=[ramp],
                     monitor=False)
history = trainer.fit(X_train, y_train, validation=(X_val, y_val), epochs=8, seed=0)
print("momentum per epoch:", np.round(ramp.used, 3))
print(f"validation accuracy {history.epochs[-1]['val_acc']:.3f}")
assert ramp.used[0] == 0.5 and ramp.used[-1] == 0.99
assert history.epochs[-1]["val_acc"] > 0.95

# %% [markdown]
# ## Learning-rate schedules
#
# With a high learning rate the parameters bounce around chaotically and cannot settle
# into the narrower parts of the loss; decaying it too fast wastes computation. The notes
# list three common schedules, written here in optimizer steps t (every schedule is a pure
# function `schedule(step) -> lr`):
#
# * **step decay**: multiply by a factor every few epochs (0.5 every 5 epochs, or 0.1
#   every 20), `nl.StepDecay(lr, factor, every)`;
# * **exponential decay**: α = α₀ e^(−kt), `nl.Exponential(lr, k)`;
# * **1/t decay**: α = α₀ / (1 + kt), `nl.InverseTime(lr, k)`.
#
# The notes prefer step decay, whose hyperparameters (a factor and a period) are easier
# to interpret. A heuristic version is to lower the rate whenever the validation error
# stops improving: that depends on history, so it is the `nl.ReduceLROnPlateau` callback
# rather than a schedule. `nl.Cosine` and `nl.Warmup` are two modern additions.

# %%
schedules = {
    "StepDecay(0.1, factor=0.5, every=20)": nl.StepDecay(0.1, factor=0.5, every=20),
    "Exponential(0.1, k=0.03)": nl.Exponential(0.1, k=0.03),
    "InverseTime(0.1, k=0.1)": nl.InverseTime(0.1, k=0.1),
    "Cosine(0.1, total_steps=100)": nl.Cosine(0.1, total_steps=100),
}
for name, s in schedules.items():
    print(f"{name:<38}", "  ".join(f"t={t}: {s(t):.4f}" for t in (0, 10, 20, 50, 99)))

step_decay = schedules["StepDecay(0.1, factor=0.5, every=20)"]
assert step_decay(19) == 0.1 and step_decay(20) == 0.05 and step_decay(45) == 0.025
assert abs(schedules["Exponential(0.1, k=0.03)"](50) - 0.1 * np.exp(-1.5)) < 1e-15
assert abs(schedules["InverseTime(0.1, k=0.1)"](10) - 0.05) < 1e-15
assert abs(schedules["Cosine(0.1, total_steps=100)"](50) - 0.05) < 1e-15

fig = Figure(figsize=(6.4, 3.6), layout="constrained")
ax = fig.add_subplot()
steps = np.arange(100)
for name, s in schedules.items():
    ax.plot(steps, [s(int(t)) for t in steps], label=name)
ax.set_xlabel("step t")
ax.set_ylabel("learning rate")
ax.set_title("Learning-rate schedules")
ax.legend(fontsize="small")
fig

# %% [markdown]
# A schedule goes to the `Trainer`, which asks it for the rate of every step; the history
# records the rate each step used. Epoch-based rules are converted to steps: here 37 steps
# make one epoch, and the rate halves every 3 epochs.

# %%
import neuronlab.plots

steps_per_epoch = int(np.ceil(len(X_train) / 32))  # batches of 32
assert steps_per_epoch == 37
schedule = nl.StepDecay(3e-3, factor=0.5, every=3 * steps_per_epoch)
net = nl.mlp(64, [64], 10, rng=0)
history = nl.Trainer(net, softmax, nl.Adam(), schedule=schedule, monitor=False).fit(
    X_train, y_train, validation=(X_val, y_val), epochs=9, seed=0)
print(f"{steps_per_epoch} steps per epoch; lr at the start of epochs 0, 3, 6: "
      f"{[history.lr[e * steps_per_epoch] for e in (0, 3, 6)]}")
assert history.lr == [schedule(t) for t in range(len(history.lr))]
assert history.lr[6 * steps_per_epoch] == 3e-3 / 4
neuronlab.plots.plot_learning_rate(history)

# %% [markdown]
# ## Second-order methods
#
# Newton's method uses the curvature too:
#
#     x ← x − [H f(x)]⁻¹ ∇f(x)
#
# with H the Hessian. On a quadratic it jumps to the minimum in one step, and it has no
# learning rate at all.

# %%
start = np.array([-4.0, 1.5])
hessian = np.diag(curvature)
newton = start - np.linalg.solve(hessian, curvature * start)
print("one Newton step from", start, "lands at", newton)
assert np.allclose(newton, 0.0)

# %% [markdown]
# But a network with a million parameters has a Hessian of 10¹² entries, which can be
# neither stored nor inverted. Quasi-Newton methods build an approximation from gradients
# instead; **L-BFGS** keeps only the last few gradient differences. It needs the loss
# over the whole training set (a minibatch's noise breaks its line search), so it is
# "full batch": `nl.LBFGS` is driven by `Trainer` as one `minimize` call per epoch,
# through SciPy. In float64, on a softmax classifier (no hidden layer) and on a small
# network:

# %%
X64, X_val64 = X_train.astype(np.float64), X_val.astype(np.float64)
for hidden in ([], [32]):
    net = nl.mlp(64, hidden, 10, dtype=np.float64, rng=0)
    lbfgs = nl.LBFGS(max_iter=200)
    history = nl.Trainer(net, softmax, lbfgs, regularizer=nl.L2(1e-3), monitor=False).fit(
        X64, y_train, validation=(X_val64, y_val), epochs=1, seed=0)
    result = history.epochs[-1]
    print(f"hidden {hidden}: {lbfgs.result_.nit} L-BFGS iterations, training loss "
          f"{result['loss']:.4f}, validation accuracy {result['val_acc']:.3f}")
    assert lbfgs.result_.nit <= 200 and result["val_acc"] > 0.95

# %% [markdown]
# In deep learning L-BFGS is rare: datasets are too big for full batches, and the
# minibatch first-order rules above are cheaper per step and good enough. For small,
# deterministic problems it is an excellent choice.
