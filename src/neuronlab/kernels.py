"""Compiled one-pass kernels (optional: ``pip install 'neuronlab[fast]'``, numba).

NumPy runs a formula as a sequence of whole-array operations, each one a pass over memory:
Adam's update makes twelve, a Linear layer's bias add and the ReLU after it two. A kernel here
is the same formula as one loop that reads every element once and writes it once.

* Update rules. Each elementwise optimizer's ``_update`` (the 1.8M-parameter CIFAR MLP: Adam
  3.7 → 1.0 ms, momentum 1.7 → 0.8 ms per step on the benchmark machine). A rule kernel takes
  the 1-D contiguous arrays ``w, g, *slots`` (in the rule's ``slots`` order) followed by the
  scalars of the rule's ``_kernel_scalars``, already in the arrays' dtype.
* ``bias_relu``: ``max(h + b, 0)`` in place, which ``Sequential.forward`` uses for a Linear
  layer followed by a ReLU (``Linear.forward_relu``).
* The weight penalties (:mod:`neuronlab.regularizers`): ``add_scaled`` and
  ``add_scaled_sign``, the L2 and L1 gradients ``g += a * w`` and ``g += a * sign(w)`` in
  place, one pass each where the NumPy code makes two through a scratch array; and
  ``sum_squares``, Σ w² for the L2 penalty (a sum: equal to NumPy's within rounding, not bit
  for bit). They replace BLAS ``axpy`` and ``dot``: a level-1 BLAS call on a few thousand
  weights wakes threaded OpenBLAS, whose threads spin against other processes on a busy
  machine (9 ms a call on digits, for 10 µs of work).

The arithmetic is NumPy's, operation for operation, in the arrays' dtype, and the compiler
is not allowed to reorder or fuse it (no fast-math), so the results are bit-identical to the
NumPy code (tested for every rule, both dtypes); ``sum_squares``, a reduction, is the one
exception. The kernels are used when numba is installed
and ``NEURONLAB_KERNELS`` is not ``0``; otherwise the NumPy code runs. They are compiled on
first use and cached on disk by numba.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ENABLED", "available", "describe", "get", "source"]

#: Set ``NEURONLAB_KERNELS=0`` (or this to False) to run the NumPy code only.
ENABLED = os.environ.get("NEURONLAB_KERNELS", "1").strip() not in ("0", "false", "no", "off")


def sgd(w, g, lr):  # type: ignore[no-untyped-def]
    for i in range(w.size):
        w[i] -= g[i] * lr


def momentum(w, g, v, lr, mu):  # type: ignore[no-untyped-def]
    for i in range(w.size):
        vi = v[i] * mu - g[i] * lr
        v[i] = vi
        w[i] += vi


def nesterov(w, g, v, lr, mu):  # type: ignore[no-untyped-def]
    for i in range(w.size):
        step = g[i] * lr
        vi = v[i] * mu - step
        v[i] = vi
        w[i] = (w[i] - step) + vi * mu


def adagrad(w, g, cache, lr, eps):  # type: ignore[no-untyped-def]
    for i in range(w.size):
        gi = g[i]
        ci = cache[i] + gi * gi
        cache[i] = ci
        w[i] -= gi / (np.sqrt(ci) + eps) * lr


def rmsprop(w, g, cache, lr, decay, rest, eps):  # type: ignore[no-untyped-def]
    for i in range(w.size):
        gi = g[i]
        ci = cache[i] * decay + gi * gi * rest
        cache[i] = ci
        w[i] -= gi / (np.sqrt(ci) + eps) * lr


def adam(w, g, m, v, b1, c1, b2, c2, eps, step):  # type: ignore[no-untyped-def]
    for i in range(w.size):
        gi = g[i]
        mi = m[i] * b1 + gi * c1
        m[i] = mi
        vi = v[i] * b2 + gi * gi * c2
        v[i] = vi
        w[i] -= mi / (np.sqrt(vi) + eps) * step


def bias_relu(h, b):  # type: ignore[no-untyped-def]
    n, k = h.shape
    for i in range(n):
        for j in range(k):
            v = h[i, j] + b[j]
            # np.maximum(v, 0): NaN stays NaN, -0 and 0 become 0
            h[i, j] = v if v > 0 or v != v else 0


def sum_squares(w):  # type: ignore[no-untyped-def]
    # Σ w² as 16 partial sums in w's dtype (a vector register's lanes: one running sum would
    # wait on each addition), then added in float64. NumPy's einsum also sums in the dtype,
    # in another order: the two agree within rounding, not bit for bit
    n = w.size
    m = n - n % 16
    acc = np.zeros(16, w.dtype)
    for i in range(0, m, 16):
        for j in range(16):
            v = w[i + j]
            acc[j] += v * v
    s = 0.0
    for j in range(16):
        s += acc[j]
    for i in range(m, n):
        v = w[i]
        s += v * v
    return s


def add_scaled(w, g, a):  # type: ignore[no-untyped-def]
    # g += a * w, as np.multiply(w, a, out=buf); g += buf (the L2 gradient)
    for i in range(w.size):
        g[i] += w[i] * a


def add_scaled_sign(w, g, a):  # type: ignore[no-untyped-def]
    # g += a * sign(w), as np.sign(w, out=buf); buf *= a; g += buf (the L1 subgradient):
    # np.sign's 0 for ±0 and NaN for NaN, in w's dtype
    for i in range(w.size):
        g[i] += np.sign(w[i]) * a


_SOURCES: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (sgd, momentum, nesterov, adagrad, rmsprop, adam, bias_relu, sum_squares,
              add_scaled, add_scaled_sign)
}
_compiled: dict[str, Any] = {}
_numba: Any = None  # the module once imported; False when it is not installed


def available() -> bool:
    """True when numba can be imported (whether or not ``ENABLED``)."""
    global _numba
    if _numba is None:
        try:
            import numba
        except ImportError:
            _numba = False
        else:
            _numba = numba
    return _numba is not False


def describe() -> str:
    """What runs the updates, the bias + ReLU and the penalty gradients, in a few words
    (``neuronlab --version``)."""
    if not available():
        return "NumPy code (numba not installed: pip install 'neuronlab[fast]' to compile kernels)"
    if not ENABLED:
        return "NumPy code (compiled kernels off: NEURONLAB_KERNELS=0)"
    return f"compiled kernels (numba {_numba.__version__})"


def source(name: str) -> Callable[..., Any]:
    """The plain Python function of kernel ``name`` (what :func:`get` compiles; the compiled
    training loop, :mod:`neuronlab.engine`, compiles it into its own module).

    Parameters
    ----------
    name : str
        One of this module's kernels (``"momentum"``, ``"sum_squares"``, ...).

    Returns
    -------
    callable
    """
    return _SOURCES[name]


def get(name: str | None) -> Callable[..., Any] | None:
    """The compiled kernel ``name`` (one of this module's functions), or None when kernels are
    off, numba is missing or ``name`` is None."""
    if name is None or not ENABLED:
        return None
    fn = _compiled.get(name)
    if fn is None:
        if not available():
            return None
        source = _SOURCES[name]
        jit = _numba.njit
        try:  # error_model="numpy": a division is a plain IEEE division, so the loop vectorises
            fn = jit(cache=True, nogil=True, error_model="numpy")(source)
        except RuntimeError:  # no writable cache location: compile in every process
            fn = jit(nogil=True, error_model="numpy")(source)
        _compiled[name] = fn
    return fn
