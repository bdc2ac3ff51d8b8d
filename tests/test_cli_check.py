"""``neuronlab check`` prints the sanity report; ``neuronlab train`` ends with the diagnosis."""

from __future__ import annotations

from click.testing import CliRunner

from neuronlab.cli import EXIT_CHECK_FAILED, EXIT_USAGE, cli


def run_cli(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_check_passes_on_the_default_run():
    result = run_cli("check", "--hidden", "32")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("Sanity checks: all passed")
    for name in ("initial_loss", "regularization", "overfit", "gradcheck"):
        assert f"PASS  {name}" in out


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
