"""The optimizers on a real network: a Sequential MLP with softmax cross-entropy on the notes'
3-class spiral, full batch, driven through model.params / model.grads exactly as the
trainer does (zero_grad, forward, backward, step with the scheduled lr and decay_keys)."""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl


def spiral(n_per_class: int = 50, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.zeros((n_per_class * k, 2))
    y = np.zeros(n_per_class * k, dtype=np.int64)
    for c in range(k):
        r = np.linspace(0.0, 1.0, n_per_class)
        t = np.linspace(c * 4, (c + 1) * 4, n_per_class) + rng.standard_normal(n_per_class) * 0.2
        x[c * n_per_class : (c + 1) * n_per_class] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[c * n_per_class : (c + 1) * n_per_class] = c
    return x, y


def make(dtype):
    model = nl.mlp(2, [32], 3, activation="relu", rng=0, dtype=dtype)
    return model, nl.SoftmaxCrossEntropy()


@pytest.mark.parametrize("name, lr", [("adam", 0.05), ("adamw", 0.05), ("nesterov", 0.5)])
def test_minibatch_rules_train_a_spiral_mlp(name, lr):
    x, y = spiral()
    x = x.astype(np.float32)
    model, loss = make(np.float32)
    opt = nl.get_optimizer(name, lr=lr, clip_norm=5.0)
    schedule = nl.Warmup(nl.Cosine(lr, total_steps=290), warmup_steps=10)
    params, grads = model.params, model.grads  # dicts of the layers' own arrays
    first = None
    for step in range(300):
        model.zero_grad()
        value = loss.forward(model.forward(x, training=True), y)
        first = value if first is None else first
        model.backward(loss.backward(), input_grad=False)
        opt.step(params, grads, lr=schedule(step), decay_keys=model.weight_keys)
    acc = float(np.mean(loss.predict(model.forward(x)) == y))
    # the loss starts near ln 3 ~ 1.10; a 32-unit ReLU net separates 3 arms of 50 points
    final = loss.forward(model.forward(x), y)
    assert first > 0.8 and final < 0.3 and acc > 0.9
    assert all(v.dtype == np.float32 for v in model.params.values())


def test_lbfgs_trains_a_spiral_mlp_full_batch():
    x, y = spiral()
    model, loss = make(np.float64)
    l2 = 1e-4

    def fun() -> float:
        value = loss.forward(model.forward(x, training=True), y)
        model.backward(loss.backward(), input_grad=False)  # adds into the zeroed grads
        for k in model.weight_keys:  # 1/2 l2 |W|^2 keeps the optimum bounded
            value += 0.5 * l2 * float(np.sum(model.params[k] ** 2))
            model.grads[k] += l2 * model.params[k]
        return value

    res = nl.LBFGS(max_iter=300).minimize(fun, model.params, model.grads)
    assert res.fun < 0.15
    assert float(np.mean(loss.predict(model.forward(x)) == y)) > 0.95
