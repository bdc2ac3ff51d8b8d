"""Right after zero_grad a Linear layer writes its gradient instead of adding it to zeros,
and the Trainer's lazy zero_grad skips the fill: the gradients must be exactly those of the
plain accumulate-into-zeros contract."""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.threads import limit_blas


@pytest.fixture
def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, 5)), rng.standard_normal((6, 3))


def test_backward_after_zero_grad_then_accumulates(batch) -> None:
    x, dout = batch
    layer = nl.Linear(5, 3, rng=0, dtype=np.float64)
    layer.grads["W"][...] = 7.0  # stale values that zero_grad must clear
    layer.zero_grad()
    layer.forward(x, training=True)
    layer.backward(dout)
    assert np.allclose(layer.grads["W"], x.T @ dout, rtol=1e-14, atol=0)
    assert np.allclose(layer.grads["b"], dout.sum(axis=0), rtol=1e-14, atol=0)
    layer.backward(dout)  # a second backward adds (gradient accumulation)
    assert np.allclose(layer.grads["W"], 2 * (x.T @ dout), rtol=1e-14, atol=0)
    assert np.allclose(layer.grads["b"], 2 * dout.sum(axis=0), rtol=1e-14, atol=0)


@pytest.mark.parametrize("x_dtype", [np.float64, np.float32], ids=["same", "float32-input"])
def test_lazy_zero_grad_overwrites_stale_values(batch, x_dtype) -> None:
    x, dout = batch
    model = nl.Sequential([nl.Linear(5, 3, rng=0, dtype=np.float64)])
    layer = model[0]
    layer.grads["W"][...] = 7.0
    layer.grads["b"][...] = 7.0
    model.zero_grad(lazy=True)
    assert layer.grads["W"][0, 0] == 7.0  # skipped: documented as stale until backward
    xs, ds = x.astype(x_dtype), dout.astype(x_dtype)
    model.forward(xs, training=True)
    model.backward(ds, input_grad=False)
    # a float32 input into float64 parameters takes the zero-then-add path
    want = xs.astype(np.float64).T @ ds.astype(np.float64)
    assert np.allclose(layer.grads["W"], want, rtol=1e-6, atol=1e-12)
    assert np.allclose(layer.grads["b"], ds.sum(axis=0), rtol=1e-6, atol=1e-12)


def test_trainer_steps_match_a_plain_loop() -> None:
    """The Trainer (lazy zero_grad, unchecked forward of validated batches, chunked optimizer
    updates of a 3072x32 weight) takes exactly the steps of a loop written with the plain
    calls."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((96, 3072)).astype(np.float32)
    y = rng.integers(0, 4, 96)

    def make():
        return nl.mlp(3072, [32], 4, rng=3), nl.SoftmaxCrossEntropy(), nl.Adam(lr=1e-3)

    model, loss, opt = make()
    # one BLAS thread on both sides: a threaded GEMM may sum in another order (OpenBLAS on
    # AMD EPYC does), and this test is about the Trainer's steps, not the BLAS
    nl.Trainer(model, loss, opt, monitor=False, threads=1, engine=False).fit(
        X, y, epochs=2, batch_size=32, seed=5)

    ref, ref_loss, ref_opt = make()
    shuffle = np.random.default_rng(5)
    with limit_blas(1):
        _plain_loop(X, y, ref, ref_loss, ref_opt, shuffle)
    for k, v in ref.params.items():
        assert np.array_equal(model.params[k], v), k


def _plain_loop(X, y, ref, ref_loss, ref_opt, shuffle) -> None:
    for _ in range(2):
        perm = shuffle.permutation(96)
        for b in range(3):
            idx = np.sort(perm[b * 32:(b + 1) * 32])
            ref.zero_grad()
            ref_loss.forward(ref.forward(X[idx], training=True), y[idx])
            ref.backward(ref_loss.backward(), input_grad=False)
            ref_opt.step(ref.params, ref.grads, lr=1e-3, decay_keys=ref.weight_keys)
