"""Busy processes for measurements under load: ``with busy(2): ...`` runs two CPU-bound
Python loops beside the code measured (a shared machine where other work runs), and stops
them when the block ends."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["busy"]


@contextmanager
def busy(n: int) -> Iterator[None]:
    """Run ``n`` processes of ``while True: pass`` for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                              stdin=subprocess.DEVNULL) for _ in range(n)]
    try:
        time.sleep(0.2)  # started and spinning before the first measurement
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
