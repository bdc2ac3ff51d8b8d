"""``neuronlab diagnose RUN_DIR [--verify] [--steps N] [--json]``: the diagnosis of a run
folder, and with ``--verify`` each finding tested by a replay.

Most tests use one short run with a learning rate 30x the default (Adam 0.03, 2 epochs).
The acceptance tests make four runs bad on purpose with ``neuronlab train`` on digits (3
epochs each; about 8 s for all of them, so they stay in the default tier) and check that
``diagnose --verify`` fires the right finding and confirms its fix."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from neuronlab.babysit.verify import VERIFY_FILE, load_verifications, verify
from neuronlab.cli import EXIT_USAGE, cli


def run_cli(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def train_run(runs: Path, name: str, *options: object) -> Path:
    result = run_cli("train", "--no-report", "--no-progress", "--runs-dir", runs, "--name", name,
                     *options)
    assert result.exit_code == 0, result.output
    return runs / name


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_user_error(result, *fragments: str) -> None:
    """Exit 2, exactly one ``error:`` line naming the problem, no traceback."""
    assert result.exit_code == EXIT_USAGE, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in errors[0], errors[0]


@pytest.fixture(scope="module")
def hot_run(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("runs"), "hot", "--epochs", 2, "--lr", 0.03)


@pytest.fixture
def run(hot_run, tmp_path) -> Path:
    return Path(shutil.copytree(hot_run, tmp_path / "hot"))


# -- fast ------------------------------------------------------------------------------------
def test_diagnose_verify_confirms_the_lower_learning_rate_end_to_end(run):
    before = digest(run)
    result = run_cli("diagnose", run, "--verify", "--steps", 30)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Diagnosis: 1 finding" in out and "[warning] lr_too_high" in out
    line = next(l for l in out.splitlines() if l.startswith("1. lr_too_high: "))
    assert line.startswith("1. lr_too_high: verified: lr 0.03 → 0.003 lowered the validation "
                           "loss from "), line
    assert "in 30 steps from checkpoint step" in line and "(−" in line
    assert f"verify: {run / VERIFY_FILE}" in result.stderr
    after = digest(run)
    assert {k: v for k, v in after.items() if k != VERIFY_FILE} == before
    (v,) = load_verifications(run)
    assert v.rule == "lr_too_high" and v.helped and v.steps == 30 and v.changed < v.original


def test_diagnose_alone_prints_the_diagnosis_and_writes_nothing(run):
    before = digest(run)
    result = run_cli("diagnose", run)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Diagnosis: 1 finding\n1. [warning] lr_too_high: ")
    assert "verified" not in result.stdout and "Verification" not in result.stdout
    assert digest(run) == before


def test_diagnose_json(run):
    result = run_cli("diagnose", run, "--verify", "--steps", 10, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run"] == str(run) and doc["verify_file"] == str(run / VERIFY_FILE)
    assert [f["rule"] for f in doc["findings"]] == ["lr_too_high"]
    assert [v["rule"] for v in doc["verifications"]] == ["lr_too_high"]
    assert doc["verifications"][0]["curves"]["changed"][-1][0] == 10
    assert json.loads(run_cli("diagnose", run, "--json").stdout)["verifications"] is None


def test_findings_without_a_change_to_replay_say_so(tmp_path, monkeypatch):
    from neuronlab.babysit import diagnose as dg
    from neuronlab.babysit.findings import Finding

    run = train_run(tmp_path, "plain", "--epochs", 1)
    fake = [Finding("initial_loss", "warning", "off", {}, "check the init")]
    monkeypatch.setattr(dg, "diagnose", lambda history, **kw: fake)
    result = run_cli("diagnose", run, "--verify", "--steps", 5)
    assert result.exit_code == 0, result.output
    assert "1. initial_loss: not replayed (nothing to replay for this rule)" in result.stdout
    assert load_verifications(run) == []


def test_a_folder_that_is_not_a_run_is_one_error_line(tmp_path):
    assert_user_error(run_cli("diagnose", tmp_path), "not a run directory", "config.toml")
    assert_user_error(run_cli("diagnose", tmp_path / "missing", "--verify"), "not found")
    (tmp_path / "file.txt").write_text("x")
    assert_user_error(run_cli("diagnose", tmp_path / "file.txt"), "not found")
    assert not (tmp_path / VERIFY_FILE).exists()


def test_verify_without_a_checkpoint_replays_from_scratch(run):
    shutil.rmtree(run / "checkpoints")
    assert run_cli("diagnose", run).exit_code == 0  # the diagnosis needs none
    result = run_cli("diagnose", run, "--verify", "--steps", 10)
    assert result.exit_code == 0, result.output
    assert (run / VERIFY_FILE).exists()


def test_a_corrupted_checkpoint_is_one_error_line(run):
    for p in (run / "checkpoints").iterdir():
        data = bytearray(p.read_bytes())
        data[-10] ^= 0xFF
        p.write_bytes(bytes(data))
    assert_user_error(run_cli("diagnose", run, "--verify", "--steps", 5), "corrupted")
    assert not (run / VERIFY_FILE).exists()


def test_bad_steps_is_a_usage_error(run):
    assert_user_error(run_cli("diagnose", run, "--verify", "--steps", 0), "--steps")


def test_diagnose_is_listed():
    result = run_cli("--help")
    assert result.exit_code == 0 and "diagnose" in result.stdout


# -- acceptance: four runs made bad on purpose -------------------------------------------------
@pytest.fixture(scope="module")
def pixels(tmp_path_factory) -> Path:
    """The digits at their raw pixel scale, 0-16 (what sklearn ships), as a data file."""
    import neuronlab as nl

    X, y = nl.data.digits()
    path = tmp_path_factory.mktemp("data") / "pixels.npz"
    np.savez(path, X=(X * 16).astype(np.float32), y=y)
    return path


BAD_RUNS = {
    # name: (train options, the rule that must fire, the change that must help)
    "lr_x30": (["--lr", 0.03], "lr_too_high", "lr 0.03 → 0.003"),
    "lr_x1e-3": (["--lr", 1e-6], "lr_too_low", "lr 1e-06 → 0.0001"),
    "l2_x1e3": (["--l2", 1.0], "regularization_too_strong", "l2 1 → 0.01"),
    # He init is far too large for sigmoid units fed raw 0-16 pixels: they saturate
    "sigmoid_large_init": (["--activation", "sigmoid", "--init", "he", "--preprocess", "none",
                            "--data", "PIXELS"], "saturation", "init he → glorot (for sigmoid)"),
}

@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory, pixels) -> dict[str, Path]:
    runs = tmp_path_factory.mktemp("bad")
    return {name: train_run(runs, name, "--epochs", 3,
                            *[pixels if o == "PIXELS" else o for o in options])
            for name, (options, _, _) in BAD_RUNS.items()}


@pytest.mark.parametrize("name", list(BAD_RUNS))
def test_diagnose_verify_fires_and_confirms_the_right_finding(bad_runs, name):
    _, rule, change = BAD_RUNS[name]
    result = run_cli("diagnose", bad_runs[name], "--verify", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert rule in [f["rule"] for f in doc["findings"]], doc["findings"]
    mine = {v["change"]: v for v in doc["verifications"] if v["rule"] == rule}
    assert mine[change]["helped"], mine[change]
    assert mine[change]["improvement"] >= 0.1


@pytest.mark.parametrize("name", list(BAD_RUNS))
def test_the_fix_of_each_bad_run_is_confirmed_by_its_replay(bad_runs, name):
    """The replay half of the acceptance, whatever the rules fire: handed the finding, verify
    confirms its change with a real improvement of the validation loss."""
    _, rule, change = BAD_RUNS[name]
    found = {v.change: v for v in verify(bad_runs[name], [rule])}
    v = found[change]
    assert v.helped and not v.changed_diverged, v.summary()
    assert v.improvement >= 0.1, v.summary()
