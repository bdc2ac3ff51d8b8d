"""The HTML report of real (short) `neuronlab train` runs, and the page as headless Chromium
renders it."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _reports import children
from click.testing import CliRunner

from neuronlab.cli import cli
from neuronlab.report import SECTION_IDS, image_shape_for, write_report
from neuronlab.train.loggers import read_metrics

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALWAYS = [s for s in SECTION_IDS if s not in ("weights", "decision-regions")]
PLOTS = [
    "loss",
    "accuracy",
    "learning-rate",
    "update-ratio",
    "gradient-norms",
    "dead-units",
    "activations",
    "gradients",
    "noise-scale",  # the Monitor's gradient noise records
    "spectrum",  # the model's weight spectra
]


def _train(runs: Path, name: str, *args: str) -> Path:
    r = CliRunner().invoke(
        cli, ["train", "--runs-dir", str(runs), "--name", name, "--no-progress", *args]
    )
    assert r.exit_code == 0, r.output
    return runs / name


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """The default run (digits, 64-256-10 ReLU) for 2 epochs; `train` writes the report
    before it returns (the default, in the background: test_report_background.py)."""
    return _train(tmp_path_factory.mktemp("runs"), "digits", "--epochs", "2", "--wait-report")


@pytest.fixture(scope="module")
def moons_run(tmp_path_factory) -> Path:
    return _train(
        tmp_path_factory.mktemp("runs"),
        "moons",
        "--data",
        "moons",
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--no-report",
    )


class _Page(HTMLParser):
    """Section ids, <img> sources and every URL-bearing attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a["id"] or "")
        if tag == "img":
            self.images.append(a["src"] or "")
        self.urls += [
            v or "" for k, v in attrs if k in ("src", "href", "srcset", "poster", "data", "action")
        ]


def _parse(path: Path) -> tuple[_Page, str]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return page, text


# -- the file ------------------------------------------------------------------------------------
def test_train_writes_the_report_with_every_section(digits_run):
    page, text = _parse(digits_run / "report.html")
    assert page.sections == ALWAYS + ["weights"]  # digits are 8x8 images, not 2-D
    assert "<pre>" in text and "Linear" in text  # the model summary
    assert "digits" in text and "val_acc" in text


def test_the_report_is_self_contained(digits_run):
    page, text = _parse(digits_run / "report.html")
    assert all(u.startswith(("data:image/png;base64,", "#")) for u in page.urls), page.urls
    assert not page.tags & {"script", "link", "iframe", "object", "embed"}
    assert (
        "http://" not in text
        and "https://" not in text
        and "url(" not in text
        and "@import" not in text
    )


def _notes(text: str) -> list[str]:
    """The page's notes (where a figure is missing, the note says why)."""
    return re.findall(r'<p class="note">(.*?)</p>', text, flags=re.DOTALL)


def test_every_image_is_a_png(digits_run):
    page, text = _parse(digits_run / "report.html")
    assert len(page.images) == len(PLOTS) + 1, _notes(text)  # + the weight grid
    for src in page.images:
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_the_diagnosis_section_lists_findings_or_says_none(digits_run):
    from neuronlab.babysit.diagnose import diagnose
    from neuronlab.plots import as_records
    from neuronlab.train import History

    _, text = _parse(digits_run / "report.html")
    section = text.split('<section id="diagnosis">', 1)[1].split("</section>", 1)[0]
    r = as_records(read_metrics(digits_run))
    h = History.from_dict(
        {
            "loss": r.loss.tolist(),
            "lr": r.lr.tolist(),
            "epochs": r.epochs,
            "monitor": r.monitor,
            "info": r.info,
        }
    )
    findings = diagnose(h)
    if findings:
        for f in findings:
            assert f.rule.replace("_", " ") in section and "Try:" in section
    else:
        assert "No problem found" in section


def test_a_2d_run_gets_decision_regions_and_no_weight_grid(moons_run):
    assert not (moons_run / "report.html").exists()  # --no-report
    r = CliRunner().invoke(cli, ["report", str(moons_run)])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == str(moons_run / "report.html")
    page, _ = _parse(moons_run / "report.html")
    assert page.sections == ALWAYS + ["decision-regions"]


def test_report_output_option_and_bad_directory(moons_run, tmp_path):
    out = tmp_path / "r.html"
    r = CliRunner().invoke(cli, ["report", str(moons_run), "-o", str(out)])
    assert r.exit_code == 0 and out.is_file()
    r = CliRunner().invoke(cli, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_a_run_without_model_or_monitor_records_still_renders(moons_run, tmp_path):
    run = tmp_path / "partial"
    run.mkdir()
    shutil.copy(moons_run / "config.toml", run)
    lines = [rec for rec in read_metrics(moons_run) if rec.get("event") != "monitor"]
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps(rec) + "\n" for rec in lines) + '{"event": "st'
    )
    page, text = _parse(write_report(run))  # the torn last line is ignored too
    assert page.sections == ALWAYS  # no model: no weight grid, no decision regions
    assert "no model.safetensors" in text
    assert "needs the model and the config" in text
    assert len(page.images) == 6  # loss, accuracy, lr and the three (empty) monitor plots


def test_lines_of_another_shape_in_metrics_jsonl_are_skipped(moons_run, tmp_path):
    """A tampered metrics.jsonl (a step that is not an integer, an info that is not a table, a
    monitor record with a list for its layer) still gives a report and a diagnosis."""
    run = tmp_path / "odd"
    shutil.copytree(moons_run, run)
    odd = [{"event": "step", "step": "a", "loss": 1.0}, {"event": "info", "info": [1]},
           {"event": "epoch", "epoch": None}, {"event": "train_begin", "info": "x"},
           {"event": "monitor", "step": "7", "layer": [1], "kind": "param"},
           {"event": "monitor", "step": 3, "layer": ["x"], "kind": "layer", "act_std": 1.0}]
    with (run / "metrics.jsonl").open("a") as f:
        f.writelines(json.dumps(rec) + "\n" for rec in odd)
    page, _ = _parse(write_report(run))
    assert page.sections[:3] == ["config", "summary", "metrics"]
    assert run_cli_diagnose(run) == 0


def run_cli_diagnose(run: Path) -> int:
    return CliRunner().invoke(cli, ["diagnose", str(run)]).exit_code


def test_an_empty_directory_renders_and_a_missing_one_raises(tmp_path):
    page, text = _parse(write_report(tmp_path))
    assert page.sections == ALWAYS
    assert "no config.toml" in text
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        write_report(tmp_path / "missing")


# -- the processes that draw it -------------------------------------------------------------------


needs_fork = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked drawing: Linux")


@needs_fork
def test_forked_drawing_processes_give_the_same_page_and_end(moons_run, tmp_path):
    before = children()
    one = write_report(moons_run, path=tmp_path / "one.html", workers=1).read_text()
    two = write_report(moons_run, path=tmp_path / "two.html", workers=2).read_text()
    assert one == two
    assert children() <= before  # every drawing process has ended


@needs_fork
def test_a_drawing_process_that_dies_loses_nothing(moons_run, tmp_path, monkeypatch):
    """A drawing process killed with a figure in hand: that figure is drawn by the parent."""
    from neuronlab import report

    parent, real = os.getpid(), report._Figure.html

    def html(self, png):
        if self.alt == "Loss" and os.getpid() != parent:
            os._exit(3)  # killed in the middle of the loss curve
        return real(self, png)

    monkeypatch.setattr(report._Figure, "html", html)
    page, _ = _parse(write_report(moons_run, path=tmp_path / "r.html", workers=2))
    assert page.sections == ALWAYS + ["decision-regions"] and len(page.images) == len(PLOTS) + 1


@needs_fork
def test_a_figure_that_fails_in_a_drawing_process_is_drawn_again(moons_run, tmp_path,
                                                                monkeypatch):
    """A plot that raises in a drawing process (that process's state, not the run's data) is
    tried once more in the parent: the page keeps every picture."""
    import dataclasses

    from neuronlab import report

    parent, real = os.getpid(), report._Figure.html

    def boom():
        raise MemoryError("the drawing process ran out of memory")

    def html(self, png):
        if self.alt == "Loss" and os.getpid() != parent:
            return real(dataclasses.replace(self, make=boom), png)
        return real(self, png)

    monkeypatch.setattr(report._Figure, "html", html)
    page, text = _parse(write_report(moons_run, path=tmp_path / "r.html", workers=2))
    assert len(page.images) == len(PLOTS) + 1, _notes(text)
    assert "ran out of memory" not in text


@needs_fork
def test_the_report_writer_writes_in_its_process_and_ends(moons_run, tmp_path):
    from neuronlab.report import ReportWriter

    expected = write_report(moons_run, path=tmp_path / "here.html").read_text()
    with ReportWriter(workers=2) as writer:
        pid = writer._pid
        assert pid is not None and pid in children()
        out = writer.write(moons_run, path=tmp_path / "there.html")
        assert out == tmp_path / "there.html" and out.read_text() == expected
    assert pid not in children()  # ended and reaped


@needs_fork
def test_the_report_writer_falls_back_to_this_process(moons_run, tmp_path):
    """Its process killed (or a report it could not write): the report is written here."""
    from neuronlab.report import ReportWriter

    with ReportWriter() as writer:
        os.kill(writer._pid, signal.SIGKILL)
        out = writer.write(moons_run, path=tmp_path / "r.html")
        assert out.is_file() and writer._pid is None
    with ReportWriter() as writer, pytest.raises(FileNotFoundError, match="run directory not found"):
        writer.write(tmp_path / "missing")


def test_image_shape_comes_from_the_data_source():
    assert image_shape_for({"data": {"source": "digits"}}, 64) == (8, 8)
    assert image_shape_for({"data": {"source": "cifar10:/data/cifar"}}, 3072) == (3, 32, 32)
    assert image_shape_for({"data": {"source": "digits"}}, 20) is None  # PCA to 20 components
    assert image_shape_for({"data": {"source": "moons"}}, 2) is None
    assert image_shape_for({"data": {"source": "x.npz", "image_shape": [1, 28, 28]}}, 784) == (
        1,
        28,
        28,
    )
    assert image_shape_for({}, None) is None


# -- the page in a browser -------------------------------------------------------------------------
def test_the_digits_report_renders_in_headless_chromium(digits_run, tmp_path):
    """Debian's Chromium (the Makefile installs it) must be there: this test fails, never skips."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    shot = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            requests: list[str] = []
            page.on("request", lambda req: requests.append(req.url))
            page.goto((digits_run / "report.html").as_uri(), wait_until="load")
            ids = page.eval_on_selector_all("section", "els => els.map(e => e.id)")
            images = page.eval_on_selector_all(
                "img", "els => els.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
            )
            heights = page.eval_on_selector_all("section", "els => els.map(e => e.offsetHeight)")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert ids == ALWAYS + ["weights"]
    assert len(images) == len(PLOTS) + 1, _notes((digits_run / "report.html").read_text())
    assert all(done and w > 0 and h > 0 for done, w, h in images), images
    assert all(h > 40 for h in heights)  # every section laid out with content
    assert all(u.startswith(("file:", "data:")) for u in requests), requests  # nothing fetched
    assert shot.stat().st_size > 50_000 and shot.read_bytes()[:4] == b"\x89PNG"
