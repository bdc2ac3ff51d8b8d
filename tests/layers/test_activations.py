import numpy as np
import pytest

import neuronlab as nl
from neuronlab.registry import LAYERS

from ._numgrad import check_layer

ELEMENTWISE = [
    (nl.Sigmoid, {}),
    (nl.Tanh, {}),
    (nl.ReLU, {}),
    (nl.LeakyReLU, {"alpha": 0.1}),
    (nl.ELU, {"alpha": 0.7}),
]


def _away_from_zero(rng, shape):
    # Inputs with |x| ≥ 0.2 so a ±1e-5 finite difference never straddles a kink at 0.
    x = rng.uniform(0.2, 2.0, size=shape)
    return x * rng.choice([-1.0, 1.0], size=shape)


def test_activation_names_registered():
    assert nl.ACTIVATIONS == ("relu", "leaky_relu", "prelu", "elu", "tanh", "sigmoid", "maxout")
    for name in nl.ACTIVATIONS:
        assert name in LAYERS
    assert LAYERS.get("leaky_relu") is nl.LeakyReLU


# -- golden values worked out by hand -------------------------------------------------------
def test_sigmoid_golden():
    s = nl.Sigmoid()
    # σ(0) = 1/2; σ(ln 3) = 1 / (1 + 1/3) = 3/4; σ(−ln 3) = 1/4
    y = s.forward(np.array([[0.0, np.log(3), -np.log(3)]]))
    np.testing.assert_allclose(y, [[0.5, 0.75, 0.25]])
    # σ' = σ(1 − σ): 1/4, 3/16, 3/16
    np.testing.assert_allclose(s.backward(np.ones((1, 3))), [[0.25, 3 / 16, 3 / 16]])


def test_sigmoid_stable_for_large_inputs():
    # filterwarnings=error: any overflow warning would fail this test.
    x = np.array([[-1000.0, -40.0, 40.0, 1000.0]])
    y = nl.Sigmoid().forward(x)
    assert y[0, 0] == 0.0 and y[0, 3] == 1.0
    # σ(−40) = e^−40 / (1 + e^−40) ≈ 4.248e−18, kept to full relative precision
    np.testing.assert_allclose(y[0, 1], np.exp(-40) / (1 + np.exp(-40)), rtol=1e-12)
    y32 = nl.Sigmoid().forward(x.astype(np.float32))
    assert y32.dtype == np.float32 and np.isfinite(y32).all()


def test_tanh_golden():
    t = nl.Tanh()
    # tanh(ln 2) = (2 − 1/2) / (2 + 1/2) = 0.6; derivative 1 − 0.36 = 0.64
    np.testing.assert_allclose(t.forward(np.array([[np.log(2)]])), [[0.6]])
    np.testing.assert_allclose(t.backward(np.array([[2.0]])), [[1.28]])


def test_relu_golden():
    r = nl.ReLU()
    np.testing.assert_array_equal(r.forward(np.array([[-2.0, 0.0, 3.0]])), [[0, 0, 3]])
    # slope 0 for x ≤ 0, 1 for x > 0
    np.testing.assert_array_equal(r.backward(np.array([[5.0, 5.0, 5.0]])), [[0, 0, 5]])
    np.testing.assert_array_equal(r.kink_state(), [[False, False, True]])


def test_leaky_relu_golden():
    lr = nl.LeakyReLU(alpha=0.1)
    np.testing.assert_allclose(lr.forward(np.array([[-2.0, 3.0]])), [[-0.2, 3.0]])
    np.testing.assert_allclose(lr.backward(np.array([[10.0, 10.0]])), [[1.0, 10.0]])
    np.testing.assert_array_equal(lr.kink_state(), [[False, True]])


def test_elu_golden():
    e = nl.ELU(alpha=2.0)
    # x = −ln 2: 2·(1/2 − 1) = −1, slope α·e^x = 1;  x = 3: 3, slope 1
    x = np.array([[-np.log(2), 3.0, -1000.0, 1000.0]])
    np.testing.assert_allclose(e.forward(x), [[-1.0, 3.0, -2.0, 1000.0]])
    np.testing.assert_allclose(e.backward(np.ones((1, 4))), [[1.0, 1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(e.kink_state(), [[False, True, False, True]])


def test_prelu_golden():
    p = nl.PReLU(2, dtype=np.float64)
    p.params["alpha"][...] = [0.25, 0.5]
    x = np.array([[-4.0, -4.0], [2.0, -2.0]])
    np.testing.assert_allclose(p.forward(x), [[-1.0, -2.0], [2.0, -1.0]])
    dx = p.backward(np.ones((2, 2)))
    np.testing.assert_allclose(dx, [[0.25, 0.5], [1.0, 0.5]])
    # dL/dalpha_j = Σ_n dout · min(x, 0): column 0: −4 + 0; column 1: −4 − 2
    np.testing.assert_allclose(p.grads["alpha"], [-4.0, -6.0])
    np.testing.assert_array_equal(p.kink_state(), [[False, False], [True, False]])


# -- the notes' identities ------------------------------------------------------------------
def test_tanh_is_scaled_sigmoid(rng):
    x = rng.standard_normal((6, 5)) * 3
    np.testing.assert_allclose(
        nl.Tanh().forward(x), 2 * nl.Sigmoid().forward(2 * x) - 1, atol=1e-15
    )


def test_leaky_relu_with_zero_alpha_is_relu(rng):
    x = _away_from_zero(rng, (4, 5))
    np.testing.assert_array_equal(nl.LeakyReLU(alpha=0.0).forward(x), nl.ReLU().forward(x))


# -- gradient checks ------------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "kwargs"), ELEMENTWISE, ids=lambda v: getattr(v, "__name__", ""))
def test_elementwise_gradcheck(rng, cls, kwargs):
    layer = cls(**kwargs)
    errors = check_layer(layer, _away_from_zero(rng, (4, 2, 3)))
    assert errors["x"] < 1e-7, errors


def test_prelu_gradcheck(rng):
    p = nl.PReLU(6, dtype=np.float64)
    p.params["alpha"][...] = rng.uniform(-0.5, 0.5, 6)
    errors = check_layer(p, _away_from_zero(rng, (5, 6)))
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize(("cls", "kwargs"), ELEMENTWISE, ids=lambda v: getattr(v, "__name__", ""))
def test_shape_and_float32(rng, cls, kwargs):
    x = _away_from_zero(rng, (3, 2, 4))
    layer = cls(**kwargs)
    y32 = layer.forward(x.astype(np.float32))
    dx32 = layer.backward(np.ones_like(y32))
    assert y32.dtype == dx32.dtype == np.float32 and y32.shape == dx32.shape == x.shape
    y64 = layer.forward(x)
    dx64 = layer.backward(np.ones_like(y64))
    np.testing.assert_allclose(y32, y64, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-6, atol=1e-7)


def test_inference_equals_training(rng):
    x = rng.standard_normal((3, 4))
    for cls, kwargs in ELEMENTWISE:
        layer = cls(**kwargs)
        np.testing.assert_array_equal(
            layer.forward(x, training=True), layer.forward(x, training=False)
        )


def test_prelu_accumulates_and_float32(rng):
    p = nl.PReLU(3)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    p.forward(x)
    p.backward(np.ones((4, 3), np.float32))
    once = p.grads["alpha"].copy()
    p.backward(np.ones((4, 3), np.float32))
    np.testing.assert_allclose(p.grads["alpha"], 2 * once)
    assert p.grads["alpha"].dtype == np.float32


def test_prelu_counts_and_astype():
    p = nl.PReLU(5)
    assert p.counts() == {"neurons": 0, "weights": 0, "biases": 0, "params": 5}
    p.astype(np.float64)
    assert p.params["alpha"].dtype == np.float64 and p.get_config()["dtype"] == "float64"


def test_smooth_layers_have_no_kinks(rng):
    for layer in (nl.Sigmoid(), nl.Tanh()):
        layer.forward(rng.standard_normal((2, 2)))
        assert layer.kink_state() is None


@pytest.mark.parametrize(
    "layer",
    [
        nl.Sigmoid(),
        nl.Tanh(),
        nl.ReLU(),
        nl.LeakyReLU(0.2),
        nl.ELU(0.5),
        nl.PReLU(4, init_slope=0.1),
    ],
    ids=lambda l: type(l).__name__,
)
def test_config_round_trip(layer):
    cfg = layer.get_config()
    again = LAYERS.get(type(layer).registry_name).from_config(cfg)
    assert type(again) is type(layer) and again.get_config() == cfg


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: nl.LeakyReLU(alpha=-0.1), ValueError, "alpha must be >= 0.0, got -0.1"),
        (lambda: nl.LeakyReLU(alpha=1.5), ValueError, "alpha must be <= 1.0, got 1.5"),
        (lambda: nl.LeakyReLU(alpha="0.1"), TypeError, "alpha must be a real number"),
        (lambda: nl.ELU(alpha=-1), ValueError, "alpha must be >= 0.0, got -1"),
        (lambda: nl.PReLU(0), ValueError, "n_units must be > 0, got 0"),
        (lambda: nl.PReLU(3, init_slope=float("inf")), ValueError, "init_slope must be finite"),
        (lambda: nl.PReLU(3, dtype="float16"), TypeError, "dtype must be float32 or float64"),
    ],
)
def test_bad_args(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize(
    "layer",
    [nl.Sigmoid(), nl.Tanh(), nl.ReLU(), nl.LeakyReLU(), nl.ELU(), nl.PReLU(2)],
    ids=lambda l: type(l).__name__,
)
def test_bad_input_and_backward_before_forward(layer):
    with pytest.raises(ValueError, match="backward called before forward"):
        layer.backward(np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        layer.forward(np.ones(2, np.float32))
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        layer.forward(np.ones((1, 2), np.int64))
    layer.forward(np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match=r"dout must have shape \(1, 2\)"):
        layer.backward(np.ones((1, 3), np.float32))


def test_prelu_wrong_width():
    with pytest.raises(ValueError, match="x has 3 features per sample.*n_units=2"):
        nl.PReLU(2).forward(np.ones((1, 3), np.float32))
