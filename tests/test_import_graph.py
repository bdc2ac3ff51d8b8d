"""No import cycles between neuronlab's modules, read from the source with ``ast``.

The rule. Every ``import`` statement of a module counts, wherever it is: at the top, inside a
function or class, in ``try`` or in ``if TYPE_CHECKING:`` (a type-only import still says
"this module needs that one"). Names resolve as Python resolves them:

* ``import a.b.c``, ``from a.b import c`` (``c`` a module) and their relative forms import
  the module ``a.b.c``;
* ``from a.b import name`` (``name`` not a module) imports ``a.b``; when ``a.b`` is a package
  whose ``__init__`` re-exports ``name`` (``from a.b.m import name``, or ``*`` over
  ``a.b.m.__all__``), the edge goes to the module that defines it, ``a.b.m``;
* a package's ``__init__`` is a module like any other (importing the package runs it): it
  imports what it re-exports.

Python initialises every parent package before a submodule, but that is not an edge here:
otherwise every module would "import" ``neuronlab/__init__``, which imports everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import neuronlab

Modules = dict[str, tuple[Path, bool]]


def find_modules(package_dir: Path) -> Modules:
    """Dotted name -> (file, is_package) for every module under ``package_dir``."""
    out = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _star_names(modules: Modules, name: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """The names ``from name import *`` binds: the string literals of its ``__all__``; for a
    package without one, the names its ``__init__`` imports."""
    for node in ast.parse(modules[name][0].read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = getattr(node, "value", None)
            if isinstance(value, (ast.List, ast.Tuple)):
                return [e.value for e in value.elts if isinstance(e, ast.Constant)]
    if not modules[name][1] or name in seen:
        return []
    out = []
    for target, names in _imports(modules, name):
        if target in modules:
            out += _star_names(modules, target, seen | {name}) if "*" in names else names
    return out


def _imports(modules: Modules, name: str) -> list[tuple[str, list[str]]]:
    """``(target module, imported names)`` of every import statement in a module."""
    path, is_package = modules[name]
    package = name if is_package else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from ..x import y
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, [a.name for a in node.names]))
    return out


def _origin(modules: Modules, package: str, name: str, seen: frozenset[str] = frozenset()) -> str:
    """The module that defines ``name``, re-exported by ``package``'s ``__init__``."""
    if package in seen:
        return package
    for target, names in _imports(modules, package):
        if target in modules and (
            name in names or ("*" in names and name in _star_names(modules, target))
        ):
            if modules[target][1]:  # re-exported from a sub-package
                return _origin(modules, target, name, seen | {package})
            return target
    return package


def import_graph(modules: Modules) -> dict[str, set[str]]:
    """Module -> the modules it imports (within ``modules``)."""
    graph: dict[str, set[str]] = {}
    for name in modules:
        edges = set()
        for target, names in _imports(modules, name):
            if target not in modules:
                continue  # the standard library, NumPy, ...
            if not names:  # import a.b.c
                edges.add(target)
            for n in names:
                if f"{target}.{n}" in modules:
                    edges.add(f"{target}.{n}")
                elif n == "*" or not modules[target][1]:
                    edges.add(target)
                else:
                    edges.add(_origin(modules, target, n))
        graph[name] = edges - {name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules of each cycle: every strongly connected component of more than one module
    (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_every_kind_of_import_is_an_edge(tmp_path):
    files = {
        "pkg/__init__.py": "from pkg.core import Thing\nfrom pkg.sub import *\n",
        "pkg/core.py": "import numpy as np\nfrom pkg import util\n__all__ = ['Thing']\n",
        "pkg/util.py": "def f():\n    from pkg import Thing  # lazy, through the re-export\n",
        "pkg/typed.py": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.core import Thing\n",
        "pkg/sub/__init__.py": "from .leaf import *\n",
        "pkg/sub/leaf.py": "from ..util import f\n__all__ = ['Leaf']\n",
        "pkg/user.py": "import pkg.typed\nfrom pkg import Leaf\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(find_modules(tmp_path / "pkg"))
    assert graph == {
        "pkg": {"pkg.core", "pkg.sub"},
        "pkg.core": {"pkg.util"},
        "pkg.util": {"pkg.core"},
        "pkg.typed": {"pkg.core"},
        "pkg.sub": {"pkg.sub.leaf"},
        "pkg.sub.leaf": {"pkg.util"},
        "pkg.user": {"pkg.typed", "pkg.sub.leaf"},
    }
    assert find_cycles(graph) == [["pkg.core", "pkg.util"]]


def test_no_module_imports_a_module_that_imports_it_back():
    modules = find_modules(Path(neuronlab.__file__).parent)
    assert len(modules) > 50
    cycles = find_cycles(import_graph(modules))
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)
