"""A default `neuronlab train` returns before its report is drawn: the process that draws it
outlives the command and then ends, the run folder says the report is pending
(report.pending and a placeholder page), and a killed or timed-out one leaves a folder that
says what to run. Real processes throughout."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _reports import alive, session, wait_for_session
from click.testing import CliRunner
from test_report import ALWAYS, _parse

from neuronlab.cli import cli
from neuronlab.report import PENDING_FILE, pending_report, write_in_background, write_report

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the background report needs fork (Linux)")

BACKGROUND = re.compile(r"report: (.+) \(being drawn in the background, pid (\d+)\)")


def _command(runs: Path, name: str, *extra: str) -> list[str]:
    script = Path(sys.executable).with_name("neuronlab")
    entry = [str(script)] if script.exists() else [sys.executable, "-m", "neuronlab"]
    return [*entry, "train", "--epochs", "2", "--runs-dir", str(runs), "--name", name,
            "--no-progress", *extra]


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@pytest.fixture(scope="module")
def background(tmp_path_factory) -> dict:
    """A default run, as a user's shell sees it: what the folder and the report's process
    were when the command had exited, then the folder once the report is done."""
    runs = tmp_path_factory.mktemp("runs")
    with subprocess.Popen(_command(runs, "bg"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, stdin=subprocess.DEVNULL) as proc:
        # the report's process holds no copy of the command's stdout or stderr: this returns
        # when the command exits
        _, stderr = proc.communicate(timeout=300)
    m = BACKGROUND.search(stderr)
    pid = int(m.group(2)) if m else None
    at_exit = {"marker": pending_report(runs / "bg"),  # read first: then it was alive
               "page": (runs / "bg" / "report.html").read_text(encoding="utf-8"),
               "alive": pid is not None and alive(pid)}
    if at_exit["alive"]:
        at_exit["stat"] = _stat(pid)
        # the terminal closing, or Ctrl-C, reaches it no more than its end reaches it
        os.killpg(pid, signal.SIGHUP)
        os.killpg(pid, signal.SIGINT)
    if pid is not None:
        wait_for_session(pid)
    return {"proc": proc, "stderr": stderr, "pid": pid, "run": runs / "bg", "at_exit": at_exit,
            "path": m.group(1) if m else None}


def test_train_returns_while_its_report_is_drawn(background):
    proc, pid, at_exit = background["proc"], background["pid"], background["at_exit"]
    assert proc.returncode == 0, background["stderr"]
    assert pid is not None, background["stderr"]
    assert background["path"] == str(background["run"] / "report.html")
    # the command had exited and the report's process was still drawing (a default report
    # takes a second; the command exits some milliseconds after the hand-off)
    assert at_exit["alive"]
    ppid, _, sid = at_exit["stat"][1:4]
    assert int(sid) == pid and int(ppid) not in (proc.pid, os.getpid())  # its own session
    marker = at_exit["marker"]
    assert marker is not None and marker["pid"] == pid and marker["timeout_s"] > 60
    page = at_exit["page"]
    assert '<meta http-equiv="refresh"' in page and '<section id="pending">' in page
    assert f"Process {pid}" in page and "within a minute" in page
    assert f"neuronlab report {background['run'].resolve()}" in page


def test_the_report_process_finishes_the_report_and_ends(background):
    pid, run = background["pid"], background["run"]
    assert not session(pid) and not alive(pid)  # nothing left (the fixture waited for it)
    assert pending_report(run) is None and not (run / PENDING_FILE).exists()
    page, _ = _parse(run / "report.html")
    assert page.sections == ALWAYS + ["weights"]
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints", "config.toml", "metrics.jsonl", "model.safetensors", "report.html"]


def test_wait_report_writes_the_same_report_before_returning(background, tmp_path):
    proc = subprocess.run(_command(tmp_path, "w", "--wait-report"), check=False,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "w"
    assert f"report: {run / 'report.html'}\n" in proc.stderr and "background" not in proc.stderr
    assert pending_report(run) is None
    waited, text = _parse(run / "report.html")
    drawn, drawn_text = _parse(background["run"] / "report.html")
    notes = [re.findall(r'class="note">([^<]*)', t) for t in (text, drawn_text)]
    assert (waited.sections, len(waited.images)) == (drawn.sections, len(drawn.images)), notes
    assert len(drawn.images) > 10


def test_a_killed_report_process_leaves_a_folder_that_says_what_to_run(tmp_path):
    cmd = _command(tmp_path, "k", "--data", "moons", "--hidden", "16")
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL) as proc:
        pid = None
        for line in proc.stderr:  # stderr is line-buffered: the line comes as it is printed
            m = BACKGROUND.search(line)
            if m:
                pid = int(m.group(2))
                os.kill(pid, signal.SIGKILL)
                break
        proc.communicate(timeout=120)
    assert proc.returncode == 0 and pid is not None
    wait_for_session(pid)  # its drawing processes end with it
    run = tmp_path / "k"
    marker = pending_report(run)
    assert marker is not None and marker["pid"] == pid and "failed" not in marker
    text = (run / "report.html").read_text(encoding="utf-8")
    assert "If this page does not change within a minute" in text
    assert f"neuronlab report {run.resolve()}" in text

    r = CliRunner().invoke(cli, ["report", str(run)])
    assert r.exit_code == 0, r.output
    assert pending_report(run) is None
    page, _ = _parse(run / "report.html")
    assert page.sections == ALWAYS + ["decision-regions"]


def test_a_report_past_its_time_limit_gives_up_and_says_so(background, tmp_path):
    run = tmp_path / "slow"
    shutil.copytree(background["run"], run)
    (run / "report.html").unlink()
    pid = write_in_background(run, timeout=0.05)  # a report takes a second
    assert pid is not None
    wait_for_session(pid)
    marker = pending_report(run)
    assert marker is not None and "not done after 0.05 s" in marker["failed"]
    assert json.loads((run / PENDING_FILE).read_text())["pid"] == pid
    text = (run / "report.html").read_text(encoding="utf-8")
    assert "could not be drawn" in text and "refresh" not in text
    assert f"neuronlab report {run.resolve()}" in text
    write_report(run)  # the run's own report.html: no longer pending
    assert pending_report(run) is None


def test_a_report_process_superseded_meanwhile_leaves_the_newer_one_alone(background, tmp_path,
                                                                          monkeypatch):
    """A run resumed while its last report is drawn: the resumed run's report process marks
    the folder again, and the older process, done later, must not put its report (of the
    run before the resume) in place nor remove the newer marker."""
    import time

    from neuronlab import report

    run, gate = tmp_path / "resumed", tmp_path / "gate"
    shutil.copytree(background["run"], run)
    real = report.write_report

    def held(*args, **kwargs):  # in the forked process: draws once the test says so
        while not gate.exists():
            time.sleep(0.01)
        return real(*args, **kwargs)

    monkeypatch.setattr(report, "write_report", held)
    pid = write_in_background(run)
    assert pid is not None and pending_report(run)["pid"] == pid
    newer = {"pid": os.getpid(), "started": time.time(), "timeout_s": 600.0}
    report._write_pending(run, newer)  # what the resumed run's report process writes
    page = (run / "report.html").read_text(encoding="utf-8")
    gate.touch()
    wait_for_session(pid)
    assert pending_report(run) == newer
    assert (run / "report.html").read_text(encoding="utf-8") == page
    assert f"Process {os.getpid()}" in page
    assert not list(run.glob(".report*"))  # its drawn page was dropped


def test_neuronlab_report_leaves_a_marker_that_a_newer_process_wrote_meanwhile(
        background, tmp_path, monkeypatch):
    """`neuronlab report` (write_report) removes the marker it answered, not one that a run
    resumed while it drew wrote meanwhile: that run's report is still to come."""
    import time

    from neuronlab import report

    run = tmp_path / "r"
    shutil.copytree(background["run"], run)
    newer = {"pid": os.getpid(), "started": time.time(), "timeout_s": 600.0}
    real = report._load_model

    def load_then_resume(run_dir):  # a newer process starts while this report is drawn
        report._write_pending(run, newer)
        return real(run_dir)

    monkeypatch.setattr(report, "_load_model", load_then_resume)
    write_report(run)
    assert pending_report(run) == newer
    monkeypatch.setattr(report, "_load_model", real)
    write_report(run)  # the report that answers it removes it
    assert pending_report(run) is None
