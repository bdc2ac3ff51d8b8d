"""The machine's ceiling for an MLP: how fast its GEMMs alone can run.

A dense layer's training step is three matrix products: forward ``x @ W`` (B·n_in·n_out
multiply-adds, 2·MACs flops), the weight gradient ``x.T @ dout`` (2·MACs) and the input
gradient ``dout @ W.T`` (2·MACs; the input layer needs none). Everything else a step does is
O(batch × width) or O(parameters) and, done well, small beside them. We time each product at
its real shape with ``np.matmul(..., out=...)`` (best of several tries: the least disturbed
run is the closest to what the hardware can do) and add the best times: ``batch / sum`` is the
samples/s a training loop would reach if it did nothing but its GEMMs.

:func:`gemm_loop_epoch` is the same products run back to back in one compiled loop, as a step
runs them (numba's ``np.dot``, the BLAS the compiled engine calls), timed as a contender
beside the others: what a trainer with no work but its GEMMs would reach at that moment.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

__all__ = ["Ceiling", "best_ceiling", "gemm_ceiling", "gemm_loop_epoch", "time_gemm"]


def time_gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray, *, tries: int = 7,
              min_time: float = 0.02) -> float:
    """Best seconds for one ``np.matmul(a, b, out=out)`` over ``tries`` timed loops, each
    repeating the product long enough (``min_time``) for the clock's resolution not to matter."""
    np.matmul(a, b, out=out)  # warm: first call pays for BLAS thread start-up and page faults
    t0 = time.perf_counter()
    np.matmul(a, b, out=out)
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(min_time / one))
    best = float("inf")
    for _ in range(tries):
        t0 = time.perf_counter()
        for _ in range(inner):
            np.matmul(a, b, out=out)
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


@dataclass(frozen=True)
class Ceiling:
    """GEMM-only throughput of a network at one batch size."""

    sizes: tuple[int, ...]
    batch: int
    train_seconds: float  # best time of one step's GEMMs (forward, dW, dX except layer 0)
    infer_seconds: float  # best time of the forward GEMMs
    train_flops: float  # per step
    peak_gflops: float  # the fastest single product seen, in GFLOP/s

    @property
    def train_rate(self) -> float:
        """Samples/s of training if a step cost only its GEMMs."""
        return self.batch / self.train_seconds

    @property
    def infer_rate(self) -> float:
        """Samples/s of inference if a forward pass cost only its GEMMs."""
        return self.batch / self.infer_seconds

    @property
    def train_gflops(self) -> float:
        return self.train_flops / self.train_seconds / 1e9


def gemm_ceiling(sizes: Sequence[int], batch: int, *, infer_batch: int = 1024,
                 tries: int = 7, seed: int = 0) -> Ceiling:
    """Time every GEMM of one training step of ``sizes`` at ``batch`` (and the forward GEMMs
    at ``infer_batch``) in float32."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    train = infer = flops = 0.0
    peak = 0.0
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        x = rng.standard_normal((batch, n_in), dtype=f32)
        w = rng.standard_normal((n_in, n_out), dtype=f32)
        d = rng.standard_normal((batch, n_out), dtype=f32)
        macs = batch * n_in * n_out
        products = [(x, w, np.empty((batch, n_out), f32)),  # forward
                    (x.T, d, np.empty((n_in, n_out), f32))]  # dW = x.T @ dout
        if i > 0:
            products.append((d, w.T, np.empty((batch, n_in), f32)))  # dX = dout @ W.T
        for a, b, out in products:
            t = time_gemm(a, b, out, tries=tries)
            train += t
            flops += 2.0 * macs
            peak = max(peak, 2.0 * macs / t / 1e9)
        xi = rng.standard_normal((infer_batch, n_in), dtype=f32)
        t = time_gemm(xi, w, np.empty((infer_batch, n_out), f32), tries=tries)
        infer += t * batch / infer_batch  # per `batch` samples, so both rates use one batch
        peak = max(peak, 2.0 * infer_batch * n_in * n_out / t / 1e9)
    return Ceiling(tuple(sizes), batch, train, infer, flops, peak)


def best_ceiling(a: Ceiling, b: Ceiling) -> Ceiling:
    """The faster of two measurements of the same network, training and inference apart
    (a busy moment can only slow a measurement down, never speed it up)."""
    return Ceiling(a.sizes, a.batch, min(a.train_seconds, b.train_seconds),
                   min(a.infer_seconds, b.infer_seconds), a.train_flops,
                   max(a.peak_gflops, b.peak_gflops))


_GEMM_LOOP: object = None


def gemm_loop_epoch(sizes: Sequence[int], batch: int, n_rows: int, *,
                    seed: int = 0) -> object:
    """A zero-argument callable that runs ``ceil(n_rows / batch)`` steps of nothing but the
    step's float32 GEMMs, in a numba loop in the order a step runs them (forward, then per
    layer from the top dW and dX), and returns ``n_rows``; None without numba."""
    global _GEMM_LOOP
    try:
        import numba
    except ImportError:
        return None
    if _GEMM_LOOP is None:
        @numba.njit(nogil=True)
        def loop(xs, ws, ds, gs, steps):  # xs[i]: layer i's input, ds[i]: dL/d(output i)
            for _ in range(steps):
                for i in range(len(ws)):
                    np.dot(xs[i], ws[i], ds[i])  # forward (into a buffer of the output's shape)
                for i in range(len(ws) - 1, -1, -1):
                    np.dot(xs[i].T, ds[i], gs[i])
                    if i > 0:
                        np.dot(ds[i], ws[i].T, xs[i])  # dX, written over the layer's input
        _GEMM_LOOP = loop
    rng = np.random.default_rng(seed)
    f32 = np.float32
    xs = numba.typed.List([rng.standard_normal((batch, a), dtype=f32) for a in sizes[:-1]])
    ws = numba.typed.List([rng.standard_normal((a, b), dtype=f32) * f32(0.01)
                           for a, b in pairwise(sizes)])
    ds = numba.typed.List([rng.standard_normal((batch, b), dtype=f32) for b in sizes[1:]])
    gs = numba.typed.List([np.empty_like(w) for w in ws])
    steps = -(-n_rows // batch)
    loop = _GEMM_LOOP
    loop(xs, ws, ds, gs, 1)  # compile and warm

    def run() -> int:
        loop(xs, ws, ds, gs, steps)
        return n_rows

    return run
