"""Completeness of numpydoc docstrings: which public names lack a docstring or a parameter.

``problems(objects)`` returns ``{qualified name: what is missing}`` for the public classes and
functions given (and the public methods of those classes). A function or method with
parameters must name every one of them in a ``Parameters`` section (``Other Parameters``
counts too; a class's constructor parameters go in the class docstring, or its ``__init__``'s;
a dataclass may list its fields under ``Attributes``), and a section entry must name a
parameter of the signature. ``*args`` / ``**kwargs`` are documented as ``*args`` /
``**kwargs`` (or without the stars) unless :data:`EXEMPT` names them.

Only a name's own docstring counts. :func:`inspect.getdoc` hands an override without one the
docstring of the method it overrides, but the site does not: mkdocstrings (griffe, with no
inherited-docstrings extension in mkdocs.yml) renders such an override with an empty body. So
an override documents itself, in a line or two that say what it does in its class.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from collections.abc import Iterable
from types import ModuleType
from typing import Any

#: Parameters that need no entry, by qualified name, each with its reason.
EXEMPT: dict[str, set[str]] = {}

PARAM_SECTIONS = ("Parameters", "Other Parameters")
_IDENT = re.compile(r"\*{0,2}[A-Za-z_][A-Za-z0-9_]*")


def sections(doc: str) -> dict[str, list[str]]:
    """numpydoc sections of a (dedented) docstring: header -> its lines."""
    lines = doc.splitlines()
    out: dict[str, list[str]] = {}
    current: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"\s*-{3,}\s*", nxt) and not line.startswith(" "):
            current = line.strip()
            out[current] = []
            i += 2
            continue
        if current is not None:
            out[current].append(line)
        i += 1
    return out


def documented(doc: str, names: Iterable[str] = PARAM_SECTIONS) -> tuple[set[str], list[str]]:
    """The parameter names an entry of the sections ``names`` documents, and stray entries
    (lines at entry indentation that name no parameter: prose left inside the section)."""
    found: set[str] = set()
    stray: list[str] = []
    secs = sections(doc)
    for name in names:
        body = [line for line in secs.get(name, []) if line.strip()]
        if not body:
            continue
        indent = min(len(line) - len(line.lstrip()) for line in body)
        for line in body:
            if len(line) - len(line.lstrip()) != indent:
                continue
            head = line.split(":", 1)[0]
            parts = [p.strip() for p in head.split(",")]
            if all(_IDENT.fullmatch(p) for p in parts if p) and any(parts):
                found.update(p.lstrip("*") for p in parts if p)
            else:
                stray.append(line.strip())
    return found, stray


def _params(func: Any, *, skip_first: bool) -> list[inspect.Parameter] | None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    return params[1:] if skip_first and params else params


def _check_params(qualname: str, params: list[inspect.Parameter], doc: str,
                  names: Iterable[str] = PARAM_SECTIONS) -> list[str]:
    found, stray = documented(doc, names)
    exempt = EXEMPT.get(qualname, set())
    missing = [p.name for p in params if p.name not in found and p.name not in exempt]
    known = {p.name for p in params}
    unknown = sorted(found - known)
    out = []
    if missing:
        if not sections(doc).keys() & set(names):
            out.append(f"no Parameters section ({', '.join(missing)})")
        else:
            out.append(f"parameters not documented: {', '.join(missing)}")
    if unknown:
        out.append(f"documents parameters not in the signature: {', '.join(unknown)}")
    if stray:
        out.append(f"stray text in Parameters: {stray[0][:60]!r}")
    return out


def _own_doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    if not doc:
        return None
    if dataclasses.is_dataclass(cls) and doc.startswith(f"{cls.__name__}("):
        return None  # the signature dataclasses writes when there is no docstring
    return inspect.cleandoc(doc)


def _is_ours(obj: Any) -> bool:
    return (getattr(obj, "__module__", "") or "").startswith("neuronlab")


def _doc(obj: Any) -> str | None:
    """The object's own docstring, cleaned; never one inherited from a base class."""
    doc = getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def check_function(qualname: str, func: Any, *, method: bool = False) -> list[str]:
    """Problems of one function or method."""
    doc = _doc(func)
    if not doc:
        return ["no docstring"]
    params = _params(func, skip_first=method)
    return [] if not params else _check_params(qualname, params, doc)


def check_class(qualname: str, cls: type) -> dict[str, list[str]]:
    """Problems of a class (its constructor's parameters) and of its public methods."""
    out: dict[str, list[str]] = {}
    doc = _own_doc(cls)
    if doc is None:
        out[qualname] = ["no docstring"]
    else:
        init = next((k.__dict__["__init__"] for k in cls.__mro__ if "__init__" in k.__dict__), None)
        if init is not None and _is_ours(init):
            params = _params(init, skip_first=True) or []
            init_doc = _doc(init)
            names = PARAM_SECTIONS + (("Attributes",) if dataclasses.is_dataclass(cls) else ())
            text = doc + "\n\n" + (init_doc or "")
            problems = _check_params(qualname, params, text, names) if params else []
            if problems:
                out[qualname] = problems
    for name in dir(cls):
        if name.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, (staticmethod, classmethod)):
            func, is_method = raw.__func__, isinstance(raw, classmethod)
        elif inspect.isfunction(raw):
            func, is_method = raw, True
        elif isinstance(raw, property):
            if _is_ours(raw.fget) and not _doc(raw):
                out[_where(raw.fget)] = ["no docstring"]
            continue
        else:
            continue
        if not _is_ours(func):
            continue
        # an inherited method is reported once, under the class that defines it
        problems = check_function(_where(func), func, method=is_method)
        if problems:
            out[_where(func)] = problems
    return out


def _where(func: Any) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def public_objects(module: ModuleType) -> dict[str, Any]:
    """The classes and functions a module exports (``__all__``), by qualified name."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    out = {}
    for name in names:
        obj = getattr(module, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and _is_ours(obj):
            out[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return out


def resolve(path: str) -> Any:
    """``a.b.c`` as an object: the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def problems(objects: dict[str, Any]) -> dict[str, str]:
    """``{qualified name: problems}`` of the objects given, their methods included."""
    out: dict[str, list[str]] = {}
    for qualname, obj in sorted(objects.items()):
        if inspect.isclass(obj):
            out.update(check_class(qualname, obj))
        else:
            found = check_function(qualname, obj)
            if found:
                out[qualname] = found
    return {k: "; ".join(v) for k, v in sorted(out.items())}
