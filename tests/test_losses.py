"""Losses: gradients against centered differences, hand-worked golden values, stability,
the notes' initial-loss sanity values, predictions and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.losses import (
    BinaryHinge,
    Loss,
    MeanAbsoluteError,
    MeanSquaredError,
    MulticlassHinge,
    SigmoidCrossEntropy,
    SoftmaxCrossEntropy,
)
from neuronlab.registry import LOSSES


def numeric_grad(loss: Loss, scores: np.ndarray, y: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Centered differences (f(s+h) - f(s-h)) / 2h, one entry at a time, in float64."""
    s = scores.astype(np.float64, copy=True)
    grad = np.zeros_like(s)
    for i in np.ndindex(s.shape):
        old = s[i]
        s[i] = old + h
        up = loss.forward(s, y)
        kink_up = loss.kink_state()
        s[i] = old - h
        down = loss.forward(s, y)
        kink_down = loss.kink_state()
        s[i] = old
        # the test data are built away from kinks; a change here would make the check meaningless
        if kink_up is not None:
            assert np.array_equal(kink_up, kink_down), f"kink crossed at {i}"
        grad[i] = (up - down) / (2 * h)
    return grad


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """The notes' |a - n| / max(|a|, |n|), elementwise, with 0/0 (both exactly zero) counted as 0."""
    denom = np.maximum(np.abs(a), np.abs(n))
    err = np.abs(a - n) / np.where(denom == 0, 1.0, denom)
    return float(err.max())


def away_from_kinks(draw, margin_of, min_gap: float = 0.05, rng=None):
    """Redraw until every hinge argument is at least ``min_gap`` away from its kink at 0."""
    for _ in range(1000):
        scores, y = draw(rng)
        if np.abs(margin_of(scores, y)).min() > min_gap:
            return scores, y
    raise AssertionError("could not draw kink-free data")


def _mc_margins(s, y):
    n = s.shape[0]
    m = s - s[np.arange(n), y][:, None] + 1.0
    m[np.arange(n), y] = 1.0  # the correct class is not a hinge term
    return m


def _cases(rng: np.random.Generator):
    """(id, loss, scores, y) for the gradient checks, all float64 and away from kinks."""
    n = 6
    labels = rng.integers(0, 4, n)
    yield "softmax", SoftmaxCrossEntropy(), rng.standard_normal((n, 4)) * 2, labels
    s, y = away_from_kinks(
        lambda r: (r.standard_normal((n, 4)) * 1.5, r.integers(0, 4, n)), _mc_margins, rng=rng
    )
    assert 0 < (_mc_margins(s, y) > 0).mean() < 1  # some margins active, some not
    yield "multiclass_hinge", MulticlassHinge(), s, y
    s, y = away_from_kinks(
        lambda r: (r.standard_normal((n, 3)), r.integers(0, 3, n)),
        lambda s, y: (_mc_margins(s, y) - 1.0 + 0.5),
        rng=rng,
    )
    yield "multiclass_hinge_margin_0.5", MulticlassHinge(margin=0.5), s, y
    yield "sigmoid_binary_1d", SigmoidCrossEntropy(), rng.standard_normal(n) * 3, rng.integers(0, 2, n)
    yield "sigmoid_binary_col", SigmoidCrossEntropy(), rng.standard_normal((n, 1)), rng.integers(0, 2, n)
    yield (
        "sigmoid_multilabel",
        SigmoidCrossEntropy(multilabel=True),
        rng.standard_normal((n, 3)) * 2,
        rng.integers(0, 2, (n, 3)),
    )
    s, y = away_from_kinks(
        lambda r: (r.standard_normal(n) * 2, r.integers(0, 2, n)),
        lambda s, y: 1.0 - (2 * y - 1) * s,
        rng=rng,
    )
    yield "binary_hinge_01", BinaryHinge(), s, y
    yield "binary_hinge_pm1", BinaryHinge(margin=2.0), s[:, None], 2 * y - 1
    yield "mse_1d", MeanSquaredError(), rng.standard_normal(n), rng.standard_normal(n)
    yield "mse_2d", MeanSquaredError(), rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    # s - y is a difference of continuous draws, so it is never 0 (the MAE kink)
    yield "mae_2d", MeanAbsoluteError(), rng.standard_normal((n, 3)), rng.standard_normal((n, 3))


CASES = list(_cases(np.random.default_rng(1)))


@pytest.mark.parametrize("name, loss, scores, y", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_centered_differences(name, loss, scores, y):
    loss.forward(scores, y)
    analytic = loss.backward()
    assert analytic.shape == scores.shape and analytic.dtype == scores.dtype
    numeric = numeric_grad(loss, scores, y)
    assert rel_error(analytic, numeric) < 1e-7, name


@pytest.mark.parametrize("name, loss, scores, y", CASES, ids=[c[0] for c in CASES])
def test_float32_matches_float64(name, loss, scores, y):
    value64 = loss.forward(scores, y)
    grad64 = loss.backward()
    value32 = loss.forward(scores.astype(np.float32), y)
    grad32 = loss.backward()
    assert isinstance(value32, float)
    assert grad32.dtype == np.float32 and grad32.shape == scores.shape
    np.testing.assert_allclose(value32, value64, rtol=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-6)


# -- golden values worked out by hand ----------------------------------------------------
def test_softmax_golden():
    scores = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 0])
    loss = SoftmaxCrossEntropy()
    # row 0: -ln(e^3 / (e + e^2 + e^3)) = ln(1 + e^-1 + e^-2) = ln(1.503215) = 0.407606
    # row 1: all scores equal, p = 1/3 each, -ln(1/3) = ln 3 = 1.098612; mean = 0.753109
    assert loss.forward(scores, y) == pytest.approx(0.7531091, abs=1e-7)
    # row 0: p = (e^-2, e^-1, 1) / 1.503215 = (0.090031, 0.244728, 0.665241); grad = (p - e_2) / 2
    # row 1: (1/3 - 1, 1/3, 1/3) / 2
    expected = np.array([[0.0450153, 0.1223642, -0.1673795], [-1 / 3, 1 / 6, 1 / 6]])
    np.testing.assert_allclose(loss.backward(), expected, atol=1e-7)
    np.testing.assert_allclose(loss.backward().sum(axis=1), 0.0, atol=1e-15)


def test_multiclass_hinge_golden():
    # the classic three-example SVM computation (cat, car, frog with margin 1)
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    y = np.array([0, 1, 2])
    loss = MulticlassHinge()
    # row 0: max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9 + 0
    # row 1: max(0, 1.3 - 4.9 + 1) + max(0, 2.0 - 4.9 + 1) = 0 + 0
    # row 2: max(0, 2.2 + 3.1 + 1) + max(0, 2.5 + 3.1 + 1) = 6.3 + 6.6 = 12.9; mean = 15.8 / 3
    assert loss.forward(scores, y) == pytest.approx(15.8 / 3, abs=1e-12)
    # active margins add +1/N to their class and -1/N to the correct class, per margin
    expected = np.array([[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, -2.0]]) / 3
    np.testing.assert_allclose(loss.backward(), expected, atol=1e-15)
    np.testing.assert_array_equal(
        loss.kink_state(), [[False, True, False], [False, False, False], [True, True, False]]
    )
    # a margin of 2 adds 1 to every term: row 1 now has 2.0 - 4.9 + 2 = -0.9 -> still 0,
    # 1.3 - 4.9 + 2 = -1.6 -> 0; row 0: 3.9 + 0 (−1.7 − 3.2 + 2 < 0); row 2: 7.3 + 7.6
    assert MulticlassHinge(margin=2.0).forward(scores, y) == pytest.approx((3.9 + 14.9) / 3)


def test_sigmoid_cross_entropy_golden_binary():
    scores = np.array([0.0, 2.0, -1.0])
    y = np.array([1, 0, 0])
    loss = SigmoidCrossEntropy()
    # L_i = ln(1 + e^{-s}) for y = 1 and ln(1 + e^{s}) for y = 0:
    # ln 2 = 0.693147, ln(1 + e^2) = 2.126928, ln(1 + e^-1) = 0.313262; sum 3.133337, mean 1.044446
    assert loss.forward(scores, y) == pytest.approx(1.0444456, abs=1e-7)
    # (σ(s) - y) / 3: σ(0) - 1 = -0.5, σ(2) = 0.880797, σ(-1) = 0.268941
    expected = np.array([-0.5, 0.8807971, 0.2689414]) / 3
    np.testing.assert_allclose(loss.backward(), expected, atol=1e-7)
    assert loss.task == "classification"


def test_sigmoid_cross_entropy_golden_multilabel():
    scores = np.array([[0.0, 2.0], [-1.0, 0.0]])
    y = np.array([[1, 1], [0, 1]])
    loss = SigmoidCrossEntropy(multilabel=True)
    # sum over attributes, mean over samples:
    # row 0: ln 2 + ln(1 + e^-2) = 0.693147 + 0.126928; row 1: ln(1 + e^-1) + ln 2 = 0.313262 + 0.693147
    # total 1.826484 / 2 = 0.913242
    assert loss.forward(scores, y) == pytest.approx(0.9132420, abs=1e-7)
    expected = np.array([[-0.5, 0.8807971 - 1], [0.2689414, -0.5]]) / 2
    np.testing.assert_allclose(loss.backward(), expected, atol=1e-7)
    assert loss.task == "multilabel"


@pytest.mark.parametrize("y", [np.array([1, 0, 0]), np.array([1, -1, -1]), np.array([True, False, False])])
def test_binary_hinge_golden(y):
    scores = np.array([0.5, -2.0, 3.0])
    loss = BinaryHinge()
    # t = (+1, -1, -1): max(0, 1 - 0.5) + max(0, 1 - 2) + max(0, 1 + 3) = 0.5 + 0 + 4; mean 1.5
    assert loss.forward(scores, y) == pytest.approx(1.5, abs=1e-15)
    # -t / N where the margin is violated: (-1, 0, +1) / 3
    np.testing.assert_allclose(loss.backward(), np.array([-1.0, 0.0, 1.0]) / 3, atol=1e-15)
    np.testing.assert_array_equal(loss.kink_state(), [True, False, True])


def test_regression_golden():
    scores = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[0.0, 2.0], [5.0, 1.0]])
    mse, mae = MeanSquaredError(), MeanAbsoluteError()
    # s - y = [[1, 0], [-2, 3]]; squared row sums 1 and 13, mean over 2 samples = 7
    assert mse.forward(scores, y) == pytest.approx(7.0, abs=1e-15)
    np.testing.assert_allclose(mse.backward(), [[1.0, 0.0], [-2.0, 3.0]])  # 2 (s - y) / 2
    # absolute row sums 1 and 5, mean 3; gradient sign(s - y) / 2
    assert mae.forward(scores, y) == pytest.approx(3.0, abs=1e-15)
    np.testing.assert_allclose(mae.backward(), [[0.5, 0.0], [-0.5, 0.5]])
    assert mse.task == mae.task == "regression"


def test_regression_column_targets_are_not_broadcast():
    # (N, 1) scores against (N,) targets must pair row with row, not form an (N, N) grid
    scores = np.array([[1.0], [2.0], [4.0]])
    y = np.array([1.0, 1.0, 1.0])
    loss = MeanSquaredError()
    assert loss.forward(scores, y) == pytest.approx((0 + 1 + 9) / 3)
    assert loss.backward().shape == (3, 1)
    assert MeanAbsoluteError().forward(scores[:, 0], y[:, None]) == pytest.approx((0 + 1 + 3) / 3)


# -- stability ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_stable_for_huge_logits(dtype):
    scores = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]], dtype=dtype)
    y = np.array([0, 0])
    loss = SoftmaxCrossEntropy()
    # row 0 is confidently right (loss e^-1000 ≈ 0); row 1 is wrong by 2000; mean 1000
    assert loss.forward(scores, y) == pytest.approx(1000.0, rel=1e-6)
    grad = loss.backward()
    expected = np.array([[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0]]) / 2
    np.testing.assert_allclose(grad, expected, atol=1e-7)
    np.testing.assert_allclose(loss.predict_proba(scores)[0], [1.0, 0.0, 0.0], atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_cross_entropy_stable_for_huge_logits(dtype):
    scores = np.array([1000.0, -1000.0, 1000.0, -1000.0], dtype=dtype)
    y = np.array([1, 0, 0, 1])
    loss = SigmoidCrossEntropy()
    # right, right, wrong by 1000, wrong by 1000: (0 + 0 + 1000 + 1000) / 4
    assert loss.forward(scores, y) == pytest.approx(500.0, rel=1e-6)
    np.testing.assert_allclose(loss.backward(), np.array([0.0, 0.0, 1.0, -1.0]) / 4, atol=1e-7)


def test_sigmoid_cross_entropy_tiny_gradients_keep_relative_accuracy():
    # confidently right samples have gradients like σ(-40) = 4.25e-18; computing them as
    # 1 - σ(40) would round to 0, so check them to relative precision
    scores = np.array([-40.0, 40.0, -5.0])
    y = np.array([0, 1, 0])
    loss = SigmoidCrossEntropy()
    # L = ln(1 + e^-40) + ln(1 + e^-40) + ln(1 + e^-5), each ≈ its e^{-|s|} term for the first two
    expected_loss = (2 * math.log1p(math.exp(-40.0)) + math.log1p(math.exp(-5.0))) / 3
    assert loss.forward(scores, y) == pytest.approx(expected_loss, rel=1e-14)
    sigma = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731  (exact enough for these v)
    expected = np.array([sigma(-40.0), -sigma(-40.0), sigma(-5.0)]) / 3
    np.testing.assert_allclose(loss.backward(), expected, rtol=1e-12)


# -- the notes' sanity check: initial loss with small random weights ----------------------
@pytest.mark.parametrize("n_classes", [3, 10])
def test_initial_loss_with_small_scores(rng, n_classes):
    scores = 0.001 * rng.standard_normal((500, n_classes))
    y = rng.integers(0, n_classes, 500)
    softmax, hinge = SoftmaxCrossEntropy(), MulticlassHinge()
    assert softmax.expected_initial_loss(n_classes) == pytest.approx(math.log(n_classes))
    assert hinge.expected_initial_loss(n_classes) == n_classes - 1
    assert softmax.forward(scores, y) == pytest.approx(math.log(n_classes), rel=1e-3)
    assert hinge.forward(scores, y) == pytest.approx(n_classes - 1, rel=1e-2)
    attrs = SigmoidCrossEntropy(multilabel=True)
    targets = rng.integers(0, 2, (500, n_classes))
    assert attrs.forward(scores, targets) == pytest.approx(attrs.expected_initial_loss(n_classes), rel=1e-3)
    assert attrs.expected_initial_loss(n_classes) == pytest.approx(n_classes * math.log(2))
    assert BinaryHinge(margin=0.5).expected_initial_loss(1) == 0.5
    assert MeanSquaredError().expected_initial_loss(1) is None


# -- predictions -------------------------------------------------------------------------
def test_class_predictions_and_probabilities(rng):
    scores = rng.standard_normal((7, 4))
    for loss in (SoftmaxCrossEntropy(), MulticlassHinge()):
        np.testing.assert_array_equal(loss.predict(scores), scores.argmax(axis=1))
    p = SoftmaxCrossEntropy().predict_proba(scores)
    np.testing.assert_allclose(p, np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True))
    with pytest.raises(NotImplementedError, match="MulticlassHinge"):
        MulticlassHinge().predict_proba(scores)


def test_binary_and_attribute_predictions():
    scores = np.array([[-2.0, 0.5], [3.0, -0.1]])
    attrs = SigmoidCrossEntropy(multilabel=True)
    np.testing.assert_array_equal(attrs.predict(scores), [[0, 1], [1, 0]])
    np.testing.assert_allclose(attrs.predict_proba(scores), 1 / (1 + np.exp(-scores)))
    binary = SigmoidCrossEntropy()
    np.testing.assert_array_equal(binary.predict(scores[:, :1]), [0, 1])
    assert binary.predict_proba(scores[:, :1]).shape == (2,)
    np.testing.assert_array_equal(BinaryHinge().predict(scores[:, 1]), [1, 0])


def test_regression_predict_returns_scores(rng):
    scores = rng.standard_normal((4, 2))
    assert MeanSquaredError().predict(scores) is scores
    assert MeanAbsoluteError().predict(scores) is scores


# -- state, buffers and kinks ------------------------------------------------------------
@pytest.mark.parametrize("name", LOSSES.names())
def test_backward_before_forward_raises(name):
    with pytest.raises(ValueError, match="backward called before forward"):
        LOSSES.create(name).backward()


@pytest.mark.parametrize("name, loss, scores, y", CASES, ids=[c[0] for c in CASES])
def test_buffers_do_not_leak_between_batches(name, loss, scores, y):
    # a bigger batch, then a smaller one, then the first again must each match a fresh loss,
    # and a gradient already returned must survive later calls
    fresh = type(loss).from_config(loss.get_config())
    big = loss.forward(scores, y)
    grad_big = loss.backward()
    kept = grad_big.copy()
    small = loss.forward(scores[:3], y[:3])
    assert small == pytest.approx(fresh.forward(scores[:3], y[:3]), rel=1e-14)
    np.testing.assert_array_equal(loss.backward(), fresh.backward())
    np.testing.assert_array_equal(grad_big, kept)
    assert loss.forward(scores, y) == big


def test_kink_state_tracks_the_hinge():
    loss = MulticlassHinge()
    y = np.array([0])
    # s_1 - s_0 + 1 = 0 exactly at s_1 = -1: just above it the margin is active, below it is not
    loss.forward(np.array([[0.0, -1.0 + 1e-6, -5.0]]), y)
    above = loss.kink_state()
    loss.forward(np.array([[0.0, -1.0 - 1e-6, -5.0]]), y)
    assert not np.array_equal(above, loss.kink_state())
    assert SoftmaxCrossEntropy().kink_state() is None
    mae = MeanAbsoluteError()
    mae.forward(np.array([1.0, -1.0]), np.array([0.0, 0.0]))
    np.testing.assert_array_equal(mae.kink_state(), [True, False])


# -- registry and configuration ------------------------------------------------------------
def test_registry_names_and_public_exports():
    assert LOSSES.names() == sorted(
        ["softmax", "multiclass_hinge", "sigmoid_cross_entropy", "binary_hinge", "mse", "mae"]
    )
    assert nl.SoftmaxCrossEntropy is LOSSES.get("softmax")
    assert nl.Loss is Loss
    for _, cls in LOSSES.items():
        assert issubclass(cls, Loss) and cls.task in ("classification", "multilabel", "regression")


@pytest.mark.parametrize(
    "loss",
    [MulticlassHinge(margin=0.25), SigmoidCrossEntropy(multilabel=True), BinaryHinge(margin=3.0), MeanAbsoluteError()],
    ids=repr,
)
def test_config_round_trip(loss):
    clone = LOSSES.get(loss.registry_name).from_config(loss.get_config())
    assert type(clone) is type(loss) and clone.get_config() == loss.get_config()
    assert clone.task == loss.task
    assert repr(clone) == repr(loss)


# -- bad input ---------------------------------------------------------------------------
def test_bad_hyperparameters():
    with pytest.raises(ValueError, match=r"margin must be > 0.0, got 0"):
        MulticlassHinge(margin=0)
    with pytest.raises(ValueError, match=r"margin must be > 0.0, got -1"):
        BinaryHinge(margin=-1)
    with pytest.raises(TypeError, match=r"multilabel must be a bool, got str: 'yes'"):
        SigmoidCrossEntropy(multilabel="yes")
    with pytest.raises(TypeError, match="unexpected keyword"):
        SoftmaxCrossEntropy.from_config({"margn": 1.0})
    with pytest.raises(ValueError, match=r"n_outputs must be > 0, got 0"):
        SoftmaxCrossEntropy().expected_initial_loss(0)


@pytest.mark.parametrize(
    "loss, scores, y, exc, match",
    [
        (SoftmaxCrossEntropy(), [[1.0, 2.0]], [0], TypeError, "scores must be a numpy ndarray, got list"),
        (SoftmaxCrossEntropy(), np.array([[1, 2]]), [0], TypeError, "scores must have dtype float32 or float64"),
        (SoftmaxCrossEntropy(), np.array([[1.0, np.nan]]), [0], ValueError, "scores contains NaN"),
        (SoftmaxCrossEntropy(), np.ones(3), [0, 1, 0], ValueError, "at least 2 dimensions"),
        (SoftmaxCrossEntropy(), np.ones((3, 1)), [0, 0, 0], ValueError, "n_classes >= 2, got shape"),
        (SoftmaxCrossEntropy(), np.ones((3, 2)), [0, 1], ValueError, "y has 2 labels but scores have 3 rows"),
        (MulticlassHinge(), np.ones((2, 3)), [0, 3], ValueError, r"y must be in \[0, 3\), got label 3"),
        (MulticlassHinge(), np.ones((2, 3)), [0, -1], ValueError, "got label -1"),
        (SoftmaxCrossEntropy(), np.ones((2, 3)), [0.5, 1], TypeError, "integer class labels"),
        (SigmoidCrossEntropy(), np.ones(2), [0, 2], ValueError, r"targets in \{0, 1\}, got values \[0, 2\]"),
        (SigmoidCrossEntropy(), np.ones(2), [1, -1], ValueError, r"got values \[-1, 1\]"),
        (SigmoidCrossEntropy(), np.ones((2, 2)), [0, 1], ValueError, r"shape \(n_samples,\) or \(n_samples, 1\)"),
        (SigmoidCrossEntropy(), np.ones(2), np.ones((2, 2)), ValueError, "scores' shape"),
        (SigmoidCrossEntropy(multilabel=True), np.ones((2, 2)), [[0, 1], [0.5, 1]], ValueError, r"got values"),
        (SigmoidCrossEntropy(multilabel=True), np.ones((2, 2)), np.ones((3, 2)), ValueError, "shape \\(3, 2\\) but scores have 2 rows"),
        (SigmoidCrossEntropy(multilabel=True), np.ones((2, 2)), np.array([["a", "b"]] * 2), TypeError, "numeric 0/1"),
        (BinaryHinge(), np.ones(3), [-1, 0, 1], ValueError, r"\{0, 1\} or \{-1, \+1\}, got values \[-1, 0, 1\]"),
        (BinaryHinge(), np.ones(3), [0.0, 1.0, np.nan], ValueError, "got values"),
        (MeanSquaredError(), np.ones((2, 2)), np.ones((2, 3)), ValueError, r"scores' shape \(2, 2\), got shape \(2, 3\)"),
        (MeanSquaredError(), np.ones(2), [1.0, np.inf], ValueError, "y contains NaN or Inf"),
        (MeanAbsoluteError(), np.ones((2, 2, 2)), np.ones((2, 2, 2)), ValueError, "scores must have shape"),
        (MeanAbsoluteError(), np.ones(2), ["a", "b"], TypeError, "numeric regression targets"),
        (MeanAbsoluteError(), np.ones(2), 1.0, ValueError, r"y has shape \(\) but scores have 2 rows"),
    ],
)
def test_bad_input_names_the_problem(loss, scores, y, exc, match):
    with pytest.raises(exc, match=match):
        loss.forward(scores, y)


# -- sample weights: L = Σ w_i L_i / Σ w_i ----------------------------------------------------
def _weights_for(n: int) -> np.ndarray:
    """Uneven weights with a 0 (that row must not count) and a 2 (that row counts twice)."""
    return np.array([2.0, 0.5, 0.0, 1.0, 3.0, 2.0])[:n]


class _Weighted:
    """A loss with fixed sample weights, seen as an unweighted one: forward(scores, y)."""

    def __init__(self, loss: Loss, w: np.ndarray) -> None:
        self.loss, self.w = loss, w

    def forward(self, scores, y):
        return self.loss.forward(scores, y, sample_weight=self.w)

    def backward(self):
        return self.loss.backward()

    def kink_state(self):
        return self.loss.kink_state()


@pytest.mark.parametrize("name, loss, scores, y", CASES, ids=[c[0] for c in CASES])
def test_weighted_gradient_matches_centered_differences(name, loss, scores, y):
    w = _weights_for(len(y))
    loss.forward(scores, y, sample_weight=w)
    analytic = loss.backward()
    assert analytic.shape == scores.shape and analytic.dtype == scores.dtype
    assert not analytic[2].any()  # weight 0: no gradient for that row
    # atol: the weighted sums cancel more, so tiny entries meet roundoff (~ε|L|/h = 1e-11)
    numeric = numeric_grad(_Weighted(loss, w), scores, y)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-10, err_msg=name)
    # and the library's own check (relative error with a roundoff floor), every entry
    report = nl.gradcheck(_Weighted(loss, w), x=scores, y=y, max_entries=30)
    assert report.passed and report.max_error < 1e-7, str(report)


@pytest.mark.parametrize("name, loss, scores, y", CASES, ids=[c[0] for c in CASES])
def test_weight_two_is_the_row_twice(name, loss, scores, y):
    """Weights 2 / 1 / 0 equal the batch with the weight-2 rows duplicated and the weight-0
    rows dropped: the same loss, and each row's gradient is the sum over its copies'."""
    w = np.array([2, 1, 0, 1, 2, 1])[: len(y)]
    copies = np.repeat(np.arange(len(y)), w)
    value = loss.forward(scores, y, sample_weight=w)
    grad = loss.backward()
    twin = type(loss).from_config(loss.get_config())
    assert value == pytest.approx(twin.forward(scores[copies], y[copies]), rel=1e-12)
    summed = np.zeros_like(scores)
    np.add.at(summed, copies, twin.backward())
    np.testing.assert_allclose(grad, summed, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, loss, scores, y", CASES, ids=[c[0] for c in CASES])
def test_unit_weights_are_bit_identical_to_no_weights(name, loss, scores, y, dtype):
    s = scores.astype(dtype)
    plain = type(loss).from_config(loss.get_config())
    value, grad = plain.forward(s, y), plain.backward()
    assert loss.forward(s, y, sample_weight=np.ones(len(y))) == value
    np.testing.assert_array_equal(loss.backward(), grad)
    # a weighted call leaves nothing behind for the next plain one
    assert loss.forward(s, y) == value
    np.testing.assert_array_equal(loss.backward(), grad)


@pytest.mark.parametrize("name, loss, scores, y", CASES, ids=[c[0] for c in CASES])
def test_only_the_ratios_of_the_weights_matter(name, loss, scores, y):
    w = _weights_for(len(y))
    value, grad = loss.forward(scores, y, sample_weight=w), loss.backward()
    assert loss.forward(scores, y, sample_weight=list(1e-3 * w)) == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), grad, rtol=1e-12, atol=1e-17)
    # huge weights are scaled down before the float32 products, so they cannot overflow
    assert loss.forward(scores.astype(np.float32), y, sample_weight=1e300 * w) == pytest.approx(
        value, rel=1e-5)


def test_weighted_softmax_golden():
    scores = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    loss = SoftmaxCrossEntropy()
    # L_0 = ln(1 + e^-1 + e^-2) = 0.4076060, L_1 = ln 3 = 1.0986123 (the unweighted golden);
    # w = (3, 1): (3·0.4076060 + 1.0986123) / 4 = 2.3214302 / 4 = 0.5803575
    assert loss.forward(scores, [2, 0], sample_weight=[3, 1]) == pytest.approx(0.5803575, abs=1e-7)
    # ν = w / Σw = (3/4, 1/4): row 0 (0.0900306, 0.2447285, 0.6652410 - 1)·3/4,
    # row 1 (-2/3, 1/3, 1/3)/4
    expected = np.array([[0.0675229, 0.1835464, -0.2510693], [-1 / 6, 1 / 12, 1 / 12]])
    np.testing.assert_allclose(loss.backward(), expected, atol=1e-7)


def test_weighted_multiclass_hinge_golden():
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    loss = MulticlassHinge()
    # per-sample losses 2.9, 0, 12.9 (the unweighted golden); w = (1, 5, 2): 28.7 / 8 = 3.5875
    value = loss.forward(scores, [0, 1, 2], sample_weight=[1, 5, 2])
    assert value == pytest.approx(3.5875, abs=1e-12)
    # ν = (1/8, 5/8, 2/8) times the active-margin pattern (-1, 1, 0), (0, 0, 0), (1, 1, -2)
    expected = np.array([[-1 / 8, 1 / 8, 0.0], [0.0, 0.0, 0.0], [1 / 4, 1 / 4, -1 / 2]])
    np.testing.assert_allclose(loss.backward(), expected, atol=1e-15)


def test_weighted_sigmoid_cross_entropy_golden():
    binary = SigmoidCrossEntropy()
    # L_i = ln 2, ln(1 + e^2), ln(1 + e^-1) = 0.6931472, 2.1269280, 0.3132617; w = (2, 0, 1):
    # (2·0.6931472 + 0·2.1269280 + 0.3132617) / 3 = 1.6995561 / 3 = 0.5665187
    value = binary.forward(np.array([0.0, 2.0, -1.0]), [1, 0, 0], sample_weight=[2, 0, 1])
    assert value == pytest.approx(0.5665187, abs=1e-7)
    # ν (σ(s) - y) with ν = (2/3, 0, 1/3): (-0.5·2/3, 0, 0.2689414/3)
    np.testing.assert_allclose(binary.backward(), [-1 / 3, 0.0, 0.0896471], atol=1e-7)
    attrs = SigmoidCrossEntropy(multilabel=True)
    # row sums 0.6931472 + 0.1269280 = 0.8200752 and 0.3132617 + 0.6931472 = 1.0064089;
    # w = (1, 3): (0.8200752 + 3·1.0064089) / 4 = 3.8393019 / 4 = 0.9598255
    value = attrs.forward(np.array([[0.0, 2.0], [-1.0, 0.0]]), np.array([[1, 1], [0, 1]]),
                          sample_weight=[1, 3])
    assert value == pytest.approx(0.9598255, abs=1e-7)
    # ν (σ(s) - y) with ν = (1/4, 3/4) per row
    expected = np.array([[-0.5, 0.8807971 - 1], [0.2689414, -0.5]]) * np.array([[1 / 4], [3 / 4]])
    np.testing.assert_allclose(attrs.backward(), expected, atol=1e-7)


def test_weighted_binary_hinge_golden():
    loss = BinaryHinge()
    # hinge terms (0.5, 0, 4) as in the unweighted golden; w = (4, 1, 0.5), Σw = 5.5:
    # (4·0.5 + 0 + 0.5·4) / 5.5 = 4 / 5.5 = 8/11
    value = loss.forward(np.array([0.5, -2.0, 3.0]), [1, 0, 0], sample_weight=[4, 1, 0.5])
    assert value == pytest.approx(8 / 11, abs=1e-15)
    # -t ν where violated: -(+1)·4/5.5, 0, -(-1)·0.5/5.5
    np.testing.assert_allclose(loss.backward(), [-8 / 11, 0.0, 1 / 11], atol=1e-15)


def test_weighted_regression_golden():
    scores = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[0.0, 2.0], [5.0, 1.0]])
    mse, mae = MeanSquaredError(), MeanAbsoluteError()
    # s - y = [[1, 0], [-2, 3]]: squared row sums 1 and 13, w = (3, 1): (3 + 13) / 4 = 4
    assert mse.forward(scores, y, sample_weight=[3, 1]) == pytest.approx(4.0, abs=1e-15)
    # 2 ν (s - y): 2·(3/4)·(1, 0) and 2·(1/4)·(-2, 3)
    np.testing.assert_allclose(mse.backward(), [[1.5, 0.0], [-1.0, 1.5]], atol=1e-15)
    # absolute row sums 1 and 5: (3 + 5) / 4 = 2; ν sign(s - y)
    assert mae.forward(scores, y, sample_weight=[3, 1]) == pytest.approx(2.0, abs=1e-15)
    np.testing.assert_allclose(mae.backward(), [[0.75, 0.0], [-0.25, 0.25]], atol=1e-15)


@pytest.mark.parametrize(
    "w, match",
    [
        ([1.0, 1.0], r"must have shape \(3,\), one weight per sample, got shape \(2,\)"),
        (np.ones((3, 1)), r"sample_weight must have shape \(3,\).*got shape \(3, 1\)"),
        (2.0, r"sample_weight must have shape \(3,\).*got shape \(\)"),
        ([1.0, -0.5, 1.0], "sample_weight must be >= 0, got -0.5 at row 1"),
        ([1.0, 1.0, np.nan], "sample_weight must be finite, got nan at row 2"),
        ([np.inf, 1.0, 1.0], "sample_weight must be finite, got inf at row 0"),
        ([0, 0, 0], "sample_weight must have a positive sum"),
        (["a", "b", "c"], "sample_weight must hold real numbers, got dtype <U1"),
        ([1 + 1j, 1, 1], "sample_weight must hold real numbers, got dtype complex128"),
    ],
)
@pytest.mark.parametrize(
    "loss", [SoftmaxCrossEntropy(), BinaryHinge(), MeanSquaredError()], ids=repr
)
def test_bad_sample_weight_is_a_value_error_naming_it(loss, w, match):
    scores = np.zeros((3, 2)) if isinstance(loss, SoftmaxCrossEntropy) else np.zeros(3)
    with pytest.raises(ValueError, match=match):
        loss.forward(scores, np.array([0, 1, 0]), sample_weight=w)
