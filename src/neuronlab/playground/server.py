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
    POST /api/sessions/{id}/trace        body: {"point": [x, y, label]} or {"index": i}
                                         -> one example forward and backward (trace.py)
    POST /api/sessions/{id}/upload       body: a CSV of x, y, label -> the session's data
    GET  /api/sessions/{id}/export/safetensors|onnx   the trained network as a file
    POST /api/sessions/{id}/race         body: {"racers": [{"optimizer", "lr"}], "epochs"}
    DELETE /api/sessions/{id}/race       stop the race
    DELETE /api/sessions/{id}

Errors are JSON ``{"error": message}``, under 4 KB with the headers, quoting at most ~200
characters of the input (:mod:`.bodies`): 422 for a bad request (the library's own message)
and for a body that is not a JSON object (not UTF-8, not JSON, nested deeper than
``MAX_DEPTH``) or not a usable CSV, 413 for a body over ``MAX_BODY`` bytes (an upload:
``MAX_UPLOAD_BYTES``), refused from its Content-Length or as soon as a chunked body passes
it, 404 for an unknown session or export format, 503 (with Retry-After) when
``max_sessions`` are running or the model stayed busy. A session whose event stream nobody
listens to is closed after ``idle_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from neuronlab.layers import ACTIVATIONS
from neuronlab.playground.bodies import (
    MAX_BODY,
    MAX_DEPTH,
    MAX_ERROR_BYTES,
    Refused,
    error,
    json_depth,
    parse_body,
    read_body,
    read_json,
)
from neuronlab.playground.export import FORMATS
from neuronlab.playground.jobs import JobTimeout
from neuronlab.playground.manager import SessionLimitError, SessionManager
from neuronlab.playground.race import DEFAULT_LRS, MAX_RACERS, parse_race_request
from neuronlab.playground.render import CLASS_COLORS
from neuronlab.playground.session import Session
from neuronlab.playground.settings import (
    DATASET_CLASSES,
    EXTENT,
    LIMITS,
    Settings,
    _quote,
    minibatch_optimizers,
    parse_settings,
)
from neuronlab.playground.upload import MAX_ROWS, MAX_UPLOAD_BYTES, MIN_ROWS, parse_csv
from neuronlab.registry import INITIALIZERS

__all__ = ["MAX_BODY", "MAX_DEPTH", "MAX_ERROR_BYTES", "create_app", "json_depth",
           "parse_body", "serve"]

STATIC = Path(__file__).parent / "static"
POLL = 0.05  # seconds between checks of a session's state version in the event stream
KEEPALIVE = 1.0  # seconds of silence before a comment line: finds closed tabs quickly
_error = error  # the name the tests know
_Handler = Callable[[Request, Session], Awaitable[Response]]


def create_app(*, max_sessions: int = 8, max_epochs: int = 2000,
               max_steps_per_second: float = 2000.0, publish_interval: float = 0.1,
               idle_timeout: float = 8.0) -> Starlette:
    """Build the ASGI app. The keyword arguments bound what the server will do (sessions
    at once, epochs per session and per race, optimizer steps per second per session and
    per racer, states per second, seconds a session lives with no tab listening to its
    events)."""
    manager = SessionManager(max_sessions=max_sessions, idle_timeout=idle_timeout,
                             max_epochs=max_epochs, max_steps_per_second=max_steps_per_second,
                             publish_interval=publish_interval)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def options(request: Request) -> Response:
        optimizers = minibatch_optimizers()
        return JSONResponse({
            "datasets": DATASET_CLASSES, "activations": list(ACTIVATIONS),
            "inits": INITIALIZERS.names(), "optimizers": optimizers,
            "defaults": Settings().to_dict(), "limits": LIMITS, "extent": EXTENT,
            "colors": [f"rgb({r:.0f},{g:.0f},{b:.0f})" for r, g, b in CLASS_COLORS],
            "max_sessions": max_sessions, "max_epochs": max_epochs,
            "race": {"lrs": {n: DEFAULT_LRS.get(n, 0.01) for n in optimizers},
                     "max_racers": MAX_RACERS},
            "upload": {"max_bytes": MAX_UPLOAD_BYTES, "max_rows": MAX_ROWS, "min_rows": MIN_ROWS},
        })

    async def create(request: Request) -> Response:
        try:
            settings = parse_settings(await read_json(request))
        except Refused as err:
            return error(err.status, str(err))
        except (TypeError, ValueError) as err:
            return error(422, str(err))
        try:
            session = await asyncio.to_thread(manager.create, settings)
        except SessionLimitError as err:
            retry = max(1, round(idle_timeout))
            return error(503, str(err), headers={"Retry-After": str(retry)})
        except (TypeError, ValueError) as err:  # the network or data could not be built
            return error(422, str(err))
        return JSONResponse({"id": session.id, "state": json.loads(session.state)}, status_code=201)

    def with_session(handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        """The route for ``handler``: 404 for an unknown session; a refused body, a bad
        value (TypeError, ValueError) and a busy model become their error answers."""

        async def route(request: Request) -> Response:
            session = manager.get(request.path_params["sid"])
            if session is None:
                return error(404, "no such session (it ended: reload the page)")
            try:
                return await handler(request, session)
            except Refused as err:
                return error(err.status, str(err))
            except (TypeError, ValueError) as err:
                return error(422, str(err))
            except JobTimeout as err:
                return error(503, str(err), headers={"Retry-After": "1"})

        return route

    async def control(request: Request, session: Session) -> Response:
        action = request.path_params["action"]
        if action == "reset":
            upload = session.upload
            settings = parse_settings(await read_json(request), base=session.settings,
                                      upload_classes=None if upload is None else upload.n_classes)
            await asyncio.to_thread(session.reset, settings)  # a refusal changes nothing
        elif action in ("play", "pause", "step"):
            getattr(session, action)()
        else:
            return error(404, f"unknown action {action!r}; use play, pause, step, reset, "
                              "trace, upload or race")
        return JSONResponse({"status": session.status, "settings": session.settings.to_dict()})

    async def trace(request: Request, session: Session) -> Response:
        raw = await read_json(request)
        return JSONResponse(await asyncio.to_thread(session.trace, raw))

    async def upload(request: Request, session: Session) -> Response:
        points = await asyncio.to_thread(parse_csv, await read_body(request, MAX_UPLOAD_BYTES))
        settings = parse_settings({"dataset": "upload", "points": []}, base=session.settings,
                                  upload_classes=points.n_classes)
        await asyncio.to_thread(session.reset, settings, upload=points)
        return JSONResponse({"status": session.status, "settings": session.settings.to_dict(),
                             "upload": points.summary()})

    async def export(request: Request, session: Session) -> Response:
        fmt = request.path_params["fmt"]
        if fmt not in FORMATS:
            return error(404, f"unknown export format {_quote(fmt)}; use {' or '.join(FORMATS)}")
        try:
            data = await asyncio.to_thread(session.export, fmt)
        except ImportError as err:  # onnx is an optional extra
            return error(501, f"{fmt} export needs a package that is not installed ({err}); "
                              "pip install neuronlab[onnx]")
        name, media = FORMATS[fmt]
        return Response(data, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})

    async def race(request: Request, session: Session) -> Response:
        if request.method == "DELETE":
            return JSONResponse({"race": await asyncio.to_thread(session.stop_race)})
        racers, epochs = parse_race_request(await read_json(request), max_epochs)
        return JSONResponse({"race": await asyncio.to_thread(session.start_race, racers, epochs)})

    async def delete(request: Request) -> Response:
        sid = request.path_params["sid"]
        if manager.get(sid) is None:
            return error(404, "no such session")
        await asyncio.to_thread(manager.close, sid)
        return JSONResponse({"closed": sid})

    async def events(request: Request) -> Response:
        sid = request.path_params["sid"]
        session = manager.get(sid)
        if session is None:
            return error(404, "no such session (it ended: reload the page)")

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

    async def not_routed(request: Request, exc: Exception) -> Response:
        """A path or method no route takes: the same JSON error as every other refusal."""
        status = getattr(exc, "status_code", 404)
        what = "no such page" if status == 404 else f"{request.method} is not allowed here"
        return error(status, f"{what}: {_quote(request.url.path)}")

    app = Starlette(exception_handlers={404: not_routed, 405: not_routed}, routes=[
        Route("/", index),
        Route("/api/options", options),
        Route("/api/sessions", create, methods=["POST"]),
        Route("/api/sessions/{sid}", delete, methods=["DELETE"]),
        Route("/api/sessions/{sid}/events", events),
        Route("/api/sessions/{sid}/trace", with_session(trace), methods=["POST"]),
        Route("/api/sessions/{sid}/upload", with_session(upload), methods=["POST"]),
        Route("/api/sessions/{sid}/export/{fmt}", with_session(export), methods=["GET"]),
        Route("/api/sessions/{sid}/race", with_session(race), methods=["POST", "DELETE"]),
        Route("/api/sessions/{sid}/{action}", with_session(control), methods=["POST"]),
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
