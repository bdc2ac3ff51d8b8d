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

Errors are JSON ``{"error": message}``, under 4 KB with the headers, quoting at most ~200
characters of the input: 422 for bad settings (the library's own message) and for a body
that is not a JSON object (not UTF-8, not JSON, nested deeper than ``MAX_DEPTH``), 413 for
a body over ``MAX_BODY`` bytes (refused from its Content-Length, or as soon as a chunked
body passes it), 404 for an unknown session, 503 (with Retry-After) when ``max_sessions``
are running. A session whose event stream nobody listens to is closed after
``idle_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
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
MAX_BODY = 64 * 1024  # bytes; the largest real body (500 clicked points) is about 12 KB
MAX_DEPTH = 32  # JSON nesting; real settings nest 3 deep (points: [[x, y, label], ...])
MAX_INT_DIGITS = 4000  # longer integer literals parse as floats (inf), as JSON.parse reads them
MAX_ERROR_BYTES = 3584  # an error body: with its headers, no refusal is over 4 KB
MAX_MESSAGE = 1000  # characters of an error message kept (the input in it is quoted shorter)


class _Refused(Exception):
    """A request refused before its settings are read: an HTTP status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """``{"error": message}``, cut to at most MAX_ERROR_BYTES of UTF-8 JSON."""
    limit = MAX_MESSAGE
    while True:
        text = message if len(message) <= limit else message[:limit] + "..."
        # backslashreplace: a lone surrogate from the input (JSON allows "\ud800") goes out
        # as the JSON escape it came in as, not as an encoding error
        body = json.dumps({"error": text}, ensure_ascii=False).encode("utf-8", "backslashreplace")
        if len(body) <= MAX_ERROR_BYTES:
            return Response(body, status_code=status, headers=headers,
                            media_type="application/json")
        limit //= 2


async def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty body), read at most MAX_BODY bytes far.
    Raises _Refused."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise _Refused(413, f"request body of {int(length)} bytes is over the limit of "
                            f"{MAX_BODY} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:  # a chunked body declares no length: count it
                raise _Refused(413, f"request body is over the limit of {MAX_BODY} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise _Refused(400, "the request body ended early (client disconnected)") from None
    return parse_body(b"".join(chunks))


_JSON_TOKEN = re.compile(r'\\.|["\[\]{}]', re.S)


def json_depth(text: str, stop: int = MAX_DEPTH) -> int:
    """How deep the arrays and objects of the JSON ``text`` nest (a loop over the quotes and
    brackets, never recursion; it stops counting past ``stop``)."""
    depth = deepest = 0
    in_string = False
    for m in _JSON_TOKEN.finditer(text):
        token = m.group()
        if token == '"':
            in_string = not in_string
        elif in_string or len(token) == 2:  # a bracket in a string, or an escape
            continue
        elif token in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > stop:
                break
        else:
            depth -= 1
    return deepest


def _parse_int(literal: str) -> int | float:
    # int() refuses literals over 4300 digits (ValueError, no field named); a float is
    # +-inf, which the settings refuse naming the field
    return int(literal) if len(literal) <= MAX_INT_DIGITS else float(literal)


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object of settings; raises _Refused (422) naming what is
    wrong. The nesting is checked before ``json.loads``, whose parser recurses."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Refused(422, f"request body is not UTF-8 text: {err.reason} at byte {err.start}"
                       ) from None
    if not text.strip():
        return {}
    if json_depth(text) > MAX_DEPTH:
        raise _Refused(422, f"request body nests arrays or objects more than {MAX_DEPTH} deep")
    try:
        value = json.loads(text, parse_int=_parse_int)
    except (json.JSONDecodeError, RecursionError) as err:
        raise _Refused(422, f"request body is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(value), "a number")
        raise _Refused(422, f"request body must be a JSON object of settings, got {kind}")
    return value


def create_app(*, max_sessions: int = 8, max_epochs: int = 2000,
               max_steps_per_second: float = 2000.0, publish_interval: float = 0.1,
               idle_timeout: float = 8.0) -> Starlette:
    """Build the ASGI app. The keyword arguments bound what the server will do (sessions
    at once, epochs per session, optimizer steps per second per session, states per
    second, seconds a session lives with no tab listening to its events)."""
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
        except _Refused as err:
            return _error(err.status, str(err))
        except (TypeError, ValueError) as err:
            return _error(422, str(err))
        try:
            session = await asyncio.to_thread(manager.create, settings)
        except SessionLimitError as err:
            retry = max(1, round(idle_timeout))
            return _error(503, str(err), headers={"Retry-After": str(retry)})
        except (TypeError, ValueError) as err:  # the network or data could not be built
            return _error(422, str(err))
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
            except _Refused as err:
                return _error(err.status, str(err))
            except (TypeError, ValueError) as err:
                return _error(422, str(err))
            try:
                await asyncio.to_thread(session.reset, settings)
            except (TypeError, ValueError) as err:  # refused while building: nothing changed
                return _error(422, str(err))
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
            if not manager.listen(sid):
                return
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
                    await asyncio.sleep(POLL)
            finally:
                # the tab went away (or the server stops): its training stops with it
                if manager.unlisten(sid) <= 0:
                    # no await here: the stream's task is being cancelled, and an await in a
                    # cancelled scope would be cancelled before it ran
                    manager.close(sid, wait=False)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def reaper() -> None:
        while True:  # a session nobody listens to ends within idle_timeout + a quarter
            await asyncio.sleep(min(1.0, idle_timeout / 4))
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
