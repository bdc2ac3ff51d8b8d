"""The API reference covers the public API, and its docstrings are complete (numpydoc).

The public API is ``neuronlab.__all__`` and the ``__all__`` of every module the API pages
(docs/api/*.md) render with ``::: module``. Every public class and function, and every public
method of those classes, has a docstring; one with parameters names each of them in a
``Parameters`` section (tests/docs/_docstrings.py has the rules).

Docstrings written before this test are listed, with what they miss, in
tests/docs/docstrings_todo.txt. The test fails when a name that is not in that list falls
short, and when a listed name has been completed (delete its line: the list only shrinks).
``python tests/docs/test_docstrings.py --update`` rewrites the list from the code.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import _docstrings as D

import neuronlab as nl

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api"
TODO = Path(__file__).with_name("docstrings_todo.txt")


def rendered_paths() -> list[str]:
    """The dotted paths the API pages render (``::: path``), page by page."""
    pattern = re.compile(r"^::: (\S+)", flags=re.MULTILINE)
    return [m for page in sorted(API.glob("*.md"))
            for m in pattern.findall(page.read_text(encoding="utf-8"))]


def public_objects() -> dict[str, object]:
    objects = D.public_objects(nl)
    for path in rendered_paths():
        obj = D.resolve(path)
        if isinstance(obj, types.ModuleType):
            objects.update(D.public_objects(obj))
        else:
            objects[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return objects


def read_todo() -> dict[str, str]:
    out = {}
    for line in TODO.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, what = line.partition(" :: ")
            out[name.strip()] = what.strip()
    return out


def write_todo(problems: dict[str, str]) -> None:
    head = [
        "# Public names whose docstrings are incomplete: `qualified name :: what is missing`.",
        "# tests/docs/test_docstrings.py fails on any other incomplete name, and on a line",
        "# here whose name is now complete.",
        "# Regenerate: python tests/docs/test_docstrings.py --update",
    ]
    TODO.write_text("\n".join(head + [f"{k} :: {v}" for k, v in problems.items()]) + "\n",
                    encoding="utf-8")


# -- the pages cover the API --------------------------------------------------------------------
def test_every_rendered_path_resolves():
    paths = rendered_paths()
    assert "neuronlab.train" in paths and "neuronlab.babysit.monitor" in paths
    for path in paths:
        D.resolve(path)


def test_the_namespace_page_links_every_name_of_neuronlab_all():
    text = (API / "index.md").read_text(encoding="utf-8")
    missing = [name for name in nl.__all__ if f"[`{name}`]" not in text]
    assert not missing, f"docs/api/index.md does not list {missing}"


def test_every_babysitting_module_has_its_section():
    text = (API / "babysit.md").read_text(encoding="utf-8")
    modules = sorted(p.stem for p in (ROOT / "src/neuronlab/babysit").glob("[a-z]*.py"))
    missing = [m for m in modules if f"::: neuronlab.babysit.{m}\n" not in text]
    assert not missing, f"add a section for each of {missing} to docs/api/babysit.md"


# -- the docstrings are complete ----------------------------------------------------------------
def test_the_checker_reads_numpydoc_sections():
    def f(a, b, *args, c=1, **kwargs):
        """Summary.

        Parameters
        ----------
        a, b : int
            Two numbers.
        *args
            More.
        c : int, default 1
        **kwargs
            Passed on.

        Returns
        -------
        int
        """

    def g(x, y):
        """Summary.

        Parameters
        ----------
        x : float
        z : float

        Prose that belongs in Notes.
        """

    class K:
        """A class.

        Parameters
        ----------
        n : int
        """

        def __init__(self, n, m):
            self.n = n

        def method(self, q):
            pass

    assert D.check_function("f", f) == []
    assert D.check_function("g", g) == [
        "parameters not documented: y",
        "documents parameters not in the signature: z",
        "stray text in Parameters: 'Prose that belongs in Notes.'",
    ]
    K.__module__ = K.method.__module__ = K.__init__.__module__ = "neuronlab.fake"
    found = D.check_class("neuronlab.fake.K", K)
    assert found["neuronlab.fake.K"] == ["parameters not documented: m"]
    assert found[f"neuronlab.fake.{K.method.__qualname__}"] == ["no docstring"]


def test_public_docstrings_are_complete_or_listed():
    problems = D.problems(public_objects())
    todo = read_todo()
    new = {k: v for k, v in problems.items() if k not in todo}
    done = sorted(k for k in todo if k not in problems)
    assert not new, "incomplete docstrings (numpydoc: a Parameters section naming every " \
        "parameter):\n" + "\n".join(f"  {k}: {v}" for k, v in new.items())
    assert not done, (
        f"now complete: delete their lines from {TODO.name} (or run "
        "python tests/docs/test_docstrings.py --update):\n" + "\n".join(f"  {k}" for k in done)
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/docs/test_docstrings.py --update")
    found = D.problems(public_objects())
    write_todo(found)
    print(f"{TODO}: {len(found)} names")
