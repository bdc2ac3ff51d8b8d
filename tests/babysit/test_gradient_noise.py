"""Gradient noise: per-sample gradients against per-row backward passes, the noise statistics
against brute force and against the closed form of linear regression, and that measuring
changes nothing in a run."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.babysit.gradient_noise import (
    NOISE_FACTOR,
    NOISE_RECORD_KEYS,
    gradient_noise,
    noise_scale_rule,
    per_sample_gradients,
    plot_noise_scale,
    records,
)
from neuronlab.babysit.probe import probe
from neuronlab.train.base import Callback
from neuronlab.train.step import loss_and_grads


def mixed_net(seed: int = 0, dtype=np.float64) -> nl.Sequential:
    """ReLU, tanh, batch norm (with non-trivial running averages), dropout, a bias-free layer."""
    model = nl.Sequential([
        nl.Linear(5, 8, rng=seed, dtype=dtype), nl.BatchNorm(8, dtype=dtype), nl.ReLU(),
        nl.Dropout(0.3, rng=seed + 1),
        nl.Linear(8, 6, init="glorot", bias=None, rng=seed + 2, dtype=dtype), nl.Tanh(),
        nl.Linear(6, 3, init="glorot", rng=seed + 3, dtype=dtype),
    ])
    rng = np.random.default_rng(seed + 10)
    bn = model.layers[1]
    bn.buffers["running_mean"][...] = rng.standard_normal(8)
    bn.buffers["running_var"][...] = rng.uniform(0.5, 2.0, 8)
    bn.params["gamma"][...] = rng.uniform(0.5, 1.5, 8)
    bn.params["beta"][...] = 0.1 * rng.standard_normal(8)
    model.layers[0].params["b"][...] = 0.1 * rng.standard_normal(8)
    return model


def data(n: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, labels that depend on them (so the mean gradient stands out of the noise) and
    regression targets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    return X, X[:, :3].argmax(axis=1), X[:, :3] + 0.1 * rng.standard_normal((n, 3))


def row_gradients(model: nl.Sequential, loss, X: np.ndarray, y: np.ndarray) -> list[dict]:
    """The model's ordinary backward, one row at a time (a mean loss over one row)."""
    out = []
    for i in range(len(X)):
        model.zero_grad()
        scores = model.forward(X[i:i + 1], training=False)
        loss.forward(scores, y[i:i + 1])
        model.backward(loss.backward())
        out.append({k: g.copy() for k, g in model.grads.items()})
    return out


@pytest.mark.parametrize("loss_name", ["softmax", "mse"])
def test_per_sample_gradients_match_per_row_backward(loss_name):
    model = mixed_net()
    X, labels, targets = data()
    loss, y = (nl.SoftmaxCrossEntropy(), labels) if loss_name == "softmax" else \
        (nl.MeanSquaredError(), targets)
    ps = per_sample_gradients(model, loss, X, y)
    # Linear parameters only (layer 4 has no bias); batch norm's gamma/beta are left out
    assert sorted(ps) == ["0.W", "0.b", "4.W", "6.W", "6.b"]
    assert ps["0.W"].shape == (7, 5, 8) and ps["6.b"].shape == (7, 3)
    for i, ref in enumerate(row_gradients(model, loss, X, y)):
        for k, g in ps.items():
            np.testing.assert_allclose(g[i], ref[k], rtol=1e-10, atol=1e-13)


def brute_force(ps: dict[str, np.ndarray], reg_grad: dict[str, np.ndarray] | None = None):
    """tr(Σ), |G|² and per-layer GSNR straight from materialised per-sample gradients."""
    n = next(iter(ps.values())).shape[0]
    flat = np.concatenate([g.reshape(n, -1) for g in ps.values()], axis=1)
    mean = flat.mean(axis=0)
    obj = mean.copy()
    if reg_grad:
        obj += np.concatenate([reg_grad.get(k, np.zeros(g.shape[1:])).reshape(-1) for k, g in ps.items()])
    trace = float(np.sum(flat.var(axis=0, ddof=1)))
    grad_sq = float(obj @ obj) - trace / n
    snr = {}
    for k, g in ps.items():
        if k.endswith(".W"):
            m = g.mean(axis=0)  # the data gradient's signal: a penalty's is not in the rows
            var = g.var(axis=0, ddof=1)
            keep = var > 100 * np.finfo(np.float64).eps * np.mean(g ** 2, axis=0)
            snr[int(k.split(".")[0])] = float(np.mean(m[keep] ** 2 / var[keep]))
    return trace, grad_sq, snr


@pytest.mark.parametrize("with_l2", [False, True])
def test_noise_statistics_match_brute_force(with_l2):
    model = mixed_net(seed=3)
    X, labels, _ = data(n=12, seed=3)
    loss = nl.SoftmaxCrossEntropy()
    reg = nl.L2(0.3) if with_l2 else None
    noise = gradient_noise(model, loss, X, labels, reg)
    ps = per_sample_gradients(model, loss, X, labels)
    reg_grad = {k: 0.3 * model.params[k] for k in model.weight_keys} if with_l2 else None
    trace, grad_sq, snr = brute_force(ps, reg_grad)
    assert noise.n == 12 and noise.resolved
    assert noise.trace_cov == pytest.approx(trace, rel=1e-10)
    assert noise.grad_sq == pytest.approx(grad_sq, rel=1e-9)
    assert noise.b_simple == pytest.approx(trace / grad_sq, rel=1e-9)
    assert [ln.layer for ln in noise.layers] == [0, 4, 6]
    for ln in noise.layers:
        assert ln.snr == pytest.approx(snr[ln.layer], rel=1e-9)
        sub = {k: g for k, g in ps.items() if k.startswith(f"{ln.layer}.")}
        t, gs, _ = brute_force(sub, reg_grad)
        assert ln.trace_cov == pytest.approx(t, rel=1e-10) and ln.grad_sq == pytest.approx(gs, rel=1e-9)
    norms = sum(np.sum(g.reshape(12, -1) ** 2, axis=1) for g in ps.values())
    np.testing.assert_allclose(noise.sample_sq_norms, norms, rtol=1e-12)
    mean = {k: g.mean(axis=0) + (reg_grad or {}).get(k, 0.0) for k, g in ps.items()}
    assert sorted(noise.mean_grad) == sorted(mean)
    for k in mean:
        np.testing.assert_allclose(noise.mean_grad[k], mean[k], rtol=1e-10, atol=1e-14)


def test_snr_leaves_out_elements_without_variance():
    """A ReLU unit that never fires (its batch-norm input is driven to -1000) gives every row
    the same gradient (0) in its column of layer 0's W and its row of layer 4's: those
    elements have no variance and stay out of the GSNR mean, as in the brute force."""
    model = mixed_net(seed=3)
    model.layers[1].params["beta"][0] = -1000.0
    X, labels, _ = data(n=12, seed=3)
    loss = nl.SoftmaxCrossEntropy()
    noise = gradient_noise(model, loss, X, labels)
    ps = per_sample_gradients(model, loss, X, labels)
    assert not ps["0.W"][:, :, 0].any() and not ps["4.W"][:, 0, :].any()
    _, _, snr = brute_force(ps)
    for ln in noise.layers:
        assert ln.snr == pytest.approx(snr[ln.layer], rel=1e-9)


@pytest.mark.parametrize(("D", "dist", "sigma"), [(10, 1.0, 1.0), (6, 0.3, 0.5), (20, 2.0, 0.2)])
def test_b_simple_matches_linear_regression_closed_form(D, dist, sigma):
    """x ~ N(0, I_D), y = w*·x + ε, ε ~ N(0, σ²), a Linear(D, 1) at W = w* + d, b = b* = 0.
    The library's MSE has no ½: L_i = (s_i − y_i)², g_i = 2(x·d − ε)·[x; 1]. With Isserlis'
    E[x_j x_k (x·d)²] = δ_jk‖d‖² + 2 d_j d_k:
    Σ_W = 4[(‖d‖² + σ²)I + d dᵀ], Var(g_b) = 4(‖d‖² + σ²), Cov(g_W, g_b) = 0 (odd moments),
    G_W = 2d, G_b = 0, so tr Σ = 4[(D + 1)(‖d‖² + σ²) + ‖d‖²], |G|² = 4‖d‖² and
    B_simple = [(D + 1)(‖d‖² + σ²) + ‖d‖²] / ‖d‖²."""
    rng = np.random.default_rng(D)
    n = 40_000
    X = rng.standard_normal((n, D))
    w_star = rng.standard_normal(D)
    y = (X @ w_star + sigma * rng.standard_normal(n)).reshape(-1, 1)
    d = rng.standard_normal(D)
    d *= dist / np.linalg.norm(d)
    model = nl.Sequential([nl.Linear(D, 1, dtype=np.float64)])
    model.layers[0].params["W"][:, 0] = w_star + d
    noise = gradient_noise(model, nl.MeanSquaredError(), X, y)
    q = dist ** 2
    trace = 4 * ((D + 1) * (q + sigma ** 2) + q)
    assert noise.trace_cov == pytest.approx(trace, rel=0.05)
    assert noise.grad_sq == pytest.approx(4 * q, rel=0.1)
    assert noise.b_simple == pytest.approx(trace / (4 * q), rel=0.2)
    assert noise.resolved


def test_unresolved_mean_gives_infinite_b_simple_and_none_in_records():
    """Two rows whose gradients cancel: ḡ = 0, so |G|² = −tr(Σ)/n < 0 (not resolved).
    Linear(1, 1) without bias at w = 0, MSE to y = 1: g_i = 2(0 − 1)·x_i = ∓2 for x = ±1;
    tr Σ = unbiased variance of {−2, 2} = 8, |G|² = 0 − 8/2 = −4."""
    model = nl.Sequential([nl.Linear(1, 1, bias=None, dtype=np.float64)])
    model.params["0.W"][...] = 0.0
    X, y = np.array([[1.0], [-1.0]]), np.ones((2, 1))
    noise = gradient_noise(model, nl.MeanSquaredError(), X, y)
    assert noise.trace_cov == pytest.approx(8.0) and noise.grad_sq == pytest.approx(-4.0)
    assert noise.b_simple == math.inf and not noise.resolved
    recs = records(noise, step=5)
    assert recs[0]["b_simple"] is None and recs[1]["b_simple"] is None
    json.dumps(recs, allow_nan=False)


def test_fewer_than_two_rows_is_refused():
    model = mixed_net()
    X, labels, _ = data(n=1)
    with pytest.raises(ValueError, match="at least 2 rows"):
        gradient_noise(model, nl.SoftmaxCrossEntropy(), X, labels)


def test_records_are_flat_strict_json_in_the_monitor_style():
    model = mixed_net()
    X, labels, _ = data(n=32)
    noise = gradient_noise(model, nl.SoftmaxCrossEntropy(), X, labels)
    assert noise.resolved
    recs = records(noise, step=40)
    assert recs[0] == {"step": 40, "kind": "noise", "layer": "", "type": "",
                       "b_simple": noise.b_simple, "trace_cov": noise.trace_cov,
                       "grad_sq": noise.grad_sq, "n": 32}
    assert [(r["layer"], r["type"]) for r in recs[1:]] == [("0", "Linear"), ("4", "Linear"), ("6", "Linear")]
    assert all(set(r) == {"step", "kind", "layer", "type", "snr", "b_simple"} for r in recs[1:])
    assert all(set(r) <= NOISE_RECORD_KEYS for r in recs)
    assert json.loads(json.dumps(recs, allow_nan=False)) == recs


def snapshot(model: nl.Sequential) -> dict:
    return {"params": {k: v.copy() for k, v in model.params.items()},
            "grads": {k: v.copy() for k, v in model.grads.items()},
            "buffers": {k: v.copy() for k, v in model.buffers.items()},
            "grad_ids": {k: id(v) for k, v in model.grads.items()},
            "dropout": copy.deepcopy(model.layers[3].rng.bit_generator.state),
            "flags": [getattr(layer, "_grad_zero", None) for layer in model.layers],
            "global": np.random.get_state()[1].copy()}


def assert_same(a: dict, b: dict) -> None:
    for kind in ("params", "grads", "buffers"):
        assert a[kind].keys() == b[kind].keys()
        for k in a[kind]:
            np.testing.assert_array_equal(a[kind][k], b[kind][k])
    assert a["grad_ids"] == b["grad_ids"] and a["dropout"] == b["dropout"]
    assert a["flags"] == b["flags"]
    np.testing.assert_array_equal(a["global"], b["global"])


@pytest.mark.parametrize("lazy", [False, True])
def test_measuring_leaves_params_grads_buffers_and_rngs_untouched(lazy):
    model = mixed_net(dtype=np.float32).pack()
    X, labels, _ = data(n=16)
    rng = np.random.default_rng(1)
    for g in model.grads.values():  # what a training backward left for the optimizer
        g[...] = rng.standard_normal(g.shape)
    if lazy:  # between zero_grad(lazy=True) and the backward: stale grads, write-next flags
        model.zero_grad(lazy=True)
    before = snapshot(model)
    gradient_noise(model, nl.SoftmaxCrossEntropy(), X, labels, nl.L2(0.01))
    per_sample_gradients(model, nl.SoftmaxCrossEntropy(), X, labels)
    probe(model, nl.SoftmaxCrossEntropy(), X, labels, nl.L2(0.01), capture=True)
    assert_same(before, snapshot(model))
    if lazy:  # the next backward still writes its gradient rather than adding to stale values
        fresh = mixed_net(dtype=np.float32)
        for m in (model, fresh):
            loss_and_grads(m, nl.SoftmaxCrossEntropy(), X.astype(np.float32), labels)
        for k, g in fresh.grads.items():
            np.testing.assert_array_equal(model.grads[k], g)


class _Measure(Callback):
    """Measures the gradient noise between the backward and the update, every step."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def on_before_update(self, trainer, step, loss):
        X, y = trainer.train_data
        noise = gradient_noise(trainer.model, trainer.loss, X[:32], y[:32], trainer.regularizer)
        self.seen.extend(records(noise, step))


def test_measuring_every_step_changes_nothing_in_a_run():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5).astype(np.int64)
    runs, measure = [], _Measure()
    for callbacks in ([], [measure]):
        tr = nl.Trainer(mixed_net(dtype=np.float32).pack(), nl.SoftmaxCrossEntropy(),
                        nl.Adam(lr=1e-2), regularizer=nl.L2(1e-3), callbacks=callbacks,
                        monitor=False)
        tr.fit(X, y, epochs=2, batch_size=32)
        runs.append(tr)
    off, on = runs
    assert len(measure.seen) == 6 * 4  # 6 steps, a run-wide and 3 layer records each
    assert off.history.loss == on.history.loss
    for k, v in {**off.model.params, **off.model.buffers}.items():
        np.testing.assert_array_equal(v, {**on.model.params, **on.model.buffers}[k])


def noise_runs(values: list[float | None]) -> list[dict]:
    return [{"step": 10 * i, "kind": "noise", "layer": "", "type": "", "b_simple": v,
             "trace_cov": 1.0, "grad_sq": 1.0, "n": 128} for i, v in enumerate(values)]


def test_noise_scale_rule_reads_the_second_half():
    small = noise_runs([5.0, 5.0, 5.0, 900.0, 1000.0, 1100.0, None])
    f = noise_scale_rule(small, batch_size=32)
    assert f is not None and f.severity == "info" and f.rule == "noise_scale"
    assert f.evidence["b_simple_median"] == pytest.approx(1000.0)
    assert f.evidence["unresolved"] == 1 and f.evidence["steps"] == [30, 60]
    assert "larger batch" in f.action and "below" in f.message
    big = noise_runs([1e4, 1e4, 20.0, 30.0])
    f = noise_scale_rule(big, batch_size=512)
    assert f is not None and "smaller batch" in f.action and f.evidence["ratio"] == pytest.approx(512 / 25)
    # within the factor either way: nothing to say
    assert noise_scale_rule(noise_runs([100.0] * 4), batch_size=int(100 * NOISE_FACTOR)) is None
    assert noise_scale_rule(noise_runs([100.0] * 4), batch_size=11) is None
    # far off only in the first half, or too few resolved measurements late
    assert noise_scale_rule(noise_runs([1e5, 1e5, 64.0, 64.0]), batch_size=64) is None
    assert noise_scale_rule(noise_runs([64.0, 64.0, None, 1e5]), batch_size=64) is None
    assert noise_scale_rule([], batch_size=64) is None
    with pytest.raises(ValueError, match="batch_size"):
        noise_scale_rule(small, batch_size=0)


def test_plot_noise_scale_draws_b_simple_the_batch_size_and_snr():
    recs = noise_runs([50.0, None, 80.0])
    recs += [{"step": 10 * i, "kind": "noise", "layer": str(j), "type": "Linear",
              "snr": 0.1 * (i + 1) * (j + 1), "b_simple": 10.0} for i in range(3) for j in (0, 2)]
    recs.append({"step": 0, "kind": "param", "layer": "0", "type": "Linear"})  # ignored
    fig = plot_noise_scale(recs, batch_size=32)
    top, bottom = fig.axes
    assert top.get_yscale() == "log" and bottom.get_yscale() == "log"
    (curve, batch) = top.get_lines()
    np.testing.assert_array_equal(curve.get_xdata(), [0, 20])
    np.testing.assert_array_equal(batch.get_ydata(), [32, 32])
    assert [line.get_label() for line in bottom.get_lines()] == ["0: Linear", "2: Linear"]
    from matplotlib.figure import Figure

    own = Figure().add_subplot()
    assert plot_noise_scale([], ax=own) is own.figure and len(own.figure.axes) == 1
