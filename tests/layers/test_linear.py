import numpy as np
import pytest

import neuronlab as nl
from neuronlab.registry import LAYERS

from ._numgrad import check_layer


def _fixed_linear(dtype=np.float64):
    lin = nl.Linear(2, 3, dtype=dtype)
    lin.params["W"][...] = [[1, 0, -1], [2, 1, 0]]
    lin.params["b"][...] = [0.5, -1, 0]
    return lin


def test_registered():
    assert LAYERS.get("linear") is nl.Linear
    assert nl.Linear.registry_name == "linear"


def test_forward_golden():
    lin = _fixed_linear()
    # y = x W + b with x = [1, 2]: [1·1 + 2·2 + 0.5, 1·0 + 2·1 − 1, 1·(−1) + 2·0 + 0] = [5.5, 1, −1]
    y = lin.forward(np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(y, [[5.5, 1.0, -1.0]])


def test_backward_golden():
    lin = _fixed_linear()
    lin.forward(np.array([[1.0, 2.0]]))
    dx = lin.backward(np.array([[1.0, 1.0, 1.0]]))
    # dW = x.T dout = [[1],[2]] [1 1 1]; db = dout; dx = dout W.T = [1 + 0 − 1, 2 + 1 + 0]
    np.testing.assert_allclose(lin.grads["W"], [[1, 1, 1], [2, 2, 2]])
    np.testing.assert_allclose(lin.grads["b"], [1, 1, 1])
    np.testing.assert_allclose(dx, [[0.0, 3.0]])


def test_gradcheck_float64(rng):
    lin = nl.Linear(6, 4, rng=0, dtype=np.float64)
    lin.params["b"][...] = rng.standard_normal(4)
    x = rng.standard_normal((5, 2, 3))  # flattened row-major to (5, 6)
    errors = check_layer(lin, x)
    assert max(errors.values()) < 1e-7, errors


def test_no_bias_is_x_times_w_and_gradchecks(rng):
    lin = nl.Linear(6, 4, bias=None, rng=0, dtype=np.float64)
    assert set(lin.params) == {"W"} and lin.counts()["biases"] == 0
    x = rng.standard_normal((5, 6))
    np.testing.assert_array_equal(lin.forward(x), x @ lin.params["W"])
    errors = check_layer(lin, x)
    assert max(errors.values()) < 1e-7, errors
    again = nl.Linear.from_config(lin.get_config())
    assert again.bias is None and set(again.params) == {"W"}


def test_flattens_and_restores_input_shape(rng):
    lin = nl.Linear(6, 4, rng=0, dtype=np.float64)
    x = rng.standard_normal((5, 2, 3))
    y = lin.forward(x)
    np.testing.assert_allclose(y, x.reshape(5, 6) @ lin.params["W"] + lin.params["b"])
    assert lin.backward(np.ones((5, 4))).shape == (5, 2, 3)


def test_backward_accumulates(rng):
    lin = nl.Linear(3, 2, rng=0, dtype=np.float64)
    x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    lin.forward(x)
    lin.backward(dout)
    once = {k: g.copy() for k, g in lin.grads.items()}
    lin.backward(dout)
    for k, g in once.items():
        np.testing.assert_allclose(lin.grads[k], 2 * g)
    np.testing.assert_allclose(once["W"], x.T @ dout)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noncontiguous_input_matches_contiguous(rng, dtype):
    # The BLAS in-place path needs C-contiguous arrays; other inputs take the NumPy path.
    big = rng.standard_normal((4, 6)).astype(dtype)
    dout = rng.standard_normal((4, 2)).astype(dtype)
    a, b = nl.Linear(3, 2, rng=0, dtype=dtype), nl.Linear(3, 2, rng=0, dtype=dtype)
    a.forward(np.ascontiguousarray(big[:, ::2]))
    b.forward(big[:, ::2])
    dxa, dxb = a.backward(dout), b.backward(dout)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(a.grads["W"], b.grads["W"], rtol=tol)
    np.testing.assert_allclose(dxa, dxb, rtol=tol)


def test_input_grad_false_skips_dx_but_fills_grads(rng):
    lin = nl.Linear(3, 2, rng=0, dtype=np.float64)
    x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    lin.forward(x)
    assert lin.backward(dout, input_grad=False) is None
    np.testing.assert_allclose(lin.grads["W"], x.T @ dout)
    np.testing.assert_allclose(lin.grads["b"], dout.sum(axis=0))


def test_float32_and_float64_agree(rng):
    l32, l64 = nl.Linear(5, 3, rng=7), nl.Linear(5, 3, rng=7, dtype=np.float64)
    assert l32.params["W"].dtype == np.float32 and l64.params["W"].dtype == np.float64
    x = rng.standard_normal((8, 5))
    y32 = l32.forward(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, l64.forward(x), rtol=1e-5, atol=1e-6)
    dx32 = l32.backward(np.ones((8, 3), np.float32))
    assert dx32.dtype == np.float32 and l32.grads["W"].dtype == np.float32


def test_input_dtype_is_compute_dtype(rng):
    lin = nl.Linear(5, 3, rng=7)  # float32 params
    x = rng.standard_normal((2, 5))
    y = lin.forward(x)
    assert y.dtype == np.float64
    dx = lin.backward(np.ones((2, 3)))
    assert dx.dtype == np.float64 and lin.grads["W"].dtype == np.float32
    np.testing.assert_allclose(lin.grads["W"], x.T @ np.ones((2, 3)), rtol=1e-6)


def test_astype_converts_params_and_grads():
    lin = nl.Linear(3, 2, rng=0).astype(np.float64)
    assert all(v.dtype == np.float64 for v in (*lin.params.values(), *lin.grads.values()))
    assert lin.get_config()["dtype"] == "float64"


def test_init_and_bias_options():
    lin = nl.Linear(400, 300, init="he", bias=0.01, rng=0, dtype=np.float64)
    np.testing.assert_allclose(lin.params["b"], 0.01)
    # He: var 2/n_in = 0.005 over 120,000 draws (std of the sample variance ≈ 2e-5)
    assert abs(lin.params["W"].var() - 2 / 400) < 2e-4
    lecun = nl.Linear(400, 300, init="lecun", rng=0, dtype=np.float64)
    assert abs(lecun.params["W"].var() - 1 / 400) < 1e-4


def test_counts():
    c = nl.Linear(3, 4).counts()
    assert c == {"neurons": 4, "weights": 12, "biases": 4, "params": 16}


def test_config_round_trip():
    lin = nl.Linear(3, 2, init="glorot", bias=0.1, rng=5, dtype=np.float64)
    cfg = lin.get_config()
    assert cfg == {
        "n_in": 3,
        "n_out": 2,
        "init": "glorot",
        "bias": 0.1,
        "rng": 5,
        "dtype": "float64",
    }
    again = nl.Linear.from_config(cfg)
    assert again.get_config() == cfg
    np.testing.assert_array_equal(again.params["W"], lin.params["W"])  # same int seed


def test_config_without_seed_has_no_rng():
    assert "rng" not in nl.Linear(3, 2, rng=np.random.default_rng(0)).get_config()


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_in": 0, "n_out": 2}, ValueError, "n_in must be > 0, got 0"),
        ({"n_in": 3, "n_out": -1}, ValueError, "n_out must be > 0, got -1"),
        ({"n_in": 2.5, "n_out": 2}, TypeError, "n_in must be an integer"),
        ({"n_in": True, "n_out": 2}, TypeError, "n_in must be an integer"),
        ({"n_in": 3, "n_out": 2, "init": "bogus"}, ValueError, "unknown initializer 'bogus'.*he"),
        ({"n_in": 3, "n_out": 2, "bias": float("nan")}, ValueError, "bias must be finite"),
        ({"n_in": 3, "n_out": 2, "dtype": np.int32}, TypeError, "dtype must be float32 or float64"),
        ({"n_in": 3, "n_out": 2, "rng": "seed"}, TypeError, "rng must be"),
    ],
)
def test_bad_constructor_args(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nl.Linear(**kwargs)


def test_unknown_keyword_fails():
    with pytest.raises(TypeError):
        nl.Linear(3, 2, intt="he")


def test_bad_inputs():
    lin = nl.Linear(3, 2, rng=0)
    with pytest.raises(ValueError, match=r"x has 4 features per sample.*n_in=3"):
        lin.forward(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*shape \(3,\)"):
        lin.forward(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="dtype float32 or float64, got int64"):
        lin.forward(np.ones((2, 3), np.int64))
    with pytest.raises(TypeError, match="numpy ndarray, got list"):
        lin.forward([[1.0, 2.0, 3.0]])


def test_backward_before_forward():
    with pytest.raises(ValueError, match="Linear.backward called before forward"):
        nl.Linear(3, 2).backward(np.ones((1, 2), np.float32))


def test_backward_wrong_dout_shape():
    lin = nl.Linear(3, 2)
    lin.forward(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"dout must have shape \(4, 2\), got \(4, 3\)"):
        lin.backward(np.ones((4, 3), np.float32))


def test_nan_and_inf_rejected_by_sequential():
    model = nl.Sequential([nl.Linear(3, 2, rng=0)])
    for bad in (np.nan, np.inf):
        x = np.ones((2, 3), np.float32)
        x[1, 2] = bad
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            model.forward(x)
    with pytest.raises(ValueError, match="x has 5 features per sample, but the model expects 3"):
        model.forward(np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        model.forward(np.ones(3, np.float32))
