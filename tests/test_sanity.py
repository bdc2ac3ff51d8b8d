"""sanity_check: a correct MLP passes all four checks; planted bugs fail the right one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _runs import digits_split, scaled

import neuronlab as nl


@pytest.fixture(scope="module")
def digits():
    X, y, _, _ = digits_split()
    return X, y


def statuses(report: nl.SanityReport) -> dict[str, str]:
    return {r.name: r.status for r in report.results}


class DoubledBackward(nl.Layer):
    """Planted bug: the identity forward, but backward returns 2·dout."""

    def forward(self, x, *, training=False):
        return x

    def backward(self, dout, *, input_grad=True):
        return 2 * dout


class UnlistedLinear(nl.Linear):
    """Planted bug: a dense layer that does not list its weights for regularisers."""

    weight_names = ()


class DoNothing(nl.SGD):
    """Planted bug: an optimizer whose update is lost."""

    def _update(self, name, w, g, lr, state):
        pass


class Uphill(nl.SGD):
    """Planted bug: a sign error, w += lr·g."""

    def _update(self, name, w, g, lr, state):
        w += lr * g


def test_a_correct_mlp_passes_all_four(digits):
    X, y = digits
    report = nl.sanity_check(nl.mlp(64, [32], 10, rng=0), nl.SoftmaxCrossEntropy(), X, y)
    assert report.passed, str(report)
    assert statuses(report) == dict.fromkeys(["initial_loss", "regularization", "overfit", "gradcheck"], "PASS")
    init = report["initial_loss"].values
    assert init["expected"] == pytest.approx(math.log(10))  # ln C for C = 10
    assert abs(math.log(init["initial_loss"] / init["expected"])) < math.log(1.5)
    losses = report["regularization"].values["losses"]
    assert losses[0] < losses[1] < losses[2]
    over = report["overfit"].values
    assert over["accuracy"] == 1.0 and over["n_examples"] == 20 and over["steps"] <= 300
    assert report["gradcheck"].values["max_error"] < 1e-7
    text = str(report)
    assert text.startswith("Sanity checks: all passed") and text.count("PASS") == 4


def test_regularization_golden(digits):
    """The objective at strength s is data + ½·s·Σ‖W‖², so the increase from s to 10s is
    9 times the increase from 0 to s."""
    X, y = digits
    model = nl.mlp(64, [16], 10, rng=1)
    report = nl.sanity_check(model, nl.SoftmaxCrossEntropy(), X, y, regularizer_strength=0.5)
    l0, l1, l2 = report["regularization"].values["losses"]
    sq = sum(float(np.sum(model.params[k].astype(np.float64) ** 2)) for k in model.weight_keys)
    assert l1 - l0 == pytest.approx(0.5 * 0.5 * sq, rel=1e-5)
    assert l2 - l1 == pytest.approx(9 * (l1 - l0), rel=1e-5)


def test_huge_init_fails_the_initial_loss_check(digits):
    X, y = digits
    report = nl.sanity_check(scaled(nl.mlp(64, [32], 10, out_init="he", rng=0), 10.0), nl.SoftmaxCrossEntropy(), X, y)
    assert statuses(report)["initial_loss"] == "FAIL"
    assert report["initial_loss"].values["factor"] > 10
    assert "initialisation" in report["initial_loss"].action
    assert "what to do:" in str(report)


def test_wrong_backward_fails_the_gradient_check(digits):
    X, y = digits
    model = nl.Sequential([nl.Linear(64, 16, rng=0), DoubledBackward(), nl.ReLU(), nl.Linear(16, 10, rng=1)])
    report = nl.sanity_check(model, nl.SoftmaxCrossEntropy(), X, y)
    result = report["gradcheck"]
    assert result.status == "FAIL" and not report.passed
    assert "0.W" in result.values["failed"] and "2.W" not in result.values["failed"]  # below the bug only
    assert "gradcheck of" in str(report)  # the table comes with the failure


def test_too_small_a_model_fails_the_overfit_check():
    """A linear classifier cannot separate XOR: ~70% of 20 points at best."""
    X, y = nl.data.xor()
    report = nl.sanity_check(nl.mlp(2, [], 2, rng=0), nl.SoftmaxCrossEntropy(), X, y, max_steps=150)
    over = report["overfit"]
    assert over.status == "FAIL" and over.values["accuracy"] < 1.0 and over.values["steps"] == 150
    assert statuses(report)["gradcheck"] == "PASS"
    # the same data with hidden units is memorised
    ok = nl.sanity_check(nl.mlp(2, [16], 2, rng=0), nl.SoftmaxCrossEntropy(), X, y, max_steps=150)
    assert ok["overfit"].status == "PASS"


@pytest.mark.parametrize("broken", [DoNothing(lr=0.1), Uphill(lr=0.1)])
def test_a_broken_optimizer_fails_the_overfit_check(digits, broken):
    X, y = digits
    report = nl.sanity_check(nl.mlp(64, [32], 10, rng=0), nl.SoftmaxCrossEntropy(), X, y,
                             optimizer=broken, max_steps=60)
    over = report["overfit"]
    assert over.status == "FAIL" and over.values["loss_end"] >= over.values["loss_start"]
    assert over.values["optimizer"] == type(broken).__name__
    # the honest optimizer with the same settings passes
    good = nl.sanity_check(nl.mlp(64, [32], 10, rng=0), nl.SoftmaxCrossEntropy(), X, y,
                           optimizer=nl.SGD(lr=0.1), max_steps=60)
    assert good["overfit"].status == "PASS"


def test_weights_hidden_from_the_regularizer_fail_its_check(digits):
    X, y = digits
    model = nl.Sequential([UnlistedLinear(64, 16, rng=0), nl.ReLU(), UnlistedLinear(16, 10, rng=1)])
    report = nl.sanity_check(model, nl.SoftmaxCrossEntropy(), X, y)
    assert statuses(report)["regularization"] == "FAIL"
    assert "weight_names" in report["regularization"].action


def test_the_callers_model_and_optimizer_are_untouched(digits):
    X, y = digits
    model = nl.mlp(64, [16, 16], 10, batchnorm=True, dropout=0.3, rng=0)
    opt = nl.Adam(lr=1e-2)
    before = {k: v.copy() for k, v in {**model.params, **model.buffers}.items()}
    rng_state = model.layers[3].rng.bit_generator.state
    nl.sanity_check(model, nl.SoftmaxCrossEntropy(), X, y, optimizer=opt)
    for k, v in {**model.params, **model.buffers}.items():
        np.testing.assert_array_equal(v, before[k])
    assert model.layers[3].rng.bit_generator.state == rng_state and not model.layers[3].noise_off
    assert opt.t == 0 and opt.state == {}
    assert model.dtype == np.float32


def test_hinge_and_regression():
    """Multiclass hinge expects (C - 1)·margin = 2 for 3 classes; MSE has no expected
    initial loss (SKIP) and overfits by driving the loss below 1% of its start."""
    X, y = nl.data.spiral()
    hinge = nl.sanity_check(nl.mlp(2, [32], 3, rng=0), nl.MulticlassHinge(), X, y)
    assert hinge["initial_loss"].values["expected"] == 2.0
    rng = np.random.default_rng(0)
    Xr = rng.standard_normal((50, 3)).astype(np.float32)
    reg = nl.sanity_check(nl.mlp(3, [32], 1, rng=0), nl.MeanSquaredError(), Xr, Xr.sum(axis=1))
    assert reg["initial_loss"].status == "SKIP" and reg.passed
    assert reg["overfit"].values["loss_end"] <= 1e-2 * reg["overfit"].values["loss_start"]


def test_arguments_are_validated(digits):
    X, y = digits
    model, loss = nl.mlp(64, [8], 10, rng=0), nl.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match="n_overfit must be > 0, got 0"):
        nl.sanity_check(model, loss, X, y, n_overfit=0)
    with pytest.raises(ValueError, match="regularizer_strength must be > 0"):
        nl.sanity_check(model, loss, X, y, regularizer_strength=0.0)
    with pytest.raises(ValueError, match="initial_tolerance must be > 1"):
        nl.sanity_check(model, loss, X, y, initial_tolerance=1)
    with pytest.raises(ValueError, match="X has 1000 samples"):
        nl.sanity_check(model, loss, X, y[:10])
    with pytest.raises(KeyError, match="no check 'nope'"):
        nl.sanity_check(model, loss, X[:30], y[:30], max_steps=5)["nope"]


def test_nan_in_the_rows_checked_is_an_error(digits):
    X, y = digits
    X = X.copy()
    X[:, 3] = np.nan  # every row: whichever subset is drawn
    with pytest.raises(ValueError, match="X contains NaN or Inf"):
        nl.sanity_check(nl.mlp(64, [8], 10, rng=0), nl.SoftmaxCrossEntropy(), X, y)
