"""Child processes that end with their parent, however the parent ends.

On Linux the kernel SIGKILLs the child when the thread that forked or spawned it exits
(``PR_SET_PDEATHSIG``); elsewhere a thread in the child sees its parent change and exits.
Used by the search's worker processes and by the report's drawing processes. The one
process of neuronlab that outlives its parent on purpose is the report a default
``neuronlab train`` leaves drawing in the background: a bounded job with a time limit
(``report.write_in_background``), which does not call this.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """Make this (child) process end when the process ``parent`` ends.

    Parameters
    ----------
    parent : int
        The parent's pid, read by the parent before it started this process (if it died
        before this call, this process exits now).
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    # the portable fallback: an orphan is adopted by another process
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
