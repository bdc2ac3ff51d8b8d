"""sanity_check: a correct MLP passes all four checks; planted bugs fail the right one; the
data checks report baselines, duplicated held-out rows and conflicting labels."""

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


FOUR = ["initial_loss", "regularization", "overfit", "gradcheck"]


def test_a_correct_mlp_passes_all_four(digits):
    X, y = digits
    report = nl.sanity_check(nl.mlp(64, [32], 10, rng=0), nl.SoftmaxCrossEntropy(), X, y)
    assert report.passed, str(report)
    assert statuses(report) == {**dict.fromkeys(FOUR, "PASS"), "baseline": "PASS",
                                "duplicates": "SKIP", "conflicts": "PASS"}
    init = report["initial_loss"].values
    assert init["expected"] == pytest.approx(math.log(10))  # ln C for C = 10
    assert abs(math.log(init["initial_loss"] / init["expected"])) < math.log(1.5)
    losses = report["regularization"].values["losses"]
    assert losses[0] < losses[1] < losses[2]
    over = report["overfit"].values
    assert over["accuracy"] == 1.0 and over["n_examples"] == 20 and over["steps"] <= 300
    assert report["gradcheck"].values["max_error"] < 1e-7
    text = str(report)
    assert text.startswith("Sanity checks: all passed\n") and text.count("PASS") == 6
    assert "SKIP  duplicates      no held-out rows given" in text
    only = nl.sanity_check(nl.mlp(64, [32], 10, rng=0), nl.SoftmaxCrossEntropy(), X, y,
                           data_checks=False)
    assert list(statuses(only)) == FOUR


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


# -- the data checks ---------------------------------------------------------------------------
def test_the_baseline_states_what_the_trained_network_must_beat(digits):
    X, y = digits
    _, _, Xv, yv = digits_split()
    report = nl.sanity_check(nl.mlp(64, [16], 10, rng=0), nl.SoftmaxCrossEntropy(), X, y,
                             X_test=Xv, y_test=yv)
    base = report["baseline"]
    v = base.values
    major = np.bincount(y).argmax()
    assert base.status == "PASS" and v["part"] == "test" and v["n_eval"] == len(yv)
    assert v["constant"] == pytest.approx(np.mean(yv == major))  # the majority class's share
    assert v["constant_loss"] == pytest.approx(-np.log(np.bincount(y, minlength=10)[yv] / len(y)).mean())
    assert v["linear"] > 0.9
    assert base.summary.startswith("to beat: majority class ") and f"on {len(yv)} test rows" in base.summary
    assert report["duplicates"].status == "PASS" and report["conflicts"].status == "PASS"
    assert "no test row (of 500) repeats one of the 1000 training rows" in str(report)


def test_duplicated_test_rows_warn_and_a_leaking_split_fails(digits):
    X, y = digits
    _, _, Xv, yv = digits_split()
    model, loss = nl.mlp(64, [16], 10, rng=0), nl.SoftmaxCrossEntropy()
    Xt, yt = np.concatenate([Xv[:97], X[[4, 9, 9]]]), np.concatenate([yv[:97], y[[4, 9, 9]]])
    report = nl.sanity_check(model, loss, X, y, X_test=Xt, y_test=yt)
    dup = report["duplicates"]
    assert dup.status == "WARN" and report.passed and dup.warned
    assert dup.values["test"]["n_duplicates"] == 3 and dup.values["test"]["examples"][0] == [4, 97]
    assert "3 of 100 test rows (3.0%) repeat training rows exactly (e.g. test row 97 = training row 4)" in dup.summary
    text = str(report)
    assert text.startswith("Sanity checks: all passed, 1 warning\n") and "what to do: held-out rows" in text
    assert report.warnings == [dup]
    # 11% of the test rows are training rows: more than DUPLICATE_FAIL_FRACTION, a leak
    assert nl.sanity.DUPLICATE_FAIL_FRACTION == 0.1
    Xt, yt = np.concatenate([Xv[:89], X[:11]]), np.concatenate([yv[:89], y[:11]])
    leak = nl.sanity_check(model, loss, X, y, X_test=Xt, y_test=yt)
    assert leak["duplicates"].status == "FAIL" and not leak.passed
    assert str(leak).startswith("Sanity checks: 1 failed") and "the split leaks" in str(leak)


def test_conflicting_labels_warn_and_many_fail(digits):
    X, y = digits
    model, loss = nl.mlp(64, [16], 10, rng=0), nl.SoftmaxCrossEntropy()
    Xc = np.concatenate([X, X[:5]])
    yc = np.concatenate([y, (y[:5] + 1) % 10])  # rows 1000..1004 repeat rows 0..4, relabelled
    report = nl.sanity_check(model, loss, Xc, yc)
    con = report["conflicts"]
    assert con.status == "WARN" and report.passed
    assert con.values["n_groups"] == 5 and con.values["groups"][0] == [0, 1000]
    assert con.values["best_possible"] == pytest.approx(1 - 5 / 1005)
    assert "5 groups of identical training inputs (10 of 1005 rows, 1.0%) carry different labels" in con.summary
    assert "no model can exceed 99.5% training accuracy" in con.summary
    Xc = np.concatenate([X, X[:60]])
    yc = np.concatenate([y, (y[:60] + 1) % 10])  # 120 of 1060 rows: more than 10%
    bad = nl.sanity_check(model, loss, Xc, yc)
    assert bad["conflicts"].status == "FAIL" and not bad.passed


def test_data_checks_for_regression_and_degenerate_labels():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3)).astype(np.float32)
    t = X.sum(axis=1)
    X[10] = X[20] = X[0]
    t[[0, 10, 20]] = [1.0, 2.0, 3.0]  # identical inputs, targets 1, 2, 3: noise floor 2/60
    report = nl.sanity_check(nl.mlp(3, [16], 1, rng=0), nl.MeanSquaredError(), X, t)
    con = report["conflicts"]
    assert con.status == "PASS" and con.values["best_possible"] == pytest.approx(2 / 60)
    assert "a floor of 0.03333 on the training mean squared error" in con.summary
    assert report["baseline"].summary.startswith("to beat: mean squared error of the training mean")
    one = nl.sanity_check(nl.mlp(3, [8], 2, rng=0), nl.SoftmaxCrossEntropy(), X, np.zeros(60, int),
                          max_steps=5)
    assert one["baseline"].status == "FAIL" and "one class" in one["baseline"].summary


def test_held_out_arguments_are_checked(digits):
    X, y = digits
    model, loss = nl.mlp(64, [8], 10, rng=0), nl.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match="give both X_test and y_test"):
        nl.sanity_check(model, loss, X, y, X_test=X)
    with pytest.raises(ValueError, match="X_test has 1000 samples but y_test"):
        nl.sanity_check(model, loss, X, y, X_test=X, y_test=y[:5])
    with pytest.raises(ValueError, match="X_test rows have shape"):
        nl.sanity_check(model, loss, X, y, X_test=X[:, :5], y_test=y)
