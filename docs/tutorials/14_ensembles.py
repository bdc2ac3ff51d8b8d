# %% [markdown]
# # Model ensembles and parameter averaging
#
# The notes end with a reliable way to gain the last few percent: train several
# independent models and, at test time, average their predictions. Members make
# different mistakes, and averaging cancels some of them; the more the members differ,
# the more the ensemble gains. The notes list ways to get members:
#
# * **the same model, different initialisations** (chosen by cross-validation, then
#   trained several times with different seeds);
# * **the top models found during cross-validation** (different hyperparameters);
# * **checkpoints of a single model** taken during training (cheap: one run);
# * **a running average of the parameters** during training, which is not an ensemble
#   of predictions but often gains a little, for free.
#
# The price is at test time: an ensemble of k models costs k forward passes.
# `nl.Ensemble` averages the predicted class probabilities of its members; `nl.EMA` and
# `nl.Polyak` are callbacks that average the weights while training.

# %%
import time

import numpy as np

import neuronlab as nl

X, y = nl.data.digits()
X_train, y_train, X_val, y_val, X_test, y_test = nl.data.train_val_test_split(
    X, y, val_size=0.15, test_size=0.25, seed=0
)
scaler = nl.Standardize().fit(X_train)
X_train_s, X_val_s = scaler.transform(X_train), scaler.transform(X_val)
loss = nl.SoftmaxCrossEntropy()


def accuracy(model, X_raw, labels):
    return float(np.mean(model.predict(X_raw) == labels))


# %% [markdown]
# ## Same model, different initialisations
#
# Five small networks (one hidden layer of 16 units), identical except for the seed of
# their initial weights and of their minibatch order. Each gets the fitted preprocessor,
# so the ensemble, like each model, predicts from raw pixels.

# %%
members = []
for seed in range(5):
    model = nl.mlp(64, [16], 10, rng=seed)
    model.preprocessor = scaler
    nl.Trainer(model, loss, nl.Adam(lr=1e-3), monitor=False).fit(
        X_train_s, y_train, epochs=20, batch_size=16, seed=seed)
    members.append(model)

ensemble = nl.Ensemble(members)
member_acc = ensemble.member_scores(X_test, y_test)
ensemble_acc = ensemble.score(X_test, y_test)
print("members' test accuracy:", np.round(member_acc, 3))
print(f"mean member {np.mean(member_acc):.3f}, best member {max(member_acc):.3f}, "
      f"ensemble {ensemble_acc:.3f}")
assert ensemble_acc > np.mean(member_acc) + 0.005
assert ensemble_acc >= sorted(member_acc)[-2]  # better than all members but at most one

# %% [markdown]
# The ensemble beats the average member clearly and all members but one. Which member is
# the best could not have been known in advance without looking at the test set; the
# ensemble needs no such choice.
#
# Averaging probabilities rather than votes keeps each member's confidence: a member that
# is sure counts more than one that hesitates. The ensemble's probabilities are the mean
# of the members' (`Ensemble(models, weights=...)` takes a weighted mean). On the test
# digits where the members disagree:

# %%
votes = np.stack([m.predict(X_test) for m in members])  # (members, samples)
disputed = np.flatnonzero((votes != votes[0]).any(axis=0))[:4]
p_members = np.stack([ensemble.member_proba(i, X_test[disputed]) for i in range(len(members))])
p_ensemble = ensemble.predict_proba(X_test[disputed])
assert np.allclose(p_ensemble, p_members.mean(axis=0))
print(f"{len(np.flatnonzero((votes != votes[0]).any(axis=0)))} of {len(X_test)} test digits "
      "split the members; P(true class) on the first four:")
for j, row in enumerate(disputed):
    print(f"  a {y_test[row]}: members {np.round(p_members[:, j, y_test[row]], 2)}, "
          f"ensemble {p_ensemble[j, y_test[row]]:.2f} -> predicts {p_ensemble[j].argmax()}")

# %% [markdown]
# ## Different hyperparameters
#
# Members that differ more disagree more. Here three networks with different widths,
# activations and learning rates, the kind of "top few" a hyperparameter search returns
# (`nl.Ensemble.from_search` builds exactly that from a search directory).

# %%
settings = [([32], "relu", 3e-3), ([64], "tanh", 1e-3), ([32, 32], "leaky_relu", 2e-3)]
varied = []
for i, (hidden, activation, lr) in enumerate(settings):
    model = nl.mlp(64, hidden, 10, activation=activation, rng=10 + i)
    model.preprocessor = scaler
    nl.Trainer(model, loss, nl.Adam(lr=lr), monitor=False).fit(
        X_train_s, y_train, epochs=10, seed=i)
    varied.append(model)
varied_ensemble = nl.Ensemble(varied)
scores = varied_ensemble.member_scores(X_test, y_test)
for (hidden, activation, lr), s in zip(settings, scores):
    print(f"hidden {hidden!s:<9} {activation:<11} lr {lr:g}: {s:.3f}")
print(f"ensemble: {varied_ensemble.score(X_test, y_test):.3f}")
assert varied_ensemble.score(X_test, y_test) >= np.mean(scores)

# %% [markdown]
# ## Checkpoints of one run, and parameter averaging
#
# Independent runs multiply the training cost. Two cheaper tricks work inside a single
# run, and both shine when the end of training is noisy. To make it noisy we train with a
# constant learning rate that is too high for the end of training (Adam at 0.03, no
# annealing), and attach three callbacks:
#
# * `nl.Checkpoint` saves the run after every epoch; `nl.Ensemble.from_checkpoints` then
#   builds a **snapshot ensemble** from the last five;
# * `nl.EMA(decay)` keeps an exponential moving average of the weights,
#   a ← decay·a + (1 − decay)·w after every step (the notes' "running average of the
#   parameters", with decay 0.99 it averages about the last 100 steps);
# * `nl.Polyak(start_step=...)` keeps the plain mean of the weights since a step.
#
# Averaging weights works because, late in training, the iterates bounce around a minimum
# in a region that is nearly convex: their average lands closer to its bottom than any of
# them.

# %%
model = nl.mlp(64, [64], 10, rng=0)
model.preprocessor = scaler
ema, polyak = nl.EMA(0.99, start_step=100), nl.Polyak(start_step=185)
checkpoints = nl.Checkpoint("checkpoints", every_epochs=1, keep=None)
trainer = nl.Trainer(model, loss, nl.Adam(lr=0.03), callbacks=[ema, polyak, checkpoints],
                     monitor=False)
trainer.fit(X_train_s, y_train, validation=(X_val_s, y_val), epochs=10, batch_size=32, seed=0)

snapshots = nl.Ensemble.from_checkpoints("checkpoints", last=5, preprocessor=scaler,
                                         loss="softmax")
ema_model, polyak_model = ema.averaged_model(model), polyak.averaged_model(model)
results = {
    "last weights": accuracy(model, X_test, y_test),
    "snapshot ensemble (last 5 epochs)": snapshots.score(X_test, y_test),
    "EMA of the weights (0.99)": accuracy(ema_model, X_test, y_test),
    "Polyak average (steps 185-370)": accuracy(polyak_model, X_test, y_test),
}
for name, value in results.items():
    print(f"{name:<36} {value:.3f}")
print("snapshots:", snapshots.names)
assert len(snapshots) == 5
assert results["EMA of the weights (0.99)"] > results["last weights"]
assert results["Polyak average (steps 185-370)"] > results["last weights"]
assert results["snapshot ensemble (last 5 epochs)"] > results["last weights"]

# %% [markdown]
# The EMA's weights also give a lower test loss: the last weights, after the large final
# steps, are confidently wrong more often. The Polyak mean reaches the same accuracy, but it
# averages in weights from half the run back, and whether its loss beats the last weights'
# depends on the run.

# %%
test_scores = {name: loss(m.forward(scaler.transform(X_test)), y_test)
               for name, m in (("last", model), ("EMA", ema_model), ("Polyak", polyak_model))}
print({k: round(v, 3) for k, v in test_scores.items()})
assert test_scores["EMA"] < test_scores["last"]

# %% [markdown]
# `averaged_model(model)` returns a copy with the averaged weights; `ema.copy_to(model)`
# writes them into the model itself. A network with batch norm needs its running
# statistics re-estimated for the new weights: `averaged_model(model, X_train)` does it.
#
# ## The cost at test time
#
# An ensemble of k members stores k sets of weights and runs k forward passes per input.
# Parameter averaging gives one model, at the cost of one network; a snapshot ensemble
# costs nothing more to train but still k forward passes to evaluate.

# %%
single_params = sum(p.size for p in members[0].params.values())
ensemble_params = sum(p.size for m in members for p in m.params.values())
print(f"parameters: one member {single_params}, ensemble of {len(members)}: {ensemble_params}")
assert ensemble_params == len(members) * single_params

t0 = time.perf_counter()
for _ in range(20):
    members[0].predict(X_test)
t1 = time.perf_counter()
for _ in range(20):
    ensemble.predict(X_test)
t2 = time.perf_counter()
print(f"predicting {len(X_test)} digits: one model {1e3 * (t1 - t0) / 20:.2f} ms, "
      f"the ensemble {1e3 * (t2 - t1) / 20:.2f} ms")

# %% [markdown]
# A last trick from the literature the notes cite: *distil* an ensemble into one network
# trained to match its averaged probabilities, which keeps most of the gain at the cost of
# one model. From the command line, `neuronlab ensemble SEARCH_DIR --top-k 5` evaluates
# the best trials of a [hyperparameter search](13_hyperparameter_search.md) as an
# ensemble.
