"""``neuronlab playground``: the click command, added to the main group by :mod:`neuronlab.cli`.

The web server's imports (Starlette, uvicorn) happen only when the command runs, so the
rest of the CLI starts as fast without them.
"""

from __future__ import annotations

import click

__all__ = ["playground"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (keep 127.0.0.1 unless you mean to share it).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="TCP port.")
@click.option("--max-sessions", default=8, show_default=True, type=click.IntRange(1, 64),
              help="Browser tabs that may train at once.")
def playground(host: str, port: int, max_sessions: int) -> None:
    """Train a network on 2-D data in the browser and watch it learn (a local web page)."""
    from neuronlab.playground.server import serve

    serve(host=host, port=port, max_sessions=max_sessions)
