"""Local worker processes that die with their search and lose only their own task.

:class:`WorkerPool` is a ``concurrent.futures.Executor`` over ``workers`` spawned processes
(a fresh interpreter each: no inherited locks or threads), each running one task at a time
through its own pipe. A process that dies mid-task (killed, out of memory) fails that task's
future with :class:`WorkerLost` and is replaced before its next task, while the other tasks in
flight go on. (``ProcessPoolExecutor`` breaks as a whole instead: every in-flight future
fails, so every trial in flight would run again.)

A worker ends with its parent however the parent ends: on Linux the kernel SIGKILLs it
(``PR_SET_PDEATHSIG``), elsewhere a thread in the worker sees its parent change and exits.
Workers ignore SIGINT: Ctrl-C in a terminal reaches the whole process group, and the parent
decides what happens (it records the trials in flight as interrupted, then kills its workers).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from multiprocessing import connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

from neuronlab._children import die_with_parent

__all__ = ["WorkerLost", "WorkerPool"]

class WorkerLost(Exception):
    """The process running a task died before answering."""


def _serve(conn: Any, parent: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    """A worker's main loop: ``(fn, args, kwargs)`` in, ``(result, exception)`` out, until
    None or the end of the pipe."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            job = None
        if job is None:
            # Nothing of a worker's outlives its tasks (their results went to the parent):
            # it ends at once instead of tearing its interpreter down (numba, Optuna, ...:
            # most of a second, which the parent's shutdown would wait for).
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(0)
        fn, args, kwargs = job
        try:
            reply = (fn(*args, **kwargs), None)
        except Exception as e:  # noqa: BLE001 - handed to the parent through the future
            reply = (None, e)
        conn.send(reply)


class _Slot:
    """One worker process, its end of the pipe and the future of the task it runs."""

    def __init__(self) -> None:
        self.process: Any = None
        self.conn: Any = None
        self.future: Future | None = None


class WorkerPool(Executor):
    """``workers`` processes, one task each at a time; see the module docstring.

    Parameters
    ----------
    workers : int >= 1
    initializer : callable, optional
        Called with ``initargs`` in each new worker process.
    eager : bool
        Start the processes now (their start-up and ``initializer`` then run while the caller
        prepares its first tasks) instead of with their first task.
    """

    def __init__(self, workers: int, *, initializer: Callable[..., None] | None = None,
                 initargs: tuple = (), eager: bool = False) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._init = (initializer, initargs)
        self._eager = eager
        self._slots = [_Slot() for _ in range(workers)]  # processes start with their first task
        self._queue: deque[tuple[Future, bytes]] = deque()
        self._lock = threading.Lock()
        self._stop: str | None = None  # "finish" or "kill"
        self._wake, self._waker = self._ctx.Pipe(duplex=False)
        self._thread = threading.Thread(target=self._run, name="neuronlab-workers", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        payload = bytes(ForkingPickler.dumps((fn, args, kwargs)))  # an unpicklable task fails here
        fut: Future = Future()
        with self._lock:
            if self._stop is not None:
                raise RuntimeError("cannot submit to a WorkerPool after shutdown")
            self._queue.append((fut, payload))
        self._waker.send_bytes(b"")
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop once the running tasks (and the queued ones, unless ``cancel_futures``) are done."""
        self._close("finish", cancel_futures, wait)

    def terminate(self) -> None:
        """Kill the worker processes now: running tasks fail with WorkerLost, queued ones are
        cancelled."""
        self._close("kill", True, True)

    def _close(self, how: str, cancel: bool, wait: bool) -> None:
        with self._lock:
            self._stop = "kill" if "kill" in (how, self._stop) else how
            while cancel and self._queue:
                self._queue.popleft()[0].cancel()
        self._waker.send_bytes(b"")
        if wait:
            self._thread.join()

    # -- the thread that feeds the workers and collects their answers ------------------------
    def _run(self) -> None:
        try:
            if self._eager:  # here: PR_SET_PDEATHSIG ties each process to this thread
                for slot in self._slots:
                    self._start(slot)
            while True:
                self._dispatch()
                busy = [s for s in self._slots if s.future is not None]
                with self._lock:
                    if self._stop == "kill" or (self._stop and not busy and not self._queue):
                        return
                watched = {s.conn: s for s in busy} | {s.process.sentinel: s for s in busy}
                for ready in connection.wait([self._wake, *watched]):
                    if ready is self._wake:
                        while self._wake.poll():
                            self._wake.recv_bytes()
                    elif watched[ready].future is not None:
                        self._collect(watched[ready])
        finally:  # stopped, or broken by a bug: no future is left waiting
            with self._lock:
                kill = self._stop != "finish"
                self._stop = "kill"
                while self._queue:
                    self._queue.popleft()[0].cancel()
            if not kill:  # every worker is told first, so that they end together
                for slot in self._slots:
                    if slot.process is not None:
                        with contextlib.suppress(OSError):
                            slot.conn.send(None)
            for slot in self._slots:
                self._retire(slot, kill=kill)

    def _dispatch(self) -> None:
        for slot in self._slots:
            if slot.future is not None:
                continue
            with self._lock:
                while self._queue and self._stop != "kill":
                    fut, payload = self._queue.popleft()
                    if fut.set_running_or_notify_cancel():
                        break
                else:
                    return
            if slot.process is not None and not slot.process.is_alive():  # died while idle
                self._retire(slot, kill=True)
            slot.future = fut
            if slot.process is None:
                self._start(slot)
            try:
                slot.conn.send_bytes(payload)
            except OSError:
                pass  # the process died: its sentinel reports the task lost

    def _start(self, slot: _Slot) -> None:
        # Runs in the pool's thread, and PR_SET_PDEATHSIG fires when the thread that started the
        # worker ends: that thread lives as long as the pool (and no longer than the process).
        slot.conn, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_serve, args=(child, os.getpid(), *self._init),
                                    name="neuronlab-worker", daemon=True)
        process.start()
        slot.process = process
        child.close()  # the parent keeps only its own end: the worker's death reads as EOF

    def _collect(self, slot: _Slot) -> None:
        fut, slot.future = slot.future, None
        try:
            result, error = slot.conn.recv()
        except (EOFError, OSError):  # the process died before (or while) answering
            pid, code = slot.process.pid, self._retire(slot, kill=True)
            fut.set_exception(WorkerLost(f"worker process {pid} died (exit code {code})"))
            return
        except Exception as e:  # noqa: BLE001 - an answer the parent cannot unpickle
            fut.set_exception(e)
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)

    def _retire(self, slot: _Slot, *, kill: bool) -> int | None:
        """Stop the slot's process (at once, or after it is told to finish) and return its exit
        code; a task still on the slot fails with WorkerLost."""
        code = None
        if slot.process is not None:
            if kill:
                slot.process.kill()
            else:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)
            slot.process.join(None if kill else 10)
            if slot.process.exitcode is None:
                slot.process.kill()
                slot.process.join()
            code = slot.process.exitcode
            slot.conn.close()
            slot.process = slot.conn = None
        if slot.future is not None:
            slot.future.set_exception(WorkerLost("the worker pool was stopped"))
            slot.future = None
        return code
