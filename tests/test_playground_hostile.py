"""The playground refuses hostile requests cleanly (issue 13): on a real uvicorn server, a
corpus of overflowing numbers, deep nesting, huge strings, wrong types, bad encodings and
oversized bodies gets 4xx answers under 4 KB and never a 500; sessions nobody listens to
give their slot back after the idle timeout."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import socket
import threading
import time
from typing import Any

import pytest

from neuronlab.playground import Settings, create_app, parse_settings
from neuronlab.playground.server import MAX_BODY, MAX_DEPTH, json_depth
from test_playground import EventStream, request, running_server, wait_until

NUMERIC = ["noise", "n_points", "test_fraction", "l2", "dropout", "lr", "batch_size", "seed"]
#: JSON number literals no setting may take: past float range (as integers, which int()
#: reads exactly, and past its 4300-digit limit), overflowing to inf, and the non-standard
#: constants Python's json module accepts
BAD_NUMBERS = ["1" + "0" * 400, "-1" + "0" * 400, "1" + "0" * 5000, "1e400", "-1e400",
               "1" + "0" * 400 + ".5", "NaN", "Infinity", "-Infinity"]
#: Values of the wrong type for at least one setting (each is tried in every setting)
WRONG_TYPES: list[Any] = [None, True, "text", [1, 2], {"a": 1}, 0.5, -1, [[0.0, 0.0]]]
MAX_RESPONSE = 4096  # bytes of a whole refusal, status line and headers included


# -- a raw HTTP client: bodies http.client would not send, read back whatever happens -------
def send(port: int, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send a raw request, read the whole response (Connection: close). A server that
    answers before reading a large body resets the connection after its answer: what
    arrived before the reset is the response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with_body = head + body
        try:
            s.sendall(with_body)
        except OSError:  # refused before the body was all sent
            pass
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, data


def post(port: int, path: str, body: bytes, *, chunked: bool = False,
         length: int | None = None) -> tuple[int, dict[str, str], bytes]:
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" \
           "Connection: close\r\n"
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
        step = 8192
        body = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + step]), body[i:i + step])
                        for i in range(0, len(body), step)) + b"0\r\n\r\n"
    else:
        head += f"Content-Length: {len(body) if length is None else length}\r\n"
    return send(port, head.encode() + b"\r\n", body)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def corpus() -> list[tuple[str, bytes, str | None]]:
    """(what, body, text the error must contain or None) for every hostile request."""
    items: list[tuple[str, bytes, str | None]] = []
    for literal in BAD_NUMBERS:
        lit = literal.encode()
        for name in NUMERIC:
            items.append((f"{name}={literal[:12]}", b'{"%s": %s}' % (name.encode(), lit), name))
        items.append((f"hidden={literal[:12]}", b'{"hidden": [8, %s]}' % lit, "hidden[1]"))
        for i, part in enumerate(["x", "y", "label"]):
            p = [b"0", b"0", b"0"]
            p[i] = lit
            items.append((f"points.{part}={literal[:12]}", b'{"points": [[%s]]}' % b", ".join(p),
                          f"points[0].{part}"))
    deep = MAX_BODY // 2 - 10
    items += [
        ("[ x deep", b"[" * deep, "deep"),
        ("{ x deep", b'{"a":' * (deep // 5), "deep"),
        ("depth 33, valid JSON", b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "deep"),
        ("deep hidden", b'{"hidden": ' + b"[" * 40 + b"]" * 40 + b"}", "deep"),
        ("deep points", b'{"points": ' + b"[" * 5000 + b"]" * 5000 + b"}", "deep"),
        ("brackets in a string", _json({"dataset": "[" * 1000}), "unknown dataset"),
    ]
    long = "a" * (MAX_BODY - 100)
    for name in ["dataset", "activation", "init", "optimizer"]:
        items.append((f"long {name}", _json({name: long}), name))
    items += [
        ("long key", _json({long: 1}), "unknown setting"),
        ("long lr", _json({"lr": long}), "lr must be a real number"),
        ("long hidden", _json({"hidden": long}), "hidden must be a list"),
        ("long point", _json({"points": [[long, 0, 0]]}), "points[0].x"),
        ("many keys", _json({f"k{i}": i for i in range(3000)}), "unknown setting"),
        ("many points", _json({"points": [[0, 0, 0]] * 3000}), "at most 500"),
        ("many layers", _json({"hidden": [1] * 10000}), "at most 6 layers"),
    ]
    for f in dataclasses.fields(Settings):
        for value in WRONG_TYPES:
            try:
                parse_settings({f.name: value})
            except (TypeError, ValueError):
                items.append((f"{f.name}={value!r}", _json({f.name: value}), f.name))
    items += [
        ("invalid UTF-8", b'{"dataset": "\xff"}', "not UTF-8"),
        ("invalid UTF-8 start", b"\xc3\x28", "not UTF-8"),
        ("encoded surrogate", b'{"dataset": "\xed\xa0\x80"}', "not UTF-8"),
        ("UTF-8 BOM", b"\xef\xbb\xbf{}", "not valid JSON"),
        ("lone surrogate escape", b'{"dataset": "\\ud800"}', "unknown dataset"),
        ("lone surrogate key", b'{"\\udfff": 1}', "unknown setting"),
        ("NUL", b"\x00", "not valid JSON"),
        ("not JSON", b"{not json", "not valid JSON"),
        ("trailing comma", b'{"lr": 1,}', "not valid JSON"),
        ("unterminated", b'{"dataset": "spi', "not valid JSON"),
        ("array", b"[]", "JSON object"),
        ("null", b"null", "JSON object"),
        ("number", b"1", "JSON object"),
        ("huge number", b"1" + b"0" * 5000, "JSON object"),
        ("string", b'"spiral"', "JSON object"),
        ("true", b"true", "JSON object"),
        ("array of objects", b"[{}]", "JSON object"),
        ("too large", _json({"dataset": "a" * MAX_BODY}), "over the limit of"),
        ("too large, deep", b"[" * 100_000, "over the limit of"),
    ]
    return items


def check_refusal(what: str, status: int, raw: bytes, must_say: str | None) -> None:
    assert status != 500, what
    assert len(raw) <= MAX_RESPONSE, (what, len(raw))
    body = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert set(body) == {"error"}, what
    if must_say is not None:
        assert must_say in body["error"], (what, body["error"])
    # at most ~200 characters of the input are quoted back
    assert max((len(m) for m in re.findall(r"a{10,}|0{10,}|\[{10,}", body["error"])),
               default=0) <= 200, what


# -- the corpus --------------------------------------------------------------------------------
def test_hostile_corpus_is_refused_cleanly_and_the_server_keeps_serving() -> None:
    items = corpus()
    statuses: dict[int, int] = {}
    with running_server() as (port, app):
        status, body = request(port, "POST", "/api/sessions", {"hidden": [4]})
        assert status == 201
        sid = body["id"]
        for what, payload, must_say in items:
            for path in ("/api/sessions", f"/api/sessions/{sid}/reset"):
                status, _, raw = post(port, path, payload)
                statuses[status] = statuses.get(status, 0) + 1
                assert status == 422 or (status == 413 and len(payload) > MAX_BODY), (what, status)
                check_refusal(what, status, raw, must_say)
        assert set(app.state.manager.sessions) == {sid}  # nothing was created ...
        assert app.state.manager.sessions[sid].settings.hidden == (4,)  # ... or changed
        for empty in (b"", b" \r\n\t"):  # an empty body means the defaults
            status, _, raw = post(port, "/api/sessions", empty)
            assert status == 201
            new = json.loads(raw.partition(b"\r\n\r\n")[2])["id"]
            assert request(port, "DELETE", f"/api/sessions/{new}")[0] == 200
        # still serving: the session trains, and a new one streams its states
        assert request(port, "POST", f"/api/sessions/{sid}/step")[0] == 200
        status, body = request(port, "POST", "/api/sessions", {"dataset": "moons"})
        assert status == 201
        stream = EventStream(port, body["id"])
        try:
            assert stream.next_state()["epoch"] == 0
            request(port, "POST", f"/api/sessions/{body['id']}/step")
            assert stream.next_state()["epoch"] == 1
        finally:
            stream.close()
    assert len(items) > 250 and statuses.get(500, 0) == 0
    print(f"{len(items)} bodies x 2 endpoints: statuses {statuses}")


def test_the_measured_requests_of_issue_13() -> None:
    zeros = b"1" + b"0" * 400
    with running_server() as (port, _):
        for name in (b"lr", b"noise"):
            status, _, raw = post(port, "/api/sessions", b'{"%s": %s}' % (name, zeros))
            check_refusal(name.decode(), status, raw, f"{name.decode()} must be <=")
            assert status == 422
        status, _, raw = post(port, "/api/sessions", b"[" * 100_000)
        assert status == 413
        check_refusal("100,000 [", status, raw, "over the limit")
        huge = _json({"dataset": "a" * (20 * 2**20)})
        status, _, raw = post(port, "/api/sessions", huge)
        assert status == 413 and len(raw) < 1000
        assert request(port, "GET", "/api/options")[0] == 200


def test_body_size_cap_without_reading_it_all() -> None:
    with running_server() as (port, _):
        # only the headers: the declared length alone is refused
        status, _, raw = send(port, b"POST /api/sessions HTTP/1.1\r\nHost: t\r\n"
                                    b"Content-Length: 20971520\r\nConnection: close\r\n\r\n")
        assert status == 413
        check_refusal("declared 20 MB", status, raw, "20971520 bytes is over the limit")
        # a chunked body declares no length: it is counted as it arrives
        status, _, raw = post(port, "/api/sessions", b" " * (2 * MAX_BODY), chunked=True)
        assert status == 413
        check_refusal("chunked", status, raw, "over the limit")
        status, _, raw = post(port, "/api/sessions", b" " * (MAX_BODY + 1))
        assert status == 413
        # at the limit, the body is read (and here refused for what it says, not its size)
        body = _json({"dataset": "a" * 100})
        status, _, raw = post(port, "/api/sessions", body + b" " * (MAX_BODY - len(body)))
        assert status == 422
        status, _, raw = post(port, "/api/sessions", _json({"hidden": [4]}), chunked=True)
        assert status == 201
        # a malformed length never reaches the app: the HTTP layer answers 400
        status, _, _ = send(port, b"POST /api/sessions HTTP/1.1\r\nHost: t\r\n"
                                  b"Content-Length: ten\r\nConnection: close\r\n\r\n")
        assert status == 400


def test_error_body_is_cut_to_its_limit() -> None:
    from neuronlab.playground.server import MAX_ERROR_BYTES, _error

    for message in ["x" * 100_000, "\U0001F600" * 10_000, "\x00" * 10_000, "\ud800" * 5000]:
        resp = _error(422, message)
        assert len(resp.body) <= MAX_ERROR_BYTES
        assert json.loads(resp.body)["error"].endswith("...")


def test_json_depth_counts_without_recursion() -> None:
    assert json_depth('{"a": [1, {"b": []}], "c": {}}') == 4
    assert json_depth('{"a": "[[[[{{{{"}') == 1  # brackets in strings do not nest
    assert json_depth(r'{"a": "\"[[[["}') == 1  # nor after an escaped quote
    assert json_depth("[" * 1_000_000) == MAX_DEPTH + 1  # stops counting past the cap
    assert json_depth("") == 0


# -- sessions nobody listens to ----------------------------------------------------------------
def test_default_idle_timeout_is_at_most_ten_seconds() -> None:
    assert inspect.signature(create_app).parameters["idle_timeout"].default <= 10


def test_concurrent_creations_never_fail_and_unheard_sessions_give_their_slots_back() -> None:
    idle = 1.0
    with running_server(max_sessions=8, idle_timeout=idle) as (port, app):
        manager = app.state.manager
        start = threading.Barrier(20)
        results: list[tuple[int, dict[str, str], bytes]] = []
        lock = threading.Lock()

        def create() -> None:
            start.wait()
            result = post(port, "/api/sessions", _json({"hidden": [4]}))
            with lock:
                results.append(result)

        threads = [threading.Thread(target=create) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [201] * 8 + [503] * 12
        for status, headers, raw in results:
            if status == 503:
                check_refusal("over the limit", status, raw, "already runs 8 sessions")
                assert int(headers["retry-after"]) >= 1
        # nobody opens their event streams, and pressing play does not count as listening:
        # all eight are closed within the timeout (plus the reaper's period)
        some = next(iter(manager.sessions))
        request(port, "POST", f"/api/sessions/{some}/play")
        wait_until(lambda: not manager.sessions, timeout=idle + 5)
        # ... so new tabs get sessions again; a listened one lives on past the timeout
        ids = [request(port, "POST", "/api/sessions", {"hidden": [4]})[1]["id"] for _ in range(8)]
        assert request(port, "POST", "/api/sessions", {})[0] == 503
        stream = EventStream(port, ids[0])
        try:
            stream.next_state()
            wait_until(lambda: set(manager.sessions) == {ids[0]}, timeout=idle + 5)
            time.sleep(idle)
            assert set(manager.sessions) == {ids[0]}
            assert request(port, "POST", f"/api/sessions/{ids[0]}/step")[0] == 200
        finally:
            stream.close()
        wait_until(lambda: not manager.sessions)  # the tab closed: its session ends
        assert request(port, "POST", "/api/sessions", {})[0] == 201


@pytest.mark.parametrize("action", ["play", "step", "reset"])
def test_controls_of_an_ended_session_are_404(action: str) -> None:
    with running_server(idle_timeout=0.2) as (port, app):
        sid = request(port, "POST", "/api/sessions", {"hidden": [4]})[1]["id"]
        wait_until(lambda: not app.state.manager.sessions)
        status, body = request(port, "POST", f"/api/sessions/{sid}/{action}", {})
        assert status == 404 and "no such session" in body["error"]


# -- the debugging endpoints: trace, upload, race, export ---------------------------------------
def trace_corpus() -> list[tuple[str, bytes, str | None]]:
    """(what, body, text the error must contain) for POST /api/sessions/{id}/trace."""
    items: list[tuple[str, bytes, str | None]] = []
    for literal in BAD_NUMBERS:
        lit = literal.encode()
        items.append((f"index={literal[:12]}", b'{"index": %s}' % lit, "index"))
        for i, part in enumerate(["x", "y", "label"]):
            p = [b"0", b"0", b"0"]
            p[i] = lit
            items.append((f"point.{part}={literal[:12]}", b'{"point": [%s]}' % b", ".join(p),
                          f"point.{part}"))
    for value in WRONG_TYPES:
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            items.append((f"index={value!r}", _json({"index": value}), "index"))
        if not (isinstance(value, list) and len(value) == 3):
            items.append((f"point={value!r}", _json({"point": value}), "point"))
    long = "a" * (MAX_BODY - 100)
    items += [
        ("neither", b"{}", "send either point"),
        ("both", _json({"index": 0, "point": [0, 0, 0]}), "send either point"),
        ("unknown key", _json({"indx": 0}), "unknown field(s) ['indx']"),
        ("long key", _json({long: 0}), "unknown field"),
        ("long x", _json({"point": [long, 0, 0]}), "point.x must be a real number"),
        ("index past the data", _json({"index": 10**6}), "index must be in [0,"),
        ("point off the plot", _json({"point": [0, -99, 0]}), "point.y must be >= -1.25"),
        ("label past the classes", _json({"point": [0, 0, 3]}), "point.label must be in [0, 2]"),
        ("deep point", b'{"point": ' + b"[" * 40 + b"]" * 40 + b"}", "deep"),
        ("[ x deep", b"[" * (MAX_BODY // 2), "deep"),
        ("array", b"[0, 0, 0]", "JSON object"),
        ("not JSON", b"{index: 1}", "not valid JSON"),
        ("invalid UTF-8", b'{"index": "\xff"}', "not UTF-8"),
        ("too large", _json({"point": long + "a" * 200}), "over the limit of"),
    ]
    return items


def race_corpus() -> list[tuple[str, bytes, str | None]]:
    """(what, body, text the error must contain) for POST /api/sessions/{id}/race."""
    two = [{"optimizer": "sgd", "lr": 0.1}, {"optimizer": "adam", "lr": 0.01}]
    items: list[tuple[str, bytes, str | None]] = []
    for literal in BAD_NUMBERS:
        lit = literal.encode()
        items.append((f"lr={literal[:12]}", b'{"racers": [{"optimizer": "sgd", "lr": %s}, '
                      b'{"optimizer": "adam"}]}' % lit, "racers[0].lr"))
        items.append((f"epochs={literal[:12]}", b'{"racers": %s, "epochs": %s}' % (_json(two), lit),
                      "epochs"))
    long = "a" * (MAX_BODY - 200)
    items += [
        ("no racers", b"{}", "racers must be a list"),
        ("racers a string", _json({"racers": "sgd,adam"}), "racers must be a list"),
        ("one racer", _json({"racers": two[:1]}), "a race needs 2 to 6 optimizers, got 1"),
        ("seven racers", _json({"racers": [{"optimizer": n} for n in
                                           ["sgd", "momentum", "nesterov", "adam", "adamw",
                                            "rmsprop", "adagrad"]]}), "got 7"),
        ("many racers", _json({"racers": [{"optimizer": "sgd"}] * 2000}), "got 2000"),
        ("twice", _json({"racers": [two[0], two[0]]}), "sgd is in the race twice"),
        ("unknown optimizer", _json({"racers": [{"optimizer": "sdg"}, two[1]]}),
         "unknown racers[0].optimizer 'sdg'"),
        ("full batch", _json({"racers": [{"optimizer": "lbfgs"}, two[1]]}), "unknown racers[0]"),
        ("long name", _json({"racers": [{"optimizer": long}, two[1]]}), "racers[0].optimizer"),
        ("racer a list", _json({"racers": [["sgd", 0.1], two[1]]}), "racers[0] must be"),
        ("racer typo", _json({"racers": [{"optimizer": "sgd", "lr": 0.1, "momentun": 0.9}, two[1]]}),
         "racers[0] must be {optimizer, lr}"),
        ("lr 0", _json({"racers": [{"optimizer": "sgd", "lr": 0}, two[1]]}), "racers[0].lr must be > 0"),
        ("lr 11", _json({"racers": [{"optimizer": "sgd", "lr": 11}, two[1]]}), "racers[0].lr must be <= 10"),
        ("lr text", _json({"racers": [{"optimizer": "sgd", "lr": "fast"}, two[1]]}), "racers[0].lr"),
        ("epochs 0", _json({"racers": two, "epochs": 0}), "epochs must be > 0"),
        ("epochs past the bound", _json({"racers": two, "epochs": 10**9}), "epochs must be in [1, 2000]"),
        ("unknown key", _json({"racers": two, "seed": 1}), "unknown field(s) ['seed']"),
        ("deep racers", b'{"racers": ' + b"[" * 40 + b"]" * 40 + b"}", "deep"),
        ("not an object", b"[]", "JSON object"),
        ("too large", _json({"racers": long + "a" * 300}), "over the limit of"),
    ]
    return items


def csv_corpus() -> list[tuple[str, bytes, str | None]]:
    """(what, body, text the error must contain) for POST /api/sessions/{id}/upload."""
    from neuronlab.playground.upload import MAX_UPLOAD_BYTES

    row = b"0.5,0.5,0\n1.5,1.5,1\n"
    items: list[tuple[str, bytes, str | None]] = [
        (f"x={literal[:12]}", row * 10 + literal.encode() + b",1,0\n", "row 21, column x")
        for literal in BAD_NUMBERS]
    items += [
        ("empty", b"", "too few rows: 0 point(s)"),
        ("blank lines", b"\n\n \n", "too few rows"),
        ("JSON", b'{"x": 1, "y": 2, "label": 0}', "the header must be x, y, label"),
        ("two columns", b"x,y\n" + b"1,2\n" * 30, "row 1 has 2 column(s)"),
        ("four columns", row * 10 + b"1,2,0,7\n", "row 21 has 4 column(s)"),
        ("bad header", b"a,b,c\n" + row * 10, "the header must be x, y, label"),
        ("long header", b"a" * 5000 + b",b,c\n" + row * 10, "the header must be x, y, label"),
        ("words", row * 10 + b"one,two,0\n", "row 21, column x: 'one' is not a number"),
        ("long word", row * 10 + b"a" * 50_000 + b",1,0\n", "is not a number"),
        ("fraction label", row * 10 + b"1,1,0.5\n", "'0.5' is not a class number"),
        ("negative label", row * 10 + b"1,1,-1\n", "'-1' is not a class number"),
        ("huge label", row * 10 + b"1,1," + b"9" * 400 + b"\n", "column label"),
        ("too large a coordinate", row * 10 + b"1e300,1,0\n", "is too large"),
        ("too many rows", b"0,0,0\n0,1,1\n" * 501, "too many rows: at most 1000 points"),
        ("one class", b"x,y,label\n" + b"0,0,1\n" * 30, "a classifier needs at least two classes"),
        ("a class left out", b"0,0,0\n1,1,2\n" * 15, "no point has label 1"),
        ("too few", row * 3, "too few rows: 6 point(s)"),
        ("invalid UTF-8", row * 10 + b"\xff,1,0\n", "not UTF-8 text"),
        ("NUL", b"\x00" * 100, "NUL bytes"),
        ("open quote", row * 10 + b'"1,2,0\n' + row, None),
        ("too large", row * (MAX_UPLOAD_BYTES // len(row) + 1), "over the limit of 131072"),
    ]
    return items


def _refused_cleanly(port: int, path: str, items: list[tuple[str, bytes, str | None]],
                     limit: int) -> None:
    for what, payload, must_say in items:
        status, _, raw = post(port, path, payload)
        assert status == 422 or (status == 413 and len(payload) > limit), (what, status, raw[-300:])
        check_refusal(what, status, raw, must_say)


def test_debugging_endpoints_refuse_hostile_requests_cleanly() -> None:
    from neuronlab.playground.upload import MAX_UPLOAD_BYTES

    with running_server(idle_timeout=120.0) as (port, app):
        status, body = request(port, "POST", "/api/sessions", {"hidden": [4]})
        sid = body["id"]
        session = app.state.manager.sessions[sid]
        _refused_cleanly(port, f"/api/sessions/{sid}/trace", trace_corpus(), MAX_BODY)
        _refused_cleanly(port, f"/api/sessions/{sid}/race", race_corpus(), MAX_BODY)
        _refused_cleanly(port, f"/api/sessions/{sid}/upload", csv_corpus(), MAX_UPLOAD_BYTES)
        # the upload's own limit: refused from the declared length, or counted when chunked
        status, _, raw = send(port, f"POST /api/sessions/{sid}/upload HTTP/1.1\r\nHost: t\r\n"
                                    "Content-Length: 20971520\r\nConnection: close\r\n\r\n".encode())
        assert status == 413
        check_refusal("declared 20 MB", status, raw, "over the limit of 131072 bytes")
        status, _, raw = post(port, f"/api/sessions/{sid}/upload", b"0,0,0\n" * 30_000, chunked=True)
        assert status == 413
        # nothing changed: no upload, no race, the same network
        assert (session.upload, session._race, session.settings.hidden) == (None, None, (4,))
        assert json.loads(session.state)["race"] is None
        # unknown sessions and formats
        for method, path in [("POST", "/api/sessions/nope/trace"), ("POST", "/api/sessions/nope/upload"),
                             ("POST", "/api/sessions/nope/race"), ("DELETE", "/api/sessions/nope/race"),
                             ("GET", "/api/sessions/nope/export/onnx")]:
            status, body = request(port, method, path, {})
            assert status == 404 and "no such session" in body["error"], (method, path)
        for fmt in ("pickle", "x" * 300):
            status, body = request(port, "GET", f"/api/sessions/{sid}/export/{fmt}")
            assert status == 404 and "unknown export format" in body["error"]
            assert len(body["error"]) < 300
        # no route, or not this method: JSON errors too
        status, body = request(port, "GET", f"/api/sessions/{sid}/export/..%2F..%2Fetc")
        assert status == 404 and "no such page" in body["error"]
        status, body = request(port, "GET", f"/api/sessions/{sid}/trace")
        assert status == 405 and "GET is not allowed here" in body["error"]
        # still serving: each endpoint does its work
        status, body = request(port, "POST", f"/api/sessions/{sid}/trace", {"index": 0})
        assert status == 200 and len(body["layers"]) == 3
        csv = "\n".join(f"{i % 7},{i % 5},{i % 2}" for i in range(40)).encode()
        status, body = request(port, "POST", f"/api/sessions/{sid}/upload", csv)
        assert status == 200 and body["upload"] == {"rows": 40, "classes": 2}
        status, body = request(port, "POST", f"/api/sessions/{sid}/race",
                               {"racers": [{"optimizer": "sgd"}, {"optimizer": "adam"}], "epochs": 3})
        assert status == 200 and body["race"]["status"] == "running"
        status, body = request(port, "DELETE", f"/api/sessions/{sid}/race")
        assert status == 200 and body["race"]["status"] in ("stopped", "finished")
        conn_status, headers, raw = send(port, f"GET /api/sessions/{sid}/export/safetensors HTTP/1.1\r\n"
                                               "Host: t\r\nConnection: close\r\n\r\n".encode())
        assert conn_status == 200 and 'filename="playground.safetensors"' in headers["content-disposition"]
