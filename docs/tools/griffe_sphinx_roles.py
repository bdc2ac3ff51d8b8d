"""A griffe extension: Sphinx cross-reference roles in docstrings become Markdown code spans.

The docstrings are numpydoc and were written for Sphinx as much as for ``help()``: they say
``:class:`~neuronlab.train.Trainer```. mkdocstrings reads Markdown, where the role would show
verbatim, so each role becomes the code span a reader expects: ``Trainer`` (a ``~`` keeps the
last component, ``title <target>`` keeps the title). Loaded by mkdocs.yml.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const|ref|term):`(?P<text>[^`]+)`"
)


def _code(match: re.Match[str]) -> str:
    text = match["text"].strip()
    titled = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", text)
    if titled:
        text = titled["title"]
    elif text.startswith("~"):
        text = text[1:].rsplit(".", 1)[-1]
    return f"`{text.lstrip('.')}`"


def convert(text: str) -> str:
    """``text`` with every Sphinx role replaced by a code span."""
    return ROLE.sub(_code, text)


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring griffe loads."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
