"""The compiled engine's kernels against the readable NumPy code they sit beside.

Every kernel is taken from the module the engine compiles (``neuronlab.engine.build.compiled()``,
each kernel an attribute under its function name) and run on the same inputs as its NumPy
reference:

* the update rules (``optim/*.py``): bit-identical parameters and slots, step after step;
* the penalties (``regularizers.py``): gradients bit-identical, Σw² equal within rounding;
* the activations (``layers/activations.py``): within the ulps measured below (ReLU and leaky
  ReLU exactly);
* the losses (``losses/*.py``): loss and gradient within 1e-12 in float64.

The kernels are skipped where numba is not installed; the tests of the NumPy path
(``NEURONLAB_ENGINE=0``, no numba) run everywhere.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neuronlab as nl
from neuronlab import engine
from neuronlab.engine import build

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])


@pytest.fixture(scope="module")
def code():
    """The compiled engine's module (loaded from numba's cache after the first run)."""
    pytest.importorskip("numba")
    return build.compiled()


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in units in the last place of their dtype, element by element (0 for equal
    values and for ±0; the caller masks NaN). The bit patterns mapped to integers in the
    order of the floats, as Python ints (no overflow between far-apart values)."""
    kind = np.int32 if a.dtype == np.float32 else np.int64
    low = int(np.iinfo(kind).min)

    def ordered(v: np.ndarray) -> np.ndarray:
        i = np.ascontiguousarray(v).view(kind).astype(object)
        return np.where(i < 0, low - i, i)

    return np.abs(ordered(a) - ordered(b))


# -- update rules -------------------------------------------------------------------------------
RULES = [nl.SGD, nl.Momentum, nl.Nesterov, nl.Adagrad, nl.RMSprop, nl.Adam, nl.AdamW]
LRS = [0.05, 0.02, 0.0, 0.013, 0.3, 0.0071]  # a schedule's lr changes every step; 0 is allowed


def _rule(cls: type) -> nl.Optimizer:
    # AdamW decays by default (0.01); the others decay too, outside the kernel
    return cls(lr=0.01) if cls is nl.AdamW else cls(lr=0.01, weight_decay=0.05)


def test_every_rule_has_its_kernel_in_the_engine():
    build._load_tables()
    tables = {cls.kernel for cls in build.RULES}
    for cls in RULES:
        assert cls.elementwise and cls.kernel in tables, cls.__name__
        # the kernel's arguments: the arrays, one per slot, then _kernel_scalars' values
        opt = _rule(cls)
        opt.t = 1
        n_args = len(inspect.signature(cls.kernel).parameters)
        assert n_args == 2 + len(cls.slots) + len(opt._kernel_scalars(0.1)), cls.__name__
    assert nl.AdamW.kernel is nl.Adam.kernel  # the same rule; the decay is the base class's


@pytest.mark.parametrize("cls", RULES, ids=lambda r: r.__name__)
def test_kernel_scalars_depend_on_the_step_only_when_the_rule_says_so(cls):
    """The engine computes a rule's scalars once per distinct lr unless
    ``kernel_scalars_use_t`` (then once per step)."""
    opt = _rule(cls)
    by_t = set()
    for t in (1, 2, 50):
        opt.t = t
        by_t.add(opt._kernel_scalars(0.01))
    assert (len(by_t) > 1) == cls.kernel_scalars_use_t


@DTYPES
@pytest.mark.parametrize("cls", RULES, ids=lambda r: r.__name__)
def test_rule_kernel_is_bit_identical_to_the_optimizer_step(code, cls, dtype):
    """The kernel over one flat block (as the engine runs it: the parameters back to back,
    the slots laid out alike), then the decay on the weights only, against ``opt.step`` on
    separate arrays with ``decay_keys``: the same bits after every step."""
    rng = np.random.default_rng(0)
    shapes = {"W": (37, 23), "b": (23,)}
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    n_w = params["W"].size
    w = np.concatenate([p.reshape(-1) for p in params.values()])
    slots = [np.zeros_like(w) for _ in cls.slots]
    kernel = getattr(code, cls.kernel.__name__)
    ref, mirror = _rule(cls), _rule(cls)  # mirror: the kernel's scalars, as Engine._scalars
    for lr in LRS:
        # gradients from 1e-4 to 1e2, and exact zeros (Adagrad's and RMSprop's 0 / (0 + eps))
        g = rng.standard_normal(w.size) * 10.0 ** rng.uniform(-4, 2, w.size)
        g[::17] = 0.0
        g = g.astype(dtype)
        grads = {"W": g[:n_w].reshape(shapes["W"]).copy(), "b": g[n_w:].copy()}
        ref.step(params, grads, lr=lr, decay_keys=["W"])

        mirror.t += 1
        kernel(w, g, *slots, *[dtype(v) for v in mirror._kernel_scalars(lr)])
        if mirror.weight_decay > 0.0 and lr > 0.0:  # engine/loop.py update: w *= 1 - lr*wd
            w[:n_w] *= dtype(1.0 - lr * mirror.weight_decay)

        assert ref.t == mirror.t
        assert all(p.dtype == dtype for p in params.values())
        expected = np.concatenate([p.reshape(-1) for p in params.values()])
        assert np.array_equal(_bits(w), _bits(expected)), lr  # the same bits, signed zeros too
        for slot, block in zip(cls.slots, slots):
            state = np.concatenate([ref.state[k][slot].reshape(-1) for k in params])
            assert np.array_equal(_bits(block), _bits(state)), (lr, slot)


def test_a_subclass_with_its_own_update_has_no_kernel():
    """``Optimizer.__init_subclass__``: overriding ``_update`` without a ``kernel`` drops the
    parent's (which would run the parent's rule); the engine then leaves the fit to NumPy."""

    def own(w, g, lr):  # pragma: no cover - never run
        pass

    class Halved(nl.Momentum):
        def _update(self, name, w, g, lr, state):
            super()._update(name, w, g, lr / 2, state)

    class Renamed(nl.Adam):  # the same rule: keeps the kernel
        pass

    class Own(nl.SGD):  # its own rule and its own kernel
        kernel = staticmethod(own)

        def _update(self, name, w, g, lr, state):
            w -= lr * g

    assert Halved.kernel is None
    assert Renamed.kernel is nl.Adam.kernel and Own.kernel is own
    X = np.random.default_rng(0).standard_normal((40, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    tr = nl.Trainer(nl.mlp(4, [5], 2, rng=0), nl.SoftmaxCrossEntropy(), Halved(lr=0.1),
                    monitor=False)
    tr.fit(X, y, epochs=1, batch_size=10)
    assert tr.engine_used.startswith("numpy: ")
    if engine.available() and engine.ENABLED:
        assert tr.engine_used == "numpy: the optimizer Halved has no compiled kernel"


# -- penalties ----------------------------------------------------------------------------------
REGS = [nl.L2(0.3), nl.L1(0.2), nl.ElasticNet(l1=0.05, l2=0.7)]


@DTYPES
@pytest.mark.parametrize("reg", REGS, ids=repr)
def test_penalty_gradient_kernels_are_bit_identical_to_add_grad(code, reg, dtype):
    """``_add_scaled`` (λ2 w) then ``_add_scaled_sign`` (λ1 sign w), the engine's order, on
    each weight array against ``Regularizer.add_grad``: the same bits, zeros of both signs,
    NaN and infinities included (np.sign(±0) is 0, a NaN weight gives a NaN gradient)."""
    specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-30, -3.5, 1e30, -1e-45], dtype)
    model = nl.mlp(20, [30, 7], 3, rng=0).astype(dtype)
    rng = np.random.default_rng(1)
    for g in model.grads.values():
        g[...] = rng.standard_normal(g.shape)
    model.params["0.W"][0, : specials.size] = specials
    model.grads["0.W"][1, : specials.size] = -0.0  # -0 + 0 is +0 in both
    model.grads["0.W"][1, 0] = np.nan
    got = {k: v.copy() for k, v in model.grads.items()}
    type(reg).from_config(reg.get_config()).add_grad(model)
    for k in model.weight_keys:
        w, g = model.params[k].reshape(-1), got[k].reshape(-1)
        if reg._l2:
            code._add_scaled(w, g, dtype(reg._l2))
        if reg._l1:
            code._add_scaled_sign(w, g, dtype(reg._l1))
    for k, v in model.grads.items():  # biases: untouched by both
        assert got[k].dtype == dtype
        np.testing.assert_array_equal(_bits(got[k]), _bits(v), err_msg=k)


@DTYPES
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 1000, 90_000])
def test_sum_squares_kernel_equals_the_numpy_sum(code, n, dtype):
    """Σ w² as 16 partial sums in w's dtype against Regularizer.loss's einsum (which sums in
    another order): measured at most 3.7e-7 relative in float32 (90k weights; it grows with
    the size, 1.5e-6 at 300k) and 7e-16 in float64, asserted as 1e-6 and 1e-12."""
    rng = np.random.default_rng(n)
    for scale in (1.0, 0.05):
        w = (rng.standard_normal(n) * scale).astype(dtype)
        got = code._sum_squares(w)
        expected = float(np.einsum("i,i->", w, w))
        rtol = 1e-6 if dtype == np.float32 else 1e-12
        assert got == pytest.approx(expected, rel=rtol, abs=0.0), scale
    if n:
        model = nl.Sequential([nl.Linear(n, 1, rng=0, dtype=dtype)])
        value = 0.5 * 0.3 * code._sum_squares(model.params["0.W"].reshape(-1))
        assert value == pytest.approx(nl.L2(0.3).loss(model), rel=rtol)


# -- activations --------------------------------------------------------------------------------
ACTIVATIONS = [
    nl.Sigmoid(), nl.Tanh(), nl.ReLU(), nl.LeakyReLU(alpha=0.2), nl.LeakyReLU(alpha=0.0),
    nl.ELU(alpha=0.7),
]
# The most ulps the kernel's value may be from the layer's forward where the result is a normal
# number: the kernels call libm's exp, tanh and expm1 where NumPy uses its own vectorised ones
# and the layer SciPy's expit. Measured over 2.5M inputs (normal(0, 3), uniform(-100, 100),
# normal(0, 0.01)): sigmoid 3 ulps in float32 and 4 in float64, tanh 3 and 3, ELU 4 and 2;
# asserted as 4. Below the smallest normal number expit gives 0 where the kernel's
# e^x / (1 + e^x) keeps a subnormal: asserted within that smallest normal, absolutely. ReLU
# and leaky ReLU are comparisons and one product: equal.
VALUE_ULPS = {nl.Sigmoid: 4, nl.Tanh: 4, nl.ELU: 4, nl.ReLU: 0, nl.LeakyReLU: 0}
# The slope formula at the same y (the layer's): the same bits as backward, except sigmoid's in
# float32, whose kernel takes 1 - y in float64 (an integer 1 with a float32 promotes): 1 ulp.
SLOPE_ULPS = {(nl.Sigmoid, np.float32): 1}
# The slope at the kernel's own y against backward at the layer's: a few ulps of y move
# 1 - y² (tanh) by a few eps near y = ±1. Measured at most 2 eps (tanh, both dtypes), 0.5 eps
# for sigmoid and ELU; asserted as 3 eps (absolute: the slopes are at most 1).
SLOPE_EPS = 3.0


def _inputs(dtype) -> np.ndarray:
    """Random values of several scales, then 0, -0, tiny and subnormal values, both sides of
    exp's overflow in float32 and float64, and NaN (infinities: see the test below)."""
    rng = np.random.default_rng(0)
    special = [0.0, -0.0, 1e-30, -1e-30, 1e-40, -1e-40, 1.0, -1.0, 3.0, -3.0, 20.0, -20.0,
               88.0, 89.0, -88.0, -89.0, -104.0, 709.0, 710.0, -710.0, -745.0, 1e30, -1e30,
               np.nan]
    return np.concatenate([rng.standard_normal(3000) * 3, rng.standard_normal(500) * 40,
                           special]).astype(dtype)


def _kernel_pass(code, layer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's value and slope (with dL/dy = 1) at ``x``, element by element through the
    compiled value and slope functions, rounded to x's dtype as the engine stores them; also
    the slope function at the layer's own output (the formula alone)."""
    cls = type(layer)
    value, slope = (getattr(code, f.__name__) for f in cls.kernel)
    t = x.dtype.type
    a = t(getattr(layer, cls.kernel_arg) if cls.kernel_arg else 0)
    y = np.array([value(v, a) for v in x], dtype=x.dtype)
    s = np.array([slope(v, w, a) for v, w in zip(x, y)], dtype=x.dtype)
    with np.errstate(invalid="ignore"):  # leaky ReLU with α = 0: -Inf·0
        ref_y = layer.forward(x.reshape(-1, 1)).reshape(-1)
    s_ref_y = np.array([slope(v, w, a) for v, w in zip(x, ref_y)], dtype=x.dtype)
    # the engine's dispatchers apply exactly these functions to whole arrays
    k = build.ACTIVATIONS.index(cls)
    y2, d = np.empty_like(x), np.ones_like(x)
    code.act_forward(k, x, y2, a)
    code.act_backward(k, x, y2, d, a)
    np.testing.assert_array_equal(_bits(y2), _bits(y))
    np.testing.assert_array_equal(_bits(d), _bits(s))
    return y, s, s_ref_y


def _same_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    assert np.array_equal(np.isnan(a), np.isnan(b))
    return ~np.isnan(a)


def test_every_elementwise_activation_has_its_kernel_in_the_engine():
    build._load_tables()
    assert {type(layer) for layer in ACTIVATIONS} == set(build.ACTIVATIONS)
    for cls in build.ACTIVATIONS:
        assert len(cls.kernel) == 2 and cls.kernel_arg in (None, "alpha"), cls.__name__


@DTYPES
@pytest.mark.parametrize("layer", ACTIVATIONS, ids=repr)
def test_activation_kernels_match_forward_and_backward(code, layer, dtype):
    x = _inputs(dtype)
    y, s, s_ref_y = _kernel_pass(code, layer, x)
    with np.errstate(invalid="ignore", over="ignore"):
        ref = layer.forward(x.reshape(-1, 1)).reshape(-1)
        ref_slope = layer.backward(np.ones((x.size, 1), dtype)).reshape(-1)
    cls = type(layer)
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)

    ok = _same_nan(ref, y)
    if VALUE_ULPS[cls] == 0:
        np.testing.assert_array_equal(y, ref)  # equal values (-0 and +0 alike), NaN where NaN
    normal = ok & (np.abs(ref) >= tiny)
    assert _ulps(y[normal], ref[normal]).max() <= VALUE_ULPS[cls]
    assert np.all(np.abs(y[ok & ~normal].astype(np.float64) - ref[ok & ~normal]) <= tiny)

    ok = _same_nan(ref_slope, s_ref_y)
    assert _ulps(s_ref_y[ok], ref_slope[ok]).max() <= SLOPE_ULPS.get((cls, dtype), 0)

    ok = _same_nan(ref_slope, s)
    assert np.max(np.abs(s[ok].astype(np.float64) - ref_slope[ok])) <= SLOPE_EPS * eps
    if cls in (nl.ReLU, nl.LeakyReLU):
        np.testing.assert_array_equal(s, ref_slope)


@DTYPES
@pytest.mark.parametrize("layer", ACTIVATIONS, ids=repr)
def test_activation_kernels_at_infinity(code, layer, dtype):
    """±Inf: the value and slope NumPy gives (σ: 0 and 1; tanh: ±1; leaky ReLU: ±Inf, or NaN
    for α = 0 as NumPy's -Inf·0; ReLU: +Inf and 0; ELU: +Inf and -α)."""
    x = np.array([np.inf, -np.inf], dtype)
    y, s, _ = _kernel_pass(code, layer, x)
    with np.errstate(invalid="ignore"):
        ref = layer.forward(x.reshape(-1, 1)).reshape(-1)
        ref_slope = layer.backward(np.ones((2, 1), dtype)).reshape(-1)
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(s, ref_slope)


# -- losses -------------------------------------------------------------------------------------
N_ROWS, M, C = 60, 23, 5  # the training rows, a batch of 23 of them (1/23 is not exact), classes


def _batch(dtype, weighted: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(N_ROWS, M, replace=False)).astype(np.int64)
    scores = (rng.standard_normal((M, C)) * 4).astype(dtype)
    scores[0] = 1.5  # a tie: the first of the largest scores is the prediction
    scores[1, 2] = 300.0  # e^(s - max) of 0 for the others
    yi = rng.integers(0, C, N_ROWS).astype(np.int64)
    scores[2, yi[idx[2]]] = 20.0  # at least one right prediction
    yf = rng.standard_normal((N_ROWS, C)) * 2
    wb = rng.uniform(0.0, 3.0, M) if weighted else np.ones(M)
    if weighted:
        wb[3] = 0.0
    return scores, yi, yf, idx, wb


def _kernel_loss(code, loss_cls, scores, yi, yf, idx, wb):
    d = np.full_like(scores, np.nan)  # every element is written
    value, stat, finite = getattr(code, loss_cls.kernel.__name__)(scores, yi, yf, idx, d, wb)
    return value, stat, finite, d


LOSSES = [nl.SoftmaxCrossEntropy, nl.MeanSquaredError]
# Measured over 400 random batches: float64 losses within 2e-15 relative and gradients within
# 3.2 eps of the largest element (the kernel sums z, Σ w and the losses in another order than
# NumPy's BLAS and pairwise sums, and calls libm's exp); asserted as 1e-12. float32 (sums of
# 115 terms in float32, as NumPy's): losses within 9e-7 (MSE; softmax 5e-9) and gradients
# within 1.8 eps of the largest (softmax; MSE's were bit-identical); asserted as 1e-5, about
# n·eps for these sums, and 4 eps.
LOSS_RTOL = {np.float32: 1e-5, np.float64: 1e-12}
GRAD_RTOL = {np.float32: 4 * float(np.finfo(np.float32).eps), np.float64: 1e-12}


@DTYPES
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss_cls", LOSSES, ids=lambda c: c.__name__)
def test_loss_kernel_matches_forward_and_backward(code, loss_cls, weighted, dtype):
    """The kernel (row weights of ones for an unweighted batch, as the engine passes them)
    against ``forward(scores, y, sample_weight)`` and ``backward()``: the loss within 1e-12
    and the gradient within 1e-12 of its largest element in float64; the statistic (weighted
    right predictions, weighted squared error) exact or within rounding."""
    scores, yi, yf, idx, wb = _batch(dtype, weighted)
    value, stat, finite, d = _kernel_loss(code, loss_cls, scores, yi, yf, idx, wb)
    loss = loss_cls()
    target = yi[idx] if loss_cls is nl.SoftmaxCrossEntropy else yf[idx]
    expected = loss.forward(scores, target, sample_weight=wb if weighted else None)
    grad = loss.backward()
    assert finite is True
    assert value == pytest.approx(expected, rel=LOSS_RTOL[dtype], abs=0.0)
    assert d.dtype == grad.dtype == dtype
    scale = float(np.max(np.abs(grad)))
    assert float(np.max(np.abs(d.astype(np.float64) - grad))) <= GRAD_RTOL[dtype] * scale
    if loss_cls is nl.SoftmaxCrossEntropy:
        right = 0.0
        for r, label in enumerate(target):  # the kernel's order: exact
            if int(np.argmax(scores[r])) == label:
                right += wb[r]
        assert stat == right and (weighted or stat == int(stat))
        assert right > 0
    else:
        diff = scores.astype(np.float64) - target
        sq = float(np.sum(wb * np.sum(diff * diff, axis=1)))
        assert stat == pytest.approx(sq, rel=LOSS_RTOL[dtype], abs=0.0)


@DTYPES
@pytest.mark.parametrize("loss_cls", LOSSES, ids=lambda c: c.__name__)
def test_loss_weights_of_ones_are_the_unweighted_loss(code, loss_cls, dtype):
    """The engine passes weights of ones for an unweighted fit: in NumPy, weights of ones give
    the unweighted loss and gradient bit for bit; in the kernel, weights scaled by any factor
    (here 2.5: the kernel divides by the largest) give the same bits as ones."""
    scores, yi, yf, idx, _ = _batch(dtype, weighted=False, seed=3)
    target = yi[idx] if loss_cls is nl.SoftmaxCrossEntropy else yf[idx]
    loss = loss_cls()
    plain, plain_grad = loss.forward(scores, target), loss.backward()
    ones = loss.forward(scores, target, sample_weight=np.ones(M))
    assert ones == plain
    np.testing.assert_array_equal(_bits(loss.backward()), _bits(plain_grad))

    v1, s1, _, d1 = _kernel_loss(code, loss_cls, scores, yi, yf, idx, np.ones(M))
    v2, s2, _, d2 = _kernel_loss(code, loss_cls, scores, yi, yf, idx, np.full(M, 2.5))
    assert v1 == v2
    np.testing.assert_array_equal(_bits(d1), _bits(d2))
    if loss_cls is nl.SoftmaxCrossEntropy:
        assert s2 == 2.5 * s1


@DTYPES
@pytest.mark.parametrize("loss_cls", LOSSES, ids=lambda c: c.__name__)
def test_loss_kernel_reports_a_score_that_is_not_finite(code, loss_cls, dtype):
    for bad in (np.nan, np.inf, -np.inf):
        for where in ((0, 0), (M // 2, 2), (M - 1, C - 1)):
            scores, yi, yf, idx, wb = _batch(dtype, weighted=True)
            scores[where] = bad
            assert _kernel_loss(code, loss_cls, scores, yi, yf, idx, wb)[2] is False, (bad, where)
    scores, yi, yf, idx, wb = _batch(dtype, weighted=True)
    scores[5, 1] = np.finfo(dtype).max  # large but finite
    assert _kernel_loss(code, loss_cls, scores, yi, yf, idx, wb)[2] is True


# -- the NumPy path -----------------------------------------------------------------------------
def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5)


def _fit(**kwargs) -> nl.Trainer:
    tr = nl.Trainer(nl.mlp(4, [8], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.Adam(lr=0.01),
                    regularizer=nl.L2(1e-3), monitor=False, **kwargs)
    tr.fit(*_data(), epochs=2, batch_size=16)
    return tr


_CHILD = textwrap.dedent(
    """
    import json, sys
    if sys.argv[1] == "no-numba":
        sys.modules["numba"] = None  # import numba raises ImportError
    import numpy as np
    from click.testing import CliRunner
    import neuronlab as nl
    from neuronlab import engine
    from neuronlab.cli import cli

    version = CliRunner().invoke(cli, ["--version"]).output
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    tr = nl.Trainer(nl.mlp(4, [8], 2, rng=0), nl.SoftmaxCrossEntropy(), nl.Adam(lr=0.01),
                    monitor=False)
    tr.fit(X, y, epochs=1, batch_size=16)
    print(json.dumps({"version": version, "used": tr.engine_used,
                      "engine": any(m.startswith("_neuronlab_engine") for m in sys.modules)}))
    """
)


def _child(mode: str, **env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_environment_variable_turns_the_engine_off():
    got = _child("plain", NEURONLAB_ENGINE="0")
    assert "; NumPy code (" in got["version"]
    if engine.available():
        assert "NEURONLAB_ENGINE=0" in got["version"]
    assert got["used"] == "numpy: the compiled engine is off (NEURONLAB_ENGINE=0)"
    assert not got["engine"]  # nothing compiled


def test_without_numba_importable_everything_trains_in_numpy():
    got = _child("no-numba")
    assert "; NumPy code (numba not installed" in got["version"]
    assert got["used"] == "numpy: numba is not installed (pip install 'neuronlab[fast]')"
    assert not got["engine"]


def test_without_numba_the_fit_is_the_numpy_fit(monkeypatch):
    """A plain ``pip install neuronlab`` (no ``fast`` extra), simulated in this process: no
    engine, nothing compiled, and the same bits as ``Trainer(engine=False)``."""
    monkeypatch.setattr(engine, "_numba", False)

    def refuse():
        raise AssertionError("the engine was compiled")

    monkeypatch.setattr(build, "compiled", refuse)
    assert not engine.available() and engine.describe().startswith("NumPy code (numba not")
    tr, ref = _fit(), _fit(engine=False)
    assert tr.engine_used == "numpy: numba is not installed (pip install 'neuronlab[fast]')"
    assert ref.engine_used == "numpy: Trainer(engine=False)"
    for k, v in ref.model.params.items():
        np.testing.assert_array_equal(tr.model.params[k], v, err_msg=k)
    assert tr.history.loss == ref.history.loss
    with pytest.raises(ValueError, match="numba is not installed"):
        _fit(engine=True)


# -- batch norm --------------------------------------------------------------------------------
@DTYPES
def test_batchnorm_kernels_match_forward_and_backward(code, dtype):
    """The training forward (output, x̂, 1/std, running averages) and backward (dγ, dβ, dx)
    against BatchNorm's NumPy methods: float64 within 1e-13, float32 within a few eps (the
    kernels sum in float64, NumPy in the dtype)."""
    rng = np.random.default_rng(3)
    m, n = 37, 9
    layer = nl.BatchNorm(n, momentum=0.8, eps=1e-3, dtype=dtype)
    layer.params["gamma"][...] = rng.uniform(0.5, 2, n)
    layer.params["beta"][...] = rng.standard_normal(n)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2, n)
    x = (rng.standard_normal((m, n)) * 3 + 1).astype(dtype)
    dout = rng.standard_normal((m, n)).astype(dtype)
    rmean, rvar = layer.buffers["running_mean"].copy(), layer.buffers["running_var"].copy()
    y_ref = layer.forward(x, training=True)
    layer.grads["gamma"][...] = 0
    layer.grads["beta"][...] = 0
    dx_ref = layer.backward(dout)

    T = np.dtype(dtype).type
    y, xhat = np.empty_like(x), np.empty_like(x)
    inv_std = np.empty(n, dtype)
    code._batchnorm_forward(x, y, xhat, inv_std, layer.params["gamma"], layer.params["beta"],
                            rmean, rvar, T(0.8), T(1.0 - 0.8), T(1e-3))
    d, dgamma, dbeta = dout.copy(), np.empty(n, dtype), np.empty(n, dtype)
    code._batchnorm_backward(d, xhat, inv_std, layer.params["gamma"], dgamma, dbeta)

    tol = 1e-13 if dtype == np.float64 else 8 * np.finfo(np.float32).eps
    for got, want in ((y, y_ref), (xhat, layer._xhat), (inv_std, layer._inv_std),
                      (rmean, layer.buffers["running_mean"]), (rvar, layer.buffers["running_var"]),
                      (dgamma, layer.grads["gamma"]), (dbeta, layer.grads["beta"]), (d, dx_ref)):
        assert got.dtype == dtype
        scale = np.max(np.abs(want))
        assert np.max(np.abs(got.astype(np.float64) - want)) <= tol * scale


@DTYPES
def test_layernorm_kernels_match_forward_and_backward(code, dtype):
    rng = np.random.default_rng(4)
    m, n = 23, 11
    layer = nl.LayerNorm(n, eps=1e-3, dtype=dtype)
    layer.params["gamma"][...] = rng.uniform(0.5, 2, n)
    layer.params["beta"][...] = rng.standard_normal(n)
    x = (rng.standard_normal((m, n)) * 3 + 1).astype(dtype)
    dout = rng.standard_normal((m, n)).astype(dtype)
    y_ref = layer.forward(x, training=True)
    layer.grads["gamma"][...] = 0
    layer.grads["beta"][...] = 0
    dx_ref = layer.backward(dout)

    y, xhat, inv_std = np.empty_like(x), np.empty_like(x), np.empty(m, dtype)
    code._layernorm_forward(x, y, xhat, inv_std, layer.params["gamma"], layer.params["beta"],
                            np.dtype(dtype).type(1e-3))
    d, dgamma, dbeta = dout.copy(), np.empty(n, dtype), np.empty(n, dtype)
    code._layernorm_backward(d, xhat, inv_std, layer.params["gamma"], dgamma, dbeta)

    tol = 1e-13 if dtype == np.float64 else 8 * np.finfo(np.float32).eps
    for got, want in ((y, y_ref), (xhat, layer._xhat), (inv_std, layer._inv_std.reshape(-1)),
                      (dgamma, layer.grads["gamma"]), (dbeta, layer.grads["beta"]), (d, dx_ref)):
        assert got.dtype == dtype
        assert np.max(np.abs(got.astype(np.float64) - want)) <= tol * np.max(np.abs(want))
