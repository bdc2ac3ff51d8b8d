"""Work on a session's model from a request, without racing its training thread.

A layer caches its forward input for backward, so a request that ran the model while the
training thread was between its forward and backward would corrupt that step. Requests
therefore hand a function to the thread's :class:`JobQueue`; the thread runs it between two
steps (after ``on_batch_end``) or while it waits for play, where the model is quiet. When
the thread has ended (finished, diverged, reset), the request runs the function itself,
under the queue's lock so that two requests never interleave either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["JobQueue", "JobTimeout"]

T = TypeVar("T")


class JobTimeout(RuntimeError):
    """The training thread did not reach a quiet point in time."""


class _Job(Generic[T]):
    def __init__(self, fn: Callable[[Any], T]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self, target: Any) -> None:
        try:
            self.result = self.fn(target)
        except Exception as err:  # noqa: BLE001  handed back to the request that asked
            self.error = err
        finally:
            self.done.set()


class JobQueue:
    """Functions waiting for the training thread of one run (see the module docstring).

    Parameters
    ----------
    cond : threading.Condition
        The session's condition, which the thread waits on while paused: a new job
        notifies it.
    target : object
        What each job receives (the settings, data and trainer of this thread); may be set
        later, before the thread starts.
    """

    def __init__(self, cond: threading.Condition, target: Any = None) -> None:
        self._cond = cond
        self.target = target
        self._jobs: list[_Job[Any]] = []
        self._closed = False
        self._direct = threading.Lock()  # jobs run by requests once the thread has ended

    @property
    def pending(self) -> bool:
        return bool(self._jobs)

    def call(self, fn: Callable[[Any], T], timeout: float = 30.0) -> T:
        """Run ``fn(run)`` where the model is quiet and return its result (its exception is
        raised here). Raises :class:`JobTimeout` after ``timeout`` seconds."""
        job: _Job[T] = _Job(fn)
        with self._cond:
            queued = not self._closed
            if queued:
                self._jobs.append(job)
                self._cond.notify_all()
        if not queued:
            with self._direct:
                job.run(self.target)
        if not job.done.wait(timeout):
            raise JobTimeout("the training thread is busy; try again")
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]  # set by run() when error is None

    def run_pending(self) -> None:
        """Called by the training thread at a quiet point: run every waiting job."""
        if not self._jobs:  # a read without the lock: a job added meanwhile waits one step
            return
        with self._cond:
            jobs, self._jobs = self._jobs, []
        for job in jobs:
            job.run(self.target)

    def close(self) -> None:
        """The thread is ending: run what waits, and let later requests run their own."""
        with self._cond:
            self._closed = True
            jobs, self._jobs = self._jobs, []
        with self._direct:
            for job in jobs:
                job.run(self.target)
