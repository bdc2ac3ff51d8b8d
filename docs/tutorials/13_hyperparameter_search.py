# %% [markdown]
# # Hyperparameter search
#
# A network has many knobs: the learning rate, its decay, the regularisation strength,
# the width, dropout... Each trial is a training run, so searching is expensive, and the
# notes give a few rules for doing it well:
#
# * prefer **random search to grid search**: when only a few hyperparameters really
#   matter, a grid wastes most trials repeating the same values of the important ones;
# * search scale parameters such as the learning rate and the regularisation strength on a
#   **log scale**;
# * go **coarse to fine**: a wide range with short runs first, then a narrower range with
#   longer runs around the best results;
# * **Bayesian optimisation** uses the trials so far to choose the next, trading off
#   exploration and exploitation.
#
# `neuronlab.search` implements all four strategies (`Grid`, `Random`, `CoarseToFine`,
# `TPE`) on top of Optuna. `run_search(objective, space, strategy=...)` calls
# `objective(params, trial)` for each trial and maximises what it returns. Trials can run
# in worker processes or on a Dask cluster; here they are tiny, so they run in this
# process (`workers=0`).

# %%
import numpy as np

import neuronlab as nl
from neuronlab import search

# %% [markdown]
# ## Random search beats grid search
#
# Bergstra and Bengio's picture: a validation score that depends strongly on one
# hyperparameter and hardly at all on another. Here the score is a narrow bump in the
# important one, a, and does not depend on the unimportant one, b. Nine trials of a 3×3
# grid try only three values of a; nine random trials try nine.

# %%
def bump(a):
    return np.exp(-(((a - 0.73) / 0.08) ** 2))


def score(params, trial):
    return float(bump(params["a"]))  # params["b"] has no effect


space = search.Space({"a": "uniform(0, 1)", "b": "uniform(0, 1)"})
grid = search.run_search(score, space, strategy=search.Grid(points=3), n_trials=9,
                         workers=0, pruner="none", seed=0)
rand = search.run_search(score, space, strategy="random", n_trials=9,
                         workers=0, pruner="none", seed=0)
for name, result in (("grid", grid), ("random", rand)):
    a_values = sorted({round(r["params"]["a"], 6) for r in result.records})
    print(f"{name:>6}: {len(result.records)} trials, {len(a_values)} distinct values of a, "
          f"best score {result.best['value']:.3f}")

distinct_a = {name: len({r["params"]["a"] for r in res.records}) for name, res in
              (("grid", grid), ("random", rand))}
assert distinct_a == {"grid": 3, "random": 9}
assert rand.best["value"] > grid.best["value"]

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(9.0, 4.4), layout="constrained")
curve = np.linspace(0, 1, 200)
for col, (name, result) in enumerate((("Grid layout", grid), ("Random layout", rand))):
    top, main = fig.add_subfigure(fig.add_gridspec(1, 2)[0, col]).subplots(
        2, 1, height_ratios=[1, 3], sharex=True)
    a = [r["params"]["a"] for r in result.records]
    b = [r["params"]["b"] for r in result.records]
    top.fill_between(curve, bump(curve), color="C2", alpha=0.3)
    top.plot(a, bump(np.array(a)), "o", color="C0")
    top.set_yticks([])
    top.set_title(name)
    main.plot(a, b, "o", color="C0", ms=8)
    main.set_xlabel("important parameter a")
    main.set_ylabel("unimportant parameter b")
    main.set_xlim(-0.05, 1.05)
    main.set_ylim(-0.05, 1.05)
fig

# %% [markdown]
# One search could be lucky. Over 2000 simulated searches, each with the bump at a random
# place, random search finds a better point than the 3×3 grid most of the time:

# %%
rng = np.random.default_rng(0)
grid_a = np.array([0.0, 0.5, 1.0])
wins, gaps = 0, []
for _ in range(2000):
    shift = rng.uniform(0, 1) - 0.73  # the bump moved to a random place
    best_grid = bump(grid_a - shift).max()
    best_random = bump(rng.uniform(0, 1, size=9) - shift).max()
    wins += best_random > best_grid
    gaps.append(best_random - best_grid)
print(f"random search better in {wins / 2000:.0%} of the searches; mean best score "
      f"{np.mean(gaps):+.3f} above the grid's")
assert wins / 2000 > 0.7 and np.mean(gaps) > 0.2

# %% [markdown]
# ## Search scale parameters on a log scale
#
# The learning rate and the regularisation strength act multiplicatively on the dynamics
# of training: going from 0.001 to 0.01 matters as much as going from 0.01 to 0.1. So the
# notes sample the exponent: `learning_rate = 10 ** uniform(-6, 1)`. A `loguniform`
# parameter does exactly that. Sampled uniformly instead, 90% of the draws between 1e-6
# and 0.1 land in the last decade:

# %%
rng = np.random.default_rng(0)
linear = rng.uniform(1e-6, 1e-1, size=10_000)
logarithmic = 10 ** rng.uniform(-6, -1, size=10_000)
for name, values in (("uniform", linear), ("log-uniform", logarithmic)):
    counts = np.histogram(np.log10(values), bins=np.arange(-6, 0))[0] / len(values)
    print(f"{name:>12}: share per decade 1e-6..1e-1:", np.round(counts, 2))
assert np.mean(linear > 1e-2) > 0.89
assert abs(np.mean(logarithmic > 1e-2) - 0.2) < 0.02

# A search space in the notation of neuronlab (and of its TOML files):
space = search.Space({"lr": "loguniform(1e-5, 1)", "l2": "loguniform(1e-6, 1)"})
print(space)
assert space["lr"].log and space["l2"].log

# %% [markdown]
# ## Bayesian optimisation: TPE on the digits
#
# A Bayesian method models how the score depends on the hyperparameters from the trials
# so far, and proposes the next trial where that model expects a good result or is still
# uncertain. Optuna's Tree-structured Parzen Estimator (TPE) splits the finished trials
# into good and bad ones, fits a density to each, and samples where the ratio
# good / bad is highest. Its first trials (`n_startup_trials`) are random.
#
# Our objective trains a small network for 3 epochs with the proposed learning rate and
# L2 strength and returns the validation accuracy. It reports the accuracy after every
# epoch with `trial.report`: with a pruner (`pruner="median"`), a trial that is worse
# than the median of the finished ones at the same epoch is stopped early. Twelve trials:

# %%
X, y = nl.data.digits()
X_train, y_train, X_val, y_val, X_test, y_test = nl.data.train_val_test_split(
    X, y, val_size=0.2, test_size=0.2, seed=0
)
scaler = nl.Standardize().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
softmax = nl.SoftmaxCrossEntropy()


def validation_accuracy(params, trial):
    model = nl.mlp(64, [64], 10, rng=trial.number)
    trainer = nl.Trainer(model, softmax, nl.Adam(lr=params["lr"]),
                         regularizer=nl.L2(params["l2"]), monitor=False)
    history = trainer.fit(X_train, y_train, validation=(X_val, y_val), epochs=3, seed=0)
    for epoch in history.epochs:
        trial.report(epoch["val_acc"], epoch["epoch"])
    return history.epochs[-1]["val_acc"]


tpe = search.run_search(validation_accuracy, space, strategy=search.TPE(n_startup_trials=6),
                        n_trials=12, workers=0, pruner="none", seed=0)
for r in tpe.records:
    kind = "random" if r["number"] < 6 else "TPE"
    print(f"trial {r['number']:>2} ({kind:>6}): lr {r['params']['lr']:.1e}, "
          f"l2 {r['params']['l2']:.1e} -> validation accuracy {r['value']:.3f}")
best = tpe.best
print(f"best: trial {best['number']}, lr {best['params']['lr']:.1e}, "
      f"l2 {best['params']['l2']:.1e}, accuracy {best['value']:.3f}")
assert tpe.count("COMPLETE") == 12
assert best["value"] > 0.95 and 1e-4 < best["params"]["lr"] < 1e-1

# %% [markdown]
# The notes' way to look at such a search: the score over log learning rate × log
# regularisation strength. The worst trials have a learning rate near 1e-5 (far too low
# for 3 epochs) or a strong penalty; the good ones lie between.

# %%
search.plot_lr_reg(tpe.records)

# %% [markdown]
# Twelve trials are too few to see TPE win. On a cheap synthetic "validation score"
# (a smooth peak at lr = 10^−2.5, l2 = 10^−4), five searches of 25 trials each:

# %%
def synthetic(params, trial):
    return -((np.log10(params["lr"]) + 2.5) ** 2 + (np.log10(params["l2"]) + 4) ** 2)


wide = search.Space({"lr": "loguniform(1e-6, 1)", "l2": "loguniform(1e-7, 1e-1)"})
mean_best = {}
for name in ("random", "tpe"):
    bests = []
    for seed in range(5):
        strategy = search.TPE(n_startup_trials=5) if name == "tpe" else "random"
        result = search.run_search(synthetic, wide, strategy=strategy, n_trials=25, workers=0,
                                   pruner="none", seed=seed)
        bests.append(result.best["value"])
    mean_best[name] = float(np.mean(bests))
    print(f"{name:>6}: best score per search {np.round(bests, 3)}, mean {mean_best[name]:.3f}")
assert mean_best["tpe"] > mean_best["random"]

# %% [markdown]
# ## Coarse to fine
#
# `CoarseToFine` runs random search in stages. After each stage it narrows every range
# to the span of the stage's best trials (a quarter of them, plus a margin), and the next
# stage searches there. It also gives early stages a fraction of the training budget
# (`trial.budget`: a quarter, then half, then all of the epochs), since a few epochs are
# enough to rule out the hopeless regions. On the synthetic score, three stages of 10:

# %%
c2f = search.run_search(synthetic, wide, strategy=search.CoarseToFine(stages=3),
                        n_trials=30, workers=0, pruner="none", seed=0)
for stage, sp in enumerate(c2f.stages):
    lo, hi = sp["lr"].low, sp["lr"].high
    budgets = {r["budget"] for r in c2f.records if r["stage"] == stage}
    print(f"stage {stage}: lr in [{lo:.1e}, {hi:.1e}] ({np.log10(hi / lo):.1f} decades), "
          f"budget {budgets}")
widths = [np.log10(sp["lr"].high / sp["lr"].low) for sp in c2f.stages]
assert widths[0] > widths[1] > widths[2]
assert c2f.stages[-1]["lr"].low < 10**-2.5 < c2f.stages[-1]["lr"].high  # the peak is kept

# %%
fig = Figure(figsize=(6.0, 4.4), layout="constrained")
ax = fig.add_subplot()
for stage in range(3):
    pts = [(r["params"]["lr"], r["params"]["l2"]) for r in c2f.records if r["stage"] == stage]
    ax.scatter(*zip(*pts), s=30, label=f"stage {stage}")
ax.plot([10**-2.5], [1e-4], "k*", ms=14, label="the peak")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("learning rate")
ax.set_ylabel("L2 strength")
ax.set_title("Coarse to fine: each stage searches where the last one did best")
ax.legend(fontsize="small")
fig

# %% [markdown]
# ## In practice
#
# * Search on a validation split, never the test set; a single split is fine when it is
#   big enough (the notes prefer it to cross-validation for expensive networks).
# * Check that the best values are not at the edge of the range: if they are, widen it.
# * For real searches, run trials in worker processes (`workers=4`) or on a Dask cluster
#   (`dask="tcp://..."`), keep the study in a directory (`directory="searches/lr"`) so a
#   rerun resumes it, and let `search.TrainObjective` train full run configurations, as
#   `neuronlab search --strategy tpe --trials 50` does from the command line.
# * The best few trials make a good [ensemble](14_ensembles.md).
