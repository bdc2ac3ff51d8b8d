"""``Sequential.pack``: every parameter a view of one flat block (and every gradient of
another), in the layers' order, which is what the compiled engine trains in place
(``neuronlab.engine._block``); values kept, the caller's own arrays left alone until asked."""

from __future__ import annotations

import numpy as np

import neuronlab as nl
from neuronlab.engine import _block


def _tiled(arrays) -> bool:
    return _block(list(arrays)) is not None


def test_mlp_and_from_config_pack_parameters_and_gradients():
    model = nl.mlp(6, [5, 4], 3, rng=0)
    for m in (model, nl.Sequential.from_config(model.get_config())):
        flat_w, flat_g = m.layers[0].params["W"].base, m.layers[0].grads["W"].base
        assert flat_w is not flat_g
        assert all(v.base is flat_w for v in m.params.values())
        assert all(v.base is flat_g for v in m.grads.values())
        assert _tiled(m.params.values()) and _tiled(m.grads.values())
        assert flat_w.size == sum(v.size for v in m.params.values())


def test_astype_repacks_and_a_replaced_array_is_the_models():
    model = nl.mlp(4, [5], 2, rng=0)
    before = {k: v.copy() for k, v in model.params.items()}
    model.astype(np.float64)
    flat = model.layers[0].params["W"].base
    assert flat.dtype == np.float64 and all(v.base is flat for v in model.params.values())
    assert _tiled(model.params.values()) and _tiled(model.grads.values())
    for k, v in model.params.items():
        assert v.dtype == np.float64 and np.array_equal(v, before[k].astype(np.float64)), k
    # an array put in a layer's place is the model's from then on (no longer tiling the block)
    model.layers[0].params["W"] = W = model.layers[0].params["W"].copy()
    assert model.params["0.W"] is W and not _tiled(model.params.values())
    opt, g = nl.Momentum(lr=0.1), {k: np.ones_like(v) for k, v in model.params.items()}
    values = {k: v.copy() for k, v in model.params.items()}
    opt.step(model.params, g)
    for k, v in model.params.items():
        assert np.allclose(v, values[k] - 0.1), k


def test_a_sequential_of_your_own_layers_keeps_its_arrays_until_packed():
    layer = nl.Linear(3, 2, rng=0)
    W = layer.params["W"]
    model = nl.Sequential([layer, nl.ReLU(), nl.Linear(2, 2, rng=1)])
    assert model.params["0.W"] is W  # the caller's reference stays live
    assert not _tiled(model.params.values())
    before = {k: v.copy() for k, v in model.params.items()}
    assert model.pack() is model and model.params["0.W"] is not W
    for k, v in model.params.items():
        assert np.array_equal(v, before[k]) and v.base is model.params["0.W"].base
    assert _tiled(model.params.values()) and _tiled(model.grads.values())


def test_pack_leaves_mixed_dtypes_alone():
    model = nl.Sequential([nl.Linear(3, 2, rng=0, dtype=np.float32),
                           nl.Linear(2, 2, rng=1, dtype=np.float64)])
    arrays = dict(model.params)
    assert model.pack() is model
    assert all(model.params[k] is v for k, v in arrays.items())
