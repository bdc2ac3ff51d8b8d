"""The documentation site builds in strict mode, and its pages show what they promise.

The site is built from a copy of docs/ as ``make docs`` builds it (docs/tools/build_site.py):
the tutorials rendered, the CLI reference generated from the click commands, then
``mkdocs build --strict``, so a broken link, anchor or API reference fails. Only the
quickstart is executed here (test_tutorials.py executes every tutorial); the others are
rendered from their cells without outputs, which is enough to check their links, and keeps
this test's time independent of how many tutorials there are. Three built pages are then opened in Debian's headless
Chromium through Playwright: the quickstart tutorial, the Trainer's API entry and the CLI page.
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _docs_tools import ROOT, TOOLS, cli_reference

import neuronlab as nl

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


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "docs", work / "docs", ignore=shutil.ignore_patterns("generated"))
    r = subprocess.run(
        [sys.executable, str(TOOLS / "build_site.py"), "--docs-dir", str(work / "docs"),
         "--site-dir", str(work / "site"), "--execute", "00_quickstart.py"],
        capture_output=True, text=True, cwd=work, check=False,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert "WARNING" not in out, out[-6000:]
    return work / "site"


def _first_line(obj: object) -> str:
    """The docstring's first line as the page shows it: code spans without their backticks."""
    line = (inspect.getdoc(obj) or "").splitlines()[0]
    return re.sub(r":\w+:`~?([^`]+)`", r"\1", line).replace("``", "").replace("`", "")


# -- the CLI reference, as generated ------------------------------------------------------------
def test_the_cli_reference_has_every_command_with_its_usage_and_options():
    from neuronlab.cli import cli

    text = cli_reference.markdown()
    with cli.make_context("neuronlab", [], resilient_parsing=True) as ctx:
        names = cli.list_commands(ctx)
    assert {"train", "evaluate", "search", "playground"} <= set(names)
    for name in names:
        assert f"### `neuronlab {name}`\n\n```text\nneuronlab {name} " in text, name
    train = text.split("### `neuronlab train`")[1].split("\n### ")[0]
    assert "- `--epochs INTEGER`: Epochs." in train and "- `--report / --no-report`" in train
    # the lazily imported command is documented from its own options, not only its help line
    playground = text.split("### `neuronlab playground`")[1].split("\n### ")[0]
    assert "- `--port INTEGER RANGE`" in playground
    assert "runs/\\<name\\>/" in text  # help text is escaped, not read as HTML


# -- the build ------------------------------------------------------------------------------------
def test_the_site_builds_in_strict_mode_with_every_page(site):
    for page in [
        "index.html",
        "generated/tutorials/00_quickstart/index.html",
        "generated/tutorials/00_quickstart.py",
        "generated/cli/index.html",
        "api/index.html",
        "api/training/index.html",
        "api/babysit/index.html",
        "ARCHITECTURE/index.html",
    ]:
        assert (site / page).is_file(), page
    training = (site / "api/training/index.html").read_text(encoding="utf-8")
    assert 'id="neuronlab.train.Trainer.fit"' in training
    # Sphinx roles of the docstrings are turned into code, not shown verbatim
    assert ":class:`" not in training and ":func:`" not in training


# -- the pages in a browser -----------------------------------------------------------------------
def test_three_pages_show_their_content_in_headless_chromium(site):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            page.on("request", lambda req: requests.append(req.url))

            # the tutorial: its printed accuracy, computed at build time, and its figure
            page.goto((site / "generated/tutorials/00_quickstart/index.html").as_uri())
            assert page.locator("h1").first.inner_text().startswith("Quickstart")
            outputs = page.locator("pre code").all_inner_texts()
            accuracy = [m for t in outputs for m in re.findall(r"test accuracy: (0\.\d+)", t)]
            assert len(accuracy) == 1 and float(accuracy[0]) > 0.9, outputs
            assert page.locator("pre code", has_text="neuronlab.plots.plot_loss").count() == 1
            figures = page.eval_on_selector_all(
                "article img", "els => els.map(i => [i.complete, i.naturalWidth])")
            assert figures and all(done and w > 100 for done, w in figures), figures

            # the Trainer's entry: its heading, docstring and the fit method
            page.goto((site / "api/training/index.html").as_uri())
            trainer = page.locator('[id="neuronlab.train.Trainer"]')
            assert trainer.is_visible() and "Trainer" in trainer.inner_text()
            body = page.locator("article").inner_text()
            assert _first_line(nl.Trainer) in body
            fit = page.locator('[id="neuronlab.train.Trainer.fit"]')
            assert fit.is_visible() and "fit" in fit.inner_text()
            assert _first_line(nl.Trainer.fit) in body
            assert body.index(_first_line(nl.Trainer.fit)) > body.index(_first_line(nl.Trainer))

            # the CLI page: the train command's section lists --epochs
            page.goto((site / "generated/cli/index.html").as_uri())
            assert page.locator("#neuronlab-train").is_visible()
            section = page.evaluate(
                """() => {
                    const parts = [];
                    let el = document.getElementById('neuronlab-train').nextElementSibling;
                    while (el && el.tagName !== 'H3') {
                        parts.push(el.innerText);
                        el = el.nextElementSibling;
                    }
                    return parts.join('\\n');
                }"""
            )
            assert "neuronlab train [OPTIONS]" in section
            assert "--epochs INTEGER: Epochs." in section
        finally:
            browser.close()
    assert requests and all(u.startswith(("file:", "data:")) for u in requests), [
        u for u in requests if not u.startswith(("file:", "data:"))
    ]
