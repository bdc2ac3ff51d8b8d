"""``neuronlab lr-find`` and ``neuronlab train --lr auto`` on the digits, in-process with
CliRunner: the plot, the table and the JSON, the number saved with the run, the report's
section, resume, and one ``error:`` line for every mistake."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from neuronlab.cli import EXIT_USAGE, cli
from neuronlab.config import load_config

LR_LINE = re.compile(r"lr auto: (\S+) \(valley rule; (\S+) to (\S+) over 3 seeds\)")


def run_cli(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_user_error(result, *fragments: str) -> None:
    """Exit 2, exactly one ``error:`` line naming the problem, no traceback."""
    assert result.exit_code == EXIT_USAGE, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in errors[0], errors[0]


def assert_png(path: Path) -> None:
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
        im.verify()


# -- lr-find -------------------------------------------------------------------------------------
def test_lr_find_on_the_digits_prints_the_rules_and_writes_a_png(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("lr-find", "--no-progress")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for rule in ("valley", "steepest", "minimum/10"):
        assert re.search(rf"^{re.escape(rule)}\s+\d", out, re.MULTILINE), out
    m = re.search(r"^suggested lr: (\S+)$", out, re.MULTILINE)
    assert m and 3e-4 < float(m.group(1)) < 6e-3, out  # Adam on the digits: about 1.3e-3
    assert_png(tmp_path / "lr_find.png")  # the default: in the current folder
    assert "plot: lr_find.png" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr_find.png"]  # no run folder


def test_lr_find_json_takes_the_options_of_train(tmp_path):
    png = tmp_path / "sgd.png"
    result = run_cli("lr-find", "--optimizer", "momentum", "--hidden", "32", "--steps", 40,
                     "--json", "-o", png)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["rule"] == "valley" and doc["settings"]["steps"] == 40
    assert len(doc["sweeps"]) == 3 and all(len(s["lr"]) <= 40 for s in doc["sweeps"])
    med, lo, hi = doc["suggestions"]["valley"]
    assert doc["suggestion"] == med and lo <= med <= hi
    assert_png(png)


@pytest.mark.parametrize("args, fragments", [
    (["--steps", 2], ["--steps"]),
    (["--start-lr", 0], ["--start-lr"]),
    (["--start-lr", 1, "--end-lr", 0.5], ["--end-lr", "must be > --start-lr"]),
    (["--optimizer", "lbfgs"], ["full batch"]),
    (["--lr", "fast"], ["--lr", "not a number or 'auto'"]),
    (["--hidden", "0"], ["model.hidden"]),
    (["-o", "no/such/folder/x.png"], ["--output", "no/such/folder"]),
])
def test_lr_find_mistakes_are_one_error_line(tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    assert_user_error(run_cli("lr-find", "--steps", 10, *args), *fragments)


def test_lr_find_is_listed():
    result = run_cli("--help")
    assert result.exit_code == 0
    assert re.search(r"^\s+lr-find\s+Find a learning rate", result.output, re.MULTILINE)


# -- train --lr auto -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def auto_run(tmp_path_factory) -> tuple[Path, object]:
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli("train", "--lr", "auto", "--epochs", 2, "--runs-dir", runs, "--name", "auto",
                     "--no-progress", "--wait-report")
    assert result.exit_code == 0, result.output
    return runs / "auto", result


def test_train_lr_auto_trains_with_the_found_rate_and_saves_it(auto_run):
    run_dir, result = auto_run
    m = LR_LINE.search(result.stderr)
    assert m, result.stderr
    lr, lo, hi = (float(g) for g in m.groups())
    assert lo <= lr <= hi
    with (run_dir / "config.toml").open("rb") as f:
        saved = tomllib.load(f)["optim"]["lr"]
    assert isinstance(saved, float) and saved == lr  # a number: resume and the report read it
    assert load_config(run_dir / "config.toml").optim.lr == lr
    sweep = json.loads((run_dir / "lr_find.json").read_text())
    assert sweep["lr"] == lr and sweep["rule"] == "valley" and len(sweep["sweeps"]) == 3
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["lr"] for r in epochs if r.get("event") == "epoch"} == {lr}
    assert "accuracy: train" in result.stdout


def test_the_report_draws_the_range_test(auto_run):
    run_dir, _ = auto_run
    page = (run_dir / "report.html").read_text()
    section = re.search(r'<section id="lr-find">(.*?)</section>', page, re.DOTALL)
    assert section and "<img" in section.group(1) and "valley rule" in section.group(1)


def test_a_run_with_lr_auto_resumes_with_its_number(auto_run):
    run_dir, _ = auto_run
    before = (run_dir / "lr_find.json").read_bytes()
    result = run_cli("train", "--resume", run_dir, "--epochs", 3, "--no-progress", "--no-report")
    assert result.exit_code == 0, result.output
    assert "lr auto" not in result.stderr  # no second sweep
    assert (run_dir / "lr_find.json").read_bytes() == before


def test_lr_auto_in_the_config_file(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('[model]\nhidden = [32]\n[optim]\noptimizer = "momentum"\nlr = "auto"\n'
                   "[train]\nepochs = 1\n")
    result = run_cli("train", "--config", cfg, "--runs-dir", tmp_path / "runs", "--name", "c",
                     "--no-progress", "--no-report")
    assert result.exit_code == 0, result.output
    lr = float(LR_LINE.search(result.stderr).group(1))
    assert load_config(tmp_path / "runs" / "c" / "config.toml").optim.lr == lr
    assert 1e-3 < lr < 0.1  # momentum SGD on the digits: about 5e-3


@pytest.mark.parametrize("args, text, fragments", [
    (["--lr", "-1"], None, ["--lr", "optim.lr must be > 0"]),
    (["--lr", "fast"], None, ["--lr", "'fast' is not a number or 'auto'"]),
    (["--lr", "nan"], None, ["--lr", "optim.lr must be finite"]),
    (["--lr", "auto", "--optimizer", "lbfgs"], None, ["full batch"]),
    ([], '[optim]\nlr = "fast"\n', ["optim.lr must be a number, got 'fast'", "'auto'"]),
    ([], "[optim]\nlr = -0.5\n", ["optim.lr must be > 0"]),
])
def test_bad_learning_rates_are_one_error_line_and_leave_no_run(tmp_path, args, text, fragments):
    extra = []
    if text is not None:
        (tmp_path / "run.toml").write_text(text)
        extra = ["--config", tmp_path / "run.toml"]
    runs = tmp_path / "runs"
    assert_user_error(run_cli("train", *args, *extra, "--runs-dir", runs, "--epochs", 1),
                      *fragments)
    assert not runs.exists() or not any(runs.iterdir())
