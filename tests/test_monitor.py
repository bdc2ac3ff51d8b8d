"""Monitor: record schema, golden statistics, and that monitoring changes nothing in a run."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.babysit.gradient_noise import per_sample_gradients
from neuronlab.babysit.spectrum import MIN_DIM, fit_power_law


def blobs(n: int = 96, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5).astype(np.int64)


def mixed_model(seed: int = 0) -> nl.Sequential:
    """One of each monitored kind: batch norm, ReLU, tanh, sigmoid, dropout."""
    return nl.Sequential([
        nl.Linear(4, 16, rng=seed), nl.BatchNorm(16), nl.ReLU(), nl.Dropout(0.2, rng=seed + 1),
        nl.Linear(16, 8, init="glorot", rng=seed + 2), nl.Tanh(),
        nl.Linear(8, 8, init="glorot", rng=seed + 3), nl.Sigmoid(),
        nl.Linear(8, 3, init="glorot", rng=seed + 4),
    ])


def fit(model, monitor, *, optimizer=None, epochs=2, batch_size=32, regularizer=None, callbacks=()):
    X, y = blobs()
    tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), optimizer or nl.SGD(lr=0.1),
                    regularizer=regularizer, callbacks=list(callbacks), monitor=monitor)
    tr.fit(X, y, epochs=epochs, batch_size=batch_size)
    return tr


def test_records_follow_the_schema_and_are_strict_json():
    tr = fit(mixed_model(), nl.Monitor(every=2), epochs=2)  # 3 batches per epoch: steps 0..5
    recs = tr.history.monitor
    assert sorted({r["step"] for r in recs if r["kind"] in ("param", "layer")}) == [0, 2, 4]
    # the gradient noise at step 0 (every 1000 steps); the spectra after power-of-two epochs
    # at least SPECTRUM_GAP (5) intervals apart: none in 6 steps
    assert sorted({r["step"] for r in recs if r["kind"] == "noise"}) == [0]
    assert not [r for r in recs if r["kind"] == "spectrum"]
    params = [r for r in recs if r["kind"] == "param" and r["step"] == 2]
    layers = [r for r in recs if r["kind"] == "layer" and r["step"] == 2]
    assert [r["param"] for r in params] == list(tr.model.params)  # every learnable array
    roles = {r["param"]: r["role"] for r in params}
    assert roles["0.W"] == "weight" and roles["0.b"] == "bias" and roles["1.gamma"] == "other"
    assert all(r["layer"] == r["param"].split(".")[0] for r in params)
    assert [(r["layer"], r["type"]) for r in layers] == [
        (str(i), type(layer).__name__) for i, layer in enumerate(tr.model.layers)]
    by_type = {r["type"]: r for r in layers}
    assert "dead_fraction" in by_type["ReLU"] and "dead_fraction" not in by_type["Tanh"]
    assert "saturation" in by_type["Tanh"] and "saturation" in by_type["Sigmoid"]
    assert {"running_mean_mean", "running_var_min", "running_var_max"} <= set(by_type["BatchNorm"])
    assert layers[0]["units"] == 16 and layers[-1]["units"] == 3
    text = json.dumps(tr.history.to_dict(), allow_nan=False)  # strict JSON, round-trips
    assert nl.History.from_dict(json.loads(text)) == tr.history


def test_spectra_follow_power_of_two_epochs_a_gap_apart():
    """3 steps per epoch, every = 2: spectra need 10 steps since the previous one (or the
    start), at the end of epochs 1, 2, 4, 8: epoch 4 (step 11) and epoch 8 (step 23)."""
    tr = fit(mixed_model(), nl.Monitor(every=2), epochs=8)
    spectra = [r for r in tr.history.monitor if r["kind"] == "spectrum"]
    assert sorted({r["step"] for r in spectra}) == [11, 23]
    assert {r["param"] for r in spectra} == set(tr.model.weight_keys)


def test_sgd_update_norm_is_lr_times_grad_norm():
    """Plain SGD: Δw = -lr·g exactly, so ‖Δw‖ = lr·‖g‖. The ratio is ‖Δw‖/‖w_before‖, so
    ‖w_before‖ = ‖Δw‖/ratio, and the triangle inequality bounds |‖w_after‖ - ‖w_before‖| by ‖Δw‖."""
    lr = 0.05
    # He weights everywhere: next to 0.01-sized output weights a float32 w_after - w_before
    # keeps only ~1e-5 of Δw's relative precision
    tr = fit(nl.mlp(4, [8], 3, out_init="he", rng=0), nl.Monitor(every=1), optimizer=nl.SGD(lr=lr), epochs=1)
    params = [r for r in tr.history.monitor if r["kind"] == "param"]
    assert len(params) == 3 * 4  # 3 steps x (W, b, W, b)
    for r in params:
        assert r["update_norm"] == pytest.approx(lr * r["grad_norm"], rel=1e-5)
        if r["update_ratio"] is not None:
            before = r["update_norm"] / r["update_ratio"]
            assert abs(r["weight_norm"] - before) <= r["update_norm"] * (1 + 1e-5)
    assert all(r["update_ratio"] is not None for r in params if r["role"] == "weight")


def test_update_ratio_golden_single_weight():
    """Linear(1, 1) with w = 2, b = 0 on x = 1, MSE to target 0: s = 2, L = s² = 4,
    dL/dw = 2·s·x = 4; SGD lr 0.1 gives Δw = -0.4, so ‖Δw‖ = 0.4, ratio = 0.4 / 2 = 0.2 and
    the new weight is 1.6."""
    model = nl.Sequential([nl.Linear(1, 1, dtype=np.float64)])
    model.layers[0].params["W"][...] = 2.0
    tr = nl.Trainer(model, nl.MeanSquaredError(), nl.SGD(lr=0.1), monitor=nl.Monitor(every=1))
    tr.fit(np.ones((1, 1)), np.zeros(1), epochs=1, batch_size=1)
    w = next(r for r in tr.history.monitor if r.get("param") == "0.W")
    assert w["grad_norm"] == pytest.approx(4.0)
    assert w["update_norm"] == pytest.approx(0.4)
    assert w["update_ratio"] == pytest.approx(0.2)
    assert w["weight_norm"] == pytest.approx(1.6)


def test_dead_fraction_and_saturation_golden():
    """Units 0-3 of the ReLU layer get bias -1000: never active on inputs of size ~1, so
    exactly 4 of 8 units are dead. The sigmoid sees pre-activations ±20 on unit 0
    (σ = 2e-9 or 1 - 2e-9: saturated) and ±0.02 on unit 1 (σ ≈ 0.5): half the outputs are
    saturated; tanh gets the same inputs, and tanh(±20) = ±1, tanh(±0.02) ≈ ±0.02."""
    X, y = blobs(64)
    relu_net = nl.Sequential([nl.Linear(4, 8, rng=0, dtype=np.float64), nl.ReLU(),
                              nl.Linear(8, 3, rng=1, dtype=np.float64)])
    relu_net.layers[0].params["b"][:4] = -1000.0
    tr = nl.Trainer(relu_net, nl.SoftmaxCrossEntropy(), nl.SGD(lr=1e-9), monitor=nl.Monitor(every=1))
    tr.fit(X.astype(np.float64), y, epochs=1, batch_size=64)
    relu = next(r for r in tr.history.monitor if r["type"] == "ReLU")
    assert relu["dead_fraction"] == 0.5
    for act in (nl.Sigmoid, nl.Tanh):
        first = nl.Linear(4, 2, dtype=np.float64)
        first.params["W"][...] = 0.0
        first.params["W"][0] = [20.0, 0.02]  # the sign of x0 decides ±
        net = nl.Sequential([first, act(), nl.Linear(2, 3, rng=0, dtype=np.float64)])
        Xs = np.sign(X[:, :4]).astype(np.float64)  # x0 = ±1 exactly
        tr = nl.Trainer(net, nl.SoftmaxCrossEntropy(), nl.SGD(lr=1e-9), monitor=nl.Monitor(every=1))
        tr.fit(Xs, y, epochs=1, batch_size=64)
        rec = next(r for r in tr.history.monitor if r["type"] == act.__name__)
        assert rec["saturation"] == 0.5


def test_activation_stats_match_a_forward_of_the_sample():
    """With fewer rows than sample_size the sample is the training set in order. Steps
    0..8 with every=4: the last record (step 8) describes the final model."""
    X, y = blobs(72)
    model = mixed_model()
    tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), monitor=nl.Monitor(every=4))
    tr.fit(X, y, epochs=3, batch_size=24)
    assert tr.step == 9
    last = [r for r in tr.history.monitor if r["kind"] == "layer" and r["step"] == 8]
    x = X
    for layer, rec in zip(model.layers, last):
        x = layer.forward(x, training=False)
        assert rec["act_mean"] == pytest.approx(float(x.mean()), rel=1e-6, abs=1e-7)
        assert rec["act_std"] == pytest.approx(float(x.std()), rel=1e-6)
    bn = next(r for r in last if r["type"] == "BatchNorm")
    assert bn["running_var_min"] == pytest.approx(float(model.layers[1].buffers["running_var"].min()))


def test_sample_is_fixed_and_bounded():
    X, y = blobs(500)
    mon = nl.Monitor(every=10, sample_size=100, seed=3)
    tr = nl.Trainer(nl.mlp(4, [8], 3, rng=0), nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), monitor=mon)
    tr.fit(X, y, epochs=1, batch_size=100)
    expected = X[np.sort(np.random.default_rng(3).choice(500, size=100, replace=False))]
    np.testing.assert_array_equal(mon.sample, expected)
    assert tr.history.info["monitor_sample_size"] == 100 and tr.history.info["monitor_every"] == 10


def test_monitoring_changes_nothing_in_the_run():
    """Dropout draws, batch-norm running averages and every update are the same with a
    monitor sampling every step and without one: bit for bit."""
    runs = [fit(mixed_model(), m, optimizer=nl.Adam(lr=1e-2), epochs=3) for m in (False, nl.Monitor(every=1))]
    off, on = runs
    assert off.history.monitor == [] and len(on.history.monitor) > 0
    assert off.history.loss == on.history.loss and off.history.epochs == on.history.epochs
    for k, v in {**off.model.params, **off.model.buffers}.items():
        np.testing.assert_array_equal(v, {**on.model.params, **on.model.buffers}[k])


def test_info_records_expected_and_initial_loss():
    """The initial loss is step 0's objective without the L2 penalty ½·λ·Σ‖W‖² of the
    initial weights; softmax over 3 classes expects ln 3."""
    model = nl.mlp(4, [8], 3, rng=0)
    penalty = 0.5 * 0.1 * sum(float(np.sum(model.params[k].astype(np.float64) ** 2)) for k in model.weight_keys)
    tr = fit(model, True, regularizer=nl.L2(0.1), epochs=1)
    info = tr.history.info
    assert info["expected_initial_loss"] == pytest.approx(math.log(3))
    assert info["initial_loss"] == pytest.approx(tr.history.loss[0] - penalty, rel=1e-5)
    assert info["loss"] == "SoftmaxCrossEntropy" and info["n_outputs"] == 3


def test_trainer_monitor_option():
    model = nl.mlp(4, [8], 3, rng=0)
    default = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1))
    mons = [cb for cb in default.callbacks if isinstance(cb, nl.Monitor)]
    assert len(mons) == 1 and mons[0].every == 100 and mons[0].sample_size == 128
    assert not any(isinstance(cb, nl.Monitor) for cb in
                   nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), monitor=False).callbacks)
    mine = nl.Monitor(every=7)
    own = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), callbacks=[mine])
    assert [cb for cb in own.callbacks if isinstance(cb, nl.Monitor)] == [mine]
    with pytest.raises(TypeError, match="monitor must be a bool or a Monitor"):
        nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(lr=0.1), monitor="yes")
    with pytest.raises(ValueError, match="every must be > 0, got 0"):
        nl.Monitor(every=0)
    with pytest.raises(TypeError, match="sample_size must be an integer"):
        nl.Monitor(sample_size=2.5)


def test_jsonl_logger_writes_monitor_records(tmp_path):
    tr = fit(nl.mlp(4, [8], 3, rng=0), nl.Monitor(every=2), epochs=2,
             callbacks=[nl.JSONLLogger(tmp_path)])
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    written = [{k: v for k, v in e.items() if k != "event"} for e in lines if e["event"] == "monitor"]
    assert written == tr.history.to_dict()["monitor"]
    assert lines[0]["event"] == "train_begin" and lines[0]["info"]["n_outputs"] == 3
    # each step's records follow that step's line
    order = [(e["event"], e.get("step")) for e in lines if e["event"] in ("step", "monitor")]
    assert order.index(("monitor", 2)) > order.index(("step", 2)) > order.index(("monitor", 0))


def test_lbfgs_records_the_update_of_the_whole_minimize():
    X, y = blobs(60)
    model = nl.mlp(4, [6], 3, rng=0, dtype=np.float64)
    w0 = model.params["0.W"].copy()
    tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.LBFGS(max_iter=5), monitor=nl.Monitor(every=1))
    tr.fit(X.astype(np.float64), y, epochs=1)
    w = next(r for r in tr.history.monitor if r.get("param") == "0.W")
    assert w["update_norm"] == pytest.approx(float(np.linalg.norm(model.params["0.W"] - w0)))
    assert w["update_ratio"] == pytest.approx(w["update_norm"] / float(np.linalg.norm(w0)))


# -- every record against a readable reference --------------------------------------------------
class Snapshots(nl.Callback):
    """Copies what the Monitor measures at each of its steps (it runs after the Monitor,
    whose order is -10): the parameters and gradients before the update, the model after it,
    and the model at each epoch end."""

    def __init__(self, every: int) -> None:
        self.interval = every
        self.before: dict[int, tuple[dict, dict, float, float]] = {}
        self.after: dict[int, nl.Sequential] = {}
        self.epoch_end: dict[int, nl.Sequential] = {}

    def on_before_update(self, trainer, step, loss):
        reg = trainer.regularizer
        penalty = float(reg.loss(trainer.model)) if reg is not None else 0.0
        self.before[step] = ({k: v.copy() for k, v in trainer.model.params.items()},
                             {k: g.copy() for k, g in trainer.model.grads.items()}, loss, penalty)

    def on_batch_end(self, trainer, step, logs):
        self.after[step] = copy.deepcopy(trainer.model)

    def on_epoch_end(self, trainer, epoch, logs):
        self.epoch_end[trainer.step - 1] = copy.deepcopy(trainer.model)


def norm(a: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64).ravel()))


def reference_layer_records(model: nl.Sequential, X: np.ndarray, step: int) -> list[dict]:
    """Each layer's output on the sample, described with NumPy's own float64 reductions."""
    out, x = [], X
    for i, layer in enumerate(model.layers):
        x = layer.forward(x, training=False)
        y = x.reshape(x.shape[0], -1).astype(np.float64)
        rec = {"step": step, "kind": "layer", "layer": str(i), "type": type(layer).__name__,
               "units": y.shape[1], "act_mean": y.mean(), "act_std": y.std()}
        if isinstance(layer, (nl.ReLU, nl.Tanh, nl.Sigmoid)):
            rec["role"] = "activation"
        if isinstance(layer, nl.ReLU):  # units that output 0 (or less) on every row
            rec["dead_fraction"] = float(np.mean(np.all(y <= 0, axis=0)))
        if isinstance(layer, (nl.Tanh, nl.Sigmoid)):
            centre, half = layer.saturation_band
            rec["saturation"] = float(np.mean(np.abs(x - centre) > half))
        if isinstance(layer, nl.BatchNorm):
            rm, rv = layer.buffers["running_mean"], layer.buffers["running_var"]
            rec.update(running_mean_mean=rm.mean(), running_mean_std=rm.std(),
                       running_var_mean=rv.mean(), running_var_min=rv.min(),
                       running_var_max=rv.max())
        out.append(rec)
    return out


def reference_noise(model, X, y, reg, step: int) -> list[dict]:
    """B_simple, tr(Σ), |G|² and each Linear layer's GSNR from the materialised per-sample
    gradients, in float64 (the noise scale of McCandlish et al.: unbiased tr(Σ) over |G|²)."""
    ps = per_sample_gradients(model, nl.SoftmaxCrossEntropy(), X, y)
    pen = {}
    if reg is not None:
        twin = copy.deepcopy(model)
        twin.zero_grad()
        reg.add_grad(twin)
        pen = {k: g.astype(np.float64) for k, g in twin.grads.items()}
    n = X.shape[0]

    def stats(keys):
        g = np.concatenate([ps[k].reshape(n, -1).astype(np.float64) for k in keys], axis=1)
        r = [pen.get(k, np.zeros(ps[k].shape[1:])).ravel() for k in keys]
        mean = g.mean(axis=0) + np.concatenate(r)
        trace = max(float(np.sum(g.var(axis=0, ddof=1))), 0.0)
        grad_sq = float(mean @ mean) - trace / n
        return trace, grad_sq, (trace / grad_sq if grad_sq > 0 else None)

    trace, grad_sq, b = stats(list(ps))
    recs = [{"step": step, "kind": "noise", "layer": "", "type": "", "b_simple": b,
             "trace_cov": trace, "grad_sq": grad_sq, "n": n}]
    for i in sorted({int(k.split(".")[0]) for k in ps}):
        g = ps[f"{i}.W"].astype(np.float64)
        var = g.var(axis=0, ddof=1)
        keep = var > 100 * np.finfo(ps[f"{i}.W"].dtype).eps * np.mean(g**2, axis=0)
        snr = float(np.mean(g.mean(axis=0)[keep] ** 2 / var[keep]))
        recs.append({"step": step, "kind": "noise", "layer": str(i), "type": "Linear", "snr": snr,
                     "b_simple": stats([k for k in ps if k.startswith(f"{i}.")])[2]})
    return recs


def reference_spectrum(model, step: int) -> list[dict]:
    """Top singular value and stable rank from NumPy's SVD; α from the fit on its λ = s²."""
    recs = []
    for key in model.weight_keys:
        W = model.params[key].astype(np.float64)
        s = np.linalg.svd(W, compute_uv=False)
        rec = {"step": step, "kind": "spectrum", "layer": key.split(".")[0], "type": "Linear",
               "param": key, "top_singular": s[0], "stable_rank": float(np.sum(s**2)) / s[0] ** 2}
        if min(W.shape) >= MIN_DIM:
            fit = fit_power_law(s[s * s > max(W.shape) * np.finfo(np.float64).eps * s[0] ** 2] ** 2)
            rec.update(alpha=fit.alpha, alpha_low=fit.alpha_low, alpha_high=fit.alpha_high,
                       n_tail=fit.n_tail)
        else:
            rec.update(alpha=None, alpha_low=None, alpha_high=None, n_tail=0)
        recs.append(rec)
    return recs


def assert_records_match(got: list[dict], want: list[dict], rel: dict[str, float],
                         default: float) -> None:
    """The same records in the same order: equal keys (a spectrum's ``reason`` aside), equal
    non-float values, floats within ``rel[key]`` (else ``default``) relative; a mean, which
    can be ~0, within that much absolute as well."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k not in w} in ({}, {"reason": g.get("reason")})
        for k, v in w.items():
            where = (g["kind"], g["step"], g.get("layer"), k, g[k], v)
            if isinstance(v, float) and g[k] is not None:
                tol = rel.get(k, default)
                scale = max(abs(v), tol if k == "act_mean" else 0.0)
                assert abs(g[k] - v) <= tol * scale, where
            else:
                assert g[k] == v, where


def record_model(seed: int = 0, dtype=np.float64) -> nl.Sequential:
    """Linear, batch norm, ReLU (two units never fire), dropout, tanh, sigmoid; a 64x60 weight
    matrix for a power-law fit."""
    model = nl.Sequential([
        nl.Linear(6, 64, rng=seed, dtype=dtype), nl.BatchNorm(64, dtype=dtype), nl.ReLU(),
        nl.Dropout(0.2, rng=seed + 1), nl.Linear(64, 60, init="glorot", rng=seed + 2, dtype=dtype),
        nl.Tanh(), nl.Linear(60, 8, init="glorot", rng=seed + 3, dtype=dtype), nl.Sigmoid(),
        nl.Linear(8, 3, init="glorot", rng=seed + 4, dtype=dtype),
    ])
    model.layers[1].params["beta"][:2] = -1000.0
    return model


@pytest.mark.parametrize("regularizer", [None, "l2"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["engine", "packed", "separate"])
def test_every_record_matches_a_reference_computation(layout, dtype, regularizer):
    """A run of 12 steps measured every 2 (noise every 4, a spectrum after epoch 4): every
    record against NumPy's norms, means and SVD of copies of the model taken at those steps,
    and the noise statistics of its materialised per-sample gradients. float64 within 1e-12
    (the noise's differences of sums within 1e-9); float32 norms to its rounding (they are
    float32 sums), activation statistics within 1e-12 (float64 sums of the same outputs)."""
    if layout == "engine":
        pytest.importorskip("numba")
    X, y = blobs(96, d=6)
    X = X.astype(dtype)
    model = record_model(dtype=dtype)
    if layout != "separate":
        model.pack()
    reg = nl.L2(1e-2) if regularizer else None
    snaps = Snapshots(every=2)
    mon = nl.Monitor(every=2, noise_every=4)
    tr = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(lr=1e-2), regularizer=reg,
                    callbacks=[snaps], monitor=mon, engine=layout == "engine")
    tr.fit(X, y, epochs=4, batch_size=32, seed=1)
    np.testing.assert_array_equal(mon.sample, X)  # 96 rows <= sample_size: all of them
    f32 = dtype == np.float32
    norms = {k: 1e-5 if f32 else 1e-12
             for k in ("weight_norm", "grad_norm", "update_norm", "update_ratio")}
    noise_tol = {k: 1e-4 if f32 else 1e-9 for k in ("b_simple", "trace_cov", "grad_sq", "snr")}
    spec_tol = {"top_singular": 1e-12, "stable_rank": 1e-10, "alpha": 1e-9, "alpha_low": 1e-9,
                "alpha_high": 1e-9}
    recs = tr.history.monitor
    assert sorted({r["step"] for r in recs if r["kind"] == "param"}) == list(range(0, 12, 2))
    assert sorted({r["step"] for r in recs if r["kind"] == "noise"}) == [0, 4, 8]
    assert sorted({r["step"] for r in recs if r["kind"] == "spectrum"}) == [11]
    seen = 0
    for step in range(0, 12, 2):
        params, grads, loss, penalty = snaps.before[step]
        after = snaps.after[step]
        if step % 4 == 0:
            got = [r for r in recs if r["step"] == step and r["kind"] == "noise"]
            assert_records_match(got, reference_noise(after, X, y, reg, step), noise_tol, 1e-12)
            seen += len(got)
        want = [{"step": step, "kind": "objective", "layer": "", "type": "",
                 "data_loss": loss - penalty, "penalty": penalty}]
        for name, w in after.params.items():
            idx, _, short = name.partition(".")
            layer = after.layers[int(idx)]
            role = ("weight" if short in layer.weight_names else
                    "bias" if short in layer.bias_names else "other")
            before, upd = norm(params[name]), norm(w - params[name])
            want.append({"step": step, "kind": "param", "layer": idx, "type": type(layer).__name__,
                         "param": name, "role": role, "size": w.size, "weight_norm": norm(w),
                         "grad_norm": norm(grads[name]), "update_norm": upd,
                         "update_ratio": upd / before if before > 0 else None})
        want += reference_layer_records(after, X, step)
        got = [r for r in recs
               if r["step"] == step and r["kind"] in ("objective", "param", "layer")]
        assert_records_match(got, want, norms, 1e-12)
        seen += len(got)
    got = [r for r in recs if r["kind"] == "spectrum"]
    assert_records_match(got, reference_spectrum(snaps.epoch_end[11], 11), spec_tol, 1e-12)
    assert seen + len(got) == len(recs)
    assert any(r.get("dead_fraction") == 2 / 64 for r in recs)  # the two silenced units


def test_overflowing_norms_are_none():
    """A float32 weight of 2e19 keeps the scores finite but ‖W‖² overflows float32: the
    weight norm and the update ratio (over the norm before the step) are None (records are
    strict JSON), the other numbers of the array are still measured."""
    model = nl.mlp(4, [8], 3, rng=0)
    model.layers[0].params["W"][0, 0] = 2e19
    tr = fit(model, nl.Monitor(every=1), optimizer=nl.SGD(lr=1e-30), epochs=1)
    w0 = [r for r in tr.history.monitor if r.get("param") == "0.W"]
    assert len(w0) == 3
    assert all(r["weight_norm"] is None and r["update_ratio"] is None for r in w0)
    assert all(r["grad_norm"] is not None and r["update_norm"] is not None for r in w0)
