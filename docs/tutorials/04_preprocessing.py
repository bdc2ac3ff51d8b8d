# %% [markdown]
# # Data preprocessing
#
# Before data reaches a network, the lecture notes transform it in up to three ways, each
# computed from a data matrix `X` of shape (N, D), one example per row:
#
# - **mean subtraction**: subtract each feature's mean, centring the cloud of points on the
#   origin;
# - **normalisation**: bring every feature to roughly the same scale, either by dividing each
#   (centred) feature by its standard deviation, or by scaling each feature's range to
#   [−1, 1];
# - **PCA and whitening**: rotate the centred data onto the eigenvectors of its covariance
#   matrix (decorrelating it, and optionally dropping the directions with little variance),
#   then divide each direction by the square root of its eigenvalue so the covariance becomes
#   the identity.
#
# And one rule above all: the statistics (means, deviations, eigenvectors) are computed **on
# the training data only**, then applied unchanged to the validation and test data.
#
# neuronlab has one class per transform, each with `fit` (on training data) and
# `transform`: `nl.MeanCenter`, `nl.Standardize`, `nl.MinMax`, `nl.PCA` (with
# `whiten=True` for PCA whitening) and `nl.ZCA`.

# %% [markdown]
# ## A correlated 2-D cloud
#
# The notes illustrate the transforms on a 2-D Gaussian whose features are correlated and
# have different scales, away from the origin. We draw 1,000 points and keep 800 for
# training and 200 for testing. (Everything is float64 here, so the checks below can be
# tight.)

# %%
import numpy as np

import neuronlab as nl

rng = np.random.default_rng(0)
mean = np.array([4.0, -2.0])
cov = np.array([[4.0, 1.8], [1.8, 1.2]])  # correlation 1.8 / sqrt(4.0 * 1.2) ≈ 0.82
X = rng.multivariate_normal(mean, cov, size=1000)
X_train, X_test = X[:800], X[800:]
print("training mean", X_train.mean(axis=0).round(3), " std", X_train.std(axis=0).round(3))
print("training covariance\n", np.cov(X_train, rowvar=False, bias=True).round(3))


def covariance(Z):
    """The covariance Zc.T @ Zc / N of the centred rows of Z (as the notes compute it)."""
    Zc = Z - Z.mean(axis=0)
    return Zc.T @ Zc / len(Z)


# %% [markdown]
# ## Mean subtraction and normalisation
#
# `MeanCenter` is the notes' `X -= np.mean(X, axis=0)`; `Standardize` adds
# `X /= np.std(X, axis=0)`, giving every feature mean 0 and standard deviation 1. `MinMax`
# is the other normalisation, mapping each feature's training range to [−1, 1].
# Normalisation only makes sense when features have different scales but should matter
# about equally; for images, whose pixels already share a scale (0 to 255), mean
# subtraction alone is common.

# %%
centered = nl.MeanCenter().fit(X_train)
standardized = nl.Standardize().fit(X_train)
minmax = nl.MinMax().fit(X_train)

Z_centered = centered.transform(X_train)
Z_standard = standardized.transform(X_train)
Z_minmax = minmax.transform(X_train)
for name, Z in [("centred", Z_centered), ("standardised", Z_standard), ("min-max", Z_minmax)]:
    print(f"{name:>12}: largest |mean| {np.abs(Z.mean(axis=0)).max():.0e}, "
          f"std {Z.std(axis=0).round(3)}, min {Z.min(axis=0).round(3)}, max {Z.max(axis=0).round(3)}")

assert np.allclose(Z_centered.mean(axis=0), 0, atol=1e-12)
assert np.allclose(Z_centered.std(axis=0), X_train.std(axis=0), atol=1e-12)  # only shifted
assert np.allclose(Z_standard.mean(axis=0), 0, atol=1e-12)
assert np.allclose(Z_standard.std(axis=0), 1, atol=1e-12)
assert np.allclose(Z_minmax.min(axis=0), -1) and np.allclose(Z_minmax.max(axis=0), 1)

# %% [markdown]
# ## PCA: decorrelating, and reducing the dimension
#
# PCA computes the covariance matrix of the centred training data, `cov = X.T @ X / N`, and
# its eigenvectors `U` (sorted by decreasing eigenvalue). Projecting onto them,
# `Xrot = X @ U`, rotates the data so that its features are **decorrelated**: the covariance
# of `Xrot` is diagonal, with the eigenvalues (the variance along each direction) on the
# diagonal.

# %%
pca = nl.PCA().fit(X_train)
X_rot = pca.transform(X_train)
cov_rot = covariance(X_rot)
print("eigenvalues", pca.explained_variance_.round(4), " share", pca.explained_variance_ratio_.round(4))
print("covariance after the rotation\n", cov_rot.round(10) + 0.0)  # + 0.0: no "-0."

eigenvalues = np.linalg.eigvalsh(covariance(X_train))[::-1]
assert np.allclose(np.diag(cov_rot), eigenvalues, rtol=1e-10)
assert abs(cov_rot[0, 1]) < 1e-10  # decorrelated
assert np.allclose(pca.components_.T @ pca.components_, np.eye(2), atol=1e-12)  # a rotation

# %% [markdown]
# Because the directions come sorted by variance, keeping only the first `k` columns of `U`
# (`nl.PCA(n_components=k)`) is a good way to **reduce the dimension**: for natural data
# such as images, a small share of the directions holds most of the variance, and a network
# trained on the reduced data saves memory and time for little loss of accuracy. On the
# 8×8 digits (64 pixels):

# %%
X_digits, y_digits = nl.data.digits()
X_tr, y_tr, X_va, y_va, X_te, y_te = nl.data.train_val_test_split(
    X_digits, y_digits, val_size=0.1, test_size=0.25, seed=0
)
share = nl.PCA().fit(X_tr).explained_variance_ratio_
k90 = int(np.searchsorted(np.cumsum(share), 0.90)) + 1
k99 = int(np.searchsorted(np.cumsum(share), 0.99)) + 1
print(f"digits: {k90} of 64 components keep 90% of the variance, {k99} keep 99%")
assert k90 < 64 / 2 and k99 < 64


def test_accuracy(preprocessor):
    """A small network trained on the preprocessed digits; accuracy on the test split."""
    Z_tr = preprocessor.fit(X_tr).transform(X_tr)
    model = nl.mlp(Z_tr.shape[1], [64], 10, rng=0)
    model.preprocessor = preprocessor  # predict() applies it to raw pixels
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(lr=3e-3), monitor=False)
    trainer.fit(Z_tr, y_tr, epochs=10, batch_size=32, seed=0)
    return float(np.mean(model.predict(X_te) == y_te))


acc_full = test_accuracy(nl.Standardize())
acc_pca = test_accuracy(nl.PCA(n_components=k90))
print(f"test accuracy: all 64 standardised pixels {acc_full:.3f}, "
      f"{k90} principal components {acc_pca:.3f}")
assert acc_full > 0.93 and acc_pca > acc_full - 0.05

# %% [markdown]
# ## Whitening
#
# Whitening divides each decorrelated direction by the square root of its eigenvalue, so the
# data becomes a round blob: zero mean and **identity covariance**. The notes add a small
# constant before the square root (`eps`, 1e-5 by default here) so that directions with
# almost no variance are not blown up into noise, one of whitening's weaknesses. With
# `eps` that small compared with the eigenvalues, the training covariance is the identity up
# to `eps / eigenvalue`; we make it tiny here to check the identity closely.
#
# `nl.PCA(whiten=True)` whitens in the rotated coordinates; `nl.ZCA` rotates back afterwards
# (`W = U diag(1/sqrt(λ + eps)) Uᵀ`), which whitens as well while keeping each feature close
# to the original one (whitened images still look like images).

# %%
white = nl.PCA(whiten=True, eps=1e-12).fit(X_train)
zca = nl.ZCA(eps=1e-12).fit(X_train)
X_white, X_zca = white.transform(X_train), zca.transform(X_train)
print("PCA-whitened covariance\n", covariance(X_white).round(8) + 0.0)
assert np.allclose(X_white.mean(axis=0), 0, atol=1e-6)
assert np.allclose(covariance(X_white), np.eye(2), atol=1e-6)
assert np.allclose(X_zca.mean(axis=0), 0, atol=1e-6)
assert np.allclose(covariance(X_zca), np.eye(2), atol=1e-6)
# ZCA is PCA whitening rotated back to the input axes
assert np.allclose(X_zca, X_white @ white.components_.T, atol=1e-10)

default_eps = nl.PCA(whiten=True).fit(X_train).transform(X_train)
shrink = np.diag(covariance(default_eps))
print("with the default eps = 1e-5 the variances are", shrink.round(7))
assert np.allclose(shrink, pca.explained_variance_ / (pca.explained_variance_ + 1e-5))

# %% [markdown]
# The notes' two pictures: top, the original data, zero-centred, then normalised; bottom,
# the original data, decorrelated by PCA, then whitened. The grey lines cross at the
# origin.

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(12, 8))
panels = [
    ("original", X_train), ("zero-centred", Z_centered), ("normalised", Z_standard),
    ("original", X_train), ("decorrelated (PCA)", X_rot), ("whitened", X_white),
]
for k, (title, Z) in enumerate(panels):
    ax = fig.add_subplot(2, 3, k + 1)
    ax.scatter(Z[:, 0], Z[:, 1], s=4, alpha=0.5, color="C0" if k < 3 else "C1")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set_xlim(-7, 9)
    ax.set_ylim(-7, 7)
    ax.set_aspect("equal")
    ax.set_title(title)
fig.tight_layout()
fig

# %% [markdown]
# ## Statistics from the training data only
#
# The common pitfall, in the notes' words: computing the preprocessing statistics (say, the
# mean image) on the *entire* data set and only then splitting it. The validation and test
# data are then no longer unseen: their values have shaped the inputs the network is trained
# on. The right way fits on the training split and applies the same transform to every
# split.
#
# The leak is easy to see. Change only the test set (here: one measurement entered in the
# wrong unit, 100 times too large) and refit. With statistics from all the data, the
# *training inputs* change; with statistics from the training data, they stay bit-for-bit
# the same.

# %%
X_test_changed = X_test.copy()
X_test_changed[0] *= 100.0

leaky_before = nl.Standardize().fit(np.vstack([X_train, X_test])).transform(X_train)
leaky_after = nl.Standardize().fit(np.vstack([X_train, X_test_changed])).transform(X_train)
right_before = nl.Standardize().fit(X_train).transform(X_train)
right_after = nl.Standardize().fit(X_train).transform(X_train)

moved = np.abs(leaky_after - leaky_before).max()
print(f"fitted on all data:       training inputs moved by up to {moved:.3f}")
print(f"fitted on training data:  training inputs moved by up to "
      f"{np.abs(right_after - right_before).max():.3f}")
assert moved > 0.1
assert np.array_equal(right_before, right_after)

# %% [markdown]
# Fitted correctly, the training split is exactly centred and scaled while the test split,
# transformed with the training statistics, is only close to it, as it should be: that
# small mismatch is part of an honest test estimate.

# %%
Z_test = standardized.transform(X_test)
print("test split with training statistics: mean", Z_test.mean(axis=0).round(3),
      " std", Z_test.std(axis=0).round(3))
assert np.allclose(Z_standard.mean(axis=0), 0, atol=1e-12)
assert np.all(np.abs(Z_test.mean(axis=0)) < 0.2) and not np.allclose(Z_test.mean(axis=0), 0, atol=1e-6)

# %% [markdown]
# In neuronlab the fitted transform travels with the model: set `model.preprocessor`, and
# `model.predict` applies it to raw inputs (as the digits network above did), `nl.save`
# stores its statistics in the model file, and `neuronlab train` fits it on the training
# split for you.
#
# **In practice**, the notes add, PCA and whitening are rarely used with convolutional
# networks, but zero-centring the data matters, and normalising every pixel is common.
#
# Next: [weight initialisation](05_initialization.md).
