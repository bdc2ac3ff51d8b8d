"""L-BFGS through scipy: full batch, over the flattened parameter dicts."""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl

A = np.array([[3.0, 1.0], [1.0, 2.0]])


def test_finds_the_quadratic_minimum():
    # f(w) = 1/2 w^T A w - b^T w has its minimum at A^{-1} b = [1, 0] for b = [3, 1]
    b = np.array([3.0, 1.0])
    p = {"w": np.array([5.0, -4.0])}
    g = {"w": np.zeros(2)}

    def fun():
        w = p["w"]
        g["w"] += A @ w - b
        return 0.5 * w @ A @ w - b @ w

    res = nl.LBFGS().minimize(fun, p, g)
    assert res.success
    np.testing.assert_allclose(p["w"], [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(res.fun, -1.5, atol=1e-10)  # 1/2*3 - 3 = -1.5
    np.testing.assert_allclose(g["w"], A @ p["w"] - b, rtol=1e-12)  # grads match final params


def test_finds_the_rosenbrock_minimum():
    p = {"x": np.array([-1.2]), "y": np.array([1.0])}
    g = {"x": np.zeros(1), "y": np.zeros(1)}
    calls = []

    def fun():
        x, y = p["x"][0], p["y"][0]
        r = y - x * x
        # += checks that the optimizer zeroes grads before each call (layers accumulate)
        g["x"] += -2 * (1 - x) - 400 * x * r
        g["y"] += 200 * r
        calls.append(1)
        return (1 - x) ** 2 + 100 * r * r

    opt = nl.LBFGS(max_iter=200)
    res = opt.minimize(fun, p, g)
    np.testing.assert_allclose([p["x"][0], p["y"][0]], [1.0, 1.0], atol=1e-5)
    assert res.fun < 1e-10
    assert opt.t == res.nit > 0 and opt.result_ is res
    assert len(calls) < 400


def test_least_squares_over_several_arrays(rng):
    # linear model y = x W + b over a 2-D and a 1-D parameter: the flattening/unflattening
    # must match np.linalg.lstsq on [x, 1]
    x = rng.standard_normal((40, 3))
    y = rng.standard_normal((40, 2))
    p = {"0.W": np.zeros((3, 2)), "0.b": np.zeros(2)}
    g = {k: np.zeros_like(v) for k, v in p.items()}

    def fun():
        r = x @ p["0.W"] + p["0.b"] - y
        g["0.W"] += x.T @ r / len(x)
        g["0.b"] += r.sum(0) / len(x)
        return 0.5 * float((r * r).sum()) / len(x)

    nl.LBFGS(tol=1e-12).minimize(fun, p, g)
    coef, *_ = np.linalg.lstsq(np.hstack([x, np.ones((40, 1))]), y, rcond=None)
    np.testing.assert_allclose(p["0.W"], coef[:3], atol=1e-6)
    np.testing.assert_allclose(p["0.b"], coef[3], atol=1e-6)


def test_step_is_refused_and_max_iter_is_honoured():
    opt = nl.LBFGS(max_iter=3)
    with pytest.raises(NotImplementedError, match="minimize"):
        opt.step({"w": np.zeros(1)}, {"w": np.zeros(1)})
    p = {"x": np.array([-1.2]), "y": np.array([1.0])}
    g = {"x": np.zeros(1), "y": np.zeros(1)}

    def fun():
        x, y = p["x"][0], p["y"][0]
        g["x"] += -2 * (1 - x) - 400 * x * (y - x * x)
        g["y"] += 200 * (y - x * x)
        return (1 - x) ** 2 + 100 * (y - x * x) ** 2

    res = opt.minimize(fun, p, g)
    assert res.nit <= 3 and not res.success


def test_bad_arguments_and_config():
    opt = nl.LBFGS(max_iter=7, history=4, tol=1e-6)
    cfg = {"max_iter": 7, "history": 4, "tol": 1e-6}
    assert opt.get_config() == cfg and nl.LBFGS.from_config(cfg).get_config() == cfg
    with pytest.raises(TypeError, match="fun must be callable"):
        opt.minimize(3.0, {"w": np.zeros(1)}, {"w": np.zeros(1)})
    with pytest.raises(ValueError, match="same keys"):
        opt.minimize(lambda: 0.0, {"w": np.zeros(1)}, {"v": np.zeros(1)})
    with pytest.raises(ValueError, match="has shape"):
        opt.minimize(lambda: 0.0, {"w": np.zeros(1)}, {"w": np.zeros(2)})
