"""Every update rule reduces a convex quadratic and the Rosenbrock function.

Thresholds (float64, fixed start, fixed step counts):
- quadratic f(w) = 1/2 w^T A w, A = [[3, 1], [1, 2]] (eigenvalues ~1.38 and ~3.62), from
  w = (1, 1) where f = 3.5: f < 1e-6 after 200 steps (the slowest rule reaches ~3e-9).
- Rosenbrock f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 from the classic (-1.2, 1) where
  f = 24.2: f < 0.05 and distance to the minimum (1, 1) < 0.35 after 3000 steps (the
  slowest rules, plain and momentum SGD, end near f ~ 0.025, distance ~ 0.3).
"""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl

A = np.array([[3.0, 1.0], [1.0, 2.0]])


def quadratic(w: np.ndarray) -> tuple[float, np.ndarray]:
    return 0.5 * float(w @ A @ w), A @ w


def rosenbrock(w: np.ndarray) -> tuple[float, np.ndarray]:
    x, y = w
    r = y - x * x
    return (1 - x) ** 2 + 100 * r * r, np.array([-2 * (1 - x) - 400 * x * r, 200 * r])


QUAD = {
    "sgd": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.9),
    "adagrad": dict(lr=0.5),
    "rmsprop": dict(lr=0.01, decay=0.9),
    "adam": dict(lr=0.05),
    "adamw": dict(lr=0.05, weight_decay=1e-3),
}
# Rosenbrock's valley has curvature ~ 1000 across it, so the plain rules need small steps
ROSEN = {
    "sgd": dict(lr=1e-3),
    "momentum": dict(lr=1e-4, momentum=0.9),
    "nesterov": dict(lr=1e-4, momentum=0.9),
    "adagrad": dict(lr=0.5),
    "rmsprop": dict(lr=1e-3, decay=0.9),
    "adam": dict(lr=0.02),
    "adamw": dict(lr=0.02, weight_decay=1e-4),
}


def minimise(opt, fn, w0, steps):
    w = np.array(w0, dtype=np.float64)
    g = np.zeros_like(w)
    for _ in range(steps):
        _, g[...] = fn(w)
        opt.step({"w": w}, {"w": g})
    return w


@pytest.mark.parametrize("fn", [quadratic, rosenbrock])
def test_objective_gradients_match_finite_differences(fn):
    # the test objectives' own gradients, checked by centered differences in float64
    rng = np.random.default_rng(1)
    for _ in range(5):
        w = rng.uniform(-1.5, 1.5, size=2)
        _, g = fn(w)
        h = 1e-6
        num = np.array([(fn(w + h * e)[0] - fn(w - h * e)[0]) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(QUAD))
def test_reduces_quadratic(name):
    w = minimise(nl.get_optimizer(name, **QUAD[name]), quadratic, [1.0, 1.0], 200)
    assert quadratic(w)[0] < 1e-6


@pytest.mark.parametrize("name", sorted(ROSEN))
def test_reduces_rosenbrock(name):
    w = minimise(nl.get_optimizer(name, **ROSEN[name]), rosenbrock, [-1.2, 1.0], 3000)
    assert rosenbrock(w)[0] < 0.05
    assert np.linalg.norm(w - 1.0) < 0.35
