"""The ``neuronlab`` command line: train, evaluate, summary, export, resume and bad input.

Most tests call the click group in-process with CliRunner; ``test_entry_point_default_train``
runs the installed console script in a subprocess, as ``make run`` does.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _reports import wait_for_report
from click.testing import CliRunner

import neuronlab as nl
from neuronlab.cli import EXIT_DIVERGED, EXIT_USAGE, cli
from neuronlab.config import RunConfig, load_config
from neuronlab.runs import build_run, make_preprocessor, split_rows

ACC = re.compile(r"accuracy (\d\.\d{4})")


def run_cli(*args: str) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def accuracy_of(output: str) -> float:
    m = ACC.search(output)
    assert m, output
    return float(m.group(1))


def assert_user_error(result, *fragments: str) -> None:
    """Exit 2, exactly one ``error:`` line naming the problem, no traceback."""
    assert result.exit_code == EXIT_USAGE, result.output
    # SystemExit is how a CLI ends; any other exception would have meant a traceback.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    errors = [l for l in lines if l.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in errors[0], errors[0]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> tuple[Path, float]:
    """The default run with 3 epochs: (run directory, printed test accuracy)."""
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli(
        "train",
        "--no-report",
        "--epochs",
        3,
        "--runs-dir",
        runs,
        "--name",
        "short",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    return runs / "short", accuracy_of(result.stdout)


# -- the entry point ---------------------------------------------------------------------------
def _entry_point() -> list[str]:
    script = Path(sys.executable).with_name("neuronlab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "neuronlab"]


def test_entry_point_default_train(tmp_path) -> None:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*_entry_point(), "train", "--epochs", "3", "--runs-dir", str(tmp_path), "--name", "r"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert time.perf_counter() - t0 < 60
    run = tmp_path / "r"
    assert "run directory:" in proc.stderr and "Traceback" not in proc.stderr
    printed = accuracy_of(proc.stdout)
    assert "test (449 samples)" in proc.stdout  # round(0.25 * 1797) held out, stratified
    assert printed > 0.9  # 3 epochs of the default already classify digits well

    # The resolved config is the default one with the epochs given on the command line.
    assert load_config(run / "config.toml") == RunConfig().with_overrides({"train": {"epochs": 3}})
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    assert all(0 <= r["val_acc"] <= 1 for r in epochs)
    assert max(p.name for p in (run / "checkpoints").iterdir()).startswith("epoch-0002-")

    model = nl.load(run / "model.safetensors")
    assert (model.n_in, model.n_out) == (64, 10)
    assert type(model.preprocessor).__name__ == "Standardize"
    assert round(model.metadata["test"]["acc"], 4) == printed
    assert (run / "report.html").is_file()  # by default, as `make run` does: drawn after
    wait_for_report(run)  # the command returned, by a process that ends by itself


@pytest.mark.slow
def test_default_train_reaches_97_percent_in_under_a_minute(tmp_path) -> None:
    t0 = time.perf_counter()
    # Exactly `make run` (report included), only with the runs written to tmp_path.
    result = run_cli("train", "--runs-dir", tmp_path, "--name", "full", "--no-progress")
    elapsed = time.perf_counter() - t0
    assert result.exit_code == 0, result.output
    assert accuracy_of(result.stdout) >= 0.97
    assert elapsed < 60
    wait_for_report(tmp_path / "full")


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for command in ("train", "evaluate", "summary", "export"):
        assert command in result.output
    # Choices in the help come from the registries.
    train_help = run_cli("train", "--help").output
    assert "cosine" in train_help and "leaky_relu" in train_help and "zca" in train_help


def test_version_says_whether_the_compiled_engine_runs(monkeypatch) -> None:
    pytest.importorskip("numba")
    from neuronlab import __version__, engine

    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.output.startswith(f"neuronlab, version {__version__}; compiled engine (numba ")
    monkeypatch.setattr(engine, "ENABLED", False)
    assert "NEURONLAB_ENGINE=0" in run_cli("--version").output
    monkeypatch.setattr(engine, "ENABLED", True)
    monkeypatch.setattr(engine, "_numba", False)
    assert "pip install 'neuronlab[fast]'" in run_cli("--version").output


# -- evaluate / summary / export ------------------------------------------------------------------
def test_evaluate_reproduces_the_test_accuracy(short_run) -> None:
    run, printed = short_run
    for target in (run, run / "model.safetensors"):  # a run folder or its model file
        result = run_cli("evaluate", target)
        assert result.exit_code == 0, result.output
        assert "digits test split (449 samples)" in result.output
        assert accuracy_of(result.output) == printed


def test_evaluate_on_a_file_scores_every_row(short_run, tmp_path) -> None:
    run, _ = short_run
    X, y = nl.data.digits()
    path = tmp_path / "few.npz"
    np.savez(path, X=X[:100], y=y[:100])
    result = run_cli("evaluate", run, "--data", path)
    assert result.exit_code == 0, result.output
    assert "(100 samples)" in result.output
    # Independent computation: the saved preprocessor, a forward pass and an argmax.
    model = nl.load(run / "model.safetensors")
    pred = model.forward(model.preprocessor.transform(X[:100])).argmax(axis=1)
    assert accuracy_of(result.output) == round(float(np.mean(pred == y[:100])), 4)


def test_summary_prints_the_layer_table(short_run) -> None:
    run, _ = short_run
    result = run_cli("summary", run / "model.safetensors")
    assert result.exit_code == 0, result.output
    # 64-256-10: weights 64*256 + 256*10 = 18,944; biases 256 + 10 = 266; params 19,210.
    total = next(l for l in result.output.splitlines() if l.startswith("total"))
    assert total.split()[1:] == ["266", "18,944", "266", "19,210"]
    assert "preprocessor: Standardize" in result.output


def test_export_onnx_and_npz(short_run, tmp_path) -> None:
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    run, _ = short_run
    model = nl.load(run / "model.safetensors")
    X, _ = nl.data.digits()
    raw = X[:5]
    expected = model.forward(model.preprocessor.transform(raw))

    out = tmp_path / "m.onnx"
    result = run_cli("export", run, "--format", "onnx", "-o", out)
    assert result.exit_code == 0, result.output
    # The graph takes raw features: the preprocessor is part of it.
    (scores,) = ReferenceEvaluator(str(out)).run(None, {"x": raw})
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)

    npz = tmp_path / "m.npz"
    assert run_cli("export", run / "model.safetensors", "--format", "npz", "-o", npz).exit_code == 0
    back = nl.load_npz(npz)
    assert all(np.array_equal(back.params[k], v) for k, v in model.params.items())
    # evaluate reads .npz models too, and finds the run's data in their metadata.
    assert accuracy_of(run_cli("evaluate", npz).output) == accuracy_of(
        run_cli("evaluate", run).output
    )

    same = run_cli("export", npz, "--format", "npz")  # default output = the input itself
    assert_user_error(same, "would overwrite the model")


# -- bad input ---------------------------------------------------------------------------------
def test_config_typo_lists_the_valid_keys(tmp_path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text("[optim]\nlearning_rate = 0.1\n")
    result = run_cli("train", "--no-report", "--config", cfg, "--runs-dir", tmp_path / "runs")
    assert_user_error(result, "unknown key 'learning_rate' in [optim]", "valid keys: optimizer, lr")
    assert not (tmp_path / "runs").exists()  # nothing written for a rejected run


def test_config_file_then_options(tmp_path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text("[optim]\nlr = 0.01\n[model]\nhidden = [16]\n[train]\nepochs = 5\n")
    result = run_cli(
        "train",
        "--no-report",
        "--config",
        cfg,
        "--epochs",
        1,
        "--runs-dir",
        tmp_path,
        "--name",
        "c",
    )
    assert result.exit_code == 0, result.output
    saved = load_config(tmp_path / "c" / "config.toml")
    assert (saved.optim.lr, saved.model.hidden, saved.train.epochs) == (0.01, [16], 1)


def test_missing_data_file_in_a_real_process(tmp_path) -> None:
    proc = subprocess.run(
        [
            *_entry_point(),
            "train",
            "--data",
            str(tmp_path / "nope.npz"),
            "--runs-dir",
            str(tmp_path),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.strip() == f"error: data file not found: {tmp_path / 'nope.npz'}"
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--lr", "-1"], "'--lr': optim.lr must be > 0, got -1.0"),
        (["--lr", "fast"], "'--lr'"),
        (["--epochs", "0"], "'--epochs': train.epochs must be > 0"),
        (["--hidden", "12,x"], "'--hidden'"),
        (["--hidden", "12,0"], "model.hidden[1] must be > 0"),
        (["--activation", "sigmoidd"], "choose one of: relu"),
        (["--optimizer", "adamm"], "unknown optimizer 'adamm'"),
        (["--schedule", "warmup"], "cannot be built from a run config"),
        (["--preprocess", "whiten"], "unknown preprocessor 'whiten'; choose one of: none, "),
        (["--data", "digitz"], "unknown data 'digitz'"),
        (["--data", "cifar10:/no/such/dir"], "CIFAR-10 folder not found"),
        (["--unknown-flag"], "No such option"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, args, fragment) -> None:
    result = run_cli("train", "--no-report", *args, "--runs-dir", tmp_path)
    assert_user_error(result, fragment)
    assert not any(tmp_path.iterdir())


def test_bad_model_files(tmp_path, short_run) -> None:
    run, _ = short_run
    assert_user_error(run_cli("summary", tmp_path / "none.safetensors"), "model file not found")
    blob = (run / "model.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(blob[: len(blob) // 2])
    assert_user_error(run_cli("evaluate", tmp_path / "cut.safetensors"), "cut.safetensors")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    assert_user_error(run_cli("summary", tmp_path / "junk.npz"), "junk.npz")


def test_existing_run_name_is_refused(short_run) -> None:
    run, _ = short_run
    result = run_cli("train", "--no-report", "--runs-dir", run.parent, "--name", run.name)
    assert_user_error(result, "already exists", f"--resume {run}")


# -- resume -------------------------------------------------------------------------------------
def test_resume_continues_bit_identically(tmp_path) -> None:
    small = ["--hidden", "32", "--runs-dir", tmp_path, "--no-progress"]
    assert run_cli("train", "--no-report", *small, "--epochs", 2, "--name", "cut").exit_code == 0
    resumed = run_cli(
        "train", "--no-report", "--resume", tmp_path / "cut", "--epochs", 4, "--no-progress"
    )
    assert resumed.exit_code == 0, resumed.output
    whole = run_cli("train", "--no-report", *small, "--epochs", 4, "--name", "whole")
    assert accuracy_of(resumed.stdout) == accuracy_of(whole.stdout)

    a, b = (
        nl.load(tmp_path / "cut" / "model.safetensors"),
        nl.load(tmp_path / "whole" / "model.safetensors"),
    )
    for k, v in a.params.items():
        assert np.array_equal(v, b.params[k]), k
    records = [json.loads(l) for l in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [0, 1, 2, 3]
    assert any(r["event"] == "train_begin" and r.get("resumed") for r in records)
    assert load_config(tmp_path / "cut" / "config.toml").train.epochs == 4


def test_resume_refuses_changes_and_non_runs(tmp_path, short_run) -> None:
    run, _ = short_run
    assert_user_error(
        run_cli("train", "--no-report", "--resume", run, "--lr", "0.1"),
        "only --epochs may change",
        "--lr",
    )
    assert_user_error(run_cli("train", "--no-report", "--resume", tmp_path), "not a run directory")


# -- divergence ---------------------------------------------------------------------------------
def test_divergence_exits_3_without_writing_a_model(tmp_path) -> None:
    result = run_cli(
        "train",
        "--no-report",
        "--optimizer",
        "sgd",
        "--lr",
        "1e6",
        "--epochs",
        2,
        "--runs-dir",
        tmp_path,
        "--name",
        "boom",
    )
    assert result.exit_code == EXIT_DIVERGED != EXIT_USAGE, result.output
    assert isinstance(result.exception, SystemExit)
    assert "error: training diverged at step" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "boom" / "model.safetensors").exists()


def test_divergence_keeps_the_last_good_checkpoint(tmp_path, monkeypatch) -> None:
    # The trigger is simulated (a real blow-up cannot be timed to a chosen epoch): the guard
    # reports a NaN loss at the first step of the third epoch.
    from neuronlab.train import DivergenceError, NonFiniteGuard

    steps_per_epoch = math.ceil(1797 * (1 - 0.25 - 0.1) / 32)  # 1168 training rows -> 37 steps

    def explode(self, trainer, step, loss):
        if step == 2 * steps_per_epoch:
            raise DivergenceError(step, "loss", float("nan"))

    monkeypatch.setattr(NonFiniteGuard, "on_before_update", explode)
    # the compiled engine calls the guard only where it finds a non-finite step: ask for all
    monkeypatch.setattr(NonFiniteGuard, "next_step", lambda self, step: step)
    result = run_cli(
        "train",
        "--no-report",
        "--hidden",
        "16",
        "--epochs",
        4,
        "--runs-dir",
        tmp_path,
        "--name",
        "d",
    )
    assert result.exit_code == EXIT_DIVERGED, result.output
    good = tmp_path / "d" / "checkpoints" / f"epoch-0001-step-{2 * steps_per_epoch:09d}.safetensors"
    assert f"the last good checkpoint is kept: {good}" in result.stderr
    before = good.read_bytes()
    assert nl.load_checkpoint(good).step == 2 * steps_per_epoch  # intact and loadable
    assert good.read_bytes() == before


# -- other data sources --------------------------------------------------------------------------
def test_trains_on_npy_files_and_cifar10_folders(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X, y = nl.data.blobs(n=120, n_classes=3, seed=1)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    result = run_cli(
        "train",
        "--no-report",
        "--data",
        tmp_path / "X.npy",
        "--epochs",
        5,
        "--runs-dir",
        tmp_path / "r",
    )
    assert result.exit_code == 0, result.output
    assert "test (30 samples)" in result.stdout and accuracy_of(result.stdout) > 0.8

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.permutation(np.arange(20) % 10)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    result = run_cli(
        "train",
        "--no-report",
        "--data",
        f"cifar10:{tmp_path}",
        "--hidden",
        "8",
        "--epochs",
        1,
        "--runs-dir",
        tmp_path / "r",
        "--name",
        "cifar",
    )
    assert result.exit_code == 0, result.output
    assert "test (20 samples)" in result.stdout  # CIFAR's own test batch is the test set
    assert nl.load(tmp_path / "r" / "cifar" / "model.safetensors").n_out == 10


# -- building runs from configs -----------------------------------------------------------------
def test_schedule_options_are_converted_from_epochs_to_steps() -> None:
    spe = 10  # steps per epoch: 100 rows in batches of 10

    def schedule(**optim):
        cfg = RunConfig.from_dict({"optim": {"lr": 0.1, **optim},
                                   "train": {"epochs": 4, "batch_size": 10}})
        return build_run(cfg, 2, 3, 10 * spe)["schedule"]

    assert schedule() is None  # constant: the optimizer's own lr
    step = schedule(schedule="step", decay_factor=0.5, decay_epochs=2)
    # every 2 epochs = 20 steps: steps 0..19 at 0.1, 20..39 at 0.05
    assert (step(19), step(20), step(40)) == (0.1, 0.05, 0.025)
    exp = schedule(schedule="exponential", decay_rate=0.5)
    assert exp(spe) == pytest.approx(0.1 * math.exp(-0.5))  # one epoch later: e^(-k)
    inv = schedule(schedule="inverse_time", decay_rate=1.0)
    assert inv(2 * spe) == pytest.approx(0.1 / 3)  # 1 / (1 + k * 2 epochs)
    cos = schedule(schedule="cosine")
    # 4 epochs = 40 steps; half way the cosine is at lr / 2, at the end 0
    assert (cos(0), cos(20), cos(40)) == pytest.approx((0.1, 0.05, 0.0))


def test_regularization_and_outputs_from_config() -> None:
    from neuronlab.regularizers import L1, L2, ElasticNet, MaxNorm

    def parts(**reg):
        return build_run(RunConfig.from_dict({"regularization": reg}), 3, 3, 1)

    assert parts()["regularizer"] is None and parts()["constraints"] == []
    assert isinstance(parts(l2=1e-3)["regularizer"], L2)
    assert isinstance(parts(l1=1e-3)["regularizer"], L1)
    both = parts(l1=1e-3, l2=2e-3)["regularizer"]
    assert isinstance(both, ElasticNet) and (both.l1, both.l2) == (1e-3, 2e-3)
    (c,) = parts(max_norm=3.0)["constraints"]
    assert isinstance(c, MaxNorm)

    X = np.zeros((12, 2), np.float32)

    def outputs(loss, y, **data):
        cfg = RunConfig.from_dict({"model": {"loss": loss}, "data": {"test_size": 0, **data}})
        return split_rows(cfg, data=(X, y)).n_outputs

    assert outputs("softmax", np.arange(12) % 3) == 3
    assert outputs("softmax", np.arange(12) % 3, classes=5) == 5  # declared
    assert outputs("binary_hinge", np.arange(12) % 2) == 1
    assert outputs("mse", np.zeros((12, 3))) == 3
    assert make_preprocessor(RunConfig.from_dict({"data": {"preprocess": "none"}})) is None
    pca = make_preprocessor(RunConfig.from_dict({"data": {"preprocess": "pca", "components": 5}}))
    assert pca.n_components == 5


def test_runs_dir_gets_timestamped_names(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["train", "--no-report", "--hidden", "8", "--epochs", 1, "--data", "xor"]
    assert run_cli(*args).exit_code == 0
    assert run_cli(*args).exit_code == 0  # within the same second a suffix keeps them apart
    names = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(names) == 2 and all(re.fullmatch(r"\d{8}-\d{6}(-\d+)?", n) for n in names)
    assert os.path.isfile(tmp_path / "runs" / names[0] / "model.safetensors")


def test_regression_lbfgs_and_models_without_a_run_config(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = (X @ np.array([1.0, 2.0, -1.0]) + 0.1 * rng.normal(size=200)).astype(np.float32)
    np.savez(tmp_path / "reg.npz", X=X, y=y)
    args = ["--data", tmp_path / "reg.npz", "--loss", "mse", "--runs-dir", tmp_path]
    result = run_cli("train", "--no-report", *args, "--epochs", 20, "--name", "reg")
    assert result.exit_code == 0, result.output
    assert "test (50 samples): mean squared error" in result.stdout
    # The run's own data is scored on its test split; the same file given explicitly, whole.
    assert "reg.npz test split (50 samples)" in run_cli("evaluate", tmp_path / "reg").output
    assert (
        "reg.npz (200 samples)"
        in run_cli("evaluate", tmp_path / "reg", "--data", tmp_path / "reg.npz").output
    )

    lbfgs = run_cli(
        "train",
        "--no-report",
        "--optimizer",
        "lbfgs",
        "--hidden",
        "8",
        "--epochs",
        2,
        "--runs-dir",
        tmp_path,
        "--name",
        "lbfgs",
    )
    assert lbfgs.exit_code == 0, lbfgs.output  # full batch: no lr or clipping passed to it
    clipped = run_cli(
        "train", "--no-report", "--optimizer", "lbfgs", "--clip-norm", "1", "--runs-dir", tmp_path
    )
    assert_user_error(clipped, "clip_norm does not apply to 'lbfgs'")

    bare = tmp_path / "bare.safetensors"  # saved from Python: no run config in its metadata
    nl.save(nl.mlp(3, [4], 2, rng=0), bare)
    assert_user_error(run_cli("evaluate", bare), "no run config", "--data")
