"""The compiled one-pass update kernels (numba, the ``fast`` extra) against the NumPy rules:
bit-identical for every elementwise rule, in float32 and float64, packed and per array, and
used only where they compute exactly the rule that runs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import neuronlab as nl
from neuronlab import kernels

RULES = [nl.SGD, nl.Momentum, nl.Nesterov, nl.Adagrad, nl.RMSprop, nl.Adam, nl.AdamW]


def _steps(model: nl.Sequential, opt: nl.Optimizer, n: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    for step in range(n):
        for g in model.grads.values():
            g[...] = rng.standard_normal(g.shape)
        # a schedule's lr, weight decay on the weights only
        opt.step(model.params, model.grads, lr=0.01 / (1 + step), decay_keys=model.weight_keys)


def _fused_items(opt: nl.Optimizer) -> list[bool]:
    return [item[4] is not None for item in opt._plan[1]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_kernel_update_is_bit_identical_to_the_numpy_rule(rule, dtype, monkeypatch):
    assert kernels.available() and kernels.get(rule.kernel) is not None
    results = {}
    for fused in (False, True):
        monkeypatch.setattr(kernels, "ENABLED", fused)
        model = nl.mlp(300, [300], 3, rng=0).astype(dtype)  # 90k weights: NumPy chunks them
        opt = rule(lr=0.01, weight_decay=0.1)
        _steps(model, opt, 5)
        assert _fused_items(opt) == ([True] if fused else [False] * len(opt._plan[1]))
        # the slots are still one array per parameter (views of the packed slot block)
        assert all(v.shape == model.params[k].shape for k, s in opt.state.items() for v in s.values())
        results[fused] = (model.params, opt.state_dict())
    (p0, s0), (p1, s1) = results[False], results[True]
    for k in p0:
        assert p0[k].dtype == dtype and np.array_equal(p0[k], p1[k]), k
    for name, slots in s0["state"].items():
        for slot, v in slots.items():
            assert np.array_equal(v, s1["state"][name][slot]), (name, slot)


@pytest.mark.parametrize("rule", [nl.Momentum, nl.Adam], ids=lambda r: r.__name__)
def test_kernel_runs_per_array_and_the_numpy_rule_takes_what_it_cannot(rule, monkeypatch):
    """Unpacked parameters get one kernel call each; a non-contiguous one and one whose gradient has another dtype get the NumPy rule, with the same result."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((40, 30))
    params = {"W": W.astype(np.float32), "T": np.asfortranarray(W),  # column-major
              "b": rng.standard_normal(30).astype(np.float32)}
    assert not params["T"].flags.c_contiguous
    grads = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in params.items()}
    grads["b"] = grads["b"].astype(np.float64)
    out = {}
    for fused in (False, True):
        monkeypatch.setattr(kernels, "ENABLED", fused)
        p = {k: v.copy(order="K") for k, v in params.items()}
        opt = rule(lr=0.05)
        for _ in range(3):
            opt.step(p, grads)
        out[fused] = p
        if fused:
            assert _fused_items(opt) == [True, False, False]  # W; T (strided); b (mixed dtypes)
    for k in params:
        assert np.array_equal(out[False][k], out[True][k]), k


def test_a_subclass_with_its_own_update_is_not_run_by_its_parents_kernel():
    class Halved(nl.Momentum):
        def _update(self, name, w, g, lr, state):
            super()._update(name, w, g, lr / 2, state)

    class Renamed(nl.Adam):  # no new rule: keeps the kernel
        pass

    assert Halved.kernel is None and Renamed.kernel == "adam"
    model, ref = nl.mlp(5, [4], 2, rng=0), nl.mlp(5, [4], 2, rng=0)
    halved, plain = Halved(lr=0.1), nl.Momentum(lr=0.05)
    for _ in range(2):
        for m in (model, ref):
            for g in m.grads.values():
                g[...] = 1.0
        halved.step(model.params, model.grads)
        plain.step(ref.params, ref.grads)
    for k, v in ref.params.items():
        assert np.array_equal(v, model.params[k]), k


def test_environment_variable_turns_the_kernels_off():
    code = ("from neuronlab import kernels; import neuronlab as nl; "
            "print(kernels.ENABLED, kernels.get('adam') is None)")
    env = {**os.environ, "NEURONLAB_KERNELS": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]


# -- a Linear and the ReLU after it in one pass ---------------------------------------------------
def _forward_backward(model: nl.Sequential, x: np.ndarray, fused: bool, training: bool,
                      monkeypatch) -> dict:
    monkeypatch.setattr(kernels, "ENABLED", fused)
    calls = []
    real = nl.Linear.forward_relu
    monkeypatch.setattr(nl.Linear, "forward_relu",
                        lambda self, x, relu: calls.append(1) or real(self, x, relu))
    scores = model.forward(x, training=training, check=False)
    relu_out = [layer.kink_state() for layer in model.layers if isinstance(layer, nl.ReLU)]
    model.zero_grad()
    dx = model.backward(np.ones_like(scores))  # backward reads the caches forward left
    return {"scores": scores, "kinks": relu_out, "dx": dx, "calls": len(calls),
            "grads": {k: v.copy() for k, v in model.grads.items()}}


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_fused_linear_relu_is_bit_identical(dtype, training, monkeypatch):
    model = nl.mlp(20, [30, 40], 5, rng=0).astype(dtype)
    model.layers[0].params["b"][:] = np.linspace(-1, 1, 30)  # biases that change the kinks
    x = np.random.default_rng(1).standard_normal((64, 20)).astype(dtype)
    x[3, 4] = np.nan  # NaN goes through max(., 0) as NaN, as in np.maximum
    plain = _forward_backward(model, x, False, training, monkeypatch)
    fused = _forward_backward(model, x, True, training, monkeypatch)
    assert (plain["calls"], fused["calls"]) == (0, 2)  # both hidden layers were fused
    assert fused["scores"].dtype == dtype and np.isnan(fused["scores"][3]).all()
    np.testing.assert_array_equal(plain["scores"], fused["scores"])
    np.testing.assert_array_equal(plain["dx"], fused["dx"])
    for a, b in zip(plain["kinks"], fused["kinks"]):
        np.testing.assert_array_equal(a, b)
    for k, v in plain["grads"].items():
        np.testing.assert_array_equal(v, fused["grads"][k], err_msg=k)


def test_fusion_only_for_an_exact_linear_relu_pair(monkeypatch):
    class MyReLU(nl.ReLU):
        pass

    model = nl.Sequential([nl.Linear(4, 3, rng=0), MyReLU(), nl.Linear(3, 3, rng=1), nl.ReLU(),
                           nl.Linear(3, 2, bias=None, rng=2), nl.ReLU()])
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    seen = []
    real = nl.Linear.forward_relu
    monkeypatch.setattr(nl.Linear, "forward_relu",
                        lambda self, x, relu: seen.append(self) or real(self, x, relu))
    ref = x
    for layer in model.layers:
        ref = layer.forward(ref)
    np.testing.assert_array_equal(model.forward(x, training=True), ref)
    assert seen == [model.layers[2], model.layers[4]]  # not the subclass; a bias-free one falls back


def test_without_numba_everything_runs_in_numpy(monkeypatch):
    """A plain ``pip install neuronlab`` (no ``fast`` extra): no kernel, same results."""
    monkeypatch.setattr(kernels, "_numba", False)
    monkeypatch.setattr(kernels, "_compiled", {})
    assert not kernels.available() and kernels.get("adam") is None
    model, opt = nl.mlp(300, [300], 3, rng=0), nl.Adam(lr=0.01)
    _steps(model, opt, 3)
    assert not any(_fused_items(opt))
    x = np.random.default_rng(2).standard_normal((8, 300)).astype(np.float32)
    ref = x
    for layer in model.layers:
        ref = layer.forward(ref)
    np.testing.assert_array_equal(model.forward(x), ref)


# -- the penalty gradients (regularizers.py) ------------------------------------------------------
def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("reg", [nl.L2(0.3), nl.L1(0.2), nl.ElasticNet(l1=0.05, l2=0.7)], ids=repr)
def test_penalty_gradient_kernels_are_bit_identical(reg, dtype, monkeypatch):
    """add_grad with the kernels equals the NumPy code bit for bit, zeros of both signs, NaN
    and infinities included (np.sign(±0) is +0, a NaN weight gives a NaN gradient)."""
    specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-30, -3.5], dtype)
    out, calls, real = {}, [], kernels.get

    def counted(name):  # the kernel, counting its calls
        kernel = real(name)
        return None if kernel is None else lambda *args: calls.append(name) or kernel(*args)

    monkeypatch.setattr(kernels, "get", counted)
    for fused in (False, True):
        monkeypatch.setattr(kernels, "ENABLED", fused)
        calls.clear()
        model = nl.mlp(300, [300], 3, rng=0).astype(dtype)  # packed: every array a view
        rng = np.random.default_rng(1)
        for g in model.grads.values():
            g[...] = rng.standard_normal(g.shape)
        model.params["0.W"][0, : specials.size] = specials
        model.grads["0.W"][1, : specials.size] = -0.0  # -0 + 0 is +0, in both
        model.grads["0.W"][1, 0] = np.nan
        type(reg).from_config(reg.get_config()).add_grad(model)
        out[fused] = {k: v.copy() for k, v in model.grads.items()}
        # one kernel call per term and weight array with the kernels on, none without
        assert len(calls) == fused * 2 * (bool(reg._l1) + bool(reg._l2))
    for k, v in out[False].items():
        assert v.dtype == dtype
        np.testing.assert_array_equal(_bits(v), _bits(out[True][k]), err_msg=k)


def test_penalty_gradient_kernel_skips_what_it_cannot_take(monkeypatch):
    """A Fortran-ordered weight, or a gradient of another dtype, gets the NumPy code."""
    w = np.asfortranarray(np.random.default_rng(0).standard_normal((5, 4)))
    got = {}
    for fused in (False, True):
        monkeypatch.setattr(kernels, "ENABLED", fused)
        params = {"F": w.copy(order="F"), "M": w.astype(np.float32)}
        grads = {"F": np.ones((5, 4), order="F"), "M": np.ones((5, 4))}  # float64 for float32
        model = type("M", (), {"params": params, "grads": grads, "weight_keys": ["F", "M"]})()
        nl.ElasticNet(l1=0.1, l2=0.2).add_grad(model)
        got[fused] = grads
    for k in ("F", "M"):
        np.testing.assert_array_equal(got[False][k], got[True][k])
        assert got[True][k].dtype == np.float64
