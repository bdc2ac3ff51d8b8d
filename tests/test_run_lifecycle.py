"""The run lifecycle under real faults: refused runs leave nothing, same-name runs never share a
folder, runs killed with ``kill -9`` at any moment (also before their first checkpoint) resume
bit-identically, and a resume never rewrites history.

The fault tests start real ``neuronlab train`` processes; the fast tier runs a few of each,
the slow tier the full counts (20 kills, 10 concurrent pairs).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import load_file

from neuronlab.cli import EXIT_USAGE, cli
from neuronlab.config import RunConfig, load_config
from neuronlab.data.labels import check_targets
from neuronlab.run_folder import RunExistsError, create_run_folder, remove_orphan_temporaries


def run_cli(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def entry_point() -> list[str]:
    script = Path(sys.executable).with_name("neuronlab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "neuronlab"]


def assert_refused(result: object, runs: Path, *fragments: str) -> None:
    """Exit 2 with one ``error:`` line naming the problem, and no trace in the runs folder."""
    assert result.exit_code == EXIT_USAGE, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for f in fragments:
        assert f in errors[0], errors[0]
    assert not runs.exists() or list(runs.iterdir()) == [], list(runs.iterdir())


# -- labels and sizes, refused before anything is made ---------------------------------------
def _labels_file(tmp_path: Path, name: str, y: np.ndarray) -> Path:
    X = np.random.default_rng(0).normal(size=(len(y), 4)).astype(np.float32)
    path = tmp_path / f"{name}.npz"
    np.savez(path, X=X, y=y)
    return path


THREE = np.repeat([0, 1, 2], 40)


def _with(index: int, value: float) -> np.ndarray:
    y = THREE.astype(np.float64)
    y[index] = value
    return y


@pytest.mark.parametrize(
    ("y", "options", "fragments"),
    [
        (np.zeros(120, np.int64), (), ["1 class (0)", "at least 2"]),
        (_with(3, -1).astype(np.int64), (), ["negative class labels", "-1 at row 3"]),
        (THREE + 0.5, (), ["not whole numbers", "0.5", "--loss mse"]),
        (_with(57, 999).astype(np.int64), (), ["0, 1, 2, 999", "996 of 0..999", "row 57", "--classes"]),
        (_with(5, 2e9), (), ["2000000000", "row 5"]),
        (np.stack([THREE, THREE], 1), (), ["1-D class labels", "(120, 2)"]),
        (THREE, ("--loss", "binary_hinge"), ["binary labels 0 and 1", "3 distinct"]),
        (THREE, ("--hidden", "100000000"), ["--hidden", "1,048,576"]),
        (THREE, ("--hidden", "1000000,1000000"), ["parameters", "GiB", "--hidden"]),
        (THREE, ("--epochs", "99999999999"), ["epochs", "1,000,000"]),
    ],
    ids=["single-class", "negative", "float", "sparse", "2e9", "2-D", "binary-hinge",
         "wide", "oversize", "epochs"],
)
def test_a_refused_run_leaves_no_folder(tmp_path, y, options, fragments) -> None:
    data = _labels_file(tmp_path, "data", y)
    runs = tmp_path / "runs"
    result = run_cli("train", "--data", data, "--runs-dir", runs, "--name", "r", "--no-report",
                     "--epochs", 1, *options)
    assert_refused(result, runs, *fragments)


def test_declared_classes_allow_absent_labels(tmp_path) -> None:
    data = _labels_file(tmp_path, "data", _with(57, 4).astype(np.int64))  # 3 has no samples
    runs = tmp_path / "runs"
    refused = run_cli("train", "--data", data, "--runs-dir", runs, "--name", "r", "--epochs", 1)
    assert_refused(refused, runs, "labels 0, 1, 2, 4", "1 of 0..4")
    ok = run_cli("train", "--data", data, "--runs-dir", runs, "--name", "r", "--no-report",
                 "--epochs", 1, "--classes", 5, "--no-progress")
    assert ok.exit_code == 0, ok.output
    assert load_config(runs / "r" / "config.toml").data.classes == 5
    from neuronlab.io import load

    assert load(runs / "r" / "model.safetensors").n_out == 5


def test_check_targets_golden() -> None:
    y, n = check_targets(np.array([0.0, 2.0, 1.0]), "softmax", "classification")
    assert n == 3 and y.dtype == np.int64 and y.tolist() == [0, 2, 1]
    assert check_targets(np.array([1, 0, 1]), "binary_hinge", "classification")[1] == 1
    assert check_targets(np.array([0, 1]), "softmax", "classification", classes=7)[1] == 7
    assert check_targets(np.zeros((5, 3)), "mse", "regression")[1] == 3
    with pytest.raises(ValueError, match="declares 2 classes"):
        check_targets(np.array([0, 1, 2]), "softmax", "classification", classes=2)
    with pytest.raises(ValueError, match="NaN or Inf"):
        check_targets(np.array([0.0, np.nan]), "mse", "regression")


def test_a_class_only_outside_the_training_split_is_named(tmp_path) -> None:
    y = THREE.copy()
    y[-1] = 3  # class 3 has one sample: the stratified split puts it in the test part
    runs = tmp_path / "runs"
    result = run_cli("train", "--data", _labels_file(tmp_path, "d", y), "--runs-dir", runs,
                     "--name", "r", "--test-size", 0.5)
    assert_refused(result, runs, "class 3 has no sample in the training split")


# -- run folders -----------------------------------------------------------------------------
def test_run_folders_are_created_exclusively(tmp_path) -> None:
    cfg = RunConfig()
    first = create_run_folder(tmp_path, "same", cfg)
    assert load_config(first / "config.toml") == cfg
    with pytest.raises(RunExistsError, match="already exists"):
        create_run_folder(tmp_path, "same", cfg)
    stamps = [create_run_folder(tmp_path, None, cfg) for _ in range(3)]  # within one second
    assert len({p.name for p in stamps}) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["same", *(p.name for p in stamps)])


def test_dead_staging_folders_are_removed(tmp_path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".staging-{dead.pid}-abc"
    stale.mkdir()
    (stale / "config.toml").write_text("")
    create_run_folder(tmp_path, "r", RunConfig())
    assert not stale.exists()


def test_orphan_temporaries_are_removed(tmp_path) -> None:
    (tmp_path / "checkpoints").mkdir()
    orphans = [tmp_path / ".model.safetensors.0123456789ab.tmp",
               tmp_path / "checkpoints" / ".step-000000010.safetensors.abcdef012345.tmp"]
    keep = [tmp_path / "config.toml", tmp_path / "checkpoints" / "step-000000010.safetensors"]
    for p in orphans + keep:
        p.write_bytes(b"x")
    assert sorted(remove_orphan_temporaries(tmp_path)) == sorted(orphans)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in orphans)


# -- resume never rewrites history -----------------------------------------------------------
def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_refuses_fewer_epochs_than_done(tmp_path) -> None:
    runs = tmp_path / "runs"
    args = ("--data", "spiral", "--hidden", 8, "--no-report", "--no-progress")
    assert run_cli("train", *args, "--epochs", 3, "--runs-dir", runs, "--name", "r").exit_code == 0
    before = (runs / "r" / "config.toml").read_text()
    result = run_cli("train", "--resume", runs / "r", "--epochs", 2, "--no-report")
    assert result.exit_code == EXIT_USAGE and "has done 3 epochs" in result.stderr
    assert (runs / "r" / "config.toml").read_text() == before
    more = run_cli("train", "--resume", runs / "r", "--epochs", 5, "--no-report", "--no-progress")
    assert more.exit_code == 0, more.output
    assert load_config(runs / "r" / "config.toml").train.epochs == 5
    records = _records(runs / "r")
    steps = [r["step"] for r in records if r["event"] == "step"]
    assert steps == list(range(len(steps)))  # each step once, in order
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [0, 1, 2, 3, 4]
    assert [r["event"] for r in records].count("train_end") == 1


def test_cosine_epochs_cannot_change_on_resume(tmp_path) -> None:
    runs = tmp_path / "runs"
    args = ("--data", "xor", "--hidden", 4, "--no-report", "--schedule", "cosine")
    assert run_cli("train", *args, "--epochs", 1, "--runs-dir", runs, "--name", "r").exit_code == 0
    result = run_cli("train", "--resume", runs / "r", "--epochs", 2, "--no-report")
    assert result.exit_code == EXIT_USAGE and "cosine" in result.stderr


# -- real processes: concurrent runs and kill -9 ---------------------------------------------
def _big_data(tmp_path: Path) -> Path:
    """12,000 rows of 32 features in 4 classes: an epoch of batch-8 steps takes long enough
    that a kill right after the folder appears lands before the first checkpoint."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 12_000)
    X = (rng.normal(size=(12_000, 32)) + y[:, None] * 0.3).astype(np.float32)
    path = tmp_path / "big.npz"
    np.savez(path, X=X, y=y)
    return path


def _train_cmd(data: Path, runs: Path, name: str, *extra: object) -> list[str]:
    return [*entry_point(), "train", "--data", str(data), "--hidden", "16", "--epochs", "3",
            "--batch-size", "8", "--no-report", "--no-progress", "--runs-dir", str(runs),
            "--name", name, *map(str, extra)]


def _concurrent_pairs(tmp_path: Path, n_pairs: int) -> None:
    data, runs = _labels_file(tmp_path, "d", THREE), tmp_path / "runs"
    for i in range(n_pairs):
        name = f"p{i}"
        procs = [subprocess.Popen(
            [*entry_point(), "train", "--data", str(data), "--hidden", str(w), "--epochs", "5",
             "--no-report", "--no-progress", "--runs-dir", str(runs), "--name", name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in (32, 64)]
        try:
            outs = [p.communicate(timeout=120) for p in procs]
        finally:
            for p in procs:
                p.kill()
        codes = sorted(p.returncode for p in procs)
        assert codes == [0, EXIT_USAGE], outs
        loser = outs[[p.returncode for p in procs].index(EXIT_USAGE)]
        assert "already exists" in loser[1] and "Traceback" not in loser[1]
        run = runs / name
        width = load_config(run / "config.toml").model.hidden[0]
        weights = load_file(str(run / "model.safetensors"))
        assert weights["0.W"].shape == (4, width)  # the model is the config's
        records = _records(run)
        assert [r["event"] for r in records].count("train_begin") == 1
        steps = [r["step"] for r in records if r["event"] == "step"]
        assert steps == list(range(len(steps)))
    assert sorted(p.name for p in runs.iterdir()) == [f"p{i}" for i in range(n_pairs)]


def test_concurrent_same_name_runs(tmp_path) -> None:
    _concurrent_pairs(tmp_path, 2)


@pytest.mark.slow
def test_ten_concurrent_same_name_pairs(tmp_path) -> None:
    _concurrent_pairs(tmp_path, 10)


def _comparable(run: Path) -> tuple[dict, list[dict]]:
    """The final weights and the metrics lines, without wall-clock times and start markers."""
    weights = load_file(str(run / "model.safetensors"))
    lines = [{k: v for k, v in r.items() if k != "time"} for r in _records(run)
             if r["event"] != "train_begin"]
    return weights, lines


def _kill_and_resume(tmp_path: Path, delays: list[float | None]) -> None:
    """One uninterrupted run, then one run per delay killed with SIGKILL that long after its
    folder appears (None: at once, before its first checkpoint) and resumed to the end."""
    data, runs = _big_data(tmp_path), tmp_path / "runs"
    ref = subprocess.run(_train_cmd(data, runs, "ref"), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    want_w, want_lines = _comparable(runs / "ref")
    before_first = 0
    for i, delay in enumerate(delays):
        name = f"k{i}"
        proc = subprocess.Popen(_train_cmd(data, runs, name), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not (runs / name / "config.toml").exists() and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.002)
            if delay:
                time.sleep(delay)
            ckpts = runs / name / "checkpoints"
            had = ckpts.is_dir() and any(ckpts.iterdir())
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        before_first += not had
        resumed = subprocess.run([*entry_point(), "train", "--resume", str(runs / name),
                                  "--no-report", "--no-progress"],
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        got_w, got_lines = _comparable(runs / name)
        assert got_w.keys() == want_w.keys()
        for k in want_w:
            assert np.array_equal(got_w[k], want_w[k]), (i, delay, k)
        assert got_lines == want_lines, (i, delay)
        assert not list((runs / name).glob("**/.*.tmp"))
    assert before_first >= 1  # at least one kill landed before the first checkpoint


def test_kill_9_at_random_moments_then_resume_is_bit_identical(tmp_path) -> None:
    _kill_and_resume(tmp_path, [None, 0.6, 1.5])


@pytest.mark.slow
def test_twenty_kills_then_resume_are_bit_identical(tmp_path) -> None:
    rng = random.Random(12)
    _kill_and_resume(tmp_path, [None, None, None] + [rng.uniform(0.0, 3.0) for _ in range(17)])


def test_a_run_without_a_test_split(tmp_path) -> None:
    runs = tmp_path / "runs"
    result = run_cli("train", "--data", "xor", "--hidden", 4, "--epochs", 1, "--test-size", 0,
                     "--preprocess", "pca", "--components", 2, "--runs-dir", runs, "--name", "r",
                     "--no-report", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "no test split (data.test_size = 0)" in result.stdout
    from neuronlab.io import load

    assert load(runs / "r" / "model.safetensors").metadata["test"] is None
    refused = run_cli("evaluate", runs / "r")
    assert refused.exit_code == EXIT_USAGE
    assert "the test split is empty" in refused.stderr and "--split all" in refused.stderr


def test_clean_ups_are_logged(tmp_path, caplog) -> None:
    import logging

    (tmp_path / ".config.toml.0123456789ab.tmp").write_bytes(b"x")
    with caplog.at_level(logging.INFO, logger="neuronlab"):
        remove_orphan_temporaries(tmp_path)
    assert any("a killed run left unfinished" in r.message for r in caplog.records)
