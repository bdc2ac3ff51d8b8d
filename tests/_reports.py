"""Waiting for the report a default `neuronlab train` draws in the background (the tests
that start one wait for it: the processes a test starts end with it)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from neuronlab.report import pending_report


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie has)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children() -> set[int]:
    """The child processes of this process, ended but not yet reaped (zombies) included."""
    me = os.getpid()
    found = set()
    for p in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(p.name))
        if fields is not None and int(fields[1]) == me:
            found.add(int(p.name))
    return found


def session(sid: int) -> set[int]:
    """The live processes of session ``sid`` (the background report's, and the processes
    drawing its figures)."""
    found = set()
    for p in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(p.name))
        if fields is not None and fields[0] != "Z" and int(fields[3]) == sid:
            found.add(int(p.name))
    return found


def wait_for_session(sid: int, timeout: float = 120.0) -> None:
    """Wait until session ``sid`` has no process left; kill what is left after ``timeout``
    seconds and fail."""
    deadline = time.monotonic() + timeout
    while session(sid):
        if time.monotonic() > deadline:
            for pid in session(sid):
                os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"the background report's processes ({sid}) did not end")
        time.sleep(0.05)


def wait_for_report(run_dir: str | os.PathLike[str], timeout: float = 120.0) -> None:
    """Wait until ``run_dir``'s report is no longer pending and the process that drew it
    has ended (a failed one fails the test)."""
    marker = pending_report(run_dir)
    if marker is None:
        return
    wait_for_session(int(marker["pid"]), timeout)
    marker = pending_report(run_dir)
    assert marker is None, f"the background report of {run_dir} did not finish: {marker}"
