# %% [markdown]
# # Loss functions: SVM, softmax, attributes and regression
#
# The data loss measures how unhappy we are with the network's outputs on one example,
# L_i, and the training objective is its mean over the batch, L = (1/N) Σ_i L_i (plus a
# regularisation penalty, which is not part of this page). The lecture notes list four
# families, each matched to a kind of target:
#
# | target | loss | neuronlab |
# |---|---|---|
# | one class out of C | multiclass SVM (hinge) | `nl.MulticlassHinge` |
# | one class out of C | softmax cross-entropy | `nl.SoftmaxCrossEntropy` |
# | yes/no attributes | independent sigmoids | `nl.SigmoidCrossEntropy(multilabel=True)` |
# | real numbers | L2 or L1 distance | `nl.MeanSquaredError`, `nl.MeanAbsoluteError` |
#
# Every loss has the same two methods: `forward(scores, y)` returns the mean loss, and
# `backward()` returns dL/dscores, the gradient that starts backpropagation. This page
# computes each loss on the course's classic example scores, checks what an untrained
# network should score, trains the attribute and regression losses, and ends with a
# finite-difference check of the gradients.

# %%
import numpy as np

import neuronlab as nl

# %% [markdown]
# ## The multiclass SVM loss
#
# With scores f = (f_1, ..., f_C) and the correct class y_i, the Weston–Watkins SVM loss
# wants the correct score to beat every other score by at least a margin Δ:
#
#     L_i = Σ_{j ≠ y_i} max(0, f_j − f_{y_i} + Δ)
#
# The course's first example has three classes, scores (13, −7, 11), the first class
# correct and Δ = 10: the second class is far below (max(0, −7 − 13 + 10) = 0) but the
# third is within the margin (max(0, 11 − 13 + 10) = 8), so the loss is 8.

# %%
scores = np.array([[13.0, -7.0, 11.0]])
svm10 = nl.MulticlassHinge(margin=10.0)
loss = svm10.forward(scores, [0])
by_hand = max(0, -7 - 13 + 10) + max(0, 11 - 13 + 10)
print(f"SVM loss {loss:g}, by hand {by_hand}")
assert loss == by_hand == 8

# %% [markdown]
# The gradient follows from the formula: every wrong class whose margin is violated gets
# +1, and the correct class gets −1 for each of them. Here only the third class violates
# the margin.

# %%
grad = svm10.backward()
print(grad)
assert np.array_equal(grad, [[-1.0, 0.0, 1.0]])

# %% [markdown]
# ## The softmax cross-entropy loss
#
# The softmax classifier reads the scores as unnormalised log-probabilities. The
# probability of class k is p_k = e^{f_k} / Σ_j e^{f_j}, and the loss is the negative log
# probability of the correct class:
#
#     L_i = −ln( e^{f_{y_i}} / Σ_j e^{f_j} )
#
# The course compares the two losses on one example: scores (−2.85, 0.86, 0.28) with the
# third class correct. With Δ = 1 the SVM loss is max(0, −2.85 − 0.28 + 1) +
# max(0, 0.86 − 0.28 + 1) = 1.58; the softmax gives the correct class a probability of
# 0.353, so its loss is −ln 0.353 = 1.04.

# %%
scores = np.array([[-2.85, 0.86, 0.28]])
softmax = nl.SoftmaxCrossEntropy()
svm = nl.MulticlassHinge()  # margin 1
p = softmax.predict_proba(scores)
print("probabilities", np.round(p, 3))
print(f"SVM loss {svm(scores, [2]):.2f}, softmax loss {softmax(scores, [2]):.2f}")
assert abs(svm(scores, [2]) - 1.58) < 1e-12
assert abs(p[0, 2] - 0.353) < 5e-4
assert abs(softmax(scores, [2]) - 1.04) < 5e-3

# %% [markdown]
# The softmax gradient is simply p − onehot(y), divided by the batch size: push the wrong
# classes' probabilities down and the correct one up.

# %%
grad = softmax.backward()
assert np.allclose(grad, p - np.eye(3)[[2]])
grad

# %% [markdown]
# The two losses disagree about when to stop. Once every margin is met the SVM loss is
# exactly 0 and its gradient vanishes: it does not care whether the correct score wins by
# 2 or by 10. The softmax is never fully satisfied: a larger gap always lowers its loss a
# little more.

# %%
for s in ([[10.0, 8.0, 8.0]], [[10.0, 0.0, 0.0]]):
    print(f"scores {s[0]}: SVM {svm(np.array(s), [0]):.4f}, "
          f"softmax {softmax(np.array(s), [0]):.2e}")
assert svm(np.array([[10.0, 8.0, 8.0]]), [0]) == 0.0
assert softmax(np.array([[10.0, 8.0, 8.0]]), [0]) > softmax(np.array([[10.0, 0.0, 0.0]]), [0]) > 0

# %% [markdown]
# ## What an untrained network should score
#
# With small random weights all scores are close to 0. Then the softmax gives every class
# probability 1/C and the loss is −ln(1/C) = ln C (ln 10 ≈ 2.302 for ten digits), while
# each of the C − 1 wrong classes adds about Δ = 1 to the SVM loss, so it starts near
# C − 1 = 9. Each loss knows its own expected value (`expected_initial_loss`), which the
# [sanity checks](10_sanity_checks.md) compare with the real first loss.
#
# `nl.mlp` initialises the output layer with small weights (N(0, 0.01²)) for exactly this
# reason. On standardised digits:

# %%
X, y = nl.data.digits()
X = nl.Standardize().fit(X).transform(X)
model = nl.mlp(64, [128], 10, rng=0)
scores = model.forward(X)
print(f"score spread at initialisation: std {scores.std():.3f}")
for loss in (nl.SoftmaxCrossEntropy(), nl.MulticlassHinge()):
    value, expected = loss(scores, y), loss.expected_initial_loss(10)
    print(f"{type(loss).__name__:<20} first loss {value:.3f}, expected {expected:.3f}")

assert nl.SoftmaxCrossEntropy().expected_initial_loss(10) == np.log(10)
assert abs(nl.SoftmaxCrossEntropy()(scores, y) - np.log(10)) < 0.01 * np.log(10)
assert nl.MulticlassHinge().expected_initial_loss(10) == 9
assert abs(nl.MulticlassHinge()(scores, y) - 9) < 0.05 * 9

# %% [markdown]
# ## Attribute classification: independent sigmoids
#
# Sometimes an example carries several labels at once: a photo can show both "sky" and
# "people". The notes then train one binary logistic classifier per attribute, with the
# binary cross-entropy summed over attributes:
#
#     L_i = −Σ_j [ y_ij ln σ(f_j) + (1 − y_ij) ln(1 − σ(f_j)) ]
#
# where σ is the sigmoid and y_ij is 1 when example i has attribute j. We give each digit
# three made-up attributes: *even*, *five or more*, and *has a closed loop* (0, 6, 8, 9).
# At initialisation σ(f) ≈ 1/2 for every attribute, so the loss starts at 3 ln 2 ≈ 2.08.

# %%
attributes = np.stack([y % 2 == 0, y >= 5, np.isin(y, [0, 6, 8, 9])], axis=1).astype(np.int64)
print("digit 8 has attributes", attributes[y == 8][0], "; digit 1 has", attributes[y == 1][0])

bce = nl.SigmoidCrossEntropy(multilabel=True)
# the formula by hand on a tiny example: one row, scores (2, -1, 0), attributes (1, 0, 1)
f, t = np.array([[2.0, -1.0, 0.0]]), np.array([[1, 0, 1]])
sig = 1 / (1 + np.exp(-f))
by_hand = -np.sum(t * np.log(sig) + (1 - t) * np.log(1 - sig))
assert abs(bce(f, t) - by_hand) < 1e-12

attr_model = nl.mlp(64, [64], 3, rng=0)
first = bce(attr_model.forward(X), attributes)
print(f"first loss {first:.3f}, expected 3 ln 2 = {bce.expected_initial_loss(3):.3f}")
assert abs(first - 3 * np.log(2)) < 0.02

trainer = nl.Trainer(attr_model, bce, nl.Adam(lr=1e-2), monitor=False)
history = trainer.fit(X[:1400], attributes[:1400], epochs=10, batch_size=64, seed=0)
predicted = attr_model.predict(X[1400:], loss=bce)  # σ(f) > 1/2, per attribute
per_attribute = (predicted == attributes[1400:]).mean(axis=0)
print("held-out accuracy per attribute (even, >= 5, loop):", np.round(per_attribute, 3))
assert predicted.shape == (len(X) - 1400, 3)
assert per_attribute.min() > 0.9

# %% [markdown]
# The attributes are predicted independently: nothing forces exactly one of them on, which
# is what makes this different from the softmax.
#
# ## Regression: the L2 and L1 losses
#
# To predict real values, the notes measure the distance between the output and the
# target, squared (L2) or absolute (L1):
#
#     L_i = ‖f − y_i‖²₂ = Σ_j (f_j − y_ij)²        L_i = ‖f − y_i‖₁ = Σ_j |f_j − y_ij|
#
# The notes add two cautions. The L2 loss is much harder to optimise than a stable loss
# like the softmax: it asks the network to output *exactly* the right number for every
# input, where the softmax only asks for the right class to come out on top (the exact
# scores matter little). And it is less robust: an outlier with a residual r pulls on the
# weights with a gradient 2r, while in the L1 loss every example pulls with the same
# strength, sign(r). When you can, the notes advise turning a regression into
# classification over bins.
#
# A line y = 2x + 1 with a little noise, where the ten points of largest x were recorded
# 8 too low (a sensor glitch):

# %%
rng = np.random.default_rng(0)
n = 200
x = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
target = (2 * x[:, 0] + 1 + 0.1 * rng.standard_normal(n)).astype(np.float32)
outliers = np.argsort(x[:, 0])[-10:]
target[outliers] -= 8

fits = {}
for loss in (nl.MeanSquaredError(), nl.MeanAbsoluteError()):
    line = nl.mlp(1, [], 1, rng=0)  # no hidden layer: f = w x + b
    nl.Trainer(line, loss, nl.Adam(lr=0.05), monitor=False).fit(
        x, target, epochs=300, batch_size=n, seed=0)
    fits[type(loss).__name__] = (float(line.params["0.W"][0, 0]), float(line.params["0.b"][0]))
for name, (w, b) in fits.items():
    print(f"{name:<18} slope {w:.2f}, intercept {b:.2f}   (true: 2, 1)")

w_l2, w_l1 = fits["MeanSquaredError"][0], fits["MeanAbsoluteError"][0]
assert abs(w_l1 - 2) < 0.1  # L1 ignores the 5% of outliers
assert abs(w_l2 - 2) > 0.5  # L2 is dragged towards them

# %% [markdown]
# Why: the per-example gradients (the loss's gradient times N, the batch size). An
# outlier's L2 gradient is 2r, about 16 here, against about 0.2 for a well-fitted point;
# its L1 gradient is ±1, like every other point's.

# %%
perfect = (2 * x[:, 0] + 1).astype(np.float32)  # the true line's predictions
l2, l1 = nl.MeanSquaredError(), nl.MeanAbsoluteError()
l2(perfect, target)
l1(perfect, target)
g2, g1 = np.abs(l2.backward()) * n, np.abs(l1.backward()) * n
normal = np.setdiff1d(np.arange(n), outliers)
print(f"L2: outliers {g2[outliers].mean():.1f}, other points {g2[normal].mean():.2f}")
print(f"L1: outliers {g1[outliers].mean():.1f}, other points {g1[normal].mean():.2f}")
assert g2[outliers].mean() > 50 * g2[normal].mean()
assert np.all(g1 == 1.0)

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(6.4, 4.0), layout="constrained")
ax = fig.add_subplot()
ax.scatter(x[normal, 0], target[normal], s=8, color="0.6", label="data")
ax.scatter(x[outliers, 0], target[outliers], s=16, color="C3", label="outliers")
grid = np.linspace(-1, 1, 2)
for (name, (w, b)), color in zip(fits.items(), ("C0", "C2")):
    ax.plot(grid, w * grid + b, color=color, lw=2, label=f"{name}: {w:.2f} x + {b:.2f}")
ax.plot(grid, 2 * grid + 1, "k--", lw=1, label="true line")
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.set_title("An L2 fit follows the outliers; an L1 fit ignores them")
ax.legend(fontsize="small")
fig

# %% [markdown]
# ## Many classes
#
# The expected initial loss ln C grows slowly with the number of classes: ln 1000 ≈ 6.91
# for ImageNet. When C is very large (words of a dictionary, tens of thousands of
# classes), computing the full softmax for every example gets expensive, and the notes
# point to the *hierarchical softmax*: the classes become the leaves of a tree, every
# internal node is a small classifier, and a class's probability is the product along its
# path, so each example costs about log C instead of C. neuronlab does not implement it;
# the plain softmax is fine for the class counts an MLP meets.

# %%
for c in (2, 10, 1000):
    softmax_start = nl.SoftmaxCrossEntropy().expected_initial_loss(c)
    svm_start = nl.MulticlassHinge().expected_initial_loss(c)
    print(f"C = {c:>4}: softmax starts at ln C = {softmax_start:.3f}, "
          f"the SVM at C - 1 = {svm_start:g}")
assert abs(nl.SoftmaxCrossEntropy().expected_initial_loss(1000) - 6.908) < 1e-3

# %% [markdown]
# ## Checking a loss's gradient
#
# `backward` is hand-written, so it can be wrong. `nl.gradcheck` compares it with centred
# finite differences in float64 ([the next tutorial](09_gradient_checks.md) explains the
# method). Given a loss instead of a network, it checks dL/dscores at the scores you pass.
# The hinge loss has kinks (where a margin is exactly met); entries whose finite
# difference straddles one are counted in the `kinks` column instead of being failed
# (none here: random scores rarely sit within h of a kink).

# %%
scores = np.random.default_rng(1).standard_normal((6, 4))
labels = np.array([0, 1, 2, 3, 0, 1])
for loss in (nl.SoftmaxCrossEntropy(), nl.MulticlassHinge(), nl.MeanAbsoluteError()):
    target = labels if loss.task == "classification" else scores + 0.5
    report = nl.gradcheck(loss, x=scores, y=target, max_entries=24)
    print(report, end="\n\n")
    assert report.passed and report.max_error < 1e-7
