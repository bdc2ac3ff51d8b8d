import numpy as np
import pytest

import neuronlab as nl
from neuronlab.registry import LAYERS

from ._numgrad import check_layer


def _fixed_maxout():
    # One unit, two pieces: piece 0 = x0, piece 1 = x1 + 0.5
    m = nl.Maxout(2, 1, pieces=2, dtype=np.float64)
    m.params["W"][...] = 0
    m.params["W"][0, 0, 0] = 1.0
    m.params["W"][1, 0, 1] = 1.0
    m.params["b"][...] = [[0.0, 0.5]]
    return m


def test_registered_and_shapes():
    m = nl.Maxout(5, 3, pieces=4)
    assert LAYERS.get("maxout") is nl.Maxout
    assert m.params["W"].shape == (5, 3, 4) and m.params["b"].shape == (3, 4)
    assert m.counts() == {"neurons": 3, "weights": 60, "biases": 12, "params": 72}


def test_forward_backward_golden():
    m = _fixed_maxout()
    x = np.array([[1.0, 2.0], [3.0, 1.0]])
    # row 0: max(1, 2.5) = 2.5 (piece 1); row 1: max(3, 1.5) = 3 (piece 0)
    np.testing.assert_allclose(m.forward(x), [[2.5], [3.0]])
    np.testing.assert_array_equal(m.kink_state(), [[1], [0]])
    dx = m.backward(np.array([[1.0], [2.0]]))
    # gradients reach only the winners: piece 1 gets x row 0 · 1, piece 0 gets x row 1 · 2
    np.testing.assert_allclose(m.grads["W"][:, 0, 1], [1.0, 2.0])
    np.testing.assert_allclose(m.grads["W"][:, 0, 0], [6.0, 2.0])
    np.testing.assert_allclose(m.grads["b"], [[2.0, 1.0]])
    # dx = dout · (winning piece's weight column): row 0 [0, 1]·1, row 1 [1, 0]·2
    np.testing.assert_allclose(dx, [[0.0, 1.0], [2.0, 0.0]])


def test_ties_go_to_the_first_piece():
    m = nl.Maxout(2, 1, pieces=3, dtype=np.float64)
    m.params["W"][...] = 0  # all pieces equal
    m.forward(np.ones((1, 2)))
    m.backward(np.ones((1, 1)))
    np.testing.assert_array_equal(m.grads["b"], [[1.0, 0.0, 0.0]])  # not 3× the gradient


def _maxout_from_pieces(n, slope_of_second_piece):
    """Maxout with pieces (x, slope·x) per unit: identity affine map and a scaled copy."""
    m = nl.Maxout(n, n, pieces=2, dtype=np.float64)
    m.params["W"][...] = 0
    m.params["W"][:, :, 0] = np.eye(n)
    m.params["W"][:, :, 1] = slope_of_second_piece * np.eye(n)
    return m


@pytest.mark.parametrize(
    ("activation", "slope"), [(nl.ReLU(), 0.0), (nl.LeakyReLU(alpha=0.1), 0.1)]
)
def test_relu_and_leaky_relu_are_maxout_with_fixed_pieces(rng, activation, slope):
    x = rng.uniform(0.1, 2, (6, 4)) * rng.choice([-1, 1], (6, 4))
    dout = rng.standard_normal((6, 4))
    m = _maxout_from_pieces(4, slope)
    np.testing.assert_allclose(m.forward(x), activation.forward(x), atol=1e-15)
    np.testing.assert_allclose(m.backward(dout), activation.backward(dout), atol=1e-15)
    np.testing.assert_array_equal(m.kink_state() == 0, activation.kink_state())


def test_gradcheck_float64(rng):
    m = nl.Maxout(5, 3, pieces=3, rng=0, dtype=np.float64)
    m.params["b"][...] = rng.standard_normal((3, 3))
    x = rng.standard_normal((4, 5))
    m.forward(x)
    z = x @ m.params["W"].reshape(5, 9) + m.params["b"].reshape(-1)
    top2 = np.sort(z.reshape(4, 3, 3), axis=2)[..., -2:]
    assert (top2[..., 1] - top2[..., 0]).min() > 1e-3  # no near-ties: no kink within ±h
    np.testing.assert_array_equal(m.kink_state(), z.reshape(4, 3, 3).argmax(axis=2))
    errors = check_layer(m, x)
    assert max(errors.values()) < 1e-7, errors


def test_accumulates_and_input_grad_false(rng):
    m = nl.Maxout(4, 2, pieces=2, rng=1, dtype=np.float64)
    x, dout = rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 2))
    m.forward(x)
    dx = m.backward(dout)
    assert dx.shape == (3, 2, 2)
    once = {k: g.copy() for k, g in m.grads.items()}
    assert m.backward(dout, input_grad=False) is None
    for k, g in once.items():
        np.testing.assert_allclose(m.grads[k], 2 * g)


def test_float32_matches_float64(rng):
    m32, m64 = nl.Maxout(4, 3, rng=2), nl.Maxout(4, 3, rng=2, dtype=np.float64)
    x = rng.standard_normal((5, 4))
    y32 = m32.forward(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, m64.forward(x), rtol=1e-5, atol=1e-6)
    dx32 = m32.backward(np.ones((5, 3), np.float32))
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, m64.backward(np.ones((5, 3))), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m32.grads["W"], m64.grads["W"], rtol=1e-5, atol=1e-6)


def test_config_round_trip():
    m = nl.Maxout(4, 3, pieces=3, init="glorot", rng=9, dtype=np.float64)
    cfg = m.get_config()
    assert cfg == {
        "n_in": 4,
        "n_out": 3,
        "pieces": 3,
        "init": "glorot",
        "rng": 9,
        "dtype": "float64",
    }
    again = nl.Maxout.from_config(cfg)
    np.testing.assert_array_equal(again.params["W"], m.params["W"])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_in": 0, "n_out": 2}, ValueError, "n_in must be > 0, got 0"),
        ({"n_in": 2, "n_out": 2, "pieces": 0}, ValueError, "pieces must be > 0, got 0"),
        ({"n_in": 2, "n_out": 2, "pieces": 2.0}, TypeError, "pieces must be an integer"),
        ({"n_in": 2, "n_out": 2, "init": "nope"}, ValueError, "unknown initializer 'nope'"),
    ],
)
def test_bad_args(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nl.Maxout(**kwargs)


def test_bad_input_and_backward_before_forward():
    m = nl.Maxout(3, 2)
    with pytest.raises(ValueError, match="Maxout.backward called before forward"):
        m.backward(np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="x has 4 features per sample.*n_in=3"):
        m.forward(np.ones((2, 4), np.float32))
