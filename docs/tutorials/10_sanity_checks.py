# %% [markdown]
# # Sanity checks before training
#
# A long training run is an expensive way to find a bug. The notes list cheap checks to
# run first, on the untrained network:
#
# * **Look for the correct loss at chance performance.** With small weights an untrained
#   classifier guesses uniformly, so for 10 classes the softmax loss should start at
#   −ln(1/10) = ln 10 ≈ 2.302.
# * **Increasing the regularisation strength should increase the loss.**
# * **Overfit a tiny subset of the data.** With regularisation off, a network should
#   reach 100% training accuracy (a loss near 0) on about 20 examples. If it cannot, do
#   not train on the full set.
#
# plus a gradient check ([the previous tutorial](09_gradient_checks.md)). `nl.sanity_check`
# runs all four on copies of the model, and three checks of the data that model debugging
# adds: the **baselines** a network must beat, **duplicates** between the training and the
# test rows, and **conflicting labels**.

# %%
import numpy as np

import neuronlab as nl

X, y = nl.data.digits()
X_train, y_train, X_val, y_val, X_test, y_test = nl.data.train_val_test_split(
    X, y, val_size=0.1, test_size=0.25, seed=0
)
scaler = nl.Standardize().fit(X_train)  # statistics of the training rows only
X_train_s, X_val_s, X_test_s = (scaler.transform(a) for a in (X_train, X_val, X_test))

model = nl.mlp(64, [128], 10, rng=0)
loss = nl.SoftmaxCrossEntropy()
report = nl.sanity_check(model, loss, X_train_s, y_train, X_test=X_test_s, y_test=y_test)
print(report)
assert report.passed

# %% [markdown]
# Each line is a `SanityResult` with a status (PASS, WARN, FAIL or SKIP), a summary, and
# its numbers in `values`. Let us read them one by one.
#
# ## The loss at chance
#
# The check passes within a factor of 1.5 either way (`initial_tolerance`), but here the
# match is much closer: within 1% of ln 10.

# %%
initial = report["initial_loss"].values
print(f"initial loss {initial['initial_loss']:.4f}, expected ln 10 = {initial['expected']:.4f}")
assert initial["expected"] == np.log(10)
assert abs(initial["initial_loss"] - np.log(10)) < 0.01 * np.log(10)

# %% [markdown]
# A network whose last layer starts with large weights makes confident, random guesses
# and starts far above ln C. That is not fatal, but it wastes the first part of training
# undoing the initialisation (and often hides a bug: unscaled inputs, a wrong loss). The
# check catches it:

# %%
overconfident = nl.mlp(64, [128], 10, rng=0)
overconfident.params["2.W"][...] *= 300  # the output layer's weights, far too large
bad = nl.sanity_check(overconfident, loss, X_train_s, y_train, data_checks=False)
print(bad)
assert bad["initial_loss"].status == "FAIL" and not bad.passed
assert bad["initial_loss"].values["initial_loss"] > 10 * np.log(10)

# %% [markdown]
# ## Regularisation raises the loss
#
# The objective is the data loss plus the penalty, so raising the L2 strength must raise
# it. The check evaluates the objective at strengths 0, s and 10·s (s = 1 by default); if
# the loss does not grow, the penalty is not reaching the weights (a layer that does not
# list its weights in `weight_names`, for instance).

# %%
reg = report["regularization"].values
for strength, value in zip(reg["strengths"], reg["losses"]):
    print(f"L2 strength {strength:>4g}: objective {value:.2f}")
assert reg["losses"][0] < reg["losses"][1] < reg["losses"][2]

# %% [markdown]
# ## Overfit a tiny subset
#
# The check trains a copy on 20 random training examples, full batch, with
# regularisation and dropout off, and stops as soon as all 20 are classified right.

# %%
overfit = report["overfit"].values
print(f"{overfit['n_examples']} examples: accuracy {overfit['accuracy']:.0%} after "
      f"{overfit['steps']} steps of {overfit['optimizer']}")
assert overfit["accuracy"] == 1.0 and overfit["steps"] <= overfit["max_steps"]

# %% [markdown]
# The notes go further: keep going, and the loss on those examples goes to zero. We do it
# by hand with the `Trainer` (no regulariser, batches of all 20 rows):

# %%
tiny = nl.mlp(64, [128], 10, rng=0)
trainer = nl.Trainer(tiny, loss, nl.Adam(lr=1e-2), monitor=False)
history = trainer.fit(X_train_s[:20], y_train[:20], epochs=200, batch_size=20, seed=0)
print(f"loss {history.loss[0]:.3f} -> {history.loss[-1]:.1e}, "
      f"training accuracy {history.epochs[-1]['acc']:.0%}")
assert history.epochs[-1]["acc"] == 1.0 and history.loss[-1] < 1e-2

# %% [markdown]
# A model that cannot do this is too small, or its optimizer, learning rate or backward
# pass is broken. A learning rate far too small, for instance:

# %%
stuck = nl.sanity_check(model, loss, X_train_s, y_train, optimizer=nl.SGD(lr=1e-6),
                        data_checks=False)
print(stuck["overfit"])
assert stuck["overfit"].status == "FAIL"

# %% [markdown]
# ## Baselines: the numbers to beat
#
# A trained network is only interesting if it beats trivial models. The `baseline` result
# gives two, fitted on the training rows and scored on the test rows: always predicting
# the **majority class** (about 1/C accuracy on balanced data, and a loss of about ln C),
# and a **linear classifier** (a network with no hidden layer, trained with the same loss).
# A hidden layer has to earn its keep against the second one.

# %%
base = report["baseline"].values
print(f"majority class: {base['constant']:.1%}, linear baseline: {base['linear']:.1%} "
      f"({base['linear_how']})")
assert abs(base["constant"] - 0.1) < 0.02
assert base["linear"] > 0.9

trainer = nl.Trainer(model, loss, nl.Adam(lr=1e-3), regularizer=nl.L2(1e-4), monitor=False)
trainer.fit(X_train_s, y_train, validation=(X_val_s, y_val), epochs=20, batch_size=32, seed=0)
network = float(np.mean(model.predict(X_test_s) == y_test))
print(f"the trained network: {network:.1%} on the same test rows")
assert network > base["linear"] > base["constant"]

# %% [markdown]
# (`sanity_check` works on copies: `model` was still untrained when we trained it here.)
#
# ## Duplicates across the split: a leaky split
#
# Test rows that also appear among the training rows measure memorisation, not
# generalisation. A common way to get them is to enlarge or augment the data *before*
# splitting it. Here we "augment" the digits by adding an exact copy of every image, then
# split:

# %%
X_doubled, y_doubled = np.concatenate([X, X]), np.concatenate([y, y])
leaky = nl.data.train_val_test_split(X_doubled, y_doubled, val_size=0.1, test_size=0.25, seed=0)
Xl_train, yl_train, _, _, Xl_test, yl_test = leaky
leaky_scaler = nl.Standardize().fit(Xl_train)
leaky_report = nl.sanity_check(
    model, loss, leaky_scaler.transform(Xl_train), yl_train,
    X_test=leaky_scaler.transform(Xl_test), y_test=yl_test,
)
print(leaky_report["duplicates"])
duplicates = leaky_report["duplicates"].values["test"]
assert leaky_report["duplicates"].status == "FAIL" and not leaky_report.passed
assert duplicates["fraction"] > 0.5  # most test images have their twin in training

# %% [markdown]
# On the honest split the same check found nothing:

# %%
print(report["duplicates"])
assert report["duplicates"].status == "PASS"

# %% [markdown]
# The right fix is to split first and augment the training part only.
#
# ## Conflicting labels
#
# Identical inputs with different labels are label noise or missing features. No model
# can get all of them right, so they cap the training accuracy (and can make the overfit
# check fail). We copy 30 training images and give the copies a wrong label:

# %%
rng = np.random.default_rng(0)
rows = rng.choice(len(X_train_s), size=30, replace=False)
X_noisy = np.concatenate([X_train_s, X_train_s[rows]])
y_noisy = np.concatenate([y_train, (y_train[rows] + 1) % 10])
noisy = nl.sanity_check(model, loss, X_noisy, y_noisy)
print(noisy["conflicts"])
conflicts = noisy["conflicts"].values
assert noisy["conflicts"].status == "WARN"  # under 10% of the rows: a warning, not a failure
assert conflicts["n_groups"] == 30 and conflicts["n_conflicting_rows"] == 60
assert abs(conflicts["best_possible"] - (1 - 30 / len(y_noisy))) < 1e-12

# %% [markdown]
# Each of the 30 pairs has one row that any model must get wrong, so the best possible
# training accuracy is 1 − 30/1198 ≈ 97.5%, as the check says.
#
# ## In short
#
# Before a long run: `print(nl.sanity_check(model, loss, X_train, y_train, X_test=X_test,
# y_test=y_test))`. The command line does the same with `neuronlab check`. Then train, and
# [babysit](11_babysitting.md) the run.
