# %% [markdown]
# # Quickstart: digits in a few seconds
#
# Train a small fully-connected network on the 8×8 handwritten digits that ship with
# scikit-learn, look at its test accuracy and its loss curve. Everything here is the public
# API: `import neuronlab as nl`, and `nl.plots` for the figure.

# %%
import numpy as np

import neuronlab as nl

X, y = nl.data.digits()
X_train, y_train, X_val, y_val, X_test, y_test = nl.data.train_val_test_split(
    X, y, val_size=0.1, test_size=0.25, seed=0
)
print(f"train {X_train.shape}, validation {X_val.shape}, test {X_test.shape}")

# %% [markdown]
# Inputs are standardized with statistics of the **training split only**; the fitted
# preprocessor is attached to the model, so `predict` takes raw pixels.

# %%
scaler = nl.Standardize().fit(X_train)
model = nl.mlp(64, [128], 10, activation="relu", init="he", rng=0)
model.preprocessor = scaler
print(model.summary())

# %% [markdown]
# An untrained network guesses uniformly, so its loss starts near ln 10 ≈ 2.30 (the first
# sanity check of the lecture notes). The `Trainer` runs minibatch Adam; the babysitting
# `Monitor` records per-layer statistics on the way.

# %%
loss = nl.SoftmaxCrossEntropy()
trainer = nl.Trainer(model, loss, nl.Adam(lr=1e-3), regularizer=nl.L2(1e-4))
history = trainer.fit(
    scaler.transform(X_train), y_train,
    validation=(scaler.transform(X_val), y_val),
    epochs=15, batch_size=32, seed=0,
)
first = history.loss[0]
print(f"first step loss {first:.3f} (ln 10 = {np.log(10):.3f})")
assert abs(first - np.log(10)) < 0.3

# %% [markdown]
# The model predicts from raw features: its preprocessor is applied inside `predict`.

# %%
accuracy = float(np.mean(model.predict(X_test) == y_test))
print(f"test accuracy: {accuracy:.3f}")
assert accuracy > 0.9

# %% [markdown]
# The loss per step (faint points), its moving average, and the epoch means of the training
# and validation loss:

# %%
import neuronlab.plots

neuronlab.plots.plot_loss(history)

# %% [markdown]
# Next: `nl.diagnose(history)` reads the Monitor's records and says, in plain words, what
# to try ([babysitting](../../api/babysit.md)); `nl.save(model, "digits.safetensors")` writes
# the model with its preprocessor ([model files](../../api/io.md)). Every option of
# [`Trainer.fit`][neuronlab.train.Trainer.fit] is in the API reference, and
# `neuronlab train` does all of the above from the [command line](../cli.md).
