"""The API reference covers the public API, and its docstrings are complete (numpydoc).

The public API is ``neuronlab.__all__`` and the ``__all__`` of every module the API pages
(docs/api/*.md) render with ``::: module``. Every public class and function, and every public
method of those classes, has a docstring of its own; one with parameters names each of them
in a ``Parameters`` section (tests/docs/_docstrings.py has the rules). There is no exemption
list: the test fails on any public name that falls short, printing each with what it lacks.
"""

from __future__ import annotations

import re
import types
from pathlib import Path

import _docstrings as D

import neuronlab as nl

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api"


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


def test_an_override_needs_a_docstring_of_its_own():
    # inspect.getdoc would hand the override its base's docstring; the site (mkdocstrings,
    # no inherited-docstrings extension) shows the override with an empty body
    class Base:
        def hook(self, x):
            """Summary.

            Parameters
            ----------
            x : int
            """

    class Sub(Base):
        def hook(self, x):
            pass

    assert D.check_function("Base.hook", Base.hook, method=True) == []
    assert D.check_function("Sub.hook", Sub.hook, method=True) == ["no docstring"]


def test_public_docstrings_are_complete():
    problems = D.problems(public_objects())
    assert not problems, (
        f"{len(problems)} public names have incomplete docstrings (numpydoc: a docstring of "
        "their own, and a Parameters section naming every parameter):\n"
        + "\n".join(f"  {k}: {v}" for k, v in problems.items())
    )
