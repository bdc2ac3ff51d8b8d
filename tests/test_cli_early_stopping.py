"""`neuronlab train` as users expect: early stopping that saves the best epoch's model, class
weights for imbalanced data, and a final line with train, validation and test scores."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from neuronlab.cli import EXIT_USAGE, cli
from neuronlab.config import load_config
from neuronlab.io import load


def run_cli(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def epochs_of(run: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if r["event"] == "epoch"]


def test_early_stopping_saves_the_best_epoch(tmp_path) -> None:
    # Adam at a high rate on a wide net overfits digits within a few epochs: val loss turns up
    result = run_cli("train", "--runs-dir", tmp_path, "--name", "es", "--no-report", "--no-progress",
                     "--hidden", 128, "--lr", 0.01, "--epochs", 60, "--early-stopping", 3)
    assert result.exit_code == 0, result.output
    run = tmp_path / "es"
    epochs = epochs_of(run)
    assert len(epochs) < 60  # stopped early
    best = min(range(len(epochs)), key=lambda i: epochs[i]["val_loss"])
    assert len(epochs) == best + 1 + 3  # three epochs without improvement after the best
    line = re.search(r"stopped after epoch (\d+) of 60; the saved model is epoch (\d+)'s", result.stdout)
    assert line and (int(line[1]), int(line[2])) == (len(epochs), best + 1), result.stdout
    model = load(run / "model.safetensors")
    assert model.metadata["epoch"] == best
    # the saved model scores the best validation loss (the same evaluator, the same rows)
    assert model.metadata["val"]["loss"] == pytest.approx(epochs[best]["val_loss"], rel=1e-6)
    # the last epoch is kept as a checkpoint
    last = max(p.name for p in (run / "checkpoints").iterdir())
    assert last.startswith(f"epoch-{len(epochs) - 1:04d}-")
    assert re.search(r"^accuracy: train 0\.\d{4}, validation 0\.\d{4}, test 0\.\d{4}$",
                     result.stdout, re.M), result.stdout
    assert load_config(run / "config.toml").train.early_stopping == 3


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (("--early-stopping", 2, "--monitor", "val_error"), "not measured for a classification"),
        (("--early-stopping", 2, "--val-size", 0), "needs a validation split"),
        (("--early-stopping", -1), "train.early_stopping"),
        (("--class-weight", "heavy"), "none or balanced"),
    ],
)
def test_bad_early_stopping_and_weights_are_refused(tmp_path, options, fragment) -> None:
    runs = tmp_path / "runs"
    result = run_cli("train", "--runs-dir", runs, "--name", "r", *options)
    assert result.exit_code == EXIT_USAGE, result.output
    assert fragment in result.stderr and "Traceback" not in result.output
    assert not runs.exists()


def _recall_of_minority(run: Path, X: np.ndarray, y: np.ndarray) -> float:
    model = load(run / "model.safetensors")
    scores = model.forward(model.preprocessor.transform(X), training=False)
    pred = scores.argmax(axis=1)
    return float((pred[y == 1] == 1).mean())


def test_balanced_class_weight_raises_minority_recall(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n_major, n_minor = 950, 50  # 95/5, overlapping blobs
    X = np.concatenate([rng.normal(0.0, 1.0, (n_major, 2)), rng.normal(1.2, 1.0, (n_minor, 2))])
    y = np.repeat([0, 1], [n_major, n_minor])
    np.savez(tmp_path / "imb.npz", X=X.astype(np.float32), y=y)
    args = ("--data", tmp_path / "imb.npz", "--hidden", 16, "--epochs", 15, "--no-report",
            "--no-progress", "--runs-dir", tmp_path / "runs")
    plain = run_cli("train", *args, "--name", "plain")
    weighted = run_cli("train", *args, "--name", "bal", "--class-weight", "balanced")
    assert plain.exit_code == 0 and weighted.exit_code == 0, weighted.output
    Xf = X.astype(np.float32)
    r_plain = _recall_of_minority(tmp_path / "runs" / "plain", Xf, y)
    r_bal = _recall_of_minority(tmp_path / "runs" / "bal", Xf, y)
    assert r_bal > r_plain + 0.2, (r_plain, r_bal)
