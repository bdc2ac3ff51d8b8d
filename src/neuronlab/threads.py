"""The BLAS thread policy: matrix products too small to gain from threads run on one.

A threaded BLAS (OpenBLAS, MKL) splits a product over its threads, and the threads wait for
work by spinning. On an idle machine a thread pays once a product is large enough; on a busy
machine, the normal case, the threads spin against other processes and a small product takes
many times its work: the digits MLP (64-256-10, batch 32) took 1.6 s to train with 2 OpenBLAS
threads beside other work and 0.51 s with one.

:func:`blas_threads` decides how many threads a model's products get, from the largest one
(``2·rows·n_in·n_out`` flops, float64 counted twice: its products run at half float32's
rate): one thread below :data:`SMALL_GEMM_FLOPS`, otherwise BLAS as it is. A number given by
the user (``Trainer(threads=...)``, ``neuronlab train --threads``) always wins.
:func:`limit_blas` applies the decision to a block of code through threadpoolctl and restores
the previous limits when it ends.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from neuronlab._validation import check_positive_int

__all__ = ["SMALL_GEMM_FLOPS", "blas_threads", "check_threads", "largest_gemm_flops", "limit_blas"]

#: Products below this many float32 flops run on one BLAS thread. Measured on the benchmark
#: machine (2 cores, OpenBLAS 0.3.31; ``benchmarks/blas_threads.py``, numbers in
#: benchmarks/NOTES.md): a dense step's three GEMMs at 2 threads take 0.8-1.0× the one-thread
#: time up to 8 MFLOP per GEMM (on an idle machine a second core gains at most 1.25× there)
#: and 0.55-0.75× from 17 MFLOP on; beside two busy processes the two-thread medians reach
#: 2-6× the one-thread time, small products included. float64 runs at half float32's rate,
#: so its flops count twice.
SMALL_GEMM_FLOPS = 1e7


def check_threads(threads: Any) -> int | None:
    """``threads`` as given to the Trainer: None (the policy) or an integer > 0."""
    return None if threads is None else check_positive_int("threads", threads)


def largest_gemm_flops(model: Any, rows: int) -> float:
    """Float32-equivalent flops of the largest product of ``model`` on ``rows`` rows:
    ``2·rows·W.size`` for its largest weight array W (a Linear's n_in·n_out; a Maxout's
    n_in·n_out·pieces), doubled for float64. A model without weight arrays gives 0."""
    params = model.params
    keys = getattr(model, "weight_keys", None)
    if keys is None:  # any model: its arrays of two or more axes
        keys = [k for k, v in params.items() if v.ndim >= 2]
    best = 0.0
    for key in keys:
        w = params[key]
        best = max(best, 2.0 * rows * w.size * max(w.dtype.itemsize / 4, 1.0))
    return best


def blas_threads(model: Any, rows: int, threads: int | None = None) -> int | None:
    """The BLAS thread limit for running ``model`` on batches of ``rows`` rows: ``threads``
    when given; otherwise 1 when its largest product is below :data:`SMALL_GEMM_FLOPS`,
    else None (leave BLAS as it is)."""
    if threads is not None:
        return threads
    return 1 if largest_gemm_flops(model, rows) < SMALL_GEMM_FLOPS else None


# BLAS limits are process-wide, and fits may overlap in threads (the playground trains one
# model per tab). One block at a time owns the limit: the first to start sets it and restores
# the previous limits when it ends; a block that starts meanwhile (nested, or in another
# thread) changes nothing and restores nothing, so no order of ending leaves a limit behind.
# (threadpoolctl also lets only one thread at a time change OpenBLAS's pthreads pool.)
_lock = threading.Lock()
_owned = [False]
# threadpoolctl's handles on the loaded BLAS libraries, and len(sys.modules) when they were
# found: finding them scans the process's libraries (~1 ms with NumPy, SciPy and numba
# loaded, a twentieth of a small network's one-epoch fit), so it is done again only after
# new imports, which may have loaded another BLAS (SciPy's)
_found: list[Any] = [None, -1]


def _blas_libraries() -> Any:
    """The process's ``threadpoolctl.ThreadpoolController``, found again after imports."""
    if _found[1] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        n = len(sys.modules)  # before the scan: an import meanwhile (a thread) scans again
        _found[0] = ThreadpoolController()
        _found[1] = n
    return _found[0]


@contextmanager
def limit_blas(threads: int | None) -> Iterator[None]:
    """Run the block with at most ``threads`` threads in every loaded BLAS (NumPy's, SciPy's;
    threadpoolctl), restoring the previous limits after it; None changes nothing.

    While one block holds a limit, another (nested, or in another thread) runs under it and
    changes nothing; the previous limits come back when the first block ends.
    """
    if threads is None:
        yield
        return
    with _lock:
        owner, _owned[0] = not _owned[0], True
    if not owner:
        yield
        return
    try:
        with _blas_libraries().limit(limits=threads, user_api="blas"):
            yield
    finally:
        with _lock:
            _owned[0] = False
