"""Every tutorial in docs/tutorials/ runs, asserts and renders (docs/tutorials/README.md).

Each tutorial is executed cell by cell exactly as the site build does, so the numbers its
``assert`` lines reproduce are checked here. A tutorial whose first lines (before the first
cell) hold ``# slow`` runs in the second tier (make test-slow); the others must stay under
about 20 s.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from _docs_tools import render_tutorials

TUTORIALS = render_tutorials.tutorial_files()


def _param(path):
    marks = [pytest.mark.slow] if render_tutorials.is_slow(path) else []
    return pytest.param(path, id=path.stem, marks=marks)


def test_there_are_tutorials_and_they_follow_the_naming_contract():
    assert TUTORIALS, "no docs/tutorials/NN_topic.py"
    for path in TUTORIALS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.py", path.name), path.name


@pytest.mark.parametrize("path", [_param(p) for p in TUTORIALS])
def test_tutorial_runs_and_renders(path, tmp_path):
    page = render_tutorials.render(path, tmp_path)
    text = page.read_text(encoding="utf-8")
    cells = render_tutorials.parse(path.read_text(encoding="utf-8"))
    assert text.startswith(cells[0].source.splitlines()[0])  # the title
    for cell in cells:
        if cell.kind == "code":
            assert cell.source in text  # every code cell is shown as written
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        data = (tmp_path / image).read_bytes()
        if image.endswith(".svg"):  # a drawing: a well-formed SVG document
            assert ET.fromstring(data).tag.endswith("svg"), image
        else:
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, image
    assert (tmp_path / path.name).read_bytes() == path.read_bytes()  # the source beside it


# -- the renderer itself, on small tutorials written here -----------------------------------
EXAMPLE = '''\
# %% [markdown]
# # A title
# Some *prose*.

# %%
from pathlib import Path
from matplotlib.figure import Figure
print("hello")
Path("scratch.txt").write_text("x")
value = 6 * 7
value

# %%
None

# %%
fig = Figure()
fig.add_subplot().plot([0, 1], [1, 0])
fig

# %% [markdown]
# The end.
'''


def test_render_writes_markdown_outputs_values_and_figures(tmp_path, monkeypatch):
    src = tmp_path / "src" / "07_example.py"
    src.parent.mkdir()
    src.write_text(EXAMPLE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    page = render_tutorials.render(src, tmp_path / "out")
    text = page.read_text(encoding="utf-8")
    assert page == tmp_path / "out" / "07_example.md"
    assert text.startswith("# A title\nSome *prose*.\n\n```python\nfrom pathlib import Path\n")
    assert "```text\nhello\n```\n\n```text\n42\n```" in text  # stdout, then the value
    assert "```python\nNone\n```\n\n```python\nfig = Figure()" in text  # None shows nothing
    assert "![Figure of cell 4](07_example_4.png)" in text
    assert (tmp_path / "out" / "07_example_4.png").read_bytes()[:4] == b"\x89PNG"
    assert text.index("The end.") > text.index("07_example_4.png")
    assert not (tmp_path / "scratch.txt").exists()  # the cells ran in a temporary folder
    assert not render_tutorials.is_slow(src)


def test_render_without_executing_shows_the_cells_and_no_outputs(tmp_path):
    src = tmp_path / "07_example.py"
    src.write_text(EXAMPLE.replace("value = 6 * 7", "raise SystemExit('never run')"),
                   encoding="utf-8")
    text = render_tutorials.render(src, tmp_path / "out", execute=False).read_text("utf-8")
    assert text.startswith("# A title\nSome *prose*.\n\n!!! note\n    This build did not")
    assert "raise SystemExit('never run')" in text and "```text" not in text
    assert not list((tmp_path / "out").glob("*.png"))


def test_a_failing_cell_names_the_tutorial_and_the_cell(tmp_path):
    src = tmp_path / "03_broken.py"
    src.write_text(
        "# slow\n# %% [markdown]\n# # Broken\n\n# %%\nx = 1\n\n# %%\n\nassert x == 2, 'x is 1'\n",
        encoding="utf-8",
    )
    assert render_tutorials.is_slow(src)
    with pytest.raises(render_tutorials.TutorialError, match=r"03_broken\.py, cell 3 \(line 10\)"
                       r": AssertionError: x is 1") as err:
        render_tutorials.render(src, tmp_path / "out")
    cause = err.value.__cause__
    assert isinstance(cause, AssertionError)
    tb = cause.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    assert tb.tb_frame.f_code.co_filename == str(src) and tb.tb_lineno == 10  # its own line


def test_a_tutorial_must_open_with_a_title(tmp_path):
    src = tmp_path / "04_untitled.py"
    src.write_text("# %%\nx = 1\n", encoding="utf-8")
    with pytest.raises(render_tutorials.TutorialError, match="first cell must be Markdown"):
        render_tutorials.render(src, tmp_path / "out")


def test_the_command_line_renders_the_files_given(tmp_path):
    import subprocess
    import sys

    src = tmp_path / "05_cli.py"
    src.write_text("# %% [markdown]\n# # CLI\n\n# %%\nprint(1 + 1)\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(render_tutorials.__file__), str(tmp_path / "out"), str(src)],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "05_cli.py ->" in out
    assert "```text\n2\n```" in (tmp_path / "out" / "05_cli.md").read_text(encoding="utf-8")
