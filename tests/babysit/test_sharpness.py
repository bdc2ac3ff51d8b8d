"""Sharpness: power iteration against the exact (finite-difference) Hessian, the stability
thresholds against their formulas and against the library's own optimizers on a 1-D
quadratic, and that measuring changes nothing in a run."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

import neuronlab as nl
import neuronlab.babysit.sharpness as sharpness_module
from neuronlab.babysit.probe import probe
from neuronlab.babysit.sharpness import (
    EOS_FACTOR,
    SHARPNESS_RECORD_KEYS,
    edge_of_stability_rule,
    plot_sharpness,
    power_iteration,
    sharpness_record,
    stability_threshold,
    top_hessian_eigenvalue,
)
from neuronlab.train.base import Callback

from .test_gradient_noise import assert_same, mixed_net, snapshot


def small_net(seed: int = 0, activation=nl.Tanh, out_init: str = "glorot") -> nl.Sequential:
    """3-5-3 in float64, biases non-zero."""
    model = nl.Sequential([nl.Linear(3, 5, init="glorot", rng=seed, dtype=np.float64), activation(),
                           nl.Linear(5, 3, init=out_init, rng=seed + 1, dtype=np.float64)])
    rng = np.random.default_rng(seed + 100)
    for k in ("0.b", "2.b"):
        model.params[k][...] = 0.1 * rng.standard_normal(model.params[k].shape)
    return model


def rows(seed: int = 0, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)), rng.integers(0, 3, n)


def exact_hessian(model, loss, X, y, reg=None, h: float = 1e-5) -> np.ndarray:
    """Column j = (∇L(w + h e_j) − ∇L(w − h e_j)) / 2h of the objective, symmetrised."""
    names = list(model.params)

    def grad() -> np.ndarray:
        g = probe(model, loss, X, y, reg).objective_grads()
        return np.concatenate([g[k].reshape(-1) for k in names])

    cols = []
    for k in names:
        w = model.params[k].reshape(-1)
        for i in range(w.size):
            old = w[i]
            w[i] = old + h
            plus = grad()
            w[i] = old - h
            minus = grad()
            w[i] = old
            cols.append((plus - minus) / (2 * h))
    H = np.stack(cols, axis=1)
    return (H + H.T) / 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_power_iteration_matches_the_exact_hessian(seed):
    """tanh 3-5-3 with L2 on 6 rows: 38 parameters. Power iteration finds the eigenvalue of
    largest magnitude; here it is also the algebraically largest, which is what the function
    returns (see the negative-curvature test for the other case)."""
    model = small_net(seed)
    X, y = rows(seed)
    loss, reg = nl.SoftmaxCrossEntropy(), nl.L2(0.05)
    ev = np.linalg.eigvalsh(exact_hessian(model, loss, X, y, reg))
    assert ev[-1] == ev[np.argmax(np.abs(ev))] and ev[0] < 0  # indefinite, positive dominant
    assert top_hessian_eigenvalue(model, loss, X, y, reg) == pytest.approx(ev[-1], rel=0.05)
    tight = top_hessian_eigenvalue(model, loss, X, y, reg, iters=300, tol=1e-10)
    assert tight == pytest.approx(ev[-1], rel=1e-5)


def test_power_iteration_returns_the_algebraic_maximum_when_negative_curvature_dominates():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    eig = np.array([-9.0, -3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 4.0])
    A = Q @ np.diag(eig) @ Q.T
    v0 = rng.standard_normal(8)
    assert power_iteration(lambda v: A @ v, v0, iters=500, tol=1e-12) == pytest.approx(4.0, rel=1e-6)
    assert power_iteration(lambda v: -A @ v, v0, iters=500, tol=1e-12) == pytest.approx(9.0, rel=1e-6)
    negative = Q @ np.diag(-np.abs(eig) - 1) @ Q.T  # negative definite: λ_max = -1
    assert power_iteration(lambda v: negative @ v, v0, iters=2000, tol=1e-13) == pytest.approx(-1.0, rel=1e-5)


def test_preconditioned_sharpness_matches_the_exact_eigenvalues():
    """λ_max(P^{-1/2} H P^{-1/2}) with a positive diagonal P spanning two decades."""
    model = small_net(3)
    X, y = rows(3)
    loss, reg = nl.SoftmaxCrossEntropy(), nl.L2(0.05)
    rng = np.random.default_rng(7)
    pre = {k: 10.0 ** rng.uniform(-2, 0, v.shape) for k, v in model.params.items()}
    d = np.concatenate([pre[k].reshape(-1) for k in model.params]) ** -0.5
    ev = np.linalg.eigvalsh(d[:, None] * exact_hessian(model, loss, X, y, reg) * d[None, :])
    top = ev[-1]
    assert top == ev[np.argmax(np.abs(ev))]
    got = top_hessian_eigenvalue(model, loss, X, y, reg, preconditioner=pre, iters=100, tol=1e-8)
    assert got == pytest.approx(top, rel=0.05)
    with pytest.raises(ValueError, match="no entry for parameters"):
        top_hessian_eigenvalue(model, loss, X, y, preconditioner={"0.W": pre["0.W"]})
    with pytest.raises(ValueError, match="positive and finite"):
        top_hessian_eigenvalue(model, loss, X, y, preconditioner={**pre, "0.b": -pre["0.b"]})


def test_a_relu_kink_exactly_at_the_point_is_stepped_off():
    """An all-zero input row with zero first-layer biases puts 5 pre-activations exactly at
    ReLU's kink: any central difference crosses some of them and a gradient jump of size 1/h
    swamps the result (the control below, with the displacement turned off). Measured off the
    kink it agrees with the Hessian of the other rows plus the zero row's own loss, which then
    depends on the output bias only: ∂²/∂b² of softmax cross-entropy is diag(p) − ppᵀ. The
    output weights are small (the mlp default, N(0, 0.01²)), so which side of the kink each
    unit lands on changes λ by far less than the tolerance."""
    model = small_net(4, activation=nl.ReLU, out_init="normal")
    model.params["0.b"][...] = 0.0
    X, y = rows(4)
    X[2] = 0.0
    loss = nl.SoftmaxCrossEntropy()
    keep = np.arange(6) != 2
    H = exact_hessian(model, loss, X[keep], y[keep]) * (5 / 6)
    s = model.params["2.b"]
    p = np.exp(s - s.max())
    p /= p.sum()
    start = sum(v.size for k, v in model.params.items() if k != "2.b")  # 2.b is the last
    H[start:, start:] += (np.diag(p) - np.outer(p, p)) / 6
    top = np.linalg.eigvalsh(H)[-1]
    assert top_hessian_eigenvalue(model, loss, X, y, iters=100, tol=1e-8) == pytest.approx(top, rel=0.01)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sharpness_module, "_JITTER", 0.0)
        wild = top_hessian_eigenvalue(model, loss, X, y, iters=100, tol=1e-8)
    assert not abs(wild - top) < 10 * abs(top)


def test_float32_model_gives_its_float64_copy_answer():
    model64 = small_net(5)
    model32 = copy.deepcopy(model64).astype(np.float32)
    X, y = rows(5, n=16)
    loss, reg = nl.SoftmaxCrossEntropy(), nl.L2(0.01)
    a = top_hessian_eigenvalue(model64, loss, X, y, reg)
    b = top_hessian_eigenvalue(model32, loss, X.astype(np.float32), y, reg)
    assert b == pytest.approx(a, rel=0.05)
    assert model32.dtype == np.float32  # still float32: the work was done on a copy


def test_measuring_leaves_params_grads_buffers_and_rngs_untouched():
    model = mixed_net(dtype=np.float32).pack()
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    for g in model.grads.values():
        g[...] = rng.standard_normal(g.shape)
    opt = nl.Adam(lr=1e-3)
    opt.step(model.params, {k: rng.standard_normal(v.shape).astype(np.float32)
                            for k, v in model.params.items()})
    before = snapshot(model)
    state = copy.deepcopy(opt.state_dict())
    rec = sharpness_record(model, nl.SoftmaxCrossEntropy(), opt, 1e-3, X, y, nl.L2(0.01), step=3,
                           iters=5)
    top_hessian_eigenvalue(model, nl.SoftmaxCrossEntropy(), X, y, iters=5)
    assert rec["top_eigenvalue"] is not None
    assert_same(before, snapshot(model))
    after = opt.state_dict()
    assert after["t"] == state["t"]
    for k, slots in state["state"].items():
        for s, v in slots.items():
            np.testing.assert_array_equal(after["state"][k][s], v)


# -- thresholds --------------------------------------------------------------------------------
def test_stability_thresholds_follow_their_formulas():
    eta = 0.05
    assert stability_threshold(nl.SGD(lr=eta), eta) == (pytest.approx(2 / eta), None)
    assert stability_threshold(nl.Momentum(lr=eta, momentum=0.9), eta) == (pytest.approx(3.8 / eta), None)
    assert stability_threshold(nl.Momentum(lr=eta, momentum=0.5), eta)[0] == pytest.approx(3.0 / eta)
    mu = 0.9
    assert stability_threshold(nl.Nesterov(lr=eta, momentum=mu), eta)[0] == pytest.approx(
        (2 + 2 * mu) / ((1 + 2 * mu) * eta))
    assert stability_threshold(nl.LBFGS(), 1.0) == (None, None)
    assert stability_threshold(nl.SGD(lr=eta), 0.0)[0] == math.inf
    with pytest.raises(ValueError, match="lr must be"):
        stability_threshold(nl.SGD(lr=eta), -1.0)


def test_adaptive_thresholds_and_preconditioners_come_from_the_optimizer_state():
    rng = np.random.default_rng(0)
    params = {"a": np.zeros((2, 3)), "b": np.zeros(4)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(3)]
    eta = 1e-3
    for opt in (nl.Adam(lr=eta), nl.AdamW(lr=eta, beta1=0.8), nl.RMSprop(lr=eta), nl.Adagrad(lr=eta)):
        assert stability_threshold(opt, eta) == (None, None)  # no preconditioner before a step
        for g in grads:
            opt.step(params, {k: v.copy() for k, v in g.items()})
        thr, pre = stability_threshold(opt, eta)
        assert pre is not None and sorted(pre) == ["a", "b"]
        for k in params:
            sq = [g[k] ** 2 for g in grads]
            if isinstance(opt, nl.Adam):
                b1, b2 = opt.beta1, opt.beta2
                v = sum((1 - b2) * b2 ** (2 - i) * s for i, s in enumerate(sq))
                expected = np.sqrt(v / (1 - b2 ** 3)) + opt.eps
                assert thr == pytest.approx((2 + 2 * b1) / ((1 - b1) * eta))
            elif isinstance(opt, nl.RMSprop):
                d = opt.decay
                expected = np.sqrt(sum((1 - d) * d ** (2 - i) * s for i, s in enumerate(sq))) + opt.eps
                assert thr == pytest.approx(2 / eta)
            else:
                expected = np.sqrt(sum(sq)) + opt.eps
                assert thr == pytest.approx(2 / eta)
            np.testing.assert_allclose(pre[k], expected, rtol=1e-12)
    assert stability_threshold(nl.Adam(), 1e-3)[0] is None
    adam = nl.Adam(lr=eta)
    adam.step(params, {k: v.copy() for k, v in grads[0].items()})
    assert stability_threshold(adam, eta)[0] == pytest.approx(38 / eta)  # β1 = 0.9


def run_quadratic(opt, curvature: float, steps: int = 2000) -> float:
    """|w| after ``steps`` of the library's optimizer on L = ½·curvature·w² from w = 1."""
    w, g = np.ones(1), np.zeros(1)
    params, grads = {"w": w}, {"w": g}
    for _ in range(steps):
        np.multiply(w, curvature, out=g)
        opt.step(params, grads)
        if not abs(w[0]) < 1e12:
            break
    return abs(float(w[0]))


@pytest.mark.parametrize("make", [lambda: nl.SGD(lr=0.1), lambda: nl.Momentum(lr=0.1, momentum=0.9),
                                  lambda: nl.Momentum(lr=0.1, momentum=0.5),
                                  lambda: nl.Nesterov(lr=0.1, momentum=0.9)],
                         ids=["sgd", "momentum0.9", "momentum0.5", "nesterov0.9"])
def test_the_thresholds_divide_convergence_from_divergence(make):
    """The library's own update rules on a 1-D quadratic: 1% below the threshold the iterate
    shrinks, 1% above it grows without bound."""
    thr, _ = stability_threshold(make(), 0.1)
    assert run_quadratic(make(), 0.99 * thr) < 1e-6
    assert run_quadratic(make(), 1.01 * thr) > 1e6


# -- records, rule, plot -------------------------------------------------------------------------
def test_sharpness_record_format():
    model = small_net(6)
    X, y = rows(6, n=8)
    loss = nl.SoftmaxCrossEntropy()
    rec = sharpness_record(model, loss, nl.SGD(lr=0.1), 0.1, X, y, step=12)
    assert set(rec) == SHARPNESS_RECORD_KEYS
    assert rec["kind"] == "sharpness" and rec["layer"] == "" and rec["type"] == "" and rec["step"] == 12
    assert rec["threshold"] == pytest.approx(20.0) and rec["lr"] == 0.1 and rec["preconditioned"] is False
    assert rec["top_eigenvalue"] == top_hessian_eigenvalue(model, loss, X, y)
    assert json.loads(json.dumps(rec, allow_nan=False)) == rec
    adam = nl.Adam(lr=1e-3)
    first = sharpness_record(model, loss, adam, 1e-3, X, y)
    assert first["top_eigenvalue"] is None and first["threshold"] is None and first["preconditioned"]
    adam.step(model.params, probe(model, loss, X, y).grads)
    rec = sharpness_record(model, loss, adam, 1e-3, X, y, step=1)
    _, pre = stability_threshold(adam, 1e-3)
    assert rec["preconditioned"] and rec["threshold"] == pytest.approx(38e3)
    assert rec["top_eigenvalue"] == top_hessian_eigenvalue(model, loss, X, y, preconditioner=pre)
    lbfgs = sharpness_record(model, loss, nl.LBFGS(), 1.0, X, y)
    assert lbfgs["threshold"] is None and lbfgs["top_eigenvalue"] is not None


def sharp(step: int, top: float | None, thr: float | None, lr: float = 0.1, pre: bool = False) -> dict:
    return {"step": step, "kind": "sharpness", "layer": "", "type": "", "top_eigenvalue": top,
            "threshold": thr, "lr": lr, "preconditioned": pre}


def test_edge_of_stability_rule():
    recs = [sharp(0, 5.0, 20.0), sharp(10, 25.0, 20.0), sharp(20, 30.0, 20.0), sharp(30, None, 20.0)]
    f = edge_of_stability_rule(recs)
    assert f is not None and f.rule == "edge_of_stability" and f.severity == "warning"
    assert f.evidence["top_eigenvalue"] == 30.0 and f.evidence["threshold"] == 20.0
    assert f.evidence["steps_above"] == [10, 20] and f.evidence["steps"] == [0, 20]
    assert f.evidence["lr_below"] == pytest.approx(0.1 * 20 / 30)
    assert "oscillates" in f.message and "lower the learning rate below 0.0667" in f.action
    assert edge_of_stability_rule([sharp(0, 30.0, 20.0), sharp(10, 19.0, 20.0)]) is None  # latest fine
    assert edge_of_stability_rule([sharp(0, 30.0, None)]) is None
    assert edge_of_stability_rule([]) is None
    f = edge_of_stability_rule([sharp(5, 50.0 * EOS_FACTOR, 38.0, lr=1e-3, pre=True)])
    assert f is not None and "preconditioned" in f.message


def test_plot_sharpness_draws_the_eigenvalue_and_the_threshold():
    recs = [sharp(0, 5.0, 20.0), sharp(10, None, 10.0), sharp(20, 12.0, 10.0),
            {"step": 0, "kind": "noise", "layer": "", "type": ""}]
    fig = plot_sharpness(recs)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    curve, threshold = ax.get_lines()
    np.testing.assert_array_equal(curve.get_xdata(), [0, 20])
    np.testing.assert_array_equal(curve.get_ydata(), [5.0, 12.0])
    assert list(threshold.get_ydata()) == [20.0, 10.0, 10.0]
    assert plot_sharpness([]).axes[0].texts  # "no sharpness measurements"


class _Sharpness(Callback):
    def __init__(self) -> None:
        self.seen: list[dict] = []

    def on_before_update(self, trainer, step, loss):
        X, y = trainer.train_data
        lr = trainer.history.lr[-1] if trainer.history.lr else trainer.optimizer.lr
        self.seen.append(sharpness_record(trainer.model, trainer.loss, trainer.optimizer, lr,
                                          X[:32], y[:32], trainer.regularizer, step, iters=4))


@pytest.mark.parametrize("make", [lambda: nl.Adam(lr=1e-2), lambda: nl.Momentum(lr=0.05)],
                         ids=["adam", "momentum"])
def test_measuring_every_step_changes_nothing_in_a_run(make):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5).astype(np.int64)
    runs, measure = [], _Sharpness()
    for callbacks in ([], [measure]):
        tr = nl.Trainer(mixed_net(dtype=np.float32).pack(), nl.SoftmaxCrossEntropy(), make(),
                        regularizer=nl.L2(1e-3), callbacks=callbacks, monitor=False)
        tr.fit(X, y, epochs=2, batch_size=32)
        runs.append(tr)
    off, on = runs
    assert len(measure.seen) == 6 and all(r["top_eigenvalue"] is not None for r in measure.seen[1:])
    assert off.history.loss == on.history.loss
    for k, v in {**off.model.params, **off.model.buffers}.items():
        np.testing.assert_array_equal(v, {**on.model.params, **on.model.buffers}[k])
