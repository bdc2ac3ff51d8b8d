"""Where BLAS threads start to pay: the three GEMMs of a dense layer step (forward, dW, dX)
at one thread and at all of them, for products from 0.5 to 800 MFLOP.

Usage::

    python benchmarks/blas_threads.py            # idle, then with 2 busy processes
    python benchmarks/blas_threads.py --dtype float64 --reps 9

Interleaved repetitions (threadpoolctl switches the threads between them); the table gives
each time's best and median and the ratio threaded / one thread. ``neuronlab.threads``'s
threshold ``SMALL_GEMM_FLOPS`` comes from these tables (benchmarks/NOTES.md has the numbers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import busy

#: (rows, n_in, n_out): the digits MLP at batch 32 (1 MFLOP) up to CIFAR's first layer at 256
SHAPES = [(32, 64, 128), (32, 64, 256), (128, 64, 256), (32, 256, 256), (256, 64, 256),
          (32, 512, 512), (64, 512, 512), (128, 512, 512), (32, 3072, 512), (256, 512, 512),
          (64, 3072, 512), (256, 3072, 512)]


def _gemms(x, w, dout, out, dw, dx) -> None:  # type: ignore[no-untyped-def]
    np.matmul(x, w, out=out)
    np.matmul(x.T, dout, out=dw)
    np.matmul(dout, w.T, out=dx)


def measure(shape: tuple[int, int, int], dtype: type, threads: int, reps: int
            ) -> dict[int, list[float]]:
    """Seconds of one dense step's three GEMMs at 1 and ``threads`` BLAS threads, ``reps``
    interleaved samples of each (every sample the mean over ~0.1 GFLOP of calls)."""
    rows, n_in, n_out = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, n_in)).astype(dtype)
    w = rng.standard_normal((n_in, n_out)).astype(dtype)
    dout = rng.standard_normal((rows, n_out)).astype(dtype)
    arrays = (x, w, dout, np.empty((rows, n_out), dtype), np.empty_like(w), np.empty_like(x))
    inner = max(1, int(1e8 / (6 * rows * n_in * n_out)))
    out: dict[int, list[float]] = {1: [], threads: []}
    for r in range(reps):
        for th in (1, threads) if r % 2 else (threads, 1):
            with threadpool_limits(th, user_api="blas"):
                _gemms(*arrays)
                t = time.perf_counter()
                for _ in range(inner):
                    _gemms(*arrays)
                out[th].append((time.perf_counter() - t) / inner)
    return out


def table(dtype: type, threads: int, reps: int) -> None:
    print(f"| product (rows×in×out) | MFLOP per GEMM | 1 thread µs (best / median) | "
          f"{threads} threads µs (best / median) | {threads} / 1 (median) |")
    print("|---|---:|---:|---:|---:|")
    for shape in SHAPES:
        t = measure(shape, dtype, threads, reps)
        one, many = t[1], t[threads]
        ratio = statistics.median(many) / statistics.median(one)
        print(f"| {'×'.join(map(str, shape))} | {2 * np.prod(shape) / 1e6:.2f} | "
              f"{min(one) * 1e6:,.0f} / {statistics.median(one) * 1e6:,.0f} | "
              f"{min(many) * 1e6:,.0f} / {statistics.median(many) * 1e6:,.0f} | {ratio:.2f} |",
              flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--busy", type=int, default=2, help="busy processes for the second table")
    args = parser.parse_args(argv)
    from machine import blas_threads

    threads = blas_threads() or os.cpu_count() or 1
    dtype = np.dtype(args.dtype).type
    print(f"{args.dtype}, BLAS {threads} threads, load average {os.getloadavg()}")
    print("\nidle (other users' work aside):\n")
    table(dtype, threads, args.reps)
    if args.busy:
        print(f"\nwith {args.busy} busy processes:\n")
        with busy(args.busy):
            table(dtype, threads, args.reps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
