"""The playground's web server: one page, a JSON API and a server-sent-event stream per
session (Starlette, served by uvicorn).

Routes::

    GET  /                               the page (static/index.html)
    GET  /static/...                     its script and style sheet
    GET  /api/options                    choices, defaults and limits for the page's controls
    POST /api/sessions                   body: settings (partial) -> 201 {"id", "state"}
    GET  /api/sessions/{id}/events       text/event-stream of states; disconnect closes it
    POST /api/sessions/{id}/play|pause|step
    POST /api/sessions/{id}/reset        body: settings (partial; omitted = unchanged)
    DELETE /api/sessions/{id}

Errors are JSON ``{"error": message}``: 422 for bad settings (the library's own message),
404 for an unknown session, 503 when ``max_sessions`` are already running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from neuronlab.layers import ACTIVATIONS
from neuronlab.playground.render import CLASS_COLORS
from neuronlab.playground.session import SessionLimitError, SessionManager
from neuronlab.playground.settings import (
    DATASET_CLASSES,
    EXTENT,
    LIMITS,
    Settings,
    minibatch_optimizers,
    parse_settings,
)
from neuronlab.registry import INITIALIZERS

__all__ = ["create_app", "serve"]

STATIC = Path(__file__).parent / "static"
POLL = 0.05  # seconds between checks of a session's state version in the event stream
KEEPALIVE = 1.0  # seconds of silence before a comment line: finds closed tabs quickly


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"request body is not valid JSON: {err}") from None


def create_app(*, max_sessions: int = 8, max_epochs: int = 2000,
               max_steps_per_second: float = 2000.0, publish_interval: float = 0.1,
               idle_timeout: float = 60.0) -> Starlette:
    """Build the ASGI app. The keyword arguments bound what the server will do (sessions
    at once, epochs per session, optimizer steps per second per session, states per
    second, seconds a session may live with no tab listening)."""
    manager = SessionManager(max_sessions=max_sessions, idle_timeout=idle_timeout,
                             max_epochs=max_epochs, max_steps_per_second=max_steps_per_second,
                             publish_interval=publish_interval)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def options(request: Request) -> Response:
        return JSONResponse({
            "datasets": DATASET_CLASSES, "activations": list(ACTIVATIONS),
            "inits": INITIALIZERS.names(), "optimizers": minibatch_optimizers(),
            "defaults": Settings().to_dict(), "limits": LIMITS, "extent": EXTENT,
            "colors": [f"rgb({r:.0f},{g:.0f},{b:.0f})" for r, g, b in CLASS_COLORS],
            "max_sessions": max_sessions, "max_epochs": max_epochs,
        })

    async def create(request: Request) -> Response:
        try:
            settings = parse_settings(await _body(request))
        except (TypeError, ValueError) as err:
            return _error(422, str(err))
        try:
            session = await asyncio.to_thread(manager.create, settings)
        except SessionLimitError as err:
            return _error(503, str(err))
        return JSONResponse({"id": session.id, "state": json.loads(session.state)}, status_code=201)

    def _session(request: Request) -> Any:
        return manager.get(request.path_params["sid"])

    async def control(request: Request) -> Response:
        session = _session(request)
        if session is None:
            return _error(404, "no such session (it ended: reload the page)")
        action = request.path_params["action"]
        if action == "reset":
            try:
                settings = parse_settings(await _body(request), base=session.settings)
            except (TypeError, ValueError) as err:
                return _error(422, str(err))
            await asyncio.to_thread(session.reset, settings)
        elif action in ("play", "pause", "step"):
            getattr(session, action)()
        else:
            return _error(404, f"unknown action {action!r}; use play, pause, step or reset")
        return JSONResponse({"status": session.status, "settings": session.settings.to_dict()})

    async def delete(request: Request) -> Response:
        sid = request.path_params["sid"]
        if manager.get(sid) is None:
            return _error(404, "no such session")
        await asyncio.to_thread(manager.close, sid)
        return JSONResponse({"closed": sid})

    async def events(request: Request) -> Response:
        sid = request.path_params["sid"]
        session = manager.get(sid)
        if session is None:
            return _error(404, "no such session (it ended: reload the page)")

        async def stream() -> AsyncIterator[str]:
            manager.listeners[sid] = manager.listeners.get(sid, 0) + 1
            try:
                seen, quiet_since = -1, time.monotonic()
                while not session.closed:
                    if session.version != seen:
                        seen, state = session.version, session.state
                        yield f"data: {state}\n\n"
                        quiet_since = time.monotonic()
                    elif time.monotonic() - quiet_since > KEEPALIVE:
                        yield ": keepalive\n\n"  # a write to a closed tab ends the stream
                        quiet_since = time.monotonic()
                    if await request.is_disconnected():
                        break
                    session.last_seen = time.monotonic()
                    await asyncio.sleep(POLL)
            finally:
                # the tab went away (or the server stops): its training stops with it
                left = manager.listeners.get(sid, 1) - 1
                manager.listeners[sid] = left
                if left <= 0:
                    # no await here: the stream's task is being cancelled, and an await in a
                    # cancelled scope would be cancelled before it ran
                    manager.close(sid, wait=False)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def reaper() -> None:
        while True:
            await asyncio.sleep(5.0)
            await asyncio.to_thread(manager.reap)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(reaper())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.to_thread(manager.close_all)

    app = Starlette(routes=[
        Route("/", index),
        Route("/api/options", options),
        Route("/api/sessions", create, methods=["POST"]),
        Route("/api/sessions/{sid}", delete, methods=["DELETE"]),
        Route("/api/sessions/{sid}/events", events),
        Route("/api/sessions/{sid}/{action}", control, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ], lifespan=lifespan)
    app.state.manager = manager
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, **app_kw: Any) -> None:
    """Run the playground until interrupted, printing its URL first."""
    import uvicorn

    app = create_app(**app_kw)
    print(f"neuronlab playground: http://{host}:{port}/  (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
