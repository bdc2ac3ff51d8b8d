"""A tiny centered-difference helper for the layer tests (the public tool is nl.gradcheck)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numgrad(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """dF/dx by centered differences, perturbing ``x`` in place (restored afterwards)."""
    g = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """Largest elementwise |a − n| / max(|a|, |n|), the notes' measure.

    The denominator is floored at 1e-3 of the array's largest magnitude: a centered
    difference carries ~1e-10 of absolute rounding noise (machine eps · |L| / h), so an entry
    1000× smaller than its neighbours (or exactly 0) cannot be resolved to 1e-7 relative.
    """
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    scale = max(np.abs(a).max(), np.abs(n).max())
    if scale == 0.0:
        return 0.0
    denom = np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-3 * scale)
    return float((np.abs(a - n) / denom).max())


def check_layer(
    layer, x: np.ndarray, *, training: bool = True, seed: int = 1, reset=None
) -> dict[str, float]:
    """Relative errors of dx and of every parameter gradient for ``L = sum(R * layer(x))``.

    ``reset`` (optional) is called before every forward, e.g. to rewind a dropout RNG so
    every evaluation uses the same mask.
    """
    reset = reset or (lambda: None)
    reset()
    out = layer.forward(x, training=training)
    r = np.random.default_rng(seed).standard_normal(out.shape)

    def loss() -> float:
        reset()
        return float(np.sum(r * layer.forward(x, training=training)))

    layer.zero_grad()
    reset()
    layer.forward(x, training=training)
    dx = layer.backward(r.copy())
    analytic = {k: g.copy() for k, g in layer.grads.items()}
    errors = {"x": rel_error(dx, numgrad(loss, x))}
    for k, p in layer.params.items():
        errors[k] = rel_error(analytic[k], numgrad(loss, p))
    return errors
