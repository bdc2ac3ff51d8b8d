"""Execute jupytext "percent" tutorials and write them as Markdown pages for the docs site.

A tutorial is a Python file of cells (docs/tutorials/README.md is the contract)::

    # slow                      <- optional, before the first cell: the test runs it in the
                                   second tier (make test-slow)
    # %% [markdown]
    # # A title
    # Prose, in Markdown, one comment per line.

    # %%
    import neuronlab as nl
    x = 1 + 1
    x                           <- a last expression that is not None is shown

:func:`render` runs the cells in order in one namespace (matplotlib's Agg backend, the
working directory a fresh temporary folder), captures what each code cell prints and the value
of its last expression, and writes ``<stem>.md`` into the output folder: Markdown cells as
they are, code cells as ``python`` blocks, printed text and values as ``text`` blocks, and a
matplotlib Figure as a PNG beside the page (an object with ``_repr_svg_``, such as
``nl.graph.draw``'s, as an SVG file). A failing cell raises :class:`TutorialError`
naming the tutorial and the cell, chained to the original exception, whose traceback points
at the tutorial's own lines.

Command line: ``python docs/tools/render_tutorials.py OUT_DIR [FILES...]`` (every
``docs/tutorials/[0-9]*.py`` when no file is given).
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
CELL = re.compile(r"^# %%(?P<rest>.*)$")
MARKDOWN = re.compile(r"^\s*\[(markdown|md)\]")
SLOW = "# slow"


class TutorialError(RuntimeError):
    """A tutorial cell raised: the message names the tutorial, the cell and its first line."""


@dataclass(frozen=True)
class Cell:
    """One cell of a percent-format file.

    Parameters
    ----------
    kind : {"markdown", "code"}
    source : str
        For Markdown, the text without its comment marks; for code, the code as written.
    line : int
        The 1-based line of the file where the cell's content starts.
    """

    kind: str
    source: str
    line: int


def tutorial_files(folder: Path = TUTORIALS) -> list[Path]:
    """The tutorials of ``folder``: files named ``NN_topic.py``, in order."""
    return sorted(p for p in folder.glob("[0-9]*.py") if p.is_file())


def header(text: str) -> list[str]:
    """The lines before the first cell marker (where the ``# slow`` marker goes)."""
    lines = []
    for line in text.splitlines():
        if CELL.match(line):
            break
        lines.append(line)
    return lines


def is_slow(path: Path) -> bool:
    """Whether the tutorial declares itself slow with a ``# slow`` line before its first cell."""
    return any(line.strip() == SLOW for line in header(path.read_text(encoding="utf-8")))


def parse(text: str) -> list[Cell]:
    """Split a percent-format file into cells; empty cells are dropped.

    Parameters
    ----------
    text : str
        The file's contents.

    Returns
    -------
    list of Cell
    """
    cells: list[Cell] = []
    kind: str | None = None
    start = 0
    body: list[str] = []

    def close() -> None:
        if kind is None:
            return
        lines = list(body)
        first = start
        while lines and not lines[0].strip():
            lines.pop(0)
            first += 1
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            return
        if kind == "markdown":
            lines = [_uncomment(line) for line in lines]
        cells.append(Cell(kind, "\n".join(lines), first))

    for number, line in enumerate(text.splitlines(), start=1):
        m = CELL.match(line)
        if m:
            close()
            kind = "markdown" if MARKDOWN.match(m["rest"]) else "code"
            start, body = number + 1, []
        elif kind is not None:
            body.append(line)
    close()
    return cells


def _uncomment(line: str) -> str:
    if line.startswith("# "):
        return line[2:]
    if line.startswith("#"):
        return line[1:]
    return line


def _run_cell(cell: Cell, filename: str, namespace: dict[str, Any]) -> tuple[str, Any]:
    """Execute one code cell; return what it printed and the value of its last expression."""
    # Pad with newlines so that the code's line numbers are the file's: a traceback points at
    # the tutorial's own line.
    tree = ast.parse("\n" * (cell.line - 1) + cell.source, filename=filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tree, filename, "exec"), namespace)
        value = eval(compile(last, filename, "eval"), namespace) if last is not None else None
    return out.getvalue(), value


def _fence(kind: str, text: str) -> str:
    # A fence longer than any backtick run inside the text, so that output cannot close it.
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{kind}\n{text.rstrip()}\n{ticks}"


def render(
    path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, execute: bool = True
) -> Path:
    """Execute a tutorial and write its Markdown page (and figures) into ``out_dir``.

    Parameters
    ----------
    path : path-like
        The tutorial, a percent-format ``.py`` file.
    out_dir : path-like
        Where ``<stem>.md``, its figures ``<stem>_<cell>.png`` and a copy of the source go;
        created when missing.
    execute : bool, default True
        False writes the page without running it: the cells as written, no outputs, and a
        note saying so (a quick build that checks the pages' links, not their numbers).

    Returns
    -------
    Path
        The Markdown page.

    Raises
    ------
    TutorialError
        When a cell raises (an ``assert`` of the tutorial included), naming the tutorial and
        the cell; the original exception is its ``__cause__``.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.figure import Figure

    path = Path(path).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = parse(path.read_text(encoding="utf-8"))
    if not cells or cells[0].kind != "markdown" or not cells[0].source.startswith("# "):
        raise TutorialError(f"{path.name}: the first cell must be Markdown starting with '# Title'")

    namespace: dict[str, Any] = {"__name__": "__main__"}
    parts: list[str] = []
    old_cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix=f"tutorial-{path.stem}-") as workdir:
        os.chdir(workdir)
        try:
            for number, cell in enumerate(cells, start=1):
                if cell.kind == "markdown":
                    parts.append(cell.source)
                    continue
                parts.append(_fence("python", cell.source))
                if not execute:
                    continue
                try:
                    printed, value = _run_cell(cell, str(path), namespace)
                except Exception as e:
                    raise TutorialError(
                        f"{path.name}, cell {number} (line {cell.line}): "
                        f"{type(e).__name__}: {e}"
                    ) from e
                if printed.strip():
                    parts.append(_fence("text", printed))
                if isinstance(value, Figure):
                    image = f"{path.stem}_{number}.png"
                    value.savefig(out_dir / image, dpi=100, bbox_inches="tight")
                    plt.close(value)
                    parts.append(f"![Figure of cell {number}]({image})")
                elif hasattr(value, "_repr_svg_"):  # an SVG drawing (nl.graph.draw), as Jupyter
                    image = f"{path.stem}_{number}.svg"
                    (out_dir / image).write_text(value._repr_svg_(), encoding="utf-8")
                    parts.append(f"![Drawing of cell {number}]({image})")
                elif value is not None:
                    parts.append(_fence("text", repr(value)))
        finally:
            os.chdir(old_cwd)
            plt.close("all")

    shutil.copyfile(path, out_dir / path.name)
    if not execute:
        note = "!!! note\n    This build did not execute the tutorial: outputs are not shown."
        parts.insert(1, note)
    parts.append(
        f"---\n\n*This page is generated from [`{path.name}`]({path.name}), which the tests "
        "execute; every number on it was computed when the site was built.*"
    )
    page = out_dir / f"{path.stem}.md"
    page.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return page


def main(argv: list[str] | None = None) -> int:
    """``render_tutorials.py OUT_DIR [FILES...]``: render tutorials, print one line for each."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[0])
        print("usage: render_tutorials.py OUT_DIR [FILES...]")
        return 0 if args else 2
    out_dir, files = Path(args[0]), [Path(f) for f in args[1:]] or tutorial_files()
    for f in files:
        t0 = time.perf_counter()
        page = render(f, out_dir)
        print(f"{f.name} -> {page} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
