"""The contract every registered layer, loss and regulariser keeps (issue 2, "Acceptance").

One parametrised test runs each name in LAYERS, LOSSES and REGULARIZERS through forward and
backward in float32 and float64, a float64 gradient check (relative error < 1e-7, kinks
aside), the get_config / from_config round trip and inference-mode determinism (CONSTRAINTS
too: max-norm bounds and round trip). Losses also pass the gradient check with sample
weights, and weights of 1 must give their unweighted numbers bit for bit. A registered
component with no example below fails: new components cannot skip the contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import neuronlab as nl  # imports every module, so every component is registered
from neuronlab.registry import CONSTRAINTS, LAYERS, LOSSES, REGULARIZERS

N = 5  # samples per batch: few samples, few kinks (the notes)


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Inputs with |x| >= 0.1, so that h = 1e-5 never crosses the kink of ReLU-like units."""
    x = rng.standard_normal(shape)
    return np.sign(x) * (0.1 + np.abs(x))


def normal(shape: tuple[int, ...]) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(shape)


# name -> (constructor kwargs, input factory rng -> float64 x of shape (N, ...))
LAYER_EXAMPLES: dict[str, tuple[dict[str, Any], Callable[[np.random.Generator], np.ndarray]]] = {
    # (N, 2, 3) input: Linear and Maxout flatten trailing axes row-major.
    "linear": ({"n_in": 6, "n_out": 4, "rng": 0}, normal((N, 2, 3))),
    "maxout": ({"n_in": 4, "n_out": 3, "pieces": 3, "rng": 0}, normal((N, 4))),
    "sigmoid": ({}, normal((N, 4))),
    "tanh": ({}, normal((N, 4))),
    "relu": ({}, lambda rng: away_from_zero(rng, (N, 4))),
    "leaky_relu": ({"alpha": 0.1}, lambda rng: away_from_zero(rng, (N, 4))),
    "prelu": ({"n_units": 4, "init_slope": 0.2}, lambda rng: away_from_zero(rng, (N, 4))),
    "elu": ({"alpha": 0.7}, lambda rng: away_from_zero(rng, (N, 4))),
    # Shifted and scaled input so that normalisation does real work.
    "batchnorm": ({"n_features": 4, "momentum": 0.8}, lambda rng: 3.0 + 2.0 * normal((N, 4))(rng)),
    "layernorm": ({"n_features": 4}, lambda rng: 3.0 + 2.0 * normal((N, 4))(rng)),
    "dropout": ({"rate": 0.5, "rng": 0}, normal((N, 4))),
    "gaussian_noise": ({"std": 0.3, "rng": 0}, normal((N, 4))),
}


def labels(n_classes: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.integers(0, n_classes, size=N)


# name -> (constructor kwargs, scores factory, targets factory)
LOSS_EXAMPLES: dict[str, tuple[dict[str, Any], Callable, Callable]] = {
    "softmax": ({}, normal((N, 4)), labels(4)),
    "multiclass_hinge": ({"margin": 1.0}, normal((N, 4)), labels(4)),
    "sigmoid_cross_entropy": ({"multilabel": True}, normal((N, 3)),
                              lambda rng: rng.integers(0, 2, size=(N, 3))),
    "binary_hinge": ({"margin": 1.0}, normal((N, 1)), lambda rng: rng.integers(0, 2, size=N)),
    "mse": ({}, normal((N, 3)), normal((N, 3))),
    "mae": ({}, normal((N, 3)), normal((N, 3))),
}

REGULARIZER_EXAMPLES: dict[str, dict[str, Any]] = {
    "l2": {"strength": 0.1},
    "l1": {"strength": 0.05},
    "elastic_net": {"l1": 0.05, "l2": 0.1},
}

CONSTRAINT_EXAMPLES: dict[str, dict[str, Any]] = {"max_norm": {"max_norm": 1.5}}

EXAMPLES = {"layer": LAYER_EXAMPLES, "loss": LOSS_EXAMPLES, "regularizer": REGULARIZER_EXAMPLES,
            "constraint": CONSTRAINT_EXAMPLES}
REGISTRIES = {"layer": LAYERS, "loss": LOSSES, "regularizer": REGULARIZERS,
              "constraint": CONSTRAINTS}
CASES = [(kind, name) for kind, reg in REGISTRIES.items() for name in reg.names()]


def assert_passes(report: nl.GradcheckReport) -> None:
    assert report.passed, str(report)
    assert report.max_error < 1e-7, str(report)
    # Kinks aside means a few, not all: most checked entries must really be compared.
    assert report.kinks <= sum(r.checked for r in report.rows) // 4, str(report)


# -- layers -------------------------------------------------------------------------------------
def layer_contract(name: str, rng: np.random.Generator) -> None:
    cls = LAYERS.get(name)
    kwargs, make_x = LAYER_EXAMPLES[name]
    x64 = make_x(rng)

    with pytest.raises(ValueError, match="before forward"):
        cls(**kwargs).backward(np.ones_like(x64))

    for dtype in (np.float32, np.float64):
        layer = cls(**kwargs).astype(dtype)
        assert set(layer.params) == set(layer.grads)
        for k, p in layer.params.items():
            assert p.dtype == dtype and layer.grads[k].dtype == dtype, k
        x = x64.astype(dtype)
        x_before = x.copy()
        out = layer.forward(x, training=True)
        assert out.dtype == dtype and out.shape[0] == N and np.isfinite(out).all()
        assert np.array_equal(x, x_before), "forward must not modify its input"
        dout = rng.standard_normal(out.shape).astype(dtype)
        dx = layer.backward(dout)
        assert dx.dtype == dtype and dx.shape == x.shape and np.isfinite(dx).all()
        first = {k: g.copy() for k, g in layer.grads.items()}
        layer.backward(dout)  # backward adds into grads: twice the same is double
        for k, g in layer.grads.items():
            np.testing.assert_allclose(g, 2 * first[k], rtol=1e-5 if dtype == np.float32 else 1e-12)

    # Default (float32) parameters with a float64 input: the input dtype is the compute dtype.
    assert cls(**kwargs).forward(x64, training=True).dtype == np.float64

    assert_passes(nl.gradcheck(cls(**kwargs), x=x64, max_entries=20))

    # Inference mode is deterministic (dropout and noise are the identity there).
    layer = cls(**kwargs).astype(np.float64)
    layer.forward(x64, training=True)  # moves batch-norm running averages off their start
    a = layer.forward(x64, training=False).copy()
    b = layer.forward(x64, training=False)
    assert np.array_equal(a, b)

    # Config round trip: JSON-able, same config, same output once the arrays are copied over.
    cfg = layer.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    twin = cls.from_config(cfg)
    assert type(twin) is cls and twin.get_config() == cfg
    for store in ("params", "buffers"):
        mine, theirs = getattr(layer, store), getattr(twin, store)
        assert set(mine) == set(theirs)
        for k, v in mine.items():
            theirs[k][...] = v
    np.testing.assert_array_equal(twin.forward(x64, training=False), a)


# -- losses -------------------------------------------------------------------------------------
def loss_contract(name: str, rng: np.random.Generator) -> None:
    cls = LOSSES.get(name)
    kwargs, make_s, make_y = LOSS_EXAMPLES[name]
    s64, y = make_s(rng), make_y(rng)

    with pytest.raises(ValueError, match="before forward"):
        cls(**kwargs).backward()

    values = {}
    for dtype in (np.float32, np.float64):
        loss = cls(**kwargs)
        s = s64.astype(dtype)
        values[dtype] = loss.forward(s, y)
        assert isinstance(values[dtype], float) and np.isfinite(values[dtype])
        g = loss.backward()
        assert g.dtype == dtype and g.shape == s.shape and np.isfinite(g).all()
    assert values[np.float32] == pytest.approx(values[np.float64], rel=1e-5)

    assert_passes(nl.gradcheck(cls(**kwargs), x=s64, y=y, max_entries=20))

    loss = cls(**kwargs)
    first = loss.forward(s64, y)
    assert loss.forward(s64, y) == first  # deterministic
    assert loss.task in ("classification", "multilabel", "regression")
    cfg = loss.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    twin = cls.from_config(cfg)
    assert type(twin) is cls and twin.get_config() == cfg
    assert twin.forward(s64, y) == first
    np.testing.assert_array_equal(twin.backward(), loss.backward())

    # sample weights: the weighted mean's gradient checks out, and weights 1 change nothing
    w = rng.uniform(0.1, 3.0, N)
    assert_passes(nl.gradcheck(_Weighted(cls(**kwargs), w), x=s64, y=y, max_entries=20))
    assert twin.forward(s64, y, sample_weight=np.ones(N)) == first
    np.testing.assert_array_equal(twin.backward(), loss.backward())


class _Weighted:
    """A loss with fixed sample weights, as gradcheck sees a loss: ``forward(scores, y)``."""

    def __init__(self, loss: Any, w: np.ndarray) -> None:
        self.loss, self.w = loss, w

    def forward(self, scores: np.ndarray, y: Any) -> float:
        return self.loss.forward(scores, y, sample_weight=self.w)

    def backward(self) -> np.ndarray:
        return self.loss.backward()

    def kink_state(self) -> Any:
        return self.loss.kink_state()


# -- regularisers --------------------------------------------------------------------------------
def small_model(dtype: Any = np.float64) -> nl.Sequential:
    return nl.Sequential(
        [nl.Linear(4, 5, rng=1, dtype=dtype), nl.Tanh(), nl.Linear(5, 3, rng=2, dtype=dtype)]
    )


def regularizer_contract(name: str, rng: np.random.Generator) -> None:
    cls = REGULARIZERS.get(name)
    kwargs = REGULARIZER_EXAMPLES[name]
    x, y = rng.standard_normal((N, 4)), rng.integers(0, 3, size=N)

    for dtype in (np.float32, np.float64):
        model, reg = small_model(dtype), cls(**kwargs)
        value = reg.loss(model)
        assert isinstance(value, float) and value > 0
        reg.add_grad(model)
        grads = model.grads
        assert all(g.dtype == dtype for g in grads.values())
        for key in grads:  # weights only, never biases
            assert grads[key].any() == (key in model.weight_keys), key

    report = nl.gradcheck(small_model(), nl.SoftmaxCrossEntropy(), x, y, regularizer=cls(**kwargs))
    assert_passes(report)
    assert {r.name for r in report.rows} == {"0.W", "0.b", "2.W", "2.b", "x"}

    reg = cls(**kwargs)
    cfg = reg.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    twin = cls.from_config(cfg)
    assert twin.get_config() == cfg
    model = small_model()
    assert twin.loss(model) == reg.loss(model)


def constraint_contract(name: str, rng: np.random.Generator) -> None:
    cls = CONSTRAINTS.get(name)
    kwargs = CONSTRAINT_EXAMPLES[name]
    c = cls(**kwargs)
    for dtype in (np.float32, np.float64):
        model = small_model(dtype)
        for key in model.weight_keys:
            model.params[key][:, 0] *= 10.0  # push one unit far outside the ball
        before = {k: v.copy() for k, v in model.params.items()}
        c.apply(model)
        for key, w in model.params.items():
            assert w.dtype == dtype
            if key not in model.weight_keys:  # biases untouched
                assert np.array_equal(w, before[key]), key
                continue
            norms = np.linalg.norm(w.astype(np.float64), axis=0)
            assert norms.max() <= c.max_norm * (1 + 1e-6), key
            inside = np.linalg.norm(before[key].astype(np.float64), axis=0) <= c.max_norm
            assert np.array_equal(w[:, inside], before[key][:, inside]), key
            assert not np.array_equal(w[:, 0], before[key][:, 0]), key
    cfg = c.get_config()
    assert json.loads(json.dumps(cfg)) == cfg and cls.from_config(cfg).get_config() == cfg


CONTRACTS = {"layer": layer_contract, "loss": loss_contract, "regularizer": regularizer_contract,
             "constraint": constraint_contract}


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}:{n}" for k, n in CASES])
def test_contract(kind: str, name: str, rng: np.random.Generator) -> None:
    if name not in EXAMPLES[kind]:
        pytest.fail(f"registered {kind} {name!r} has no example in tests/test_contract.py: add one "
                    f"to {kind.upper()}_EXAMPLES so it runs through the contract")
    CONTRACTS[kind](name, rng)


def test_every_registry_is_covered() -> None:
    # The parametrisation is built from the registries themselves; guard against them being
    # empty (an import failure would otherwise make the contract test vanish silently).
    for kind, reg in REGISTRIES.items():
        assert reg.names(), f"no {kind} registered"
        assert set(EXAMPLES[kind]) <= set(reg.names()), f"stale {kind} examples"


# -- whole networks and the two things gradcheck must tell apart -------------------------------
@pytest.mark.parametrize("activation", ["relu", "tanh", "maxout"])
def test_mlp_with_softmax_and_l2(activation: str, rng: np.random.Generator) -> None:
    model = nl.mlp(6, [7, 5], 3, activation=activation, batchnorm=True, dropout=0.5, rng=0)
    x, y = rng.standard_normal((N, 6)), rng.integers(0, 3, size=N)
    report = nl.gradcheck(model, nl.SoftmaxCrossEntropy(), x, y, regularizer=nl.L2(1e-2),
                          max_entries=15)
    assert_passes(report)
    assert {r.name for r in report.rows} == {*model.params, "x"}
    assert model.dtype == np.float32  # the check ran on a float64 copy


class _WrongLinear(nl.Linear):
    """A planted bug: dW is x.T @ dout scaled by 1.5, as if a term were counted twice."""

    def backward(self, dout, *, input_grad=True):
        before = self.grads["W"].copy()
        dx = super().backward(dout, input_grad=input_grad)
        self.grads["W"] += 0.5 * (self.grads["W"] - before)
        return dx


def test_gradcheck_catches_a_planted_wrong_backward(rng: np.random.Generator) -> None:
    model = nl.Sequential([nl.Linear(4, 5, rng=1), nl.ReLU(), _WrongLinear(5, 3, rng=2)])
    x, y = rng.standard_normal((N, 4)), rng.integers(0, 3, size=N)
    report = nl.gradcheck(model, nl.SoftmaxCrossEntropy(), x, y)
    assert not report.passed
    # Relative error of 1.5a against a: 0.5|a| / 1.5|a| = 1/3 on every entry.
    assert report["2.W"].verdict == "wrong"
    assert report["2.W"].max_error == pytest.approx(1 / 3, rel=1e-6)
    assert report["0.W"].verdict == "ok" and report["2.b"].verdict == "ok"
    assert "2.W: max rel error 3.3e-01 — wrong" in str(report)
    assert "check backward of layer 2 (_WrongLinear)" in str(report)


def test_gradcheck_reports_a_relu_kink_crossing(rng: np.random.Generator) -> None:
    model = nl.Sequential([nl.Linear(3, 4, rng=1, dtype=np.float64), nl.ReLU(),
                           nl.Linear(4, 2, rng=2, dtype=np.float64)])
    x, y = away_from_zero(rng, (2, 3)), np.array([0, 1])
    # Put unit 0's pre-activation for sample 0 at 2e-6: the b[0] ± 1e-5 evaluations fall on
    # both sides of ReLU's kink (but no other unit or sample moves that close to 0).
    W, b = model[0].params["W"], model[0].params["b"]
    b[...] = 0.0
    pre = x @ W
    b[0] = 2e-6 - pre[0, 0]
    b[1:] = np.where(np.abs(pre[:, 1:]).min(axis=0) < 0.1, 0.5, 0.0)
    report = nl.gradcheck(model, nl.SoftmaxCrossEntropy(), x, y, max_entries=50)
    assert report["0.b"].kinks >= 1
    assert report.passed, str(report)  # reported, not failed
    assert "straddled a kink" in str(report)
