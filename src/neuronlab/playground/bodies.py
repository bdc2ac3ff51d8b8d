"""Reading request bodies safely: bounded in bytes, JSON bounded in depth, and every refusal
a short JSON error.

Every POST of the playground reads its body here: :func:`read_body` stops at its byte limit
(refusing a declared Content-Length at once, counting a chunked body as it arrives), and
:func:`parse_body` turns it into a JSON object after checking its nesting without recursion.
A refusal is a :class:`Refused` carrying the HTTP status; :func:`error` renders it as
``{"error": message}`` cut so that no answer is over 4 KB with its headers.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

__all__ = ["MAX_BODY", "MAX_DEPTH", "MAX_ERROR_BYTES", "Refused", "error", "json_depth",
           "parse_body", "read_body", "read_json"]

MAX_BODY = 64 * 1024  # bytes; the largest real body (500 clicked points) is about 12 KB
MAX_DEPTH = 32  # JSON nesting; real settings nest 3 deep (points: [[x, y, label], ...])
MAX_INT_DIGITS = 4000  # longer integer literals parse as floats (inf), as JSON.parse reads them
MAX_ERROR_BYTES = 3584  # an error body: with its headers, no refusal is over 4 KB
MAX_MESSAGE = 1000  # characters of an error message kept (the input in it is quoted shorter)


class Refused(Exception):
    """A request refused before its content is used: an HTTP status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
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


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request's body, read at most ``limit`` bytes far. Raises Refused (413 over the
    limit, 400 when the client went away mid-body)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise Refused(413, f"request body of {int(length)} bytes is over the limit of "
                           f"{limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:  # a chunked body declares no length: count it
                raise Refused(413, f"request body is over the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Refused(400, "the request body ended early (client disconnected)") from None
    return b"".join(chunks)


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty body); raises Refused."""
    return parse_body(await read_body(request))


_JSON_TOKEN = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


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
    """A request body as a JSON object; raises Refused (422) naming what is wrong. The
    nesting is checked before ``json.loads``, whose parser recurses."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Refused(422, f"request body is not UTF-8 text: {err.reason} at byte {err.start}"
                      ) from None
    if not text.strip():
        return {}
    if json_depth(text) > MAX_DEPTH:
        raise Refused(422, f"request body nests arrays or objects more than {MAX_DEPTH} deep")
    try:
        value = json.loads(text, parse_int=_parse_int)
    except (json.JSONDecodeError, RecursionError) as err:
        raise Refused(422, f"request body is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(value), "a number")
        raise Refused(422, f"request body must be a JSON object, got {kind}")
    return value
