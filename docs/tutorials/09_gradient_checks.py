# %% [markdown]
# # Gradient checks
#
# Backpropagation is hand-written code, and a wrong backward pass rarely crashes: the
# network still trains, only worse. The notes' remedy is the *gradient check*: compare the
# analytic gradient (what `backward` computes) with a numerical one (what finite
# differences of the loss say), and they give a list of tips for doing it right:
#
# 1. use the **centred** difference formula;
# 2. compare with the **relative** error, and know its bands;
# 3. use **double precision**;
# 4. beware of **kinks** (ReLU, max, the SVM's hinge), where the difference can straddle
#    a non-differentiable point;
# 5. use **few examples** and check **a few dimensions** of each parameter;
# 6. don't let the step h be too small;
# 7. check **without regularisation** first, which can hide a bug;
# 8. turn **dropout** and augmentation off.
#
# `nl.gradcheck` follows all of them. This page shows why each matters.

# %%
import copy

import numpy as np

import neuronlab as nl
import neuronlab.checks

# %% [markdown]
# ## The centred difference formula
#
# The one-sided difference (f(x + h) − f(x)) / h has an error of order h; the centred
# difference (f(x + h) − f(x − h)) / 2h has an error of order h², because the h² terms of
# the two Taylor expansions cancel. Both break down when h is too small: f(x + h) and
# f(x − h) then agree in almost all their digits, and the difference is mostly rounding
# error, of order ε·|f| / h (ε ≈ 2.2e-16 in double precision).
#
# On f(x) = tanh(x) at x = 0.5, whose derivative is 1 − tanh²(x):

# %%
f, x0 = np.tanh, 0.5
exact = 1 - np.tanh(x0) ** 2
hs = np.logspace(-13, -1, 49)
one_sided = np.abs((f(x0 + hs) - f(x0)) / hs - exact)
centred = np.abs((f(x0 + hs) - f(x0 - hs)) / (2 * hs) - exact)


def error_at(errors, h):
    return errors[np.argmin(np.abs(hs - h))]


for h in (1e-2, 1e-4, 1e-6, 1e-12):
    print(f"h = {h:.0e}: one-sided error {error_at(one_sided, h):.1e}, "
          f"centred error {error_at(centred, h):.1e}")

# Where truncation dominates, the log-log slope is 1 for one-sided and 2 for centred.
big = (hs >= 1e-3) & (hs <= 1e-1)
slope_one = np.polyfit(np.log10(hs[big]), np.log10(one_sided[big]), 1)[0]
slope_two = np.polyfit(np.log10(hs[big]), np.log10(centred[big]), 1)[0]
print(f"slopes: one-sided {slope_one:.2f}, centred {slope_two:.2f}")
assert abs(slope_one - 1) < 0.1 and abs(slope_two - 2) < 0.1
assert error_at(centred, 1e-4) < 1e-8 and error_at(one_sided, 1e-4) > 1e-5
assert error_at(centred, 1e-12) > 100 * error_at(centred, 1e-5)  # h too small: roundoff

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(6.4, 4.0), layout="constrained")
ax = fig.add_subplot()
ax.loglog(hs, one_sided, "o-", ms=3, label="one-sided (f(x+h) − f(x)) / h")
ax.loglog(hs, centred, "o-", ms=3, label="centred (f(x+h) − f(x−h)) / 2h")
ax.axvline(1e-5, color="0.5", ls=":", label="gradcheck's default h = 1e-5")
ax.set_xlabel("step h")
ax.set_ylabel("|numerical − exact|")
ax.set_title("Truncation error falls with h, roundoff error rises")
ax.legend(fontsize="small")
fig

# %% [markdown]
# ## The relative error and its bands
#
# An absolute difference of 1e-4 means nothing on its own: it is a perfect match for
# gradients around 1e4 and garbage for gradients around 1e-5. The notes compare with the
# relative error
#
#     |f'_a − f'_n| / max(|f'_a|, |f'_n|)
#
# (`neuronlab.checks.relative_error`, which returns 0 when both are tiny instead of 0/0),
# and read it in bands:
#
# | relative error | the notes say | gradcheck's verdict |
# |---|---|---|
# | > 1e-2 | the gradient is probably wrong | `wrong` |
# | 1e-4 … 1e-2 | you should feel uncomfortable | `suspicious` |
# | 1e-7 … 1e-4 | fine for objectives with kinks, too high otherwise | `look` |
# | < 1e-7 | you should be happy | `ok` |
#
# Errors also grow with depth: through a 10-layer network a relative error of 1e-2 might
# be fine, because the errors accumulate along the way.

# %%
rel = neuronlab.checks.relative_error
same_absolute_gap = [float(rel(1e4, 1e4 + 1e-4)), float(rel(1e-5, 1e-5 + 1e-4))]
print("a gap of 1e-4 on a gradient of 1e4 and on one of 1e-5:", same_absolute_gap)
assert same_absolute_gap[0] < 1e-7 and same_absolute_gap[1] > 0.9

bands = dict(neuronlab.checks.GRADCHECK_BANDS)
print("upper edges of the bands:", bands)
assert bands == {"ok": 1e-7, "look": 1e-4, "suspicious": 1e-2}

# %% [markdown]
# ## Checking a network
#
# `nl.gradcheck(model, loss, X, y)` copies the model and the loss to float64, computes the
# analytic gradient once, then perturbs sampled entries of every parameter array (and of
# the input) by ±h and compares. Each checked entry costs two forward passes, so use a few
# examples: here 6 points of the notes' spiral, and at most 10 entries per array.

# %%
X, y = nl.data.spiral(n_per_class=20, seed=0)
X_check, y_check = X[::10].astype(np.float64), y[::10]  # 6 points, in float64
model = nl.mlp(2, [16], 3, activation="tanh", init="glorot", out_init="glorot", rng=0)
loss = nl.SoftmaxCrossEntropy()
report = nl.gradcheck(model, loss, X_check, y_check)
print(report)
assert report.passed and report.max_error < 1e-7
assert report["0.W"].checked == 10  # 32 weights, 10 of them sampled

# %% [markdown]
# ## A deliberately broken layer
#
# The reason to have a gradient check is the layer you write yourself. Here is a
# per-unit scale layer, y = x ⊙ g, with a learnable vector g. Its backward must add
# Σ_rows x ⊙ dout into `grads["g"]` and return dout ⊙ g. The `bug` argument multiplies
# the gradient of g by a wrong factor, the kind of mistake a forgotten 2 or a stray
# 1/N makes.

# %%
class Scale(nl.Layer):
    """y = x * g with one learnable scale per unit; ``bug`` corrupts dL/dg."""

    weight_names = ("g",)  # regularisers act on g

    def __init__(self, n_units, bug=1.0):
        super().__init__()
        self.add_param("g", np.ones(n_units))
        self.bug = bug
        self.x = None

    def forward(self, x, *, training=False):
        self.x = x  # what backward needs
        return x * self.params["g"]

    def backward(self, dout, *, input_grad=True):
        self.grads["g"] += self.bug * (self.x * dout).sum(axis=0)
        return dout * self.params["g"]


def network(bug):
    return nl.Sequential([nl.Linear(2, 8, rng=0), Scale(8, bug=bug), nl.Tanh(),
                          nl.Linear(8, 3, rng=1)])


good = nl.gradcheck(network(bug=1.0), loss, X_check, y_check)
broken = nl.gradcheck(network(bug=0.5), loss, X_check, y_check)
print(broken)
assert good.passed
assert not broken.passed
assert broken["1.g"].verdict == "wrong" and abs(broken["1.g"].max_error - 0.5) < 0.01
assert [r.name for r in broken.rows if r.failed] == ["1.g"]  # it names the culprit

# %% [markdown]
# The report names the array and the layer to look at. The other rows still pass: the
# corrupted dL/dg is added into `grads["g"]` only, while the dL/dx that the layer passes
# on is correct.
#
# ## Regularisation can hide the bug
#
# The notes warn that the regularisation term can dominate the gradient, and then its
# (correct) gradient drowns out a wrong data gradient. With a strong L2 penalty the same
# bug now looks only "suspicious", and a stronger penalty would shrink the error further. `gradcheck`
# notices when the penalty's gradient is more than ten times the data gradient and says
# so: check without the regulariser first, then with it.

# %%
masked = nl.gradcheck(network(bug=0.5), loss, X_check, y_check, regularizer=nl.L2(10.0))
print(masked)
print(f"error of 1.g: {broken['1.g'].max_error:.1e} without L2, "
      f"{masked['1.g'].max_error:.1e} with it")
assert masked["1.g"].verdict == "suspicious"
assert masked["1.g"].max_error < broken["1.g"].max_error / 10
assert any("check again with regularizer=None" in note for note in masked.notes)

# %% [markdown]
# ## Kinks
#
# ReLU, max and the hinge loss are not differentiable everywhere. If an input sits closer
# to the kink than h, f(x − h) and f(x + h) land on different pieces and the centred
# difference averages two slopes. For a ReLU at x = 1e-6 with h = 1e-5 the numerical
# derivative is (1.1e-5 − 0) / 2e-5 = 0.55, while the analytic one is 1: a relative error
# of 0.45, with nothing wrong in the code.
#
# `gradcheck` knows which piece each element fell on (each piecewise layer and loss
# exposes a `kink_state()`): when it changes between x − h and x + h, the entry is counted
# as a kink and left out of the error. The same holds for the SVM's hinge.

# %%
x = np.array([[1e-6, 0.5, -0.3]])
h = 1e-5
x_plus, x_minus = np.maximum(x[0, 0] + h, 0), np.maximum(x[0, 0] - h, 0)  # ReLU at x ± h
numerical = (x_plus - x_minus) / (2 * h)
print(f"numerical derivative at the kink: {numerical:.2f}, analytic 1, "
      f"relative error {float(rel(1.0, numerical)):.2f}")
assert abs(numerical - 0.55) < 1e-9

kinked = nl.gradcheck(nl.ReLU(), x=x)
print(kinked)
assert kinked.passed and kinked.kinks == 1

# The SVM loss has the same problem where a margin is met exactly: here the second
# class's margin s_1 - s_0 + 1 is 1e-6, inside ±h.
svm_scores = np.array([[0.0, -1.0 + 1e-6, -5.0]])
svm_report = nl.gradcheck(nl.MulticlassHinge(), x=svm_scores, y=[0])
print(svm_report)
assert svm_report.passed and svm_report.kinks == 2  # s_0 and s_1 both move that margin

# %% [markdown]
# The more examples you check, the more ReLUs and margins you have, and the more likely
# one straddles a kink: one more reason for few examples.
#
# ## Dropout must be off
#
# With dropout on, every forward pass draws a new mask: f is not even a function of the
# weights, and finite differences are noise. `gradcheck` switches dropout and noise
# layers off in its copy of the model (and never changes yours).

# %%
dropout_model = nl.mlp(2, [16], 3, activation="tanh", init="glorot", dropout=0.5, rng=0)
X32 = X_check.astype(np.float32)
two_passes = [loss(dropout_model.forward(X32, training=True), y_check) for _ in range(2)]
print("the same weights, two training-mode losses:", two_passes)
assert two_passes[0] != two_passes[1]

report = nl.gradcheck(dropout_model, loss, X_check, y_check)
print(f"gradcheck with dropout in the model: passed={report.passed}, "
      f"max error {report.max_error:.1e}")
assert report.passed

# %% [markdown]
# ## Double precision
#
# Training runs in float32, but a gradient check must not: with about 7 significant
# digits, the difference f(x + h) − f(x − h) of a loss near 1 keeps only a couple of
# correct digits once h is small, and a larger h brings back the truncation error. Below,
# the same centred differences of the same network, written out by hand, in float32 and
# in float64, each compared with the exact (float64) backward:

# %%
model64 = copy.deepcopy(model).astype(np.float64)
model64.zero_grad()
loss.forward(model64.forward(X_check, training=True), y_check)
model64.backward(loss.backward())
analytic = {k: g.copy() for k, g in model64.grads.items()}


def centred_difference(net, dtype, key, index, h):
    """(L(w + h) - L(w - h)) / 2h for one entry of one parameter, computed in ``dtype``."""
    w, inputs = net.params[key], X_check.astype(dtype)
    old = w[index].copy()
    w[index] = old + dtype(h)
    plus = loss(net.forward(inputs, training=True), y_check)
    w[index] = old - dtype(h)
    minus = loss(net.forward(inputs, training=True), y_check)
    w[index] = old
    return (plus - minus) / (2 * h)


rng = np.random.default_rng(0)
entries = [(k, tuple(int(rng.integers(s)) for s in model.params[k].shape))
           for k in model.params for _ in range(5)]
median_error = {}
for dtype in (np.float32, np.float64):
    net = copy.deepcopy(model).astype(dtype)
    for h in (1e-5, 1e-3):
        errors = [rel(analytic[k][i], centred_difference(net, dtype, k, i, h)) for k, i in entries]
        median_error[dtype.__name__, h] = float(np.median(errors))
        print(f"{dtype.__name__}, h = {h:.0e}: median relative error {np.median(errors):.1e}, "
              f"worst {np.max(errors):.1e}")

assert median_error["float32", 1e-5] > 1e-2  # "wrong", though the code is right
assert median_error["float32", 1e-3] > 1e-4  # better, still not trustworthy
assert median_error["float64", 1e-5] < 1e-7  # "ok"

# %% [markdown]
# In float32 a correct network looks broken. `nl.gradcheck` therefore always converts
# its copies to float64, whatever dtype the model trains in.
#
# ## Summary
#
# * Centred differences with h ≈ 1e-5, in float64, compared by relative error.
# * Less than 1e-7 is good; 1e-2 and more is a bug; in between, look for kinks.
# * Few examples, a few entries per array; no dropout; no regulariser on the first check.
# * A failing row names the parameter and the layer whose `backward` to read.
#
# `nl.sanity_check` runs such a gradient check among its [sanity checks](10_sanity_checks.md).
