"""What the Optimizer base class does for every rule: clipping, decoupled weight decay,
the lr override, lazy state, state-dict round trips, configs and argument validation."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.registry import OPTIMIZERS

# every per-step rule with non-default hyperparameters, so configs are really round-tripped
STEP_RULES = {
    "sgd": dict(lr=0.05),
    "momentum": dict(lr=0.05, momentum=0.8),
    "nesterov": dict(lr=0.05, momentum=0.7),
    "adagrad": dict(lr=0.05, eps=1e-7),
    "rmsprop": dict(lr=0.01, decay=0.9, eps=1e-7),
    "adam": dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-7),
    "adamw": dict(lr=0.01, beta1=0.8, beta2=0.99, weight_decay=0.1),
}


def test_every_rule_is_registered():
    assert OPTIMIZERS.names() == sorted([*STEP_RULES, "lbfgs"])
    assert isinstance(nl.get_optimizer("Adam", lr=0.1), nl.Adam)
    with pytest.raises(ValueError, match="choose one of: adagrad, adam"):
        nl.get_optimizer("adamm")
    assert nl.LBFGS.full_batch and not any(OPTIMIZERS.get(n).full_batch for n in STEP_RULES)


def test_clip_by_value_in_place():
    # SGD lr = 1 from w = 0: w = -clip(g, -0.5, 0.5)
    g = np.array([2.0, -0.3, -5.0])
    w = np.zeros(3)
    nl.SGD(lr=1.0, clip_value=0.5).step({"w": w}, {"w": g})
    np.testing.assert_array_equal(g, [0.5, -0.3, -0.5])
    np.testing.assert_array_equal(w, [-0.5, 0.3, 0.5])


def test_clip_by_global_norm_across_parameters():
    # grads a = [3], b = [4]: global norm 5 > 1, so both scale by 1/5 -> [0.6], [0.8]
    p = {"a": np.zeros(1), "b": np.zeros(1)}
    g = {"a": np.array([3.0]), "b": np.array([4.0])}
    nl.SGD(lr=1.0, clip_norm=1.0).step(p, g)
    np.testing.assert_allclose([p["a"][0], p["b"][0]], [-0.6, -0.8], rtol=1e-15)
    # below the threshold nothing changes: norm 5 <= 10
    g = {"a": np.array([3.0]), "b": np.array([4.0])}
    nl.SGD(lr=1.0, clip_norm=10.0).step({"a": np.zeros(1), "b": np.zeros(1)}, g)
    np.testing.assert_array_equal([g["a"][0], g["b"][0]], [3.0, 4.0])


def test_clip_value_applies_before_clip_norm():
    # value first: [10, 0.5] -> [1, 0.5], norm sqrt(1.25); then scale 0.5/sqrt(1.25)
    # -> [0.4472136, 0.2236068]. (Norm first would give [0.4994, 0.0250].)
    g = {"a": np.array([10.0]), "b": np.array([0.5])}
    nl.SGD(lr=1.0, clip_value=1.0, clip_norm=0.5).step({"a": np.zeros(1), "b": np.zeros(1)}, g)
    s = 0.5 / math.sqrt(1.25)
    np.testing.assert_allclose([g["a"][0], g["b"][0]], [s, 0.5 * s], rtol=1e-15)


def test_weight_decay_only_on_decay_keys():
    # SGD lr = 0.1, wd = 0.5 -> factor 1 - 0.05 = 0.95 after the update
    # W: g = 1 -> (2 - 0.1) * 0.95 = 1.805;  b: g = 1 -> 2 - 0.1 = 1.9 (not decayed)
    p = {"W": np.array([2.0]), "b": np.array([2.0])}
    g = {"W": np.array([1.0]), "b": np.array([1.0])}
    nl.SGD(lr=0.1, weight_decay=0.5).step(p, g, decay_keys=["W"])
    np.testing.assert_allclose([p["W"][0], p["b"][0]], [1.805, 1.9], rtol=1e-15)
    # decay_keys=None decays everything
    p = {"W": np.array([2.0]), "b": np.array([2.0])}
    nl.SGD(lr=0.1, weight_decay=0.5).step(p, {"W": np.zeros(1), "b": np.zeros(1)})
    np.testing.assert_allclose([p["W"][0], p["b"][0]], [1.9, 1.9], rtol=1e-15)


def test_weight_decay_uses_the_step_lr():
    # lr override 0.2, wd = 0.5: factor 1 - 0.1 = 0.9; zero grad -> 2 * 0.9
    p = {"W": np.array([2.0])}
    nl.SGD(lr=0.1, weight_decay=0.5).step(p, {"W": np.zeros(1)}, lr=0.2)
    np.testing.assert_allclose(p["W"], [1.8], rtol=1e-15)


def test_lr_override_and_zero_lr():
    opt = nl.SGD(lr=0.1)
    w = np.array([1.0])
    opt.step({"w": w}, {"w": np.array([1.0])}, lr=0.5)  # 1 - 0.5
    np.testing.assert_allclose(w, [0.5])
    opt.step({"w": w}, {"w": np.array([1.0])}, lr=0.0)  # a cosine schedule may end at 0
    np.testing.assert_allclose(w, [0.5])
    opt.step({"w": w}, {"w": np.array([1.0])})  # back to the constructor's 0.1
    np.testing.assert_allclose(w, [0.4])
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lr must be"):
            opt.step({"w": w}, {"w": np.array([1.0])}, lr=bad)


def test_mismatched_params_and_grads():
    opt = nl.Adam()
    with pytest.raises(ValueError, match="same keys"):
        opt.step({"a": np.zeros(2)}, {"b": np.zeros(2)})
    with pytest.raises(ValueError, match=r"grads\['a'\] has shape \(3,\)"):
        opt.step({"a": np.zeros(2)}, {"a": np.zeros(3)})


@pytest.mark.parametrize("name", sorted(STEP_RULES))
def test_state_is_lazy_and_keeps_dtype(name, rng):
    opt = nl.get_optimizer(name, **STEP_RULES[name])
    assert opt.state == {} and opt.t == 0
    p = {"0.W": rng.standard_normal((3, 2)).astype(np.float32), "0.b": np.zeros(2, np.float32)}
    g = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p.items()}
    opt.step(p, g)
    assert opt.t == 1 and sorted(opt.state) == ["0.W", "0.b"]
    for k, slots in opt.state.items():
        assert tuple(slots) == type(opt).slots
        for arr in slots.values():
            assert arr.shape == p[k].shape and arr.dtype == np.float32
    assert all(v.dtype == np.float32 for v in p.values())


def _run(opt, params, grad_seq):
    for g in grad_seq:
        opt.step(params, {k: v.copy() for k, v in g.items()}, decay_keys=["0.W"])


@pytest.mark.parametrize("name", sorted(STEP_RULES))
def test_state_dict_round_trip_is_bit_identical(name, rng):
    def randn(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    p0 = {"0.W": randn(4, 3), "0.b": randn(3)}
    seq = [{k: randn(*v.shape) for k, v in p0.items()} for _ in range(6)]
    kw = dict(STEP_RULES[name], clip_norm=2.0)

    full = {k: v.copy() for k, v in p0.items()}
    _run(nl.get_optimizer(name, **kw), full, seq)

    part = {k: v.copy() for k, v in p0.items()}
    first = nl.get_optimizer(name, **kw)
    _run(first, part, seq[:3])
    saved = first.state_dict()
    assert saved["t"] == 3 and saved["type"] == name
    _run(first, {k: v.copy() for k, v in part.items()}, seq[3:])  # must not touch `saved`
    resumed = OPTIMIZERS.get(saved["type"]).from_config(saved["config"])
    resumed.load_state_dict(saved)
    for slots in saved["state"].values():  # loading copies: the saved dict stays independent
        for arr in slots.values():
            arr += 1.0
    _run(resumed, part, seq[3:])
    for k in p0:
        assert np.array_equal(part[k], full[k]), k
    assert resumed.t == 6


def test_load_state_dict_rejects_wrong_kind_and_slots():
    a = nl.Adam()
    a.step({"w": np.ones(2)}, {"w": np.ones(2)})
    with pytest.raises(ValueError, match="'adam', cannot load it into 'momentum'"):
        nl.Momentum().load_state_dict(a.state_dict())
    sd = a.state_dict()
    del sd["state"]["w"]["v"]
    with pytest.raises(ValueError, match="slots"):
        nl.Adam().load_state_dict(sd)
    with pytest.raises(ValueError, match="'t'"):
        nl.Adam().load_state_dict({"state": {}})
    b = nl.Adam()
    b.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="has shape"):  # restored state for a different model
        b.step({"w": np.ones(3)}, {"w": np.ones(3)})


@pytest.mark.parametrize("name", sorted(STEP_RULES))
def test_config_round_trip(name):
    opt = nl.get_optimizer(name, **STEP_RULES[name], clip_value=3.0)
    cfg = opt.get_config()
    assert all(cfg[k] == v for k, v in STEP_RULES[name].items())
    assert cfg["clip_value"] == 3.0
    assert type(opt).from_config(cfg).get_config() == cfg
    assert repr(opt).startswith(type(opt).__name__ + "(")


def test_adamw_decays_by_default():
    assert nl.AdamW().weight_decay == 0.01 and nl.Adam().weight_decay == 0.0


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (nl.SGD, dict(lr=0), "lr must be > 0, got 0"),
        (nl.SGD, dict(lr=-1e-3), "lr must be > 0"),
        (nl.SGD, dict(lr="0.1"), "lr must be a real number"),
        (nl.SGD, dict(lr=float("nan")), "lr must be finite"),
        (nl.SGD, dict(clip_value=0.0), "clip_value must be > 0"),
        (nl.SGD, dict(clip_norm=-1.0), "clip_norm must be > 0"),
        (nl.SGD, dict(weight_decay=-0.1), "weight_decay must be >= 0"),
        (nl.Momentum, dict(momentum=1.0), "momentum must be < 1"),
        (nl.Momentum, dict(momentum=-0.1), "momentum must be >= 0"),
        (nl.Nesterov, dict(momentum=1.5), "momentum must be < 1"),
        (nl.Adagrad, dict(eps=0.0), "eps must be > 0"),
        (nl.RMSprop, dict(decay=1.0), "decay must be < 1"),
        (nl.RMSprop, dict(decay=0.0), "decay must be > 0"),
        (nl.Adam, dict(beta1=1.0), "beta1 must be < 1"),
        (nl.Adam, dict(beta2=-0.5), "beta2 must be >= 0"),
        (nl.AdamW, dict(weight_decay=-1), "weight_decay must be >= 0"),
        (nl.LBFGS, dict(max_iter=0), "max_iter must be > 0"),
        (nl.LBFGS, dict(history=2.5), "history must be an integer"),
        (nl.LBFGS, dict(tol=0), "tol must be > 0"),
    ],
)
def test_bad_hyperparameters_name_the_argument(cls, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cls(**kwargs)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="momentun"):
        nl.Momentum(lr=0.1, momentun=0.9)


@pytest.mark.parametrize("name", sorted(STEP_RULES))
def test_step_allocates_nothing_the_size_of_the_weights(name, rng):
    # 100k float32 = 400 kB per array; after the first step (state and scratch created), a
    # step with both clippings and weight decay must not allocate even one such array.
    n = 100_000
    p = {k: rng.standard_normal(n).astype(np.float32) for k in ("a", "b")}
    g = {k: rng.standard_normal(n).astype(np.float32) for k in p}
    kw = dict(STEP_RULES[name], clip_value=1.0, clip_norm=10.0, weight_decay=0.1)
    opt = nl.get_optimizer(name, **kw)
    opt.step(p, g)
    tracemalloc.start()
    try:
        opt.step(p, g, lr=0.01)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * 4 // 4, f"{name} step allocated {peak} bytes"
