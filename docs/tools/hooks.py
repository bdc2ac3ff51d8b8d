"""MkDocs hooks (mkdocs.yml ``hooks:``): the Tutorials section lists the rendered tutorials.

``make docs`` renders every ``docs/tutorials/NN_topic.py`` into ``docs/generated/tutorials/``
(docs/tools/render_tutorials.py); this hook fills the ``Tutorials`` entry of the nav with
those pages in file order, so a new tutorial needs no edit of mkdocs.yml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

SECTION = "Tutorials"
RENDERED = "generated/tutorials"


def on_config(config: Any, **kwargs: Any) -> Any:
    """Replace the nav's ``Tutorials`` entry with the rendered tutorial pages."""
    pages = sorted(p for p in (Path(config["docs_dir"]) / RENDERED).glob("[0-9]*.md"))
    if not pages:
        raise PluginError(
            f"no rendered tutorials in {Path(config['docs_dir']) / RENDERED}: run `make docs` "
            "(python docs/tools/render_tutorials.py docs/generated/tutorials)"
        )
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and SECTION in entry:
            entry[SECTION] = [f"{RENDERED}/{p.name}" for p in pages]
    return config
