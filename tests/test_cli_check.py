"""``neuronlab check`` prints the sanity report; ``neuronlab train`` ends with the diagnosis."""

from __future__ import annotations

import re

import numpy as np
from click.testing import CliRunner

import neuronlab as nl
from neuronlab.cli import EXIT_CHECK_FAILED, EXIT_USAGE, cli
from neuronlab.config import RunConfig
from neuronlab.runs import split_rows


def run_cli(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_check_passes_on_the_default_run():
    result = run_cli("check", "--hidden", "32")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("Sanity checks: all passed\n")
    for name in ("initial_loss", "regularization", "overfit", "gradcheck", "baseline",
                 "duplicates", "conflicts"):
        assert f"PASS  {name}" in out
    # digits: 1797 rows split 1168 / 180 / 449 (seed 0), no row repeated anywhere
    assert "to beat: majority class " in out and "on 449 test rows" in out
    assert "no test row (of 449) or validation row (of 180) repeats one of the 1168 training rows" in out
    assert "no identical training inputs carry different labels (1168 rows)" in out


def test_check_passes_on_the_notes_spiral_with_100_units():
    """The notes' spiral example: 2 standardised inputs, 100 ReLUs, 3 classes. Its initial
    loss is ln 3 within 5% (He weights in the output layer gave 2.04, 1.9x, and failed)."""
    result = run_cli("check", "--data", "spiral", "--hidden", "100")
    assert result.exit_code == 0, result.output
    line = next(s for s in result.stdout.splitlines() if s.startswith("PASS  initial_loss"))
    assert abs(float(line.split()[2]) / 1.0986 - 1) < 0.05, line


def test_check_fails_with_a_model_that_cannot_overfit():
    """A linear classifier (--hidden none) on XOR cannot reach 100% on 20 points."""
    result = run_cli("check", "--data", "xor", "--hidden", "none", "--max-steps", "100")
    assert result.exit_code == EXIT_CHECK_FAILED, result.output
    assert "FAIL  overfit" in result.stdout and "what to do:" in result.stdout


def test_check_takes_the_train_options():
    result = run_cli("check", "--activation", "nope")
    assert result.exit_code == EXIT_USAGE and "nope" in result.output
    assert "--lr" in run_cli("check", "--help").output


def test_train_prints_the_diagnosis(tmp_path):
    result = run_cli("train", "--no-report", "--no-progress", "--runs-dir", tmp_path, "--name", "r",
                     "--hidden", "32", "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert "Diagnosis:" in result.stdout


def _repeats(X, rows_a, rows_b):
    """Independent oracle: how many rows of rows_b have their bytes among rows_a's."""
    seen = {X[i].tobytes() for i in rows_a}
    return sum(X[i].tobytes() in seen for i in rows_b)


def test_check_finds_duplicates_across_the_runs_real_split_in_a_memmap(tmp_path, monkeypatch):
    """Digits written twice into X.npy (read memory-mapped): most test rows have their twin
    among the training rows. A leak: the check fails, naming rows of the data file."""
    monkeypatch.chdir(tmp_path)
    X, y = nl.data.digits()
    np.save(tmp_path / "X.npy", np.concatenate([X, X]))
    np.save(tmp_path / "y.npy", np.concatenate([y, y]))
    result = run_cli("check", "--data", str(tmp_path / "X.npy"), "--hidden", "16", "--max-steps", "50")
    assert result.exit_code == EXIT_CHECK_FAILED, result.output
    out = result.stdout
    s = split_rows(RunConfig().with_overrides({"data": {"source": str(tmp_path / "X.npy")}}))
    Xall = np.asarray(s.X)
    n_test = _repeats(Xall, s.parts.train, s.parts.test)
    n_val = _repeats(Xall, s.parts.train, s.parts.val)
    assert n_test > 0.5 * len(s.parts.test)
    line = next(t for t in out.splitlines() if t.startswith("FAIL  duplicates"))
    assert (f"{n_test} of {len(s.parts.test)} test rows ({n_test / len(s.parts.test):.1%}), "
            f"{n_val} of {len(s.parts.val)} validation rows") in line
    b, a = map(int, re.search(r"test row (\d+) = training row (\d+)", line).groups())
    assert b in s.parts.test and a in s.parts.train and (Xall[a] == Xall[b]).all()
    assert "the split leaks" in out
    assert "PASS  conflicts" in out  # twins with the same label are no conflict


def test_check_warns_of_conflicting_labels_and_still_passes(tmp_path):
    """Ten digits repeated with another label: warnings, exit 0."""
    X, y = nl.data.digits()
    Xc, yc = np.concatenate([X, X[:10]]), np.concatenate([y, (y[:10] + 1) % 10])
    np.savez(tmp_path / "d.npz", X=Xc, y=yc)
    result = run_cli("check", "--data", str(tmp_path / "d.npz"), "--hidden", "32")
    assert result.exit_code == 0, result.output
    out = result.stdout
    s = split_rows(RunConfig().with_overrides({"data": {"source": str(tmp_path / "d.npz")}}))
    train = set(s.parts.train.tolist())
    groups = sum(i in train and 1797 + i in train for i in range(10))
    assert groups > 0
    assert out.startswith("Sanity checks: all passed, ") and "warning" in out.splitlines()[0]
    line = next(t for t in out.splitlines() if t.startswith("WARN  conflicts"))
    assert f"{groups} group{'s' * (groups > 1)} of identical training inputs ({2 * groups} of " in line
    assert "what to do: identical inputs with different labels" in out
