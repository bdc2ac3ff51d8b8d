"""Plots on real short runs: each function returns a Figure with the artists it promises."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

import neuronlab as nl
from neuronlab import plots
from neuronlab.babysit.monitor import Monitor
from neuronlab.plots.curves import ema
from neuronlab.babysit.update_ratio import UPDATE_RATIO_BAND
from neuronlab.train.loggers import read_metrics
from neuronlab.train import JSONLLogger


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """64-32-32-10 ReLU on 600 digits, 3 epochs, monitor every 5 steps, metrics.jsonl written."""
    X, y = nl.data.digits()
    Xtr, ytr, Xva, yva = X[:600], y[:600], X[600:800], y[600:800]
    model = nl.mlp(64, [32, 32], 10, activation="relu", rng=0)
    path = tmp_path_factory.mktemp("run") / "metrics.jsonl"
    trainer = nl.Trainer(
        model,
        nl.SoftmaxCrossEntropy(),
        nl.Adam(lr=1e-2),
        callbacks=[Monitor(every=5), JSONLLogger(path)],
    )
    history = trainer.fit(Xtr, ytr, validation=(Xva, yva), epochs=3, batch_size=64, seed=0)
    return model, history, Xtr, ytr, path


def _labels(ax):
    return [line.get_label() for line in ax.lines]


def _line(ax, label):
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    return line


# -- inputs ----------------------------------------------------------------------------------------
def test_history_and_metrics_file_give_the_same_records(digits_run):
    _, history, _, _, path = digits_run
    a, b = plots.as_records(history), plots.as_records(read_metrics(path))
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_allclose(a.loss, b.loss)
    np.testing.assert_allclose(a.lr, b.lr)
    assert [e["val_acc"] for e in a.epochs] == [e["val_acc"] for e in b.epochs]
    assert len(a.monitor) == len(b.monitor) > 0
    assert a.info["expected_initial_loss"] == pytest.approx(math.log(10))
    assert b.info["expected_initial_loss"] == a.info["expected_initial_loss"]
    assert b.info["initial_loss"] == pytest.approx(a.info["initial_loss"])  # measured at step 0


def test_a_resumed_metrics_file_keeps_the_last_record_of_each_step():
    recs = [
        {"event": "step", "step": 0, "loss": 3.0, "lr": 0.1},
        {"event": "step", "step": 1, "loss": 2.0, "lr": 0.1},
        {"event": "train_begin", "step": 1, "info": {}},  # resumed from the end of step 0
        {"event": "step", "step": 1, "loss": 1.5, "lr": 0.1},
        {"event": "step", "step": 2, "loss": None, "lr": None},
    ]
    r = plots.as_records(recs)
    np.testing.assert_array_equal(r.steps, [0, 1, 2])
    np.testing.assert_array_equal(r.loss[:2], [3.0, 1.5])
    assert math.isnan(r.loss[2]) and math.isnan(r.lr[2])


def test_as_records_rejects_other_objects():
    with pytest.raises(TypeError, match="History"):
        plots.as_records("runs/x")
    with pytest.raises(ValueError, match="'loss'"):
        plots.as_records({"loss": []})


def test_ema_is_bias_corrected():
    # beta = 0.5, x = [1, 3]: s0 = 0.5*1 = 0.5, debiased 0.5/(1-0.5) = 1;
    # s1 = 0.5*0.5 + 0.5*3 = 1.75, debiased 1.75/(1-0.25) = 7/3.
    np.testing.assert_allclose(ema(np.array([1.0, 3.0]), 0.5), [1.0, 7.0 / 3.0])
    # a constant series stays constant from the first value on (no pull towards 0)
    np.testing.assert_allclose(ema(np.full(50, 2.5), 0.99), np.full(50, 2.5))


# -- curves ----------------------------------------------------------------------------------------
def test_plot_loss_draws_raw_smoothed_and_epoch_curves(digits_run):
    _, history, *_ = digits_run
    fig = plots.plot_loss(history, smoothing=0.8)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert _labels(ax) == ["raw", "EMA (0.8)", "train (epoch mean)", "validation"]
    np.testing.assert_allclose(_line(ax, "raw").get_ydata(), history.loss)
    np.testing.assert_allclose(_line(ax, "EMA (0.8)").get_ydata(), ema(np.array(history.loss), 0.8))
    val = _line(ax, "validation")
    np.testing.assert_array_equal(val.get_xdata(), [e["step"] for e in history.epochs])
    np.testing.assert_allclose(val.get_ydata(), history["val_loss"])
    assert ax.get_yscale() == "linear"
    assert plots.plot_loss(history, log_scale=True).axes[0].get_yscale() == "log"


def test_plot_loss_skips_non_finite_steps_and_draws_into_a_given_axes():
    h = nl.History.from_dict({"loss": [2.0, 1.0, None, 0.5], "lr": [0.1] * 4, "epochs": []})
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.plot_loss(h, ax=ax, smoothing=0.0) is fig
    raw = _line(ax, "raw")
    np.testing.assert_array_equal(raw.get_xdata(), [0, 1, 3])
    np.testing.assert_array_equal(raw.get_ydata(), [2.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="smoothing must be < 1.0, got 1"):
        plots.plot_loss(h, smoothing=1)


def test_plot_accuracy_per_epoch(digits_run):
    _, history, *_ = digits_run
    ax = plots.plot_accuracy(history).axes[0]
    assert _labels(ax) == ["train", "validation"]
    np.testing.assert_array_equal(_line(ax, "train").get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(_line(ax, "train").get_ydata(), history["acc"])
    np.testing.assert_allclose(_line(ax, "validation").get_ydata(), history["val_acc"])


def test_plot_learning_rate(digits_run):
    _, history, *_ = digits_run
    ax = plots.plot_learning_rate(history).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), history.lr)
    assert ax.get_yscale() == "log"


# -- monitor series --------------------------------------------------------------------------------
def test_plot_update_ratios_one_line_per_weight_and_the_band(digits_run):
    model, history, *_ = digits_run
    ax = plots.plot_update_ratios(history).axes[0]
    assert ax.get_yscale() == "log"
    weights = model.weight_keys  # ["0.W", "2.W", "4.W"]: biases are left out by default
    assert [lbl for lbl in _labels(ax) if lbl != "1e-3"] == weights
    for name in weights:
        recs = [r for r in history.monitor if r.get("param") == name and r["kind"] == "param"]
        np.testing.assert_array_equal(_line(ax, name).get_xdata(), [r["step"] for r in recs])
        np.testing.assert_allclose(_line(ax, name).get_ydata(), [r["update_ratio"] for r in recs])
    np.testing.assert_array_equal(_line(ax, "1e-3").get_ydata(), [1e-3, 1e-3])
    (band,) = [p for p in ax.patches if p.get_label().startswith("healthy band")]
    lo, hi = UPDATE_RATIO_BAND
    ys = band.get_path().transformed(band.get_patch_transform()).vertices[:, 1]
    assert ys.min() == pytest.approx(lo) and ys.max() == pytest.approx(hi)
    # with biases: twice as many parameter lines
    ax_all = plots.plot_update_ratios(history, weights_only=False).axes[0]
    assert len(ax_all.lines) - 1 == len(model.params)


def test_plot_update_ratios_validates_the_band(digits_run):
    with pytest.raises(ValueError, match="band"):
        plots.plot_update_ratios(digits_run[1], band=(1e-2, 1e-4))


def test_plot_gradient_norms(digits_run):
    model, history, *_ = digits_run
    ax = plots.plot_gradient_norms(history).axes[0]
    assert _labels(ax) == model.weight_keys
    assert ax.get_yscale() == "log"


def test_plot_dead_units_and_saturation():
    X, y = nl.data.digits()
    model = nl.mlp(64, [16, 16], 10, activation="tanh", init="normal", rng=0)
    h = nl.Trainer(
        model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), callbacks=[Monitor(every=3)]
    ).fit(X[:300], y[:300], epochs=1, batch_size=50)
    ax = plots.plot_dead_units(h).axes[0]
    assert _labels(ax) == ["1: Tanh saturated", "3: Tanh saturated"]
    recs = [r["saturation"] for r in h.monitor if r.get("type") == "Tanh" and r["layer"] == "1"]
    np.testing.assert_allclose(_line(ax, "1: Tanh saturated").get_ydata(), recs)
    assert _line(ax, "1: Tanh saturated").get_linestyle() == "--"


def test_plot_dead_units_relu(digits_run):
    _, history, *_ = digits_run
    ax = plots.plot_dead_units(history).axes[0]
    assert _labels(ax) == ["1: ReLU dead", "3: ReLU dead"]
    assert all(0.0 <= v <= 1.0 for ln in ax.lines for v in ln.get_ydata())


def test_monitor_plots_without_records_still_render():
    h = nl.History.from_dict({"loss": [1.0], "lr": [0.1], "epochs": []})
    for f in (plots.plot_update_ratios, plots.plot_gradient_norms, plots.plot_dead_units):
        ax = f(h).axes[0]
        assert any("no " in t.get_text() for t in ax.texts)


# -- histograms ------------------------------------------------------------------------------------
def test_activation_histograms_one_panel_per_hidden_layer(digits_run):
    model, _, X, _, _ = digits_run
    before = model.forward(X[:50]).copy()
    fig = plots.plot_activation_histograms(model, X[:200], bins=20)
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in shown] == ["0: Linear", "1: ReLU", "2: Linear", "3: ReLU"]
    for ax in shown:  # every activation of the sample is counted once
        (stairs,) = ax.patches
        assert stairs.get_data().values.sum() == 200 * 32
    np.testing.assert_array_equal(model.forward(X[:50]), before)


def test_gradient_histograms_leave_the_grads_alone(digits_run):
    model, _, X, y, _ = digits_run
    for g in model.grads.values():
        g[...] = 7.0
    loss = nl.SoftmaxCrossEntropy()
    fig = plots.plot_gradient_histograms(model, loss, X[:100], y[:100], bins=10)
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in shown] == [
        f"{i}: {type(l).__name__}" for i, l in enumerate(model.layers)
    ]
    assert shown[-1].patches[0].get_data().values.sum() == 100 * 10  # dL/dscores
    assert all((g == 7.0).all() for g in model.grads.values())
    # the last panel is the softmax gradient, whose rows sum to 0: mean exactly 0 up to rounding
    scores = model.forward(X[:100])
    loss.forward(scores, y[:100])
    assert abs(float(loss.backward().mean())) < 1e-7


# -- weight images ---------------------------------------------------------------------------------
def test_weight_mosaic_digits_grid_and_tile_contents(digits_run):
    model, *_ = digits_run
    m = plots.weight_mosaic(model, (8, 8))
    # 32 units -> cols = ceil(sqrt(32)) = 6, rows = ceil(32/6) = 6; 6*(8+1)+1 = 55 pixels a side
    assert m.shape == (55, 55)
    w0 = model.params["0.W"][:, 0].astype(np.float64)
    expected = ((w0 - w0.min()) / (w0.max() - w0.min())).reshape(8, 8)
    np.testing.assert_allclose(m[1:9, 1:9], expected, rtol=1e-6)
    w7 = model.params["0.W"][:, 7].astype(np.float64)  # row 1, col 1 (7 = 1*6 + 1)
    np.testing.assert_allclose(m[10:18, 10:18].min(), 0.0, atol=1e-12)
    assert m[10:18, 10:18].max() == pytest.approx(1.0)
    np.testing.assert_allclose(
        m[10:18, 10:18], ((w7 - w7.min()) / np.ptp(w7)).reshape(8, 8), rtol=1e-6
    )
    assert (m[0] == 1.0).all() and (m[9] == 1.0).all()  # padding rows between tiles
    assert (m[46:, 19:] == 1.0).all()  # 32 tiles fill 5 rows and 2 tiles of the sixth


def test_weight_mosaic_constant_tiles_are_grey_without_warnings():
    W = np.zeros((64, 3))
    W[:, 1] = np.arange(64)
    W[:, 2] = 5.0
    m = plots.weight_mosaic(W, (8, 8))  # warnings are errors: no 0/0 may happen
    assert np.isfinite(m).all()
    np.testing.assert_array_equal(m[1:9, 1:9], 0.5)  # zero column
    np.testing.assert_array_equal(m[10:18, 1:9], 0.5)  # constant 5 column, 2 cols -> row 1
    np.testing.assert_allclose(m[1:9, 10:18], np.arange(64).reshape(8, 8) / 63)


def test_weight_mosaic_cifar_channel_major_rows(rng):
    W = rng.standard_normal((3 * 32 * 32, 10))
    m = plots.weight_mosaic(W, (3, 32, 32))
    # 10 tiles -> cols 4, rows 3: 3*33+1 = 100 by 4*33+1 = 133, RGB
    assert m.shape == (100, 133, 3)
    w = W[:, 5]  # row 1, col 1
    t = ((w - w.min()) / np.ptp(w)).reshape(3, 32, 32)
    np.testing.assert_allclose(m[34:66, 34:66, 0], t[0])  # red plane = first 1024 values
    np.testing.assert_allclose(m[34:66, 34:66, 2], t[2])


def test_weight_mosaic_checks_the_shape(rng):
    with pytest.raises(ValueError, match="image_shape"):
        plots.weight_mosaic(rng.standard_normal((64, 4)), (7, 9))
    with pytest.raises(ValueError, match="image_shape"):  # channel-last is not CIFAR rows
        plots.weight_mosaic(rng.standard_normal((48, 4)), (4, 4, 3))


def test_plot_weight_grid_is_one_image(digits_run):
    model, *_ = digits_run
    fig = plots.plot_weight_grid(model, (8, 8), max_units=16)
    (img,) = fig.axes[0].images
    assert img.get_array().shape == (4 * 9 + 1, 4 * 9 + 1)


# -- decision regions -------------------------------------------------------------------------------
def test_plot_decision_regions_on_a_2d_problem():
    X, y = nl.data.moons(n=200, noise=0.1, seed=0)
    model = nl.mlp(2, [16], 2, rng=0)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(lr=3e-2), monitor=False)
    trainer.fit(X, y, epochs=30, batch_size=50)
    assert trainer.evaluate(X, y)["acc"] > 0.95
    ax = plots.plot_decision_regions(model, X, y, resolution=50).axes[0]
    contour, points = ax.collections
    np.testing.assert_array_equal(contour.levels, [-0.5, 0.5, 1.5])
    assert isinstance(points, PathCollection)
    np.testing.assert_allclose(points.get_offsets(), X)
    np.testing.assert_array_equal(points.get_array(), y)


def test_plot_decision_regions_needs_2d_inputs(digits_run):
    model, _, X, y, _ = digits_run
    with pytest.raises(ValueError, match=r"2-D inputs.*\(600, 64\)"):
        plots.plot_decision_regions(model, X, y)
