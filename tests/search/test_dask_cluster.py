"""A real Dask cluster: `dask scheduler` and two `dask worker` processes on 127.0.0.1, started
and stopped by the test; trials go through `distributed.Client(address).get_executor()`."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _objectives import Sleepy, quadratic

pytest.importorskip("distributed")

from neuronlab.search import run_search

SPACE = {"lr": "loguniform(1e-5, 1e-1)", "y": "uniform(0, 1)"}
HERE = Path(__file__).resolve().parent


def _start(args, log):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, env=env)


@pytest.fixture
def cluster(tmp_path):
    """(address, [worker Popen, ...]); workers run without a nanny, so killing one removes it."""
    sched_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "wb")  # noqa: SIM115 - closed in teardown
    procs = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(sched_file)], log)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise RuntimeError("dask scheduler did not start:\n" + (tmp_path / "cluster.log").read_text())
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        workers = [_start(["distributed.cli.dask_worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                           "--no-nanny", "--no-dashboard", "--name", f"w{i}"], log) for i in range(2)]
        procs += workers
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        # each worker gone before the scheduler is stopped: a worker whose scheduler is gone
        # waits out a connection timeout (15 s in 1 teardown of 4) before it exits
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()


def test_search_runs_on_dask_workers(cluster, tmp_path):
    address, workers = cluster
    r = run_search(quadratic, SPACE, n_trials=6, workers=2, dask=address, directory=tmp_path / "s",
                   pruner=None, plots=False)
    assert [t["state"] for t in r.records] == ["COMPLETE"] * 6
    pids = {int(t["worker"].rsplit(":", 1)[1]) for t in r.records}
    assert pids <= {w.pid for w in workers} and len(pids) == 2  # both worker processes did trials
    for t in r.records:
        assert t["value"] == pytest.approx(quadratic(t["params"], None))


def test_killed_dask_worker_loses_no_completed_trial(cluster, tmp_path):
    """SIGKILL the worker that is running trial 3: the scheduler reruns the trial on the other
    worker; the trials completed before stay as they were and the search finishes."""
    address, workers = cluster
    folder = tmp_path / "work"
    folder.mkdir()
    killed = {}

    def killer():
        pid_file = folder / "pids" / "3"
        deadline = time.monotonic() + 120
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid_file.exists():
            pid = int(pid_file.read_text())
            killed["pid"] = pid
            killed["done_before"] = sorted(p.name for p in (tmp_path / "s" / "trials").glob("*"))
            os.kill(pid, signal.SIGKILL)

    th = threading.Thread(target=killer)
    th.start()
    r = run_search(Sleepy(str(folder), 0.4), SPACE, n_trials=8, workers=2, dask=address,
                   directory=tmp_path / "s", pruner=None, plots=False)
    th.join()
    assert killed, "trial 3 never started"
    assert killed["pid"] in {w.pid for w in workers}
    assert [t["state"] for t in r.records] == ["COMPLETE"] * 8
    survivor = ({w.pid for w in workers} - {killed["pid"]}).pop()
    assert r.records[3]["worker"].endswith(f":{survivor}")  # rerun on the surviving worker
    for name in killed["done_before"]:  # completed before the kill: kept, unchanged
        status = json.loads((tmp_path / "s" / "trials" / name / "status.json").read_text())
        assert status["state"] == "COMPLETE"
        assert status["value"] == r.records[int(name)]["value"]
    assert len((tmp_path / "s" / "trials.jsonl").read_text().splitlines()) == 8
