"""The playground: settings validation, pictures, sessions, the HTTP API and SSE stream on a
real uvicorn server, and the page itself driven in headless Chromium."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from neuronlab.playground import Session, create_app, parse_settings
from neuronlab.playground.jobs import JobQueue
from neuronlab.playground.session import _Stopped
from neuronlab.playground.render import CLASS_COLORS, grid, png_rgb, region_image
from neuronlab.playground.settings import make_data

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# -- helpers ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(**app_kw: Any) -> Iterator[tuple[int, Any]]:
    """The real app on uvicorn in a thread; yields (port, app)."""
    import uvicorn

    app = create_app(**app_kw)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield port, app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    payload = json.loads(resp.read() or b"null")
    conn.close()
    return resp.status, payload


class EventStream:
    """A minimal SSE client: ``next_state()`` returns the next ``data:`` event as JSON."""

    def __init__(self, port: int, sid: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.conn.request("GET", f"/api/sessions/{sid}/events")
        self.resp = self.conn.getresponse()

    def next_state(self) -> dict[str, Any]:
        while True:
            line = self.resp.fp.readline()
            assert line, "stream ended"
            if line.startswith(b"data: "):
                return json.loads(line[6:])

    def close(self) -> None:
        # drop the connection as a closed tab does (shutdown: the response's file object
        # still references the socket, so close() alone would not end the connection)
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.resp.close()
        self.conn.close()


def wait_until(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# -- settings --------------------------------------------------------------------------------
def test_settings_defaults_and_overrides() -> None:
    s = parse_settings({"dataset": "Moons", "hidden": [5, 3], "lr": 0.1})
    assert (s.dataset, s.hidden, s.lr, s.activation) == ("moons", (5, 3), 0.1, "relu")
    assert parse_settings(s.to_dict()) == s  # the page sends back what it received


@pytest.mark.parametrize(("raw", "message"), [
    ({"lr": -1}, "lr must be > 0, got -1"),
    ({"lr": "abc"}, "lr must be a real number"),
    ({"hidden": [16, 1000]}, "hidden[1] must be in [1, 64], got 1000"),
    ({"hidden": [8] * 7}, "at most 6 layers"),
    ({"dataset": "mnist"}, "unknown dataset 'mnist'; choose one of: spiral"),
    ({"activation": "swish"}, "choose one of: relu, leaky_relu"),
    ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
    ({"momentun": 0.9}, "unknown setting(s) ['momentun']"),
    ({"dropout": 0.95}, "dropout must be <= 0.9"),
    ({"n_points": 100000}, "n_points must be in [20, 1000]"),
    ({"points": [[0.0, 0.0, 3]], "dataset": "moons"}, "points[0].label must be in [0, 1]"),
    ({"points": [[9.0, 0.0, 0]]}, "points[0].x must be <= 1.25"),
    ({"batchnorm": "yes"}, "batchnorm must be a bool"),
])
def test_bad_settings_name_the_value(raw: dict[str, Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError)) as err:
        parse_settings(raw)
    assert message in str(err.value)


def test_data_rescaled_split_and_clicked_points_added() -> None:
    s = parse_settings({"dataset": "blobs", "n_points": 200, "test_fraction": 0.25,
                        "points": [[0.5, -0.5, 2]]})
    d = make_data(s)
    assert np.abs(np.concatenate([d.X_train, d.X_test])).max() == pytest.approx(1.0)
    assert (len(d.y_train), len(d.y_test)) == (150 + 1, 50)  # 25% of 200 held out, +1 click
    np.testing.assert_array_equal(d.X_train[-1], np.float32([0.5, -0.5]))
    assert d.y_train[-1] == 2 and d.n_classes == 3


# -- pictures --------------------------------------------------------------------------------
def test_png_decodes_to_the_same_pixels() -> None:
    from PIL import Image

    img = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(png_rgb(img))).convert("RGB"))
    np.testing.assert_array_equal(decoded, img)


def test_grid_orientation() -> None:
    g = grid(1.0, 4)  # pixel centres at -0.75, -0.25, 0.25, 0.75
    np.testing.assert_allclose(g[0], [-0.75, 0.75])  # top-left: smallest x, largest y
    np.testing.assert_allclose(g[-1], [0.75, -0.75])
    np.testing.assert_allclose(g[1], [-0.25, 0.75])  # row-major: x moves first


def test_region_colours() -> None:
    # one-hot probabilities: confidence 1 -> alpha 0.25 + 0.45 = 0.7 of the class colour over
    # white: class 0 (230, 159, 0) -> 255 - 0.7 * (25, 96, 255) = (237.5, 187.8, 76.5),
    # truncated to uint8 (237, 187, 76)
    proba = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    img = region_image(proba, 2).reshape(4, 3)
    np.testing.assert_array_equal(img[0], [237, 187, 76])
    # uniform: alpha 0.25 of the mean colour: 255 + 0.25 * (mean - 255)
    mean = CLASS_COLORS[:3].mean(axis=0)
    np.testing.assert_array_equal(img[1], np.floor(255 + 0.25 * (mean - 255)).astype(np.uint8))


# -- sessions --------------------------------------------------------------------------------
def test_a_pause_that_races_a_publish_is_shown_before_the_session_waits() -> None:
    """The page once stayed on "running" after Pause: the training thread had drawn its state
    just before the pause and then waited without drawing again. Here a second caller of the
    gate finds that stale state: the session's own thread is parked in its wait first, so
    nothing else touches the model."""
    s = Session(parse_settings({}))
    try:
        def parked() -> bool:  # the training thread waits in _wait_for_go before epoch 0
            frame = sys._current_frames().get(s._thread.ident)
            while frame is not None:
                if frame.f_code.co_name == "_wait_for_go":
                    return True
                frame = frame.f_back
            return False

        wait_until(parked)
        s.status = "running"
        s._publish(s.trainer)  # the last state drawn says running ...
        assert json.loads(s.state)["status"] == "running"
        with s._cond:  # ... and the pause has arrived since
            s.status, s._running = "paused", False
        done = threading.Event()

        def wait() -> None:
            with contextlib.suppress(_Stopped):
                s._wait_for_go(s.trainer, JobQueue(s._cond))
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        wait_until(lambda: json.loads(s.state)["status"] == "paused")
    finally:
        s.close()
    assert done.wait(5)  # and the close ended its wait


def test_session_learns_spiral_and_steps_one_epoch() -> None:
    s = Session(parse_settings({}))
    try:
        first = json.loads(s.state)
        assert (first["status"], first["epoch"]) == ("paused", 0)
        assert first["train"]["acc"] < 0.6  # untrained, 3 classes
        s.step()
        wait_until(lambda: json.loads(s.state)["epoch"] == 1)
        time.sleep(0.2)
        assert json.loads(s.state)["epoch"] == 1  # one step is one epoch, then it waits
        s.play()
        wait_until(lambda: json.loads(s.state)["train"]["acc"] > 0.95, timeout=20)
        state = json.loads(s.state)
        assert state["region"] != first["region"]
        assert [len(u) for u in state["units"]] == [16, 16]
        assert {r["param"] for r in state["babysitting"]["ratios"]} == {"0.W", "2.W", "4.W"}
    finally:
        s.close()
    assert s._thread is None


def test_diverging_network_shows_the_diagnosis() -> None:
    # SGD at lr 10 with L2 strength 1: each step multiplies the weights by 1 - 10 = -9
    s = Session(parse_settings({"optimizer": "sgd", "lr": 10.0, "l2": 1.0}))
    try:
        s.play()
        wait_until(lambda: json.loads(s.state)["status"] == "diverged")
        state = json.loads(s.state)
        assert "training diverged at step" in state["error"]
        rules = [f["rule"] for f in state["babysitting"]["diagnosis"]]
        assert rules[0] == "diverged" and "lr_too_high" in rules
        s.play()  # nothing more to train: stays diverged, no thread spinning
        assert s.status == "diverged"
    finally:
        s.close()


def test_compute_bounds_steps_per_second_and_max_epochs() -> None:
    # 240 training points / batch 32 = 8 steps per epoch; at 100 steps/s one second allows
    # at most ~100 steps (12 epochs)
    s = Session(parse_settings({}), max_steps_per_second=100.0, max_epochs=1000)
    try:
        s.play()
        time.sleep(1.0)
        s.pause()
        assert 8 <= s.trainer.step <= 110
    finally:
        s.close()
    s = Session(parse_settings({}), max_epochs=3)
    try:
        s.play()
        wait_until(lambda: json.loads(s.state)["status"] == "finished")
        assert json.loads(s.state)["epoch"] == 3
    finally:
        s.close()


# -- the HTTP API on a real server -----------------------------------------------------------
def test_api_bad_settings_are_4xx_with_message() -> None:
    with running_server() as (port, _):
        status, body = request(port, "POST", "/api/sessions", {"lr": 0})
        assert status == 422 and body["error"] == "lr must be > 0, got 0"
        status, body = request(port, "POST", "/api/sessions", b"{not json")
        assert status == 422 and "not valid JSON" in body["error"]
        status, body = request(port, "POST", "/api/sessions", {"hidden": [16]})
        assert status == 201
        sid = body["id"]
        status, body = request(port, "POST", f"/api/sessions/{sid}/reset", {"batch_size": 0})
        assert status == 422 and "batch_size must be > 0" in body["error"]
        status, body = request(port, "POST", f"/api/sessions/{sid}/reset", {"dataset": "xor"})
        assert status == 200 and body["settings"]["hidden"] == [16]  # partial: rest kept
        assert request(port, "POST", "/api/sessions/nope/play")[0] == 404
        assert request(port, "POST", f"/api/sessions/{sid}/jump")[0] == 404


def test_api_bounds_sessions() -> None:
    with running_server(max_sessions=2) as (port, app):
        ids = [request(port, "POST", "/api/sessions", {})[1]["id"] for _ in range(2)]
        status, body = request(port, "POST", "/api/sessions", {})
        assert status == 503 and "2 sessions" in body["error"]
        assert request(port, "DELETE", f"/api/sessions/{ids[0]}")[0] == 200
        assert request(port, "POST", "/api/sessions", {})[0] == 201
        assert len(app.state.manager.sessions) == 2


def test_sse_stream_delivers_state_and_disconnect_stops_training() -> None:
    with running_server() as (port, app):
        sid = request(port, "POST", "/api/sessions", {})[1]["id"]
        stream = EventStream(port, sid)
        assert stream.resp.getheader("Content-Type").startswith("text/event-stream")
        first = stream.next_state()
        assert (first["session"], first["status"], first["epoch"]) == (sid, "paused", 0)
        request(port, "POST", f"/api/sessions/{sid}/step")
        stepped = stream.next_state()
        assert (stepped["epoch"], stepped["error"]) == (1, None)
        request(port, "POST", f"/api/sessions/{sid}/play")
        later = stream.next_state()
        assert later["status"] == "running" and later["version"] > first["version"]
        session = app.state.manager.sessions[sid]
        thread = session._thread
        stream.close()  # the tab closes
        wait_until(lambda: sid not in app.state.manager.sessions)
        assert session.closed
        wait_until(lambda: not thread.is_alive())
        assert request(port, "GET", f"/api/sessions/{sid}/events")[0] == 404


# -- the page in headless Chromium -----------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian's chromium is not installed (make chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, int, Any]]:
    # a browser on a loaded machine may take seconds to open its event stream: the idle
    # reaper (tested in test_playground_hostile.py) must not take the session meanwhile
    with running_server(idle_timeout=120.0) as (port, app):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        errors: list[str] = []
        context.on("weberror", lambda e: errors.append(str(e.error)))
        yield pg, port, app
        context.close()
        assert errors == []


def _region(pg: Any) -> str:
    return pg.get_attribute("#region", "src")


def test_page_trains_the_spiral(page: tuple[Any, int, Any]) -> None:
    pg, port, _ = page
    pg.goto(f"http://127.0.0.1:{port}/")
    pg.wait_for_function("document.querySelector('#status').textContent === 'paused'")
    before = _region(pg)
    assert before.startswith("data:image/png;base64,")
    pg.click("#play")
    pg.wait_for_function("Number(document.querySelector('#train-acc').dataset.value) > 0.95",
                         timeout=30000)
    pg.click("#pause")
    pg.wait_for_function("document.querySelector('#status').textContent === 'paused'")
    assert float(pg.get_attribute("#train-acc", "data-value")) > 0.95
    assert pg.text_content("#train-acc").endswith("%")
    assert _region(pg) != before
    assert pg.locator("#units img.unit").count() == 32  # two hidden layers of 16
    assert "dataset=spiral" in pg.evaluate("location.hash")


def test_page_follows_dataset_and_hidden_units(page: tuple[Any, int, Any]) -> None:
    pg, port, app = page
    pg.goto(f"http://127.0.0.1:{port}/")
    pg.wait_for_function("document.querySelector('#status').textContent === 'paused'")
    before = _region(pg)
    pg.select_option("#dataset", "moons")
    pg.wait_for_function("location.hash.includes('dataset=moons')")
    pg.fill(".layer-units >> nth=0", "5")
    pg.locator(".layer-units >> nth=0").dispatch_event("change")
    pg.wait_for_function("document.querySelectorAll('#units img.unit').length === 5 + 16")
    # the state stream may draw the new units before the reset's reply updates the URL
    pg.wait_for_function("location.hash.includes('hidden=5%2C16')")
    assert pg.locator("#click-class option").count() == 2  # moons has two classes
    assert _region(pg) != before
    (session,) = app.state.manager.sessions.values()
    assert session.settings.dataset == "moons" and session.settings.hidden == (5, 16)
    # a click on the plot adds a training point of the chosen class
    n = len(session.data.y_train)
    pg.click("#plot", position={"x": 200, "y": 100})
    pg.wait_for_function("location.hash.includes('points=')")  # the page has the reply
    wait_until(lambda: len(session.data.y_train) == n + 1)  # and the server its new data
    x, y, label = session.settings.points[0]
    assert (abs(x) < 0.05, y == pytest.approx(0.625, abs=0.05), label) == (True, True, 0)
    assert len(session.data.y_train) == n + 1
    # an out-of-range value is refused with the library's message, the run keeps its settings
    pg.fill("#lr", "-1")
    pg.locator("#lr").dispatch_event("change")
    pg.wait_for_function("document.querySelector('#error').textContent.includes('lr must')")
    assert pg.is_visible("#error")
    assert "lr must be > 0, got -1" in pg.text_content("#error")
    assert session.settings.lr == 0.01
    # the URL reproduces the state in a new tab, with its own session
    url = pg.url
    other = pg.context.new_page()  # a second tab of the same browser window
    other.goto(url)
    other.wait_for_function("document.querySelector('#status').textContent === 'paused'")
    assert other.input_value("#dataset") == "moons"
    assert len(app.state.manager.sessions) == 2
    other.close()  # closing the tab ends its session
    wait_until(lambda: len(app.state.manager.sessions) == 1)


# -- the command -----------------------------------------------------------------------------
def test_cli_playground_prints_url_and_serves() -> None:
    import subprocess
    import sys

    port = _free_port()
    code = "from neuronlab.cli import main; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, "playground", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line
        wait_until(lambda: _serving(port))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200 and b"neuronlab playground" in resp.read()
        conn.close()
        for asset in ("/static/playground.js", "/static/playground.css"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", asset)
            assert conn.getresponse().status == 200
            conn.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def _serving(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
