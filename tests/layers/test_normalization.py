import numpy as np
import pytest

import neuronlab as nl
from neuronlab.registry import LAYERS

from ._numgrad import check_layer


def test_registered_and_initial_state():
    bn = nl.BatchNorm(3)
    assert LAYERS.get("batchnorm") is nl.BatchNorm and LAYERS.get("layernorm") is nl.LayerNorm
    np.testing.assert_array_equal(bn.params["gamma"], 1)
    np.testing.assert_array_equal(bn.params["beta"], 0)
    np.testing.assert_array_equal(bn.buffers["running_mean"], 0)
    np.testing.assert_array_equal(bn.buffers["running_var"], 1)
    assert bn.counts() == {"neurons": 0, "weights": 0, "biases": 0, "params": 6}


def test_batchnorm_training_golden():
    bn = nl.BatchNorm(1, momentum=0.9, eps=1e-5, dtype=np.float64)
    bn.params["gamma"][...] = 2.0
    bn.params["beta"][...] = 1.0
    # batch [1, 5]: mean 3, biased variance ((−2)² + 2²)/2 = 4, x̂ = ±2/sqrt(4 + 1e-5)
    y = bn.forward(np.array([[1.0], [5.0]]), training=True)
    xhat = 2 / np.sqrt(4 + 1e-5)
    np.testing.assert_allclose(y, [[1 - 2 * xhat], [1 + 2 * xhat]])
    # running ← 0.9·running + 0.1·batch: mean 0.9·0 + 0.1·3 = 0.3, var 0.9·1 + 0.1·4 = 1.3
    np.testing.assert_allclose(bn.buffers["running_mean"], [0.3])
    np.testing.assert_allclose(bn.buffers["running_var"], [1.3])


def test_batchnorm_inference_uses_running_averages():
    bn = nl.BatchNorm(2, eps=1e-5, dtype=np.float64)
    bn.buffers["running_mean"][...] = [1.0, -1.0]
    bn.buffers["running_var"][...] = [4.0, 0.25]
    bn.params["gamma"][...] = [3.0, 1.0]
    bn.params["beta"][...] = [0.5, 0.0]
    y = bn.forward(np.array([[5.0, 0.0]]), training=False)
    # (5 − 1)/sqrt(4 + eps)·3 + 0.5 ≈ 6.5;  (0 + 1)/sqrt(0.25 + eps) ≈ 2
    np.testing.assert_allclose(y, [[4 / np.sqrt(4 + 1e-5) * 3 + 0.5, 1 / np.sqrt(0.25 + 1e-5)]])
    np.testing.assert_array_equal(bn.buffers["running_mean"], [1.0, -1.0])  # untouched
    # a single sample is fine at inference and its output does not depend on the batch
    x = np.array([[5.0, 0.0], [7.0, 3.0]])
    np.testing.assert_allclose(bn.forward(x)[0], y[0])


def test_batchnorm_output_mean_is_beta_and_std_is_gamma(rng):
    bn = nl.BatchNorm(3, dtype=np.float64)
    bn.params["gamma"][...] = [2.0, 0.5, 1.0]
    bn.params["beta"][...] = [1.0, -3.0, 0.0]
    x = rng.standard_normal((200, 3)) * [10.0, 0.1, 3.0] + [5.0, -2.0, 100.0]
    y = bn.forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=0), [1.0, -3.0, 0.0], atol=1e-10)
    # exactly γ·sqrt(σ²/(σ² + eps)): eps shrinks the std a hair (5e-4 relative for σ = 0.1)
    var = x.var(axis=0)
    np.testing.assert_allclose(
        y.std(axis=0), [2.0, 0.5, 1.0] * np.sqrt(var / (var + 1e-5)), rtol=1e-10
    )
    np.testing.assert_allclose(y.std(axis=0), [2.0, 0.5, 1.0], rtol=1e-3)


def test_running_averages_converge_to_data_statistics(rng):
    bn = nl.BatchNorm(2, momentum=0.5, dtype=np.float64)
    for _ in range(40):
        bn.forward(rng.standard_normal((500, 2)) * [2.0, 3.0] + [1.0, -1.0], training=True)
    np.testing.assert_allclose(bn.buffers["running_mean"], [1.0, -1.0], atol=0.2)
    np.testing.assert_allclose(bn.buffers["running_var"], [4.0, 9.0], rtol=0.15)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradcheck(rng, training):
    bn = nl.BatchNorm(4, dtype=np.float64)
    bn.params["gamma"][...] = rng.uniform(0.5, 2, 4)
    bn.params["beta"][...] = rng.standard_normal(4)
    bn.buffers["running_mean"][...] = rng.standard_normal(4)
    bn.buffers["running_var"][...] = rng.uniform(0.5, 2, 4)
    errors = check_layer(bn, rng.standard_normal((6, 4)) * 2 + 1, training=training)
    assert max(errors.values()) < 1e-7, errors


def test_layernorm_golden():
    ln = nl.LayerNorm(2, eps=1e-5, dtype=np.float64)
    ln.params["gamma"][...] = [1.0, 2.0]
    ln.params["beta"][...] = [0.0, 1.0]
    # sample [1, 3]: mean 2, variance 1, x̂ = [−1, 1]/sqrt(1 + eps); y = [−x̂₀, 2·x̂₁ + 1]
    y = ln.forward(np.array([[1.0, 3.0]]))
    s = 1 / np.sqrt(1 + 1e-5)
    np.testing.assert_allclose(y, [[-s, 2 * s + 1]])


def test_layernorm_rows_normalised_and_modes_agree(rng):
    ln = nl.LayerNorm(8, dtype=np.float64)
    x = rng.standard_normal((5, 8)) * 4 + 7
    y = ln.forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(ln.forward(x, training=False), y)
    assert ln.buffers == {}


def test_layernorm_gradcheck(rng):
    ln = nl.LayerNorm(5, dtype=np.float64)
    ln.params["gamma"][...] = rng.uniform(0.5, 2, 5)
    ln.params["beta"][...] = rng.standard_normal(5)
    errors = check_layer(ln, rng.standard_normal((4, 5)) * 3)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("cls", [nl.BatchNorm, nl.LayerNorm])
def test_accumulates_input_grad_false_and_shapes(rng, cls):
    layer = cls(6, dtype=np.float64)
    x, dout = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 3))
    y = layer.forward(x, training=True)
    assert y.shape == x.shape
    assert layer.backward(dout).shape == x.shape
    once = {k: g.copy() for k, g in layer.grads.items()}
    assert layer.backward(dout, input_grad=False) is None
    for k, g in once.items():
        np.testing.assert_allclose(layer.grads[k], 2 * g)


@pytest.mark.parametrize("cls", [nl.BatchNorm, nl.LayerNorm])
@pytest.mark.parametrize("training", [True, False])
def test_float32_matches_float64(rng, cls, training):
    l32, l64 = cls(3), cls(3, dtype=np.float64)
    x = rng.standard_normal((6, 3)) * 2
    dout = rng.standard_normal((6, 3))
    y32 = l32.forward(x.astype(np.float32), training=training)
    dx32 = l32.backward(dout.astype(np.float32))
    assert y32.dtype == dx32.dtype == l32.grads["gamma"].dtype == np.float32
    np.testing.assert_allclose(y32, l64.forward(x, training=training), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx32, l64.backward(dout), rtol=1e-4, atol=1e-5)
    for k, v in l64.buffers.items():
        assert l32.buffers[k].dtype == np.float32
        np.testing.assert_allclose(l32.buffers[k], v, rtol=1e-5)


def test_astype_converts_buffers():
    bn = nl.BatchNorm(3).astype(np.float64)
    assert bn.buffers["running_var"].dtype == np.float64 and bn.get_config()["dtype"] == "float64"


@pytest.mark.parametrize(
    "layer",
    [nl.BatchNorm(3, momentum=0.8, eps=1e-3), nl.LayerNorm(4, eps=1e-6)],
    ids=lambda l: type(l).__name__,
)
def test_config_round_trip(layer):
    cfg = layer.get_config()
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: nl.BatchNorm(0), ValueError, "n_features must be > 0, got 0"),
        (lambda: nl.BatchNorm(3, momentum=1.5), ValueError, "momentum must be <= 1.0, got 1.5"),
        (lambda: nl.BatchNorm(3, momentum=-0.1), ValueError, "momentum must be >= 0.0, got -0.1"),
        (lambda: nl.BatchNorm(3, eps=0), ValueError, "eps must be > 0.0, got 0"),
        (lambda: nl.LayerNorm(3, eps=-1.0), ValueError, "eps must be > 0.0, got -1.0"),
        (lambda: nl.LayerNorm("3"), TypeError, "n_features must be an integer"),
    ],
)
def test_bad_args(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("cls", [nl.BatchNorm, nl.LayerNorm])
def test_bad_input_and_backward_before_forward(cls):
    layer = cls(3)
    with pytest.raises(ValueError, match="backward called before forward"):
        layer.backward(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="x has 2 features per sample.*n_features=3"):
        layer.forward(np.ones((4, 2), np.float32), training=True)
