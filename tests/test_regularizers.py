"""Regularisers and the max-norm constraint: formulas by hand, gradients against centered
differences, weights only (biases untouched), in-place updates, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.layers.base import Layer
from neuronlab.layers.sequential import Sequential
from neuronlab.losses import SoftmaxCrossEntropy
from neuronlab.registry import CONSTRAINTS, REGULARIZERS
from neuronlab.regularizers import L1, L2, ElasticNet, MaxNorm, Regularizer


class Affine(Layer):
    """A minimal dense layer for these tests (the real Linear lives in layers/linear.py).
    W may have extra trailing axes (maxout pieces); the forward then uses only piece 0."""

    weight_names = ("W",)
    bias_names = ("b",)

    def __init__(self, w: np.ndarray, b: np.ndarray) -> None:
        super().__init__()
        self.add_param("W", w)
        self.add_param("b", b)
        self._x = None

    def forward(self, x, *, training=False):
        self._x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout, *, input_grad=True):
        x = self._cached(self._x)
        self.grads["W"] += x.T @ dout
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"].T


def golden_model(dtype=np.float64) -> Sequential:
    # ‖W0‖² = 1 + 4 + 9 + 16 = 30, ‖W1‖² = 0.25 + 0.25 = 0.5, total 30.5
    # Σ|W0| = 10, Σ|W1| = 1, total 11; the biases are large so that touching them would show
    w0 = np.array([[1.0, 2.0], [3.0, -4.0]], dtype=dtype)
    w1 = np.array([[0.5], [-0.5]], dtype=dtype)
    return Sequential([Affine(w0, np.full(2, 10.0, dtype)), Affine(w1, np.full(1, -7.0, dtype))])


def random_model(rng, dtype=np.float64) -> Sequential:
    w0 = rng.standard_normal((3, 4)).astype(dtype)
    w1 = rng.standard_normal((4, 2)).astype(dtype)
    # L1 has a kink at w = 0; standard normal draws sit far from it at this sample size
    assert min(np.abs(w0).min(), np.abs(w1).min()) > 1e-3
    return Sequential([Affine(w0, rng.standard_normal(4).astype(dtype)), Affine(w1, np.zeros(2, dtype))])


@pytest.mark.parametrize(
    "reg, expected",
    [
        (L2(0.1), 0.5 * 0.1 * 30.5),  # ½ λ ‖W‖² = 1.525
        (L1(0.1), 0.1 * 11),  # λ Σ|w| = 1.1
        (ElasticNet(l1=0.1, l2=0.2), 0.1 * 11 + 0.5 * 0.2 * 30.5),  # 1.1 + 3.05 = 4.15
        (L2(0.0), 0.0),
    ],
    ids=repr,
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_golden(reg, expected, dtype):
    value = reg.loss(golden_model(dtype))
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_grad_golden_weights_only(dtype):
    model = golden_model(dtype)
    w0 = model.params["0.W"].copy()
    for g in model.grads.values():
        g.fill(1.0)  # add_grad must add to what backprop left, not overwrite it
    held = model.grads  # the layers' own arrays: they must be updated in place
    ElasticNet(l1=0.1, l2=0.2).add_grad(model)
    np.testing.assert_allclose(held["0.W"], 1.0 + 0.1 * np.sign(w0) + 0.2 * w0, rtol=1e-6)
    np.testing.assert_allclose(held["1.W"], 1.0 + 0.1 * np.array([[1.0], [-1.0]]) + 0.2 * np.array([[0.5], [-0.5]]))
    for key in ("0.b", "1.b"):
        np.testing.assert_array_equal(held[key], 1.0)
        assert held[key].dtype == dtype
    assert held["0.W"].dtype == dtype
    assert model.grads["0.W"] is model[0].grads["W"]


def test_l1_subgradient_at_zero_is_zero():
    model = Sequential([Affine(np.array([[0.0, -2.0]]), np.zeros(2))])
    L1(0.5).add_grad(model)
    np.testing.assert_array_equal(model.grads["0.W"], [[0.0, -0.5]])


@pytest.mark.parametrize("reg", [L2(0.3), L1(0.2), ElasticNet(l1=0.05, l2=0.7)], ids=repr)
def test_gradient_matches_centered_differences(rng, reg):
    model = random_model(rng)
    reg.add_grad(model)
    h = 1e-5
    for key in model.weight_keys:
        w, g = model.params[key], model.grads[key]
        numeric = np.zeros_like(w)
        for i in np.ndindex(w.shape):
            old = w[i]
            w[i] = old + h
            up = reg.loss(model)
            w[i] = old - h
            down = reg.loss(model)
            w[i] = old
            numeric[i] = (up - down) / (2 * h)
        assert np.max(np.abs(g - numeric) / np.maximum(np.abs(g), np.abs(numeric))) < 1e-7, key
    for key in ("0.b", "1.b"):
        np.testing.assert_array_equal(model.grads[key], 0.0)


def test_full_objective_gradient_through_a_model(rng):
    """Data loss + penalty, backprop + add_grad, against centered differences on every
    parameter: the path a trainer takes, biases included (they get only the data gradient)."""
    model = random_model(rng)
    loss, reg = SoftmaxCrossEntropy(), ElasticNet(l1=0.01, l2=0.1)
    x = rng.standard_normal((5, 3))
    y = rng.integers(0, 2, 5)

    def objective() -> float:
        return loss.forward(model.forward(x), y) + reg.loss(model)

    objective()
    model.backward(loss.backward())
    reg.add_grad(model)
    h = 1e-5
    for key, p in model.params.items():
        g = model.grads[key]
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            up = objective()
            p[i] = old - h
            down = objective()
            p[i] = old
            numeric = (up - down) / (2 * h)
            assert abs(g[i] - numeric) / max(abs(g[i]), abs(numeric)) < 1e-7, (key, i)


def test_non_contiguous_arrays_fall_back_correctly():
    w = np.asfortranarray(np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]]))
    model = Sequential([Affine(w, np.zeros(3))])
    model[0].grads["W"] = np.asfortranarray(np.zeros((2, 3)))
    g = model.grads["0.W"]
    ElasticNet(l1=1.0, l2=2.0).add_grad(model)
    np.testing.assert_array_equal(g, np.sign(w) + 2.0 * w)
    assert L1(1.0).loss(model) == 21.0  # 1 + 2 + 3 + 4 + 5 + 6


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_loss_sums_match_exact_sums(dtype):
    """Σw² (einsum) and Σ|w| (add.reduce) sum in the weights' dtype: within n·eps of the exact
    sum (all terms are >= 0), here 1e-5 relative in float32 and 1e-12 in float64 on 90k
    weights. (The compiled engine's Σw² kernel: tests/test_kernels.py.)"""
    model = nl.mlp(300, [300], 3, rng=0).astype(dtype)
    exact_sq = sum(float(np.sum(model.params[k].astype(np.float64) ** 2))
                   for k in model.weight_keys)
    exact_abs = sum(float(np.sum(np.abs(model.params[k].astype(np.float64))))
                    for k in model.weight_keys)
    rel = 1e-5 if dtype == np.float32 else 1e-12
    assert L2(2.0).loss(model) == pytest.approx(exact_sq, rel=rel)  # ½·2·Σw²
    assert L1(1.0).loss(model) == pytest.approx(exact_abs, rel=rel)


def test_no_level1_blas(monkeypatch):
    """The penalties call no BLAS dot/axpy/asum: threaded OpenBLAS spins on small vectors on
    a busy machine (see the module docstring)."""

    def refuse(*args, **kwargs):
        raise AssertionError("level-1 BLAS called")

    for name in ("dot", "vdot", "inner", "vecdot"):
        monkeypatch.setattr(np, name, refuse)
    model = nl.mlp(20, [30], 3, rng=0)
    reg = ElasticNet(l1=0.1, l2=0.2)
    assert reg.loss(model) > 0
    reg.add_grad(model)
    import neuronlab.regularizers as module

    assert "blas" not in vars(module)


def test_cached_arrays_follow_the_model(rng):
    """The regulariser keeps its view of the model's arrays between steps; a model whose
    arrays change (astype, another model) is read afresh."""
    model = nl.mlp(6, [5], 3, rng=0)
    reg = L2(0.5)
    first = reg.loss(model)
    assert reg.loss(model) == first
    model.astype(np.float64)  # new arrays
    for g in model.grads.values():
        g.fill(0.0)
    assert reg.loss(model) == pytest.approx(first, rel=1e-6)
    reg.add_grad(model)
    np.testing.assert_array_equal(model.grads["0.W"], 0.5 * model.params["0.W"])
    other = nl.mlp(6, [5], 3, rng=1)
    assert reg.loss(other) == pytest.approx(0.25 * sum(
        float(np.sum(other.params[k].astype(np.float64) ** 2)) for k in other.weight_keys),
        rel=1e-6)


def test_pickle_and_copy_leave_the_caches_behind():
    import copy
    import pickle

    model = nl.mlp(64, [256], 10, rng=0)
    reg = ElasticNet(l1=0.1, l2=0.2)
    reg.loss(model)
    reg.add_grad(model)  # scratch (L1) and the cached arrays are now held
    assert len(pickle.dumps(reg)) < 1000  # no weights inside
    for clone in (pickle.loads(pickle.dumps(reg)), copy.deepcopy(reg)):
        assert clone.get_config() == reg.get_config()
        assert clone.loss(model) == reg.loss(model)


def test_model_without_weights_costs_nothing():
    class Shift(Layer):
        bias_names = ("b",)

    layer = Shift()
    layer.add_param("b", np.ones(3))
    model = Sequential([layer])
    assert model.weight_keys == []
    assert L2(1.0).loss(model) == 0.0
    L2(1.0).add_grad(model)
    np.testing.assert_array_equal(model.grads["0.b"], 0.0)


# -- max-norm ----------------------------------------------------------------------------
def test_max_norm_golden_2d():
    # column norms: ‖(3, 4)‖ = 5 and ‖(0.6, 0.8)‖ = 1; with c = 2 the first column becomes
    # (3, 4) · 2/5 = (1.2, 1.6) and the second stays exactly as it was
    w = np.array([[3.0, 0.6], [4.0, 0.8]])
    b = np.array([100.0, -100.0])
    model = Sequential([Affine(w, b)])
    MaxNorm(2.0).apply(model)
    assert model.params["0.W"] is w  # in place
    np.testing.assert_allclose(w[:, 0], [1.2, 1.6], rtol=1e-15)
    assert w[0, 1] == 0.6 and w[1, 1] == 0.8  # bit-for-bit untouched
    np.testing.assert_array_equal(b, [100.0, -100.0])
    np.testing.assert_allclose(np.linalg.norm(w, axis=0), [2.0, 1.0])


def test_max_norm_golden_maxout_pieces():
    # W[:, unit, piece]: (3, 4) norm 5 -> (1.2, 1.6); (0.3, 0.4) norm 0.5 stays;
    # (0, 6) norm 6 -> (0, 2); (-1, 0) norm 1 stays
    w = np.empty((2, 2, 2), dtype=np.float32)
    w[:, 0, 0], w[:, 0, 1], w[:, 1, 0], w[:, 1, 1] = [3, 4], [0.3, 0.4], [0, 6], [-1, 0]
    before = w.copy()
    MaxNorm(2.0).apply(Sequential([Affine(w, np.zeros((2, 2), np.float32))]))
    np.testing.assert_allclose(w[:, 0, 0], [1.2, 1.6], rtol=1e-6)
    np.testing.assert_allclose(w[:, 1, 0], [0.0, 2.0], rtol=1e-6)
    np.testing.assert_array_equal(w[:, :, 1], before[:, :, 1])
    assert w.dtype == np.float32


def test_max_norm_bounds_random_weights(rng):
    model = random_model(rng)
    model[0].params["W"] *= 10
    MaxNorm(1.5).apply(model)
    for key in model.weight_keys:
        assert np.linalg.norm(model.params[key], axis=0).max() <= 1.5 * (1 + 1e-12)


# -- registry, config, bad input -----------------------------------------------------------
def test_registry_and_exports():
    assert REGULARIZERS.names() == ["elastic_net", "l1", "l2"]
    assert CONSTRAINTS.get("max_norm") is MaxNorm
    assert nl.L2 is L2 and nl.MaxNorm is MaxNorm and issubclass(nl.ElasticNet, nl.Regularizer)


@pytest.mark.parametrize(
    "obj, config",
    [
        (L2(0.01), {"strength": 0.01}),
        (L1(0.5), {"strength": 0.5}),
        (ElasticNet(l1=0.1, l2=0.2), {"l1": 0.1, "l2": 0.2}),
        (MaxNorm(3.0), {"max_norm": 3.0}),
    ],
    ids=repr,
)
def test_config_round_trip(obj, config):
    assert obj.get_config() == config
    clone = type(obj).from_config(obj.get_config())
    assert type(clone) is type(obj) and clone.get_config() == config and repr(clone) == repr(obj)


def test_round_trip_keeps_behaviour(rng):
    model = random_model(rng)
    reg = ElasticNet(l1=0.3, l2=0.4)
    assert REGULARIZERS.create("elastic_net", **reg.get_config()).loss(model) == reg.loss(model)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match=r"strength must be >= 0.0, got -0.1"):
        L2(-0.1)
    with pytest.raises(TypeError, match=r"strength must be a real number, got str: '1'"):
        L1("1")
    with pytest.raises(ValueError, match=r"l1 must be >= 0.0, got -1"):
        ElasticNet(l1=-1, l2=0.0)
    with pytest.raises(ValueError, match=r"l2 must be finite, got nan"):
        ElasticNet(l1=0.0, l2=float("nan"))
    with pytest.raises(ValueError, match=r"max_norm must be > 0.0, got 0"):
        MaxNorm(0)
    with pytest.raises(ValueError, match=r"max_norm must be finite, got inf"):
        MaxNorm(float("inf"))
    with pytest.raises(TypeError, match="unexpected keyword"):
        L2.from_config({"strenght": 0.1})
    with pytest.raises(TypeError):
        ElasticNet(0.1)  # both coefficients are required, by name or position
    assert isinstance(L2(0.1), Regularizer)
