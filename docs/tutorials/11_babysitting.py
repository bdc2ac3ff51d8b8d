# %% [markdown]
# # Babysitting the learning process
#
# The sanity checks passed and training has started: now watch it. The notes name the
# quantities worth plotting while a network learns:
#
# * the **loss**, per step: its shape tells whether the learning rate is right;
# * the **training and validation accuracy**: their gap tells over- from underfitting;
# * the **ratio of the update magnitudes to the weight magnitudes**, which should be
#   around 1e-3;
# * for images, the **first-layer weights**, which should look smooth, not noisy.
#
# neuronlab's `Trainer` runs a `Monitor` by default that records these (and more: dead
# ReLUs, activation statistics, gradient noise, optionally the loss's sharpness) every
# few steps, `nl.plots` draws them, and `nl.diagnose` reads them back as findings in plain
# words. All the runs here are on the 8×8 digits and take a fraction of a second each.
# The Monitor measures every 100 steps by default: about 2% of a long run of a large
# network, and more of a tiny one's (~13% of 64-128-10 at batch 32 beside the compiled
# engine, whose steps take ~25 µs). These runs are a few hundred steps long, so we ask for
# every 10 steps.

# %%
import numpy as np

import neuronlab as nl
import neuronlab.plots

X, y = nl.data.digits()
X_train, y_train, X_val, y_val, X_test, y_test = nl.data.train_val_test_split(
    X, y, val_size=0.15, test_size=0.2, seed=0
)
scaler = nl.Standardize().fit(X_train)
X_train, X_val, X_test = (scaler.transform(a) for a in (X_train, X_val, X_test))
loss = nl.SoftmaxCrossEntropy()


def train(lr, *, optimizer=nl.Adam, epochs=10, n_train=None, model=None, batch_size=32):
    """A 64-64-10 ReLU network trained with its own Monitor (every 10 steps)."""
    model = model if model is not None else nl.mlp(64, [64], 10, rng=0)
    monitor = nl.Monitor(every=10, noise_every=25)
    trainer = nl.Trainer(model, loss, optimizer(lr=lr), monitor=monitor,
                         callbacks=[nl.NonFiniteGuard()])
    rows = slice(None, n_train)
    try:
        trainer.fit(X_train[rows], y_train[rows], validation=(X_val, y_val), epochs=epochs,
                    batch_size=batch_size, seed=0)
    except nl.DivergenceError as err:  # NonFiniteGuard stops a run at its first NaN/Inf
        print(f"lr {lr:g}: {err}")
    return model, trainer.history


# %% [markdown]
# ## The loss and the learning rate
#
# The notes' picture of loss curves: a **low** learning rate gives a slow, almost linear
# decrease; a **good** one a fast drop that keeps improving; a **high** one drops fast,
# then stalls at a worse loss (the steps are too big to settle into the valley); a **very
# high** one makes the loss go up. Four runs of Adam that differ only in the rate:

# %%
rates = {"low": 1e-6, "good": 1e-3, "high": 0.1, "very high": 1.0}
runs = {name: train(lr) for name, lr in rates.items()}
for name, (_, h) in runs.items():
    print(f"{name:>9} (lr {rates[name]:g}): epoch losses {h['loss'][0]:.3g} -> {h['loss'][-1]:.3g}")

first_loss = runs["good"][1].loss[0]
final = {name: h["loss"][-1] for name, (_, h) in runs.items()}
assert abs(first_loss - np.log(10)) < 0.05  # ln 10 at the start, as the sanity check says
assert final["good"] == min(final.values())
assert final["low"] > 0.98 * first_loss  # barely moved
assert final["low"] > final["high"] > 2 * final["good"]  # faster than low, worse than good
assert final["very high"] > first_loss  # went up

# %%
from matplotlib.figure import Figure


def ema(values, beta=0.95):
    out, a = [], 0.0
    for k, v in enumerate(values, start=1):
        a = beta * a + (1 - beta) * v
        out.append(a / (1 - beta**k))  # bias-corrected, as the library's loss plot does
    return out


fig = Figure(figsize=(6.4, 4.0), layout="constrained")
ax = fig.add_subplot()
for (name, (_, h)), color in zip(runs.items(), ("C2", "C0", "C1", "C3")):
    ax.plot(ema(h.loss), color=color, label=f"{name} (lr {rates[name]:g})")
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("training loss (smoothed)")
ax.set_title("Loss curves at four learning rates (Adam)")
ax.legend()
fig

# %% [markdown]
# The per-step loss is noisy because each step sees a different minibatch; the notes
# add that the amount of "wiggle" is related to the batch size. `nl.plots.plot_loss` shows
# the raw steps, their moving average, and the per-epoch training and validation loss:

# %%
model, healthy = runs["good"]
neuronlab.plots.plot_loss(healthy)

# %% [markdown]
# ## Training and validation accuracy
#
# The gap between the two curves measures overfitting. In the healthy run it is small:

# %%
gap = healthy.epochs[-1]["acc"] - healthy.epochs[-1]["val_acc"]
print(f"train {healthy.epochs[-1]['acc']:.3f}, validation {healthy.epochs[-1]['val_acc']:.3f}, "
      f"gap {gap:.3f}")
assert healthy.epochs[-1]["val_acc"] > 0.95 and abs(gap) < 0.05
neuronlab.plots.plot_accuracy(healthy)

# %% [markdown]
# Now a wider network trained on only 80 examples for 100 epochs: it learns them all,
# and the validation accuracy stalls far below. The notes' advice: regularise more (a
# stronger L2, dropout) or collect more data. (A validation accuracy that tracks the
# training accuracy closely, on the other hand, suggests the model is too small.)

# %%
small_data_model, overfit = train(1e-3, epochs=100, n_train=80, batch_size=16,
                                  model=nl.mlp(64, [256], 10, rng=0))
last = overfit.epochs[-1]
print(f"train {last['acc']:.3f}, validation {last['val_acc']:.3f}")
assert last["acc"] == 1.0 and last["acc"] - last["val_acc"] > 0.1
neuronlab.plots.plot_accuracy(overfit)

# %% [markdown]
# ## Update / weight ratios
#
# The notes' rule of thumb: the size of each step relative to the size of the weights,
# ‖Δw‖ / ‖w‖, should be about 1e-3. Much lower, the learning rate is too low; much
# higher, too high. The Monitor measures it from the real step (whatever the optimizer
# did), every 10 steps here, for each weight array. The plot shades a decade either side
# of 1e-3.

# %%
def median_ratios(history):
    ratios = {}
    for r in history.monitor:
        if r["kind"] == "param" and r["role"] == "weight" and r["update_ratio"] is not None:
            ratios.setdefault(r["param"], []).append(r["update_ratio"])
    return {k: float(np.median(v)) for k, v in ratios.items()}


print("healthy run:", {k: f"{v:.1e}" for k, v in median_ratios(healthy).items()})
print("low lr:     ", {k: f"{v:.1e}" for k, v in median_ratios(runs["low"][1]).items()})
assert all(1e-4 <= v <= 1e-2 for v in median_ratios(healthy).values())
assert all(v < 1e-4 for v in median_ratios(runs["low"][1]).values())
neuronlab.plots.plot_update_ratios(healthy)

# %% [markdown]
# ## First-layer weights
#
# Each hidden unit of the first layer has one weight per input pixel, so its weights are
# an 8×8 image. Before training they are noise. The notes' reading: well-trained features
# are smooth and varied; features that still look like noise point to a network that has
# not converged or has too little regularisation. After 10 epochs of the healthy run the
# weights have barely moved from their random start (an update ratio of 1e-3 per step adds
# up slowly); with an L2 penalty of 1e-2 and 20 epochs the noise decays and strokes and
# blobs appear. A rough number for it: the mean difference between neighbouring pixels,
# relative to the mean weight (about √2 for pure noise, smaller for smooth images).

# %%
def roughness(net):
    W = net.params["0.W"].T.reshape(-1, 8, 8)  # one 8x8 image per hidden unit
    W = W - W.mean(axis=(1, 2), keepdims=True)
    steps = np.abs(np.diff(W, axis=1)).mean() + np.abs(np.diff(W, axis=2)).mean()
    return float(steps / (2 * np.abs(W).mean()))


untrained = nl.mlp(64, [64], 10, rng=0)
smooth = nl.mlp(64, [64], 10, rng=0)
nl.Trainer(smooth, loss, nl.Adam(lr=3e-3), regularizer=nl.L2(1e-2), monitor=False).fit(
    X_train, y_train, epochs=20, batch_size=32, seed=0)
print(f"roughness: untrained {roughness(untrained):.2f}, healthy run {roughness(model):.2f}, "
      f"L2 1e-2 {roughness(smooth):.2f}; validation accuracy of the last "
      f"{np.mean(smooth.predict(X_val) == y_val):.3f}")
assert roughness(smooth) < 0.9 * roughness(untrained)

fig = Figure(figsize=(11.0, 4.0), layout="constrained")
panels = fig.subplots(1, 3)
for ax, net, title in zip(panels, (untrained, model, smooth),
                          ("before training", "10 epochs, no penalty", "20 epochs, L2 1e-2")):
    neuronlab.plots.plot_weight_grid(net, (8, 8), ax=ax)
    ax.set_title(title)
fig

# %% [markdown]
# ## Dead units
#
# A ReLU unit whose input is negative on every example outputs 0 everywhere and gets no
# gradient, so it never recovers. A too-large update can push many units there (the notes:
# "as much as 40% of your network can be dead"), and so can a bad initialisation. Here the
# first layer's biases start at −6:

# %%
dead_start = nl.mlp(64, [64], 10, rng=0)
dead_start.params["0.b"][...] = -6.0
_, dead_run = train(1e-3, epochs=5, model=dead_start)
# (The Monitor calls a unit dead when it outputs 0 on all 128 rows of its sample; a unit
# that still fires on a few other training rows can come back, hence the small wiggles.)
fractions = [r["dead_fraction"] for r in dead_run.monitor
             if r["kind"] == "layer" and r.get("dead_fraction") is not None]
print(f"dead ReLUs: {fractions[0]:.0%} at the start, {fractions[-1]:.0%} at the end")
assert fractions[-1] > 0.5
healthy_dead = [r["dead_fraction"] for r in healthy.monitor if r.get("dead_fraction") is not None]
assert healthy_dead[-1] < 0.05
neuronlab.plots.plot_dead_units(dead_run)

# %% [markdown]
# ## The diagnosis in words
#
# `nl.diagnose(history)` applies the notes' rules of thumb to the Monitor's records and
# returns findings with their evidence and what to try; `nl.format_findings` prints them.
# Each finding has a severity: "error" (the run is broken), "warning" (it works badly) or
# "info" (worth knowing). The healthy run has no error and no warning, at most an "info"
# line such as the one about the gradient noise scale, explained further down.

# %%
print(nl.format_findings(nl.diagnose(healthy)))
assert all(f.severity == "info" for f in nl.diagnose(healthy))

# %% [markdown]
# The runs with problems:

# %%
bad_runs = {"low lr": runs["low"][1], "80 examples": overfit, "dead units": dead_run}
for name, history in bad_runs.items():
    print(f"--- {name}\n{nl.format_findings(nl.diagnose(history))}")

assert [f.rule for f in nl.diagnose(runs["low"][1])] == ["lr_too_low"]
assert "overfitting" in [f.rule for f in nl.diagnose(overfit)]
assert "dead_relu" in [f.rule for f in nl.diagnose(dead_run)]

# %% [markdown]
# A run that diverges is the clearest case. Momentum SGD with lr = 3 blows up within a
# hundred steps; `NonFiniteGuard` stops it at the first non-finite value, and the
# diagnosis names where the infinity first appeared:

# %%
_, diverged = train(3.0, optimizer=nl.Momentum)
findings = nl.diagnose(diverged)
print(nl.format_findings(findings))
assert diverged.info["diverged_step"] < 100
assert findings[0].rule == "lr_too_high" and findings[0].severity == "error"

# %% [markdown]
# ## Finding a learning rate: the range test
#
# Rather than guessing, `neuronlab.babysit.lr_find.lr_find` runs the learning-rate range
# test (Smith): from the current weights it takes 100 steps while the rate grows
# geometrically from 1e-7 to 10, records the loss, and repeats this for three seeds. The
# loss first does not move (rates too small), then falls, then blows up. The recommended
# rate ("valley") is a tenth of the way down the falling part: clearly making progress,
# well below the rates where it becomes unstable. The model, its optimizer and their random
# generators are left exactly as they were.

# %%
import neuronlab.babysit.lr_find

fresh = nl.mlp(64, [64], 10, rng=0)
before = {k: v.copy() for k, v in fresh.params.items()}
result = neuronlab.babysit.lr_find.lr_find(fresh, loss, nl.Adam(), X_train, y_train)
print(result.summary())
assert 1e-4 < result.suggestion < 1e-1
assert all(np.array_equal(before[k], fresh.params[k]) for k in before)  # weights untouched
result.plot()

# %% [markdown]
# ## Gradient noise scale
#
# A minibatch gradient is the true gradient G plus noise. The *gradient noise scale*
# B_simple = tr(Σ) / |G|² (McCandlish et al.) compares the per-example gradients' spread
# Σ with the signal: at a batch size near B_simple, noise and signal in the batch gradient
# are about equal. Well below it, steps are mostly noise; well above it, extra rows cost
# compute without shortening training. The Monitor measures it every `noise_every` steps
# (25 here) from per-example gradients of its sample. It usually grows during training,
# as the gradient itself shrinks. The lower panel shows each layer's gradient
# signal-to-noise ratio (the mean over its weights of ḡ² / Var(g) across examples): well
# below 1, that layer's batch gradient is mostly noise.

# %%
import neuronlab.babysit.gradient_noise

noise = [(r["step"], r["b_simple"]) for r in healthy.monitor
         if r["kind"] == "noise" and r["layer"] == "" and r["b_simple"] is not None]
early = np.median([b for s, b in noise[:5]])
late = np.median([b for s, b in noise[-5:]])
print(f"B_simple: median {early:.0f} over the first measurements, {late:.0f} over the last "
      f"(batch size 32)")
assert late > 3 * early
neuronlab.babysit.gradient_noise.plot_noise_scale(healthy, batch_size=32)

# %% [markdown]
# ## Sharpness and the edge of stability
#
# On a quadratic with curvature λ, gradient descent with step lr converges only if
# lr·λ < 2. A network's loss is locally quadratic, and the largest curvature that matters
# is the top eigenvalue of its Hessian, the *sharpness*. So plain gradient descent is
# stable while the sharpness is below 2/lr (momentum and Adam have their own bounds).
# `nl.Monitor(sharpness_every=k)` estimates it every k steps by power iteration on
# Hessian-vector products.
#
# Full-batch gradient descent with lr = 2 sets the bound at 2/lr = 1, but the network's
# sharpness is well above it at first. The loss bounces for a few steps, and during these steps
# the weights move to a flatter region, where the sharpness is below 1; from then on the
# loss falls smoothly (the "catapult" of Lewkowycz et al.; Cohen et al. describe training
# that hovers at this edge).

# %%
import neuronlab.babysit.sharpness

gd = nl.mlp(64, [64], 10, rng=0)
gd_trainer = nl.Trainer(gd, loss, nl.SGD(lr=2.0),
                        monitor=nl.Monitor(every=10, noise_every=None, sharpness_every=4))
gd_history = gd_trainer.fit(X_train, y_train, epochs=40, batch_size=len(X_train), seed=0)
sharp = [r for r in gd_history.monitor if r["kind"] == "sharpness"]
for r in sharp[:4] + sharp[-1:]:
    print(f"step {r['step']:>2}: sharpness {r['top_eigenvalue']:.2f}, "
          f"bound 2/lr = {r['threshold']:g}")
print("loss over the first steps:", np.round(gd_history.loss[:6], 2))
assert all(r["threshold"] == 2 / 2.0 for r in sharp)  # SGD's bound is 2/lr
assert sharp[0]["top_eigenvalue"] > 1.0 > sharp[-1]["top_eigenvalue"]
assert np.any(np.diff(gd_history.loss[:6]) > 0)  # the loss bounced...
assert gd_history.loss[-1] < 0.2  # ...then fell
neuronlab.babysit.sharpness.plot_sharpness(gd_history)

# %% [markdown]
# If the sharpness stays above the bound, the loss oscillates or blows up:
# `nl.diagnose` then reports `edge_of_stability` with the learning rate below which the
# run would be stable.
#
# ## Summary
#
# | watch | healthy | if not |
# |---|---|---|
# | loss curve | falls fast, keeps improving | lr too low (flat), high (stalls), too high (rises) |
# | train − val accuracy | a small gap | large: regularise or get data; none: a bigger model |
# | update / weight ratio | ≈ 1e-3 | far above: lower the lr; far below: raise it |
# | dead ReLUs | few | lower lr, check init and biases, leaky ReLU |
# | sharpness | below the optimizer's bound | lower lr, warm up |
#
# The same plots, and the diagnosis, are in the HTML report that `neuronlab train` writes
# for every run.
