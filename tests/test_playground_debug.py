"""The playground that debugs: one example stepped through the network (values and gradients
from the model's own forward and backward), uploaded CSV points, the trained network
exported (safetensors, ONNX, a Python snippet), optimizers raced side by side, and the
babysitting panel that waits for training. Sessions directly, then the page in Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_playground import browser, request, running_server, wait_until  # noqa: F401  (fixture)

import neuronlab as nl
from neuronlab.playground import Session, parse_settings
from neuronlab.playground.babysit import babysitting
from neuronlab.playground.render import grid
from neuronlab.playground.trace import parse_trace_request
from neuronlab.playground.upload import MAX_ROWS, parse_csv

RTOL = 1e-6


# -- helpers ---------------------------------------------------------------------------------
def own_trace(model: Any, x: np.ndarray, label: int) -> dict[str, Any]:
    """What the test expects for one example, from the model's own layers, ``forward`` and
    ``backward`` in inference mode: each layer's output, the gradient arriving at it, the
    parameter gradients, the input's gradient and the probabilities."""
    loss = nl.SoftmaxCrossEntropy()
    outs, h = [], x
    for layer in model.layers:
        h = layer.forward(h, training=False)
        outs.append(h[0].astype(np.float64))
    scores = model.forward(x, training=False)
    np.testing.assert_allclose(scores[0], outs[-1], rtol=RTOL)
    # the gradient arriving at each layer's output: the backward pass one layer at a time
    model.zero_grad()
    loss.forward(scores, np.array([label]))
    dout, arriving = loss.backward(), [np.empty(0)] * len(model.layers)
    for i in range(len(model.layers) - 1, -1, -1):
        arriving[i] = dout[0].astype(np.float64)
        dout = model.layers[i].backward(dout)
    # ... and the whole backward as training runs it: the parameter and input gradients
    model.zero_grad()
    model.forward(x, training=False)
    loss.forward(model.forward(x, training=False), np.array([label]))
    grad_input = model.backward(loss.backward())
    return {"outputs": outs, "arriving": arriving, "grads": {k: g.copy() for k, g in model.grads.items()},
            "params": model.params, "grad_input": grad_input[0], "proba": model.predict_proba(x)[0]}


def close(actual: Any, expected: Any, what: str) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64),
                               np.asarray(expected, dtype=np.float64), rtol=RTOL, atol=1e-12,
                               err_msg=what)


def load_export(session: Session, fmt: str, tmp: Path) -> Path:
    path = tmp / f"playground.{fmt}"
    path.write_bytes(session.export(fmt))
    return path


def step_epochs(session: Session, n: int) -> None:
    start = json.loads(session.state)["epoch"]
    for _ in range(n):
        session.step()
    wait_until(lambda: json.loads(session.state)["epoch"] == start + n, timeout=30)


def blobs_csv(n: int = 200, *, header: bool = True, seed: int = 0) -> str:
    """Two separable clouds far from the playground's square (the upload is rescaled)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = np.where(y[:, None] == 0, [-20.0, 30.0], [40.0, -10.0]) + rng.normal(0, 6.0, (n, 2))
    rows = [f"{a:.6f},{b:.6f},{c}" for (a, b), c in zip(X, y)]
    return "\n".join((["x,y,label"] if header else []) + rows) + "\n"


# -- tracing one example -----------------------------------------------------------------------
@pytest.mark.parametrize("settings", [
    {"hidden": [6, 5]},
    {"hidden": [5, 4], "activation": "tanh", "batchnorm": True, "dropout": 0.3},
    {"hidden": [4], "activation": "maxout", "dataset": "moons"},
    {"hidden": [4, 3], "activation": "prelu", "dataset": "xor"},
], ids=["relu", "tanh-batchnorm-dropout", "maxout", "prelu"])
def test_trace_matches_the_models_own_forward_and_backward(settings: dict[str, Any],
                                                           tmp_path: Path) -> None:
    s = Session(parse_settings(settings))
    try:
        step_epochs(s, 2)
        model = nl.load(load_export(s, "safetensors", tmp_path))  # the same state, loaded
        for ask in ({"index": 7}, {"point": [0.3, -0.6, 1]}):
            t = s.trace(ask)
            x = np.array([t["input"]], dtype=np.float32)
            if "index" in ask:
                np.testing.assert_array_equal(x[0], s.data.X_train[7])
                assert t["label"] == s.data.y_train[7]
            want = own_trace(model, x, t["label"])
            for i, layer in enumerate(t["layers"]):
                close(layer["output"], want["outputs"][i], f"layer {i} output")
                close(layer["grad"], want["arriving"][i], f"layer {i} dL/d output")
                for k, p in layer["params"].items():
                    close(p["value"], want["params"][f"{i}.{k}"], f"{i}.{k}")
                    close(p["grad"], want["grads"][f"{i}.{k}"], f"{i}.{k} gradient")
            close(t["grad_input"], want["grad_input"], "dL/dx")
            close(t["proba"], want["proba"], "probabilities")
            assert t["loss"] == pytest.approx(-np.log(want["proba"][t["label"]]), rel=1e-5)
            assert t["step"] == s.trainer.step and t["epoch"] == 2
    finally:
        s.close()


def test_tracing_leaves_training_undisturbed() -> None:
    """Two sessions train the same network (dropout draws masks from its generator); one of
    them is traced between epochs and while it runs. Their weights, optimizer state and
    random generators stay identical, bit for bit."""
    cfg = parse_settings({"hidden": [8, 8], "dropout": 0.3, "optimizer": "momentum", "lr": 0.05})
    a = Session(cfg, max_epochs=6)
    b = Session(cfg, max_epochs=6)
    try:
        step_epochs(a, 1)
        step_epochs(b, 1)
        grads = {k: g.copy() for k, g in a.trainer.model.grads.items()}
        for i in range(5):
            a.trace({"index": i})
            a.trace({"point": [0.1 * i, -0.2, 2]})
        for k, g in a.trainer.model.grads.items():
            np.testing.assert_array_equal(g, grads[k], err_msg=k)  # restored
        a.play()
        b.play()
        traced = 0
        while json.loads(a.state)["status"] != "finished":
            a.trace({"index": traced % 20})  # between two steps of a running network
            traced += 1
        wait_until(lambda: json.loads(b.state)["status"] == "finished", timeout=30)
        assert traced > 0
        for k, p in a.trainer.model.params.items():
            np.testing.assert_array_equal(p, b.trainer.model.params[k], err_msg=k)
        for layer_a, layer_b in zip(a.trainer.model.layers, b.trainer.model.layers):
            if hasattr(layer_a, "rng"):
                assert layer_a.rng.bit_generator.state == layer_b.rng.bit_generator.state
        assert a.trainer.history.loss == b.trainer.history.loss
        # once the thread has ended the request runs the model itself
        assert a.trace({"index": 0})["step"] == a.trainer.step
    finally:
        a.close()
        b.close()


def test_a_diverged_network_is_not_traced_and_keeps_its_gradients() -> None:
    from neuronlab.playground.trace import trace_example

    model = nl.mlp(2, [4], 3, rng=0)
    model.params["0.W"][0, 0] = np.inf
    model.grads["2.W"][...] = 0.5
    with pytest.raises(ValueError, match="not finite .* reset it"):
        trace_example(model, nl.SoftmaxCrossEntropy(), np.ones((1, 2), np.float32), 0)
    assert (model.grads["2.W"] == 0.5).all() and not model.grads["0.W"].any()


@pytest.mark.parametrize(("raw", "message"), [
    ({}, "send either point"),
    ({"point": [0, 0, 0], "index": 1}, "send either point"),
    ({"points": [0, 0, 0]}, "unknown field(s) ['points']"),
    ({"index": 240}, "index must be in [0, 239], got 240"),
    ({"index": -1}, "index must be in [0, 239]"),
    ({"index": 1.5}, "index must be an integer"),
    ({"point": [0, 0]}, "point must be [x, y, label]"),
    ({"point": [2.0, 0, 0]}, "point.x must be <= 1.25"),
    ({"point": [0, float("nan"), 0]}, "point.y must be"),
    ({"point": [0, 0, 3]}, "point.label must be in [0, 2], got 3"),
    ({"point": "0,0,0"}, "point must be [x, y, label]"),
])
def test_trace_requests_are_checked(raw: dict[str, Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError)) as err:
        parse_trace_request(raw, 3, 240)
    assert message in str(err.value)


# -- uploads -------------------------------------------------------------------------------------
def test_csv_with_or_without_header_is_rescaled_into_the_square() -> None:
    with_header, without = parse_csv(blobs_csv().encode()), parse_csv(blobs_csv(header=False).encode())
    np.testing.assert_array_equal(with_header.X, without.X)
    up = with_header
    assert (up.X.shape, up.n_classes, up.summary()) == ((200, 2), 2, {"rows": 200, "classes": 2})
    assert np.abs(up.X).max() == pytest.approx(1.0)
    raw = np.loadtxt(io.StringIO(blobs_csv()), delimiter=",", skiprows=1)
    np.testing.assert_allclose(up.scaler.transform(raw[:, :2]), up.X, rtol=1e-6, atol=1e-7)
    # a spreadsheet's byte-order mark, CRLF lines, blank lines and spaces are fine
    messy = "\ufeffX, Y, Label\r\n\r\n" + blobs_csv(header=False).replace(",", " , ").replace("\n", "\r\n")
    np.testing.assert_array_equal(parse_csv(messy.encode()).X, up.X)


ROW = "0.5,0.5,0\n1.5,1.5,1\n"


@pytest.mark.parametrize(("text", "message"), [
    ("x,y\n" + "1,2\n" * 30, "row 1 has 2 column(s); every row must have 3: x, y, label"),
    ("x,y,label,w\n" + "1,2,0,1\n" * 30, "row 1 has 4 column(s)"),
    (ROW * 10 + "1,2\n", "row 21 has 2 column(s)"),
    ("a,b,c\n" + ROW * 10, "the header must be x, y, label; got 'a', 'b', 'c'"),
    (ROW * 5 + "1.0,abc,1\n" + ROW * 5, "row 11, column y: 'abc' is not a number"),
    (ROW * 5 + "nan,1,1\n" + ROW * 5, "row 11, column x: 'nan' is not a finite number"),
    (ROW * 5 + "1e400,1,1\n" + ROW * 5, "is not a finite number"),
    (ROW * 5 + "1e300,1,1\n" + ROW * 5, "row 11, column x: '1e300' is too large"),
    (ROW * 5 + "1,1,0.5\n" + ROW * 5, "row 11, column label: '0.5' is not a class number"),
    (ROW * 5 + "1,1,-1\n" + ROW * 5, "'-1' is not a class number"),
    (ROW * 5 + "1,1,9\n" + ROW * 5, "'9' is not a class number (a whole number from 0 to 7)"),
    ("0,0,0\n" * (MAX_ROWS + 1), f"too many rows: at most {MAX_ROWS} points"),
    ("x,y,label\n" + "0,0,1\n" * 50, "every point has label 1: a classifier needs at least two"),
    ("0,0,0\n1,1,2\n" * 15, "no point has label 1"),
    (ROW * 3, "too few rows: 6 point(s); at least 20"),
    ("", "too few rows: 0 point(s)"),
    ("\x00\x01" * 20, "NUL bytes"),
])
def test_bad_csv_files_are_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_csv(text.encode())
    assert message in str(err.value)


def test_csv_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(ValueError, match="not UTF-8 text"):
        parse_csv(b"x,y,label\n\xff\xfe,1,0\n")


def test_session_trains_on_its_upload_and_exports_in_the_csvs_coordinates(tmp_path: Path) -> None:
    with running_server(idle_timeout=120.0) as (port, app):  # no tab listens here
        status, body = request(port, "POST", "/api/sessions", {"hidden": [8]})
        sid = body["id"]
        status, body = request(port, "POST", f"/api/sessions/{sid}/upload", blobs_csv().encode())
        assert status == 200, body
        assert body["upload"] == {"rows": 200, "classes": 2}
        assert (body["settings"]["dataset"], body["settings"]["points"]) == ("upload", [])
        session = app.state.manager.sessions[sid]
        assert (len(session.data.y_train), len(session.data.y_test), session.data.n_classes) == (160, 40, 2)
        # the upload stays through resets; a click adds a point of its classes
        status, body = request(port, "POST", f"/api/sessions/{sid}/reset",
                               {"test_fraction": 0.5, "points": [[0.0, 0.0, 1]]})
        assert status == 200 and len(session.data.y_train) == 101
        status, body = request(port, "POST", f"/api/sessions/{sid}/reset", {"points": [[0.0, 0.0, 2]]})
        assert status == 422 and "points[0].label must be in [0, 1]" in body["error"]
        step_epochs(session, 5)
        raw = np.loadtxt(io.StringIO(blobs_csv()), delimiter=",", skiprows=1)[:, :2]
        model = nl.load(load_export(session, "safetensors", tmp_path))
        server = session.on_model(lambda run: run.trainer.model.predict_proba(
            run.upload.scaler.transform(raw).astype(np.float32)))
        np.testing.assert_allclose(model.predict_proba(raw), server, rtol=1e-5, atol=1e-6)
        ort = pytest.importorskip("onnxruntime")
        graph = ort.InferenceSession(str(load_export(session, "onnx", tmp_path)))
        (proba,) = graph.run(["probabilities"], {"x": raw.astype(np.float32)})
        np.testing.assert_allclose(proba, server, rtol=1e-4, atol=1e-5)
        # back to a generated data set, and to the upload again
        assert request(port, "POST", f"/api/sessions/{sid}/reset", {"dataset": "moons"})[0] == 200
        assert request(port, "POST", f"/api/sessions/{sid}/reset", {"dataset": "upload"})[0] == 200
        assert session.data.n_classes == 2
        # a session without an upload cannot ask for one
        status, body = request(port, "POST", "/api/sessions", {"dataset": "upload"})
        assert status == 422 and "needs a CSV uploaded" in body["error"]


# -- export ----------------------------------------------------------------------------------------
def test_exported_files_predict_as_the_server_does(tmp_path: Path) -> None:
    s = Session(parse_settings({"hidden": [8, 8], "batchnorm": True, "dropout": 0.2}))
    try:
        step_epochs(s, 3)
        points = grid(1.25, 21)
        server = s.on_model(lambda run: run.trainer.model.predict_proba(points))
        model = nl.load(load_export(s, "safetensors", tmp_path))
        np.testing.assert_array_equal(model.predict_proba(points), server)
        assert model.metadata["loss"] == "softmax" and model.metadata["epoch"] == 3
        ort = pytest.importorskip("onnxruntime")
        graph = ort.InferenceSession(str(load_export(s, "onnx", tmp_path)))
        (proba,) = graph.run(["probabilities"], {"x": points})
        np.testing.assert_allclose(proba, server, rtol=1e-4, atol=1e-6)
        with pytest.raises(ValueError, match="unknown format 'pickle'"):
            s.export("pickle")
    finally:
        s.close()


# -- races -----------------------------------------------------------------------------------------
def test_race_starts_every_optimizer_from_the_same_weights_and_finishes() -> None:
    s = Session(parse_settings({"hidden": [8]}))
    try:
        step_epochs(s, 1)  # the session's own first epoch, from the initial weights
        s.play()
        state = s.start_race([("sgd", 0.1), ("momentum", 0.05), ("adam", 0.01)], 12)
        assert s.status == "paused"  # the session's own training waits
        assert [r["optimizer"] for r in state["racers"]] == ["sgd", "momentum", "adam"]
        race = s._race
        assert race is not None
        wait_until(lambda: json.loads(s.state)["race"]["status"] == "finished", timeout=60)
        final = json.loads(s.state)["race"]
        for r in final["racers"]:
            assert (r["status"], r["epoch"], len(r["curve"]["loss"])) == ("finished", 12, 12)
            assert r["region"].startswith("data:image/png;base64,")
        losses = {r["optimizer"]: r["curve"]["loss"] for r in final["racers"]}
        assert all(v[-1] < v[0] for v in losses.values())
        # the same start: the same initial weights and the same first batch give every racer
        # the loss the session's own first step had (before any update rule acted)
        first = {r.optimizer: r.trainer.history.loss[0] for r in race.racers}
        assert set(first.values()) == {s.trainer.history.loss[0]}, first
        # a new race replaces it; a reset ends it; stopping keeps the last state
        s.start_race([("sgd", 0.1), ("adagrad", 0.1)], 2000)
        stopped = s.stop_race()
        assert stopped is not None and stopped["status"] == "stopped"
        assert json.loads(s.state)["race"]["status"] == "stopped"
        s.start_race([("rmsprop", 0.01), ("nesterov", 0.05)], 2000)
        s.reset()
        assert json.loads(s.state)["race"] is None
    finally:
        s.close()


def test_babysitting_is_empty_until_training_starts() -> None:
    s = Session(parse_settings({}))
    try:
        b = json.loads(s.state)["babysitting"]
        assert b == {"started": False, "step": None, "ratios": [], "layers": [], "diagnosis": []}
        step_epochs(s, 1)
        b = json.loads(s.state)["babysitting"]
        assert b["started"] and b["ratios"]
    finally:
        s.close()
    assert babysitting(s.trainer.history, "diverged at step 0", started=False)["started"]


# -- the page in headless Chromium -----------------------------------------------------------------
@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, int, Any]]:  # noqa: F811
    # racers are held to 500 steps/s each, so a race's curves grow over several states
    with running_server(idle_timeout=120.0, max_steps_per_second=500.0) as (port, app):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        pg = context.new_page()
        errors: list[str] = []
        context.on("weberror", lambda e: errors.append(str(e.error)))
        pg.goto(f"http://127.0.0.1:{port}/")
        pg.wait_for_function("document.querySelector('#status').textContent === 'paused'")
        yield pg, port, app
        context.close()
        assert errors == []


def _session(app: Any) -> Session:
    (session,) = app.state.manager.sessions.values()
    return session


def _phase(pg: Any) -> int:
    return int(pg.get_attribute("#trace-phase", "data-phase"))


READ_NET = """() => {
  const units = {}, edges = {};
  for (const c of document.querySelectorAll('#net circle.unit'))
    units[c.id] = {value: c.dataset.value, grad: c.dataset.grad, bias: c.dataset.bias,
                   biasGrad: c.dataset.biasGrad};
  for (const e of document.querySelectorAll('#net line.weight'))
    edges[e.id] = {weight: e.dataset.weight, grad: e.dataset.grad};
  return {units, edges};
}"""


def test_page_steps_one_example_forward_and_backward(page: tuple[Any, int, Any],
                                                     tmp_path: Path) -> None:
    pg, _, app = page
    pg.click("#step")
    pg.wait_for_function("document.querySelector('#epoch').textContent === '1'")
    pg.click("#trace-next")
    pg.wait_for_function("document.querySelector('#trace-phase').dataset.phase === '0'")
    n_layers = 5  # Linear ReLU Linear ReLU Linear
    assert int(pg.get_attribute("#trace-phase", "data-max")) == 2 * n_layers + 2
    ex = pg.locator("#trace-example")
    assert ex.get_attribute("data-index") == "0"
    # forward, one layer at a time: layer 1's output is shown, layer 2's not yet, no gradient
    pg.click("#trace-forward")
    pg.click("#trace-forward")
    wait_until(lambda: _phase(pg) == 2)
    assert "forward through layer 1 (ReLU): y = max(0, x)" in pg.text_content("#trace-phase")
    net = pg.evaluate(READ_NET)
    assert net["units"]["unit-1-0"]["value"] is not None and net["units"]["unit-2-0"]["value"] is None
    assert all(u["grad"] is None for u in net["units"].values())
    for p in range(3, 2 * n_layers + 3):
        pg.click("#trace-forward")
        wait_until(lambda p=p: _phase(pg) == p)
        if p == n_layers + 1:
            assert "loss: p = softmax(s);  L = −log p_label" in pg.text_content("#trace-phase")
        if p == n_layers + 2:  # the first step back: the scores' gradient, not yet layer 3's
            net = pg.evaluate(READ_NET)
            assert net["units"]["unit-4-0"]["grad"] is not None
            assert net["units"]["unit-3-0"]["grad"] is None
    assert pg.is_disabled("#trace-forward")
    assert "the gradient reaches the input" in pg.text_content("#trace-phase")
    net = pg.evaluate(READ_NET)
    # the numbers on the page against the test's own forward/backward of the exported model
    with pg.expect_download() as download:
        pg.click("#export-safetensors")
    path = tmp_path / "playground.safetensors"
    download.value.save_as(path)
    model = nl.load(path)
    x = np.array([[float(ex.get_attribute("data-x")), float(ex.get_attribute("data-y"))]], np.float32)
    label = int(ex.get_attribute("data-label"))
    session = _session(app)
    np.testing.assert_array_equal(x[0], session.data.X_train[0])
    assert label == session.data.y_train[0]
    want = own_trace(model, x, label)
    units, edges = net["units"], net["edges"]
    for i, out in enumerate(want["outputs"]):
        for j, v in enumerate(out):
            close(float(units[f"unit-{i}-{j}"]["value"]), v, f"unit {i}.{j} value")
            close(float(units[f"unit-{i}-{j}"]["grad"]), want["arriving"][i][j], f"unit {i}.{j} grad")
    for i in (0, 2, 4):  # the Linear layers: every weight and bias, and its gradient
        W, dW = want["params"][f"{i}.W"], want["grads"][f"{i}.W"]
        for a in range(W.shape[0]):
            for j in range(W.shape[1]):
                e = edges[f"edge-{i}-{a}-{j}"]
                close(float(e["weight"]), W[a, j], f"W{i}[{a},{j}]")
                close(float(e["grad"]), dW[a, j], f"dW{i}[{a},{j}]")
        for j, (b, db) in enumerate(zip(want["params"][f"{i}.b"], want["grads"][f"{i}.b"])):
            close(float(units[f"unit-{i}-{j}"]["bias"]), b, f"b{i}[{j}]")
            close(float(units[f"unit-{i}-{j}"]["biasGrad"]), db, f"db{i}[{j}]")
    for j in range(2):
        close(float(units[f"unit-in-{j}"]["grad"]), want["grad_input"][j], f"dL/dx{j}")
    for j, p in enumerate(want["proba"]):
        close(float(units[f"unit-p-{j}"]["value"]), p, f"p{j}")
    # hovering shows the numbers and the layer's formula
    def shown(info: str, name: str) -> float:
        return float(re.search(re.escape(name) + r" (-?[0-9.]+(?:e[-+]?[0-9]+)?)", info).group(1))

    pg.hover("#unit-1-3")
    info = pg.text_content("#trace-info")
    assert "layer 1 · ReLU · unit 3" in info and "y = max(0, x)" in info
    assert shown(info, "output y") == pytest.approx(want["outputs"][1][3], rel=1e-4, abs=1e-12)
    assert shown(info, "dL/dy") == pytest.approx(want["arriving"][1][3], rel=1e-4, abs=1e-12)
    pg.locator("#edge-2-3-4").dispatch_event("mouseover")  # edges cross: no plain hover
    info = pg.text_content("#trace-info")
    assert "layer 2 · Linear · W[3, 4]" in info and "dL/dW[3, 4] = x3 · dL/dy4" in info
    assert shown(info, "weight") == pytest.approx(want["params"]["2.W"][3, 4], rel=1e-4)
    assert shown(info, "dL/dW") == pytest.approx(want["grads"]["2.W"][3, 4], rel=1e-4, abs=1e-12)
    # a click on the plot traces the clicked point
    pg.select_option("#click-mode", "trace")
    pg.click("#plot", position={"x": 300, "y": 100})  # x = 0.625, y = 0.625
    pg.wait_for_function("document.querySelector('#trace-example').dataset.index === ''")
    assert float(ex.get_attribute("data-x")) == pytest.approx(0.625, abs=0.02)
    assert _phase(pg) == 0 and len(session.settings.points) == 0  # no point was added
    pg.click("#trace-all")
    wait_until(lambda: _phase(pg) == 2 * n_layers + 2)
    # training on: the trace says it is stale
    pg.click("#step")
    pg.wait_for_selector("#trace-stale:not([hidden])")


def test_page_uploads_a_csv_and_trains_on_it(page: tuple[Any, int, Any], tmp_path: Path) -> None:
    pg, _, app = page
    bad = [
        ("columns.csv", "x,y\n1,2\n", "row 1 has 2 column(s)"),
        ("words.csv", "x,y,label\n1,two,0\n", "row 2, column y: 'two' is not a number"),
        ("many.csv", "0,0,0\n0,1,1\n" * 600, "too many rows: at most 1000 points"),
        ("one.csv", "x,y,label\n" + "0,0,1\n1,1,1\n" * 20, "a classifier needs at least two classes"),
    ]
    for name, text, message in bad:
        pg.set_input_files("#upload-file", files=[{"name": name, "mimeType": "text/csv",
                                                   "buffer": text.encode()}])
        pg.wait_for_function(f"document.querySelector('#error').textContent.includes({json.dumps(name)})")
        assert message in pg.text_content("#error")
        assert pg.is_visible("#error")
    session = _session(app)
    assert session.settings.dataset == "spiral" and session.upload is None
    csv_file = tmp_path / "mine.csv"
    csv_file.write_text(blobs_csv(200))
    pg.set_input_files("#upload-file", str(csv_file))
    pg.wait_for_function("document.querySelector('#upload-status').dataset.rows === '200'")
    assert not pg.is_visible("#error")
    assert pg.input_value("#dataset") == "upload" and "dataset=upload" in pg.evaluate("location.hash")
    assert pg.locator("#click-class option").count() == 2
    wait_until(lambda: len(session.data.y_train) == 160)
    pg.wait_for_function("state.points.train.length === 160")  # the new data's first state
    before_region = pg.get_attribute("#region", "src")
    loss0 = float(pg.get_attribute("#train-loss", "data-value"))
    pg.click("#play")
    pg.wait_for_function("Number(document.querySelector('#train-acc').dataset.value) > 0.95",
                         timeout=30000)
    pg.wait_for_function(f"Number(document.querySelector('#train-loss').dataset.value) < {loss0 / 2}",
                         timeout=30000)
    pg.click("#pause")
    pg.wait_for_function("document.querySelector('#status').textContent === 'paused'")
    region = pg.get_attribute("#region", "src")
    assert region != before_region
    # the decision regions: the two clouds' sides of the plot take their classes' colours
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(region.split(",", 1)[1]))).convert("RGB"))
    up = session.upload
    assert up is not None
    centres = [up.X[up.y == k].mean(axis=0) for k in (0, 1)]
    colours = []
    for cx, cy in centres:
        col, row = int((cx + 1.25) / 2.5 * 64), int((1.25 - cy) / 2.5 * 64)
        colours.append(img[row, col].astype(int))
    orange, blue = colours  # class 0 (230, 159, 0), class 1 (86, 180, 233), faded to white
    assert orange[0] > orange[2] + 60 and blue[2] > blue[0] + 60, colours


def test_page_exports_onnx_safetensors_and_a_snippet_that_runs(page: tuple[Any, int, Any],
                                                               tmp_path: Path) -> None:
    pg, _, app = page
    for _ in range(3):
        pg.click("#step")
    pg.wait_for_function("document.querySelector('#epoch').textContent === '3'")
    session = _session(app)
    files = {}
    for fmt in ("safetensors", "onnx"):
        with pg.expect_download() as download:
            pg.click(f"#export-{fmt}")
        assert download.value.suggested_filename == f"playground.{fmt}"
        files[fmt] = tmp_path / f"playground.{fmt}"
        download.value.save_as(files[fmt])
    points = grid(1.25, 25)
    server = session.on_model(lambda run: run.trainer.model.predict_proba(points))
    ort = pytest.importorskip("onnxruntime")
    (proba,) = ort.InferenceSession(str(files["onnx"])).run(["probabilities"], {"x": points})
    np.testing.assert_allclose(proba, server, rtol=1e-4, atol=1e-6)
    top2 = np.sort(server, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4  # float32 softmax may flip a near tie
    np.testing.assert_array_equal(proba.argmax(axis=1)[clear], server.argmax(axis=1)[clear])
    np.testing.assert_array_equal(nl.load(files["safetensors"]).predict_proba(points), server)
    # the snippet on the page runs as it is, next to the downloaded file
    snippet = pg.text_content("#export-snippet")
    assert 'model = nl.load("playground.safetensors")' in snippet
    (tmp_path / "snippet.py").write_text(snippet)
    run = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    X = np.array([[0.5, -0.25], [-0.75, 0.6]], dtype=np.float32)
    labels = [int(v) for v in re.findall(r"\d+", run.stdout.strip().splitlines()[-1])]
    assert labels == session.on_model(lambda r: r.trainer.model.predict(X)).tolist()


def test_page_races_three_optimizers(page: tuple[Any, int, Any]) -> None:
    pg = page[0]
    checked = pg.evaluate("[...document.querySelectorAll('#race-optimizers input[type=checkbox]')]"
                          ".filter(c => c.checked).map(c => c.id)")
    assert sorted(checked) == ["race-use-adam", "race-use-momentum", "race-use-sgd"]
    pg.fill("#race-epochs", "40")
    # record every drawing of the chart: the series must grow while the race runs
    pg.evaluate("""() => { window.seen = [];
      new MutationObserver(() => window.seen.push(Object.fromEntries(
        [...document.querySelectorAll('#race-chart .race-series')].map(
          p => [p.dataset.optimizer, Number(p.dataset.points)]))))
        .observe(document.querySelector('#race-chart'), {childList: true}); }""")
    pg.click("#race-start")
    pg.wait_for_function("document.querySelector('#race-status').dataset.status === 'finished'",
                         timeout=60000)
    series = pg.locator("#race-chart path.race-series")
    assert series.count() == 3
    assert sorted(series.nth(i).get_attribute("data-optimizer") for i in range(3)) == [
        "adam", "momentum", "sgd"]
    assert [int(series.nth(i).get_attribute("data-points")) for i in range(3)] == [40] * 3
    seen = pg.evaluate("window.seen")
    for name in ("sgd", "momentum", "adam"):
        counts = [s[name] for s in seen if name in s]
        assert counts == sorted(counts) and len(set(counts)) >= 3, (name, counts)
    panels = pg.locator("#race-regions figure.race-panel")
    assert panels.count() == 3
    for i in range(3):
        assert panels.nth(i).locator("img").get_attribute("src").startswith("data:image/png")
        assert panels.nth(i).get_attribute("data-epoch") == "40"
    assert pg.is_disabled("#race-stop")
    assert pg.text_content("#status") == "paused"  # the session's own training waited


def test_page_babysitting_waits_for_training(page: tuple[Any, int, Any]) -> None:
    pg = page[0]
    assert pg.text_content("#babysit-waiting") == "starts when training starts"
    assert pg.locator("#babysit table").count() == 0
    assert pg.locator("#diagnosis li").count() == 0 and not pg.is_visible("#diagnosis-title")
    pg.click("#step")
    pg.wait_for_selector("#babysit table")
    assert pg.locator("#babysit-waiting").count() == 0
    assert pg.is_visible("#diagnosis-title") and pg.locator("#diagnosis li").count() >= 1
