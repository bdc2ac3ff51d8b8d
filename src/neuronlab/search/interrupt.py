"""Stopping a search with Ctrl-C or SIGTERM at a point of its choosing.

Inside :func:`deferred_stop` the two signals (where their handlers are still Python's
defaults) only record that they came; the search loop checks between steps and raises
:class:`SearchInterrupted` there, so no trial is left half-asked or half-told. A second signal
raises ``KeyboardInterrupt`` at once, for a loop that does not get to its next check.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["SearchInterrupted", "deferred_stop"]


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the search (``signum`` says which); its trials in flight were
    recorded as interrupted, and a rerun of the same search runs them again.

    Parameters
    ----------
    signum : int
        The signal received (``signal.SIGINT`` or ``signal.SIGTERM``); its name is the
        message.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def deferred_stop() -> Iterator[list[int]]:
    """Yield the list the signals received meanwhile are appended to (nothing is changed
    outside the main thread, or for a signal whose handler the application has set)."""
    received: list[int] = []

    def record(signum: int, _frame: object) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
            if signal.getsignal(signum) is default:
                previous[signum] = signal.signal(signum, record)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
