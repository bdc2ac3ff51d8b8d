"""The one step function: the same arithmetic as the loop it replaced, and the right gradient."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.train.step import loss_and_grads


def blobs(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return (3.0 * np.eye(3, 5)[y] + rng.standard_normal((n, 5))).astype(np.float32), y


def test_minibatch_steps_are_bit_identical_to_the_previous_loop():
    """The trainer's losses and weights equal, bit for bit, the step the loop used to write
    out: zero_grad, forward, loss, backward, regulariser loss and gradient, update."""
    X, y = blobs()
    model = nl.mlp(5, [16, 8], 3, batchnorm=True, rng=0)
    ref_model, opt = copy.deepcopy(model), nl.Momentum(lr=0.05)
    ref_opt, loss, reg = copy.deepcopy(opt), nl.SoftmaxCrossEntropy(), nl.L2(1e-2)
    tr = nl.Trainer(model, loss, opt, regularizer=reg, monitor=False, engine=False)  # the NumPy loop
    tr.fit(X, y, epochs=2, batch_size=32, seed=4)

    rng, losses = np.random.default_rng(4), []
    for _ in range(2):
        perm = rng.permutation(len(X))
        for b in range(0, len(X), 32):
            idx = np.sort(perm[b : b + 32])
            ref_model.zero_grad()
            value = loss.forward(ref_model.forward(X[idx], training=True), y[idx])
            ref_model.backward(loss.backward(), input_grad=False)
            value += reg.loss(ref_model)
            reg.add_grad(ref_model)
            ref_opt.step(ref_model.params, ref_model.grads, lr=0.05,
                         decay_keys=ref_model.weight_keys)
            losses.append(value)
    assert tr.history.loss == losses
    for k, v in ref_model.params.items():
        assert np.array_equal(v, model.params[k]), k


def test_lbfgs_steps_are_bit_identical_to_the_previous_objective():
    X, y = blobs()
    X = X.astype(np.float64)
    model = nl.mlp(5, [8], 3, rng=0, dtype=np.float64)
    ref_model, loss, reg = copy.deepcopy(model), nl.SoftmaxCrossEntropy(), nl.L2(1e-3)
    tr = nl.Trainer(model, loss, nl.LBFGS(max_iter=10), regularizer=reg, monitor=False)
    tr.fit(X, y, epochs=2)

    def fun() -> float:  # the objective the trainer handed to minimize before
        value = loss.forward(ref_model.forward(X, training=True), y)
        ref_model.backward(loss.backward(), input_grad=False)
        value += reg.loss(ref_model)
        reg.add_grad(ref_model)
        return value

    ref_opt = nl.LBFGS(max_iter=10)
    values = [float(ref_opt.minimize(fun, ref_model.params, ref_model.grads).fun) for _ in range(2)]
    assert tr.history.loss == values
    for k, v in ref_model.params.items():
        assert np.array_equal(v, model.params[k]), k


@pytest.mark.parametrize(
    ("loss", "n_out", "y"),
    [
        (nl.SoftmaxCrossEntropy(), 3, np.array([0, 2, 1, 1, 0, 2])),
        (nl.MeanSquaredError(), 2, np.linspace(-1, 1, 12).reshape(6, 2)),
    ],
)
def test_gradient_of_the_objective_with_a_regularizer(loss, n_out, y):
    """Centered differences in float64 of value(params) = data loss + penalty."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4))
    model = nl.mlp(4, [5], n_out, activation="tanh", rng=0, dtype=np.float64)
    reg = nl.ElasticNet(l1=1e-2, l2=1e-1)  # both penalties: their gradients add to the data's
    loss_and_grads(model, loss, x, y, reg)
    analytic = {k: g.copy() for k, g in model.grads.items()}
    h = 1e-6
    for name, p in model.params.items():
        numeric = np.empty_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            up = loss_and_grads(model, loss, x, y, reg)[0]
            p[i] = old - h
            down = loss_and_grads(model, loss, x, y, reg)[0]
            p[i] = old
            numeric[i] = (up - down) / (2 * h)
        scale = np.maximum(1e-8, np.abs(numeric) + np.abs(analytic[name]))
        err = np.abs(numeric - analytic[name]) / scale
        assert err.max() < 1e-6, (name, err.max())


@pytest.mark.parametrize(
    "last", [None, nl.ReLU, nl.Sigmoid, nl.Tanh, nl.ELU, lambda: nl.BatchNorm(3)]
)
def test_scores_are_the_forward_output_untouched_by_backward(last):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 5)).astype(np.float32)
    layers = [nl.Linear(5, 8, rng=0), nl.ReLU(), nl.Linear(8, 3, rng=1)]
    model = nl.Sequential(layers + ([last()] if last is not None else []))
    for loss, y in [(nl.SoftmaxCrossEntropy(), rng.integers(0, 3, 20)),
                    (nl.MeanAbsoluteError(), rng.standard_normal((20, 3)))]:
        value, scores = loss_and_grads(model, loss, x, y)
        expected = copy.deepcopy(model).forward(x, training=True)  # BatchNorm: batch statistics
        assert np.array_equal(scores, expected)
        assert value == loss.forward(expected, y)


def test_overflowed_scores_are_divergence_at_the_step():
    model = nl.mlp(2, [4], 3, rng=0)
    model.params["2.W"][...] = np.float32(3e38)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
            nl.DivergenceError, match="diverged at step 7: the network's output is") as e:
        loss_and_grads(model, nl.SoftmaxCrossEntropy(), np.ones((3, 2), np.float32),
                       np.zeros(3, np.int64), step=7)
    assert e.value.step == 7 and e.value.name == "scores"
    with pytest.raises(ValueError, match="y"):  # bad targets with finite scores: a ValueError
        loss_and_grads(nl.mlp(2, [4], 3, rng=0), nl.SoftmaxCrossEntropy(),
                       np.ones((3, 2), np.float32), np.full(3, 9))
