"""The playground: train a network on 2-D data in the browser and watch it learn.

``neuronlab playground`` (or :func:`serve`) starts a local server; every browser tab gets
its own :class:`Session`, trained in the server process by the library's own Trainer,
Monitor and diagnosis, and streamed to the page as server-sent events.

``create_app`` and ``serve`` are imported on first use, so that importing this package (the
CLI does, to register its command) does not pay for the web framework.
"""

from typing import Any

from neuronlab.playground.manager import SessionLimitError, SessionManager
from neuronlab.playground.session import Session
from neuronlab.playground.settings import Settings, parse_settings

__all__ = ["Session", "SessionLimitError", "SessionManager", "Settings", "create_app",
           "parse_settings", "serve"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "serve"):
        from neuronlab.playground import server

        return getattr(server, name)
    raise AttributeError(f"module 'neuronlab.playground' has no attribute {name!r}")
