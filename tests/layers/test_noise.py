import numpy as np
import pytest

import neuronlab as nl
from neuronlab.registry import LAYERS

from ._numgrad import check_layer


def test_registered_and_stochastic():
    assert LAYERS.get("dropout") is nl.Dropout and LAYERS.get("gaussian_noise") is nl.GaussianNoise
    assert nl.Dropout.stochastic and nl.GaussianNoise.stochastic
    assert isinstance(nl.Dropout(0.5, rng=0).rng, np.random.Generator)
    assert nl.Dropout(0.5).counts()["params"] == 0


def test_dropout_inference_and_noise_off_are_identity(rng):
    x = rng.standard_normal((4, 5))
    d = nl.Dropout(0.5, rng=0)
    np.testing.assert_array_equal(d.forward(x, training=False), x)
    np.testing.assert_array_equal(d.backward(np.ones_like(x)), np.ones_like(x))
    d.noise_off = True
    np.testing.assert_array_equal(d.forward(x, training=True), x)
    np.testing.assert_array_equal(nl.Dropout(0.0, rng=0).forward(x, training=True), x)


def test_dropout_mask_values_and_backward():
    rate = 0.25
    d = nl.Dropout(rate, rng=0)
    x = np.ones((200, 50))
    y = d.forward(x, training=True)
    # survivors are scaled by 1/(1 − 0.25) = 4/3, dropped units are exactly 0
    assert set(np.unique(y)) == {0.0, 4 / 3}
    assert abs((y == 0).mean() - rate) < 0.02  # 10,000 draws: std of the fraction ≈ 0.004
    # backward routes through the same mask: with x = 1 the mask is y itself
    np.testing.assert_array_equal(d.backward(np.ones_like(x)), y)


def test_dropout_preserves_expected_activation(rng):
    x = rng.uniform(0.5, 1.5, size=(1, 50))
    d = nl.Dropout(0.6, rng=1)
    # mean of 4,000 inverted-dropout samples of each unit ≈ the unit itself: per-sample
    # variance is x²·rate/(1 − rate) ≤ 3.4, so the mean's std is ≤ 0.03 (tolerance 5σ).
    samples = np.stack([d.forward(x, training=True) for _ in range(4000)])
    np.testing.assert_allclose(samples.mean(axis=0), x, atol=0.15)
    assert abs(samples.mean() - x.mean()) < 0.02  # all 200,000 draws together


def test_dropout_gradcheck_with_a_fixed_mask(rng):
    d = nl.Dropout(0.4, rng=3)
    state = d.rng.bit_generator.state

    def rewind():  # every evaluation draws the same mask
        d.rng.bit_generator.state = state

    errors = check_layer(d, rng.standard_normal((5, 6)), reset=rewind)
    assert errors["x"] < 1e-7, errors


def test_dropout_seed_and_rng_state_reproduce_masks():
    x = np.ones((3, 8), np.float32)
    a, b = nl.Dropout(0.5, rng=7), nl.Dropout(0.5, rng=7)
    np.testing.assert_array_equal(a.forward(x, training=True), b.forward(x, training=True))
    saved = a.rng.bit_generator.state
    first = a.forward(x, training=True)
    a.rng.bit_generator.state = saved  # what a checkpoint restore does
    np.testing.assert_array_equal(a.forward(x, training=True), first)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes(dtype):
    x = np.ones((4, 6), dtype)
    for layer in (nl.Dropout(0.5, rng=0), nl.GaussianNoise(0.1, rng=0)):
        y = layer.forward(x, training=True)
        assert y.dtype == dtype and y.shape == x.shape
        assert layer.backward(np.ones_like(y)).dtype == dtype


def test_gaussian_noise_statistics_and_identity_at_inference(rng):
    g = nl.GaussianNoise(0.3, rng=0)
    x = rng.standard_normal((400, 50))
    noise = g.forward(x, training=True) - x
    # 20,000 draws of N(0, 0.09): std of the mean ≈ 0.002, of the sample std ≈ 0.0015
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.3) < 0.01
    np.testing.assert_array_equal(g.forward(x, training=False), x)
    g.noise_off = True
    np.testing.assert_array_equal(g.forward(x, training=True), x)


def test_gaussian_noise_gradient_is_identity(rng):
    g = nl.GaussianNoise(0.5, rng=0)
    g.forward(rng.standard_normal((3, 4)), training=True)
    dout = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(g.backward(dout), dout)


@pytest.mark.parametrize(
    ("layer", "cfg"),
    [
        (nl.Dropout(0.3), {"rate": 0.3}),
        (nl.Dropout(0.3, rng=4), {"rate": 0.3, "rng": 4}),
        (nl.GaussianNoise(0.2, rng=np.random.default_rng(1)), {"std": 0.2}),
    ],
)
def test_config_round_trip(layer, cfg):
    assert layer.get_config() == cfg
    assert type(layer).from_config(cfg).get_config() == cfg


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: nl.Dropout(1.0), ValueError, "rate must be < 1.0, got 1.0"),
        (lambda: nl.Dropout(-0.1), ValueError, "rate must be >= 0.0, got -0.1"),
        (lambda: nl.Dropout("0.5"), TypeError, "rate must be a real number"),
        (lambda: nl.Dropout(0.5, rng=1.5), TypeError, "rng must be"),
        (lambda: nl.GaussianNoise(-1.0), ValueError, "std must be >= 0.0, got -1.0"),
        (lambda: nl.GaussianNoise(float("nan")), ValueError, "std must be finite"),
    ],
)
def test_bad_args(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize(
    "layer", [nl.Dropout(0.5), nl.GaussianNoise(0.1)], ids=lambda l: type(l).__name__
)
def test_backward_before_forward_and_bad_input(layer):
    with pytest.raises(ValueError, match="backward called before forward"):
        layer.backward(np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        layer.forward(np.ones(3, np.float32), training=True)
