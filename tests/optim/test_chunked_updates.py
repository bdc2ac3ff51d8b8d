"""Without the compiled kernels, large parameters are updated in cache-sized chunks: the
result must be bit-identical to one whole-array update, for every elementwise rule, across
state changes and resumes. (test_kernels.py checks the kernels against the same NumPy rules.)"""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl
from neuronlab import kernels
from neuronlab.optim import base

RULES = [nl.SGD, nl.Momentum, nl.Nesterov, nl.Adagrad, nl.RMSprop, nl.Adam, nl.AdamW]


@pytest.fixture(autouse=True)
def _numpy_rules_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels, "ENABLED", False)


def _problem(seed: int = 0) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    # 3 chunks and a ragged tail for "W" (2.4 * CHUNK elements); "b" stays whole
    n = int(2.4 * base.CHUNK) // 8 * 8
    params = {"W": rng.standard_normal(n).astype(np.float32).reshape(-1, 8),
              "b": rng.standard_normal(16).astype(np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
             for _ in range(4)]
    return params, grads


def _run(opt: nl.Optimizer, params: dict[str, np.ndarray], grads: list[dict[str, np.ndarray]],
         *, chunked: bool) -> dict[str, np.ndarray]:
    opt.elementwise = chunked  # the instance attribute overrides the class's
    p = {k: v.copy() for k, v in params.items()}
    g = {k: np.empty_like(v) for k, v in params.items()}  # the same arrays every step
    for step in grads:
        for k, v in g.items():
            v[...] = step[k]
        opt.step(p, g, lr=0.01, decay_keys=["W"])
    return p


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_chunked_update_is_bit_identical(rule: type) -> None:
    assert rule.elementwise
    params, grads = _problem()
    whole = _run(rule(lr=0.01), params, grads, chunked=False)
    opt = rule(lr=0.01)
    chunked = _run(opt, params, grads, chunked=True)
    assert any("[" in key for key in opt._scratch)  # the chunks were really used
    for k in params:
        assert np.array_equal(whole[k], chunked[k]), k
    # per-parameter state stays one array per slot (chunks are views of it)
    assert all(v.shape == params[name].shape for name, s in opt.state.items() for v in s.values())


def test_new_arrays_rebuild_the_chunks() -> None:
    """astype (new parameter arrays) and load_state_dict (new state arrays) must not leave
    the optimizer writing into the old arrays through stale chunk views."""
    params, grads = _problem(1)
    ref = nl.Momentum(lr=0.01)
    p_ref = {k: v.copy() for k, v in params.items()}
    opt = nl.Momentum(lr=0.01)
    p = {k: v.copy() for k, v in params.items()}
    for step, g in enumerate(grads):
        if step == 2:
            p = {k: v.copy() for k, v in p.items()}  # new parameter objects, same values
            saved = opt.state_dict()
            opt.load_state_dict(saved)  # new state arrays
        ref.step(p_ref, {k: v.copy() for k, v in g.items()})
        opt.step(p, {k: v.copy() for k, v in g.items()})
    for k in params:
        assert np.array_equal(p_ref[k], p[k])


def test_elementwise_is_opt_in() -> None:
    """A rule written against the base class keeps whole-array updates (its ``name`` is
    always a parameter's name)."""
    seen = []

    class Custom(nl.Optimizer):
        def _update(self, name, w, g, lr, state):
            seen.append(name)
            w -= lr * g

    params, grads = _problem(2)
    Custom(lr=0.1).step(params, grads[0])
    assert sorted(seen) == ["W", "b"]


# -- a Sequential's packed parameters: one flat block for the whole model -----------------------
def _unpacked(model: nl.Sequential) -> nl.Sequential:
    """The same values in separate arrays (what the model held before packing)."""
    other = nl.Sequential([type(layer).from_config(layer.get_config()) for layer in model.layers])
    for layer in other.layers:
        for store in (layer.params, layer.grads):
            for k in store:
                store[k] = store[k].copy()
    other.set_arrays(model.params)
    return other


def _train(model: nl.Sequential, opt: nl.Optimizer, grads: list[dict[str, np.ndarray]],
           load: dict | None = None) -> None:
    if load is not None:
        opt.load_state_dict(load)
    for step in grads:
        for k, g in model.grads.items():
            g[...] = step[k]
        opt.step(model.params, model.grads, lr=0.01, decay_keys=model.weight_keys)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
@pytest.mark.parametrize("hidden", [16, 300], ids=["whole", "chunked"])  # 300*300 > CHUNK
def test_packed_model_update_is_bit_identical(rule: type, hidden: int) -> None:
    model = nl.mlp(300, [hidden], 3, rng=0)
    flat = model.layers[0].params["W"].base
    assert all(v.base is flat for v in model.params.values())  # mlp packs its parameters
    rng = np.random.default_rng(1)
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in model.params.items()}
             for _ in range(4)]
    ref = _unpacked(model)
    assert not any(v.base is flat for v in ref.params.values())
    opt_ref, opt = rule(lr=0.01, weight_decay=0.1), rule(lr=0.01, weight_decay=0.1)
    _train(ref, opt_ref, grads)
    _train(model, opt, grads[:2])
    assert "*" in opt._scratch and "*" not in opt_ref._scratch  # the block path was taken
    _train(model, rule(lr=0.01, weight_decay=0.1), grads[2:], load=opt.state_dict())  # resumed
    for k, v in ref.params.items():
        assert np.array_equal(v, model.params[k]), k
    assert all(v.shape == model.params[name].shape for name, s in opt.state.items() for v in s.values())


def test_astype_repacks_and_a_replaced_array_falls_back_to_per_array_updates() -> None:
    model = nl.mlp(4, [5], 2, rng=0).astype(np.float64)
    flat = model.layers[0].params["W"].base
    assert flat.dtype == np.float64 and all(v.base is flat for v in model.params.values())
    model.layers[0].params["W"] = model.layers[0].params["W"].copy()  # no longer a view
    opt, g = nl.Momentum(lr=0.1), {k: np.ones_like(v) for k, v in model.params.items()}
    before = {k: v.copy() for k, v in model.params.items()}
    opt.step(model.params, g)
    assert "*" not in opt._scratch
    for k, v in model.params.items():
        assert np.allclose(v, before[k] - 0.1), k


def test_a_sequential_of_your_own_layers_keeps_its_arrays_until_packed() -> None:
    layer = nl.Linear(3, 2, rng=0)
    W = layer.params["W"]
    model = nl.Sequential([layer, nl.ReLU(), nl.Linear(2, 2, rng=1)])
    assert model.params["0.W"] is W  # the caller's reference stays live
    before = {k: v.copy() for k, v in model.params.items()}
    assert model.pack() is model and model.params["0.W"] is not W
    for k, v in model.params.items():
        assert np.array_equal(v, before[k]) and v.base is model.params["0.W"].base
