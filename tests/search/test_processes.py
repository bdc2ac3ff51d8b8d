"""A real `neuronlab search` process killed from outside (SIGKILL, SIGTERM, Ctrl-C): its worker
processes and multiprocessing's resource tracker go with it, and rerunning the same command
resumes the search without losing a completed trial. Processes are found in /proc by process
group: each search starts in a session of its own, which the tests kill whatever happens."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("optuna")
if not os.path.isdir("/proc/self"):
    pytest.skip("reads processes from /proc", allow_module_level=True)

N_TRIALS = 6
# digits from a .npz file (workers start without importing scikit-learn); about a second per
# trial on two cores, so trials are in flight when the search is killed
SPACE = ('[space]\nlr = "loguniform(1e-3, 1e-2)"\n\n[model]\nhidden = [64]\n\n'
         "[train]\nepochs = 200\nbatch_size = 32\n")


def _group(pgid: int) -> dict[int, str]:
    """pid -> command line of the live (not zombie) processes of process group ``pgid``."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                state, _ppid, pgrp = f.read().rsplit(")", 1)[1].split()[:3]
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        if int(pgrp) == pgid and state not in "ZX":
            found[int(entry.name)] = cmdline
    return found


def _search(tmp_path, log):
    """Start `neuronlab search` in its own session (process group = its pid). The SIGINT
    handler is set for the start so the child gets Python's Ctrl-C handling, as from a shell,
    even where this process ignores SIGINT."""
    cmd = [sys.executable, "-m", "neuronlab", "search", "--space", str(tmp_path / "space.toml"),
           "--data", str(tmp_path / "digits.npz"), "--trials", str(N_TRIALS), "--workers", "2",
           "--pruner", "none", "--no-plots", "--out", str(tmp_path / "s")]
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop(proc):
    """Kill what is left of the search's process group and reap the search."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _wait_until(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds} s")
        time.sleep(0.05)


def _trials(directory):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(directory / "study.journal")))
    return optuna.load_study(study_name="neuronlab", storage=storage).get_trials(deepcopy=False)


def _kill_search(tmp_path, signum):
    """Start the search, send ``signum`` once a trial is complete and both workers are up, and
    check that every process of the search is gone 10 s later; returns the journal's trials."""
    import numpy as np

    from neuronlab.data import digits

    (tmp_path / "space.toml").write_text(SPACE)
    X, y = digits()
    np.savez(tmp_path / "digits.npz", X=X, y=y)
    out, log_path = tmp_path / "s", tmp_path / "search.log"
    with open(log_path, "wb") as log:
        proc = _search(tmp_path, log)
        try:
            def completed():
                assert proc.poll() is None, log_path.read_text()
                return (out / "trials.jsonl").exists() and "COMPLETE" in (out / "trials.jsonl").read_text()

            _wait_until(completed, 120, "no trial completed")
            children = _group(proc.pid)
            del children[proc.pid]
            assert sum("multiprocessing" in c and "resource_tracker" not in c for c in children.values()) == 2
            if signum == signal.SIGINT:
                os.killpg(proc.pid, signum)  # Ctrl-C in a terminal: the whole foreground group
            else:
                os.kill(proc.pid, signum)
            proc.wait(timeout=60)
            _wait_until(lambda: not _group(proc.pid), 10, "processes of the search still alive")
        finally:
            _stop(proc)
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # one clear line, and the exit status a shell gives a process ended by the signal
        assert proc.returncode == 128 + signum
        last = log_path.read_text().strip().splitlines()[-1]
        assert last.startswith(f"error: search interrupted by {signal.Signals(signum).name}"), last
    trials = _trials(out)
    if signum != signal.SIGKILL:  # the trials in flight were recorded as interrupted
        assert all(t.state.name != "RUNNING" for t in trials)
    return trials


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_search_takes_its_workers_and_resumes(tmp_path, signum):
    complete = {t.number: t.value for t in _kill_search(tmp_path, signum) if t.state.name == "COMPLETE"}
    assert complete
    out, log_path = tmp_path / "s", tmp_path / "search.log"
    with open(log_path, "ab") as log:  # the same command again
        proc = _search(tmp_path, log)
        try:
            assert proc.wait(timeout=300) == 0, log_path.read_text()
        finally:
            _stop(proc)
    after = _trials(out)
    assert {t.number: t.value for t in after if t.number in complete} == complete
    interrupted = [t for t in after if t.user_attrs.get("interrupted")]
    assert all(t.state.name == "FAIL" for t in interrupted)
    assert sum(t.state.name == "COMPLETE" for t in after) == N_TRIALS == len(after) - len(interrupted)
    records = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert sorted(r["number"] for r in records if r["state"] == "COMPLETE") == sorted(
        t.number for t in after if t.state.name == "COMPLETE")


def test_ctrl_c_stops_the_search_and_its_workers(tmp_path):
    """SIGINT to the whole process group, as a terminal sends it: the workers ignore it, the
    search records its trials in flight as interrupted and kills them."""
    _kill_search(tmp_path, signal.SIGINT)
