"""gradcheck against small hand-written layers, losses and regularisers (defined here, so these
tests depend only on the Layer contract), including deliberately wrong backward passes."""

from __future__ import annotations

import numpy as np
import pytest

from neuronlab.checks import GRADCHECK_BANDS, GradcheckReport, gradcheck, relative_error
from neuronlab.checks.report import verdict_for
from neuronlab.layers.base import Layer
from neuronlab.layers.sequential import Sequential


# -- toy components -----------------------------------------------------------------------------
class Affine(Layer):
    """x @ W + b; ``dw_scale`` / ``db_mean`` plant bugs in backward."""

    weight_names = ("W",)
    bias_names = ("b",)

    def __init__(self, n_in: int, n_out: int, *, seed: int = 0, dtype=np.float64,
                 dw_scale: float = 1.0, db_mean: bool = False) -> None:
        super().__init__()
        r = np.random.default_rng(seed)
        self.add_param("W", r.standard_normal((n_in, n_out)).astype(dtype))
        self.add_param("b", r.standard_normal(n_out).astype(dtype))
        self.n_in, self.n_out = n_in, n_out
        self.dw_scale, self.db_mean = dw_scale, db_mean
        self._x = None

    def forward(self, x, *, training=False):
        self._x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout, *, input_grad=True):
        x = self._cached(self._x)
        self.grads["W"] += self.dw_scale * (x.T @ dout)
        # The planted bug: the mean over the batch where the sum belongs.
        self.grads["b"] += dout.mean(0) if self.db_mean else dout.sum(0)
        return dout @ self.params["W"].T if input_grad else None


class Rect(Layer):
    """ReLU with kink_state, as the contract asks."""

    def __init__(self) -> None:
        super().__init__()
        self._mask = None

    def forward(self, x, *, training=False):
        self._mask = x > 0
        return x * self._mask

    def backward(self, dout, *, input_grad=True):
        return dout * self._cached(self._mask)

    def kink_state(self):
        return self._mask


class RectNoKinks(Rect):
    def kink_state(self):
        return None


class Noisy(Layer):
    """Multiplicative noise in training unless noise_off (``honour=False`` ignores the flag)."""

    stochastic = True

    def __init__(self, honour: bool = True) -> None:
        super().__init__()
        self.rng = np.random.default_rng(1)
        self.honour = honour
        self._m = None

    def forward(self, x, *, training=False):
        if training and not (self.noise_off and self.honour):
            self._m = 1.0 + self.rng.standard_normal(x.shape)
        else:
            self._m = np.ones_like(x)
        return x * self._m

    def backward(self, dout, *, input_grad=True):
        return dout * self._cached(self._m)


class Center(Layer):
    """Batch centering in training, a (zero) running mean at inference: like batch norm, the
    gradient below holds for training=True only."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.buffers["mean"] = np.zeros(width)
        self._on = None

    def forward(self, x, *, training=False):
        self._on = training
        return x - (x.mean(0) if training else self.buffers["mean"])

    def backward(self, dout, *, input_grad=True):
        return dout - dout.mean(0)


class HalfSquare:
    """L = ½ Σ (s − y)² / N; ``bug=True`` forgets the 1/N in backward."""

    def __init__(self, bug: bool = False) -> None:
        self.bug = bug

    def forward(self, s, y):
        self._d = s - y
        return 0.5 * float(np.sum(self._d**2)) / s.shape[0]

    def backward(self):
        return self._d if self.bug else self._d / self._d.shape[0]


class Hinge:
    """Binary hinge mean(max(0, 1 − y s)), y in {−1, +1}; kink_state: the active margins."""

    def forward(self, s, y):
        self._y = y
        self._active = 1.0 - y * s > 0
        return float(np.sum((1.0 - y * s) * self._active)) / s.shape[0]

    def backward(self):
        return -self._y * self._active / self._y.shape[0]

    def kink_state(self):
        return self._active


class HalfL2:
    """½ λ Σ‖W‖² over model.weight_keys; ``grad_scale`` plants a bug in add_grad."""

    def __init__(self, lam: float, grad_scale: float = 1.0) -> None:
        self.lam, self.grad_scale = lam, grad_scale

    def loss(self, model):
        return 0.5 * self.lam * sum(float(np.sum(model.params[k] ** 2)) for k in model.weight_keys)

    def add_grad(self, model):
        params, grads = model.params, model.grads
        for k in model.weight_keys:
            grads[k] += self.grad_scale * self.lam * params[k]


def small_net(**affine0) -> Sequential:
    return Sequential([Affine(3, 5, seed=1, **affine0), Rect(), Affine(5, 2, seed=2)])


# -- relative error and the bands ----------------------------------------------------------------
def test_relative_error_golden_values():
    # |1 − 1.1| / max(1, 1.1) = 0.1 / 1.1; |0 − 1e-6| / 1e-6 = 1; |2 − (−2)| / 2 = 2.
    got = relative_error([1.0, 0.0, 2.0], [1.1, 1e-6, -2.0])
    np.testing.assert_allclose(got, [0.1 / 1.1, 1.0, 2.0], rtol=1e-12)


def test_relative_error_guard_for_zeros():
    # Both below the 1e-12 guard: defined as 0, not NaN (0/0) or 2 (|a − n| / |a| for ±tiny).
    assert relative_error(0.0, 0.0) == 0.0
    assert relative_error(1e-13, -1e-13) == 0.0
    # One side above the guard: the ordinary formula, here 1.
    assert relative_error(0.0, 1e-11) == 1.0
    assert relative_error(1e-13, -1e-13, tiny=1e-14) == 2.0


def test_relative_error_validates():
    with pytest.raises(ValueError, match="shape"):
        relative_error(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="tiny"):
        relative_error(1.0, 1.0, tiny=-1.0)


@pytest.mark.parametrize(
    ("error", "verdict"),
    [(0.0, "ok"), (9.9e-8, "ok"), (1e-7, "look"), (9.9e-5, "look"), (1e-4, "suspicious"),
     (9.9e-3, "suspicious"), (1e-2, "wrong"), (3.0, "wrong"), (float("nan"), "wrong")],
)
def test_verdict_bands(error, verdict):
    assert [b for _, b in GRADCHECK_BANDS] == [1e-7, 1e-4, 1e-2]
    assert verdict_for(error) == verdict


def test_relative_error_floor():
    # |1e-6 − 0| / max(1e-6, 0, 1e-4) = 1e-2; without the floor the plain formula gives 1.
    assert relative_error(1e-6, 0.0, floor=1e-4) == pytest.approx(1e-2)
    assert relative_error(1e-6, 0.0) == 1.0
    # Above the floor it changes nothing: |2 − 1| / 2.
    assert relative_error(2.0, 1.0, floor=1e-4) == 0.5


def test_roundoff_in_a_zero_gradient_is_not_a_failure(rng):
    # A bias right before batch centering has an exactly zero gradient (the centering
    # removes it), so the numerical value is pure roundoff, ~1e-12; with the plain formula
    # that is a relative error near 1. The roundoff floor keeps it "ok".
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    report = gradcheck(Sequential([Affine(3, 2), Center(2)]), HalfSquare(), x, y)
    assert report["0.b"].verdict == "ok" and report.passed


class Shifted(Affine):
    """dx off by a constant 1e-6: a bug far below the size of the gradient itself."""

    def backward(self, dout, *, input_grad=True):
        return super().backward(dout, input_grad=input_grad) + 1e-6


def test_small_absolute_bug_is_still_caught(rng):
    # floor = 10 · 2.2e-16 · max(1, |f|) / 2e-5 / 1e-7 ≈ 1.1e-3·max(1, |f|), so an error of
    # 1e-6 reads 1e-6 / max(|dx|, floor): 1e-4 or more here, far above the "ok" bound.
    report = gradcheck(Shifted(3, 2), x=rng.standard_normal((4, 3)))
    assert report["x"].max_error > 1e-5 and report["x"].failed
    assert report["W"].verdict == "ok"


# -- single layers --------------------------------------------------------------------------------
def test_correct_layer_passes(rng):
    report = gradcheck(Affine(4, 3), x=rng.standard_normal((5, 4)))
    assert isinstance(report, GradcheckReport)
    assert [r.name for r in report.rows] == ["W", "b", "x"]
    assert report.passed and report.max_error < 1e-7
    assert all(r.verdict == "ok" and r.kinks == 0 for r in report.rows)
    assert "PASSED" in str(report)


def test_planted_bias_bug_is_wrong_with_golden_error(rng):
    # db = mean over N=4 rows instead of the sum: every entry has |s − s/4| / |s| = 0.75.
    report = gradcheck(Affine(3, 2, db_mean=True), x=rng.standard_normal((4, 3)))
    assert not report.passed
    b = report["b"]
    assert b.verdict == "wrong"
    assert b.max_error == pytest.approx(0.75, abs=1e-8)
    assert report["W"].verdict == "ok" and report["x"].verdict == "ok"
    text = str(report)
    assert "FAILED" in text
    assert ("b: max rel error 7.5e-01 — wrong: the analytic gradient disagrees; "
            "check backward of Affine") in text


@pytest.mark.parametrize(
    ("delta", "verdict"), [(1e-6, "look"), (1e-3, "suspicious"), (0.5, "wrong")]
)
def test_scaled_weight_gradient_lands_in_its_band(rng, delta, verdict):
    # dW scaled by (1 + δ): every entry has relative error δ|a| / ((1 + δ)|a|) = δ / (1 + δ).
    report = gradcheck(Affine(3, 2, dw_scale=1 + delta), x=rng.standard_normal((4, 3)))
    assert report["W"].max_error == pytest.approx(delta / (1 + delta), rel=1e-3)
    assert report["W"].verdict == verdict
    assert not report.passed


def test_float32_layer_is_checked_in_float64_and_left_untouched(rng):
    layer = Affine(4, 3, dtype=np.float32)
    w0 = layer.params["W"].copy()
    x = rng.standard_normal((5, 4)).astype(np.float32)
    x0 = x.copy()
    report = gradcheck(layer, x=x)
    # float32 differences would give errors near 1e-3; float64 copies give < 1e-7.
    assert report.passed and report.max_error < 1e-7
    assert layer.params["W"].dtype == np.float32 and np.array_equal(layer.params["W"], w0)
    assert not layer.grads["W"].any() and layer._x is None
    assert np.array_equal(x, x0)


def test_relu_kink_crossing_is_reported_not_failed():
    # x[0, 0] = 3e-6 lies within h = 1e-5 of the kink at 0: the centered difference sees
    # ((3e-6 + 1e-5) − 0) / 2e-5 = 0.65 of the slope, a relative error of 0.35.
    x = np.array([[3e-6, 0.5, -0.7], [1.2, -0.4, 0.9]])
    report = gradcheck(Rect(), x=x, eps=1e-5)
    row = report["x"]
    assert row.checked == 6 and row.kinks == 1
    assert row.verdict == "ok" and report.passed
    assert "straddled a kink" in str(report)
    # The same layer without kink_state cannot tell: the entry counts, and it is wrong.
    blind = gradcheck(RectNoKinks(), x=x, eps=1e-5)
    assert blind["x"].kinks == 0 and blind["x"].verdict == "wrong"
    assert blind["x"].max_error == pytest.approx(0.35, rel=1e-6)


def test_every_entry_at_a_kink_gives_kink_verdict():
    report = gradcheck(Rect(), x=np.array([[2e-6, -4e-6]]))
    assert report["x"].verdict == "kink" and report["x"].kinks == 2 and report.passed


def test_noise_is_switched_off_during_the_check(rng):
    layer = Noisy()
    x = rng.standard_normal((4, 3))
    assert gradcheck(layer, x=x).passed
    assert layer.noise_off is False  # the user's layer is not touched
    # A stochastic layer that ignores noise_off makes f random: the check fails loudly.
    assert not gradcheck(Noisy(honour=False), x=x).passed


def test_layers_run_in_training_mode(rng):
    # Center's backward is the batch-centering gradient; it only matches training=True.
    assert gradcheck(Center(3), x=rng.standard_normal((4, 3))).passed


def test_sampling_is_seeded_and_bounded(rng):
    layer = Affine(20, 30)  # W has 600 entries, b 30
    x = rng.standard_normal((2, 20))
    r1 = gradcheck(layer, x=x, max_entries=7, seed=3)
    assert [r.checked for r in r1.rows] == [7, 7, 7]
    r2 = gradcheck(layer, x=x, max_entries=7, seed=3)
    assert [r.max_error for r in r1.rows] == [r.max_error for r in r2.rows]
    full = gradcheck(layer, x=x, max_entries=600)
    assert [r.checked for r in full.rows] == [600, 30, 40]


def test_check_input_false_skips_x(rng):
    report = gradcheck(Affine(3, 2), x=rng.standard_normal((4, 3)), check_input=False)
    assert [r.name for r in report.rows] == ["W", "b"]


# -- losses -------------------------------------------------------------------------------------
def test_loss_target_checks_scores(rng):
    s, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    report = gradcheck(HalfSquare(), x=s, y=y)
    assert [r.name for r in report.rows] == ["scores"] and report.passed
    bad = gradcheck(HalfSquare(bug=True), x=s, y=y)
    # Missing 1/N with N = 4: |d − d/4| / |d| = 0.75 for every entry.
    assert bad["scores"].max_error == pytest.approx(0.75, abs=1e-8)
    assert "check backward of HalfSquare (dL/dscores)" in str(bad)


def test_loss_kink_is_detected():
    y = np.array([[1.0], [-1.0], [1.0]])
    # Row 0 sits 3e-6 from the hinge's kink at y·s = 1; the others are far from it.
    s = np.array([[1.0 - 3e-6], [0.2], [-0.5]])
    report = gradcheck(Hinge(), x=s, y=y)
    assert report["scores"].kinks == 1 and report.passed


def test_layer_with_loss(rng):
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    assert gradcheck(Affine(3, 2), HalfSquare(), x, y).passed


# -- whole models --------------------------------------------------------------------------------
def test_model_with_loss_and_regularizer_passes(rng):
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    model = small_net()
    report = gradcheck(model, HalfSquare(), x, y, regularizer=HalfL2(0.1))
    assert [r.name for r in report.rows] == ["0.W", "0.b", "2.W", "2.b", "x"]
    assert report.passed, str(report)
    assert report.notes == []
    assert "Sequential + HalfSquare + HalfL2" in str(report)


def test_model_bug_names_the_layer(rng):
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    report = gradcheck(small_net(dw_scale=1.5), HalfSquare(), x, y)
    assert report["0.W"].verdict == "wrong" and report["2.W"].verdict == "ok"
    assert "check backward of layer 0 (Affine)" in report["0.W"].advice()


def test_regularizer_bug_fails_weights_only(rng):
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    report = gradcheck(small_net(), HalfSquare(), x, y, regularizer=HalfL2(1.0, grad_scale=2.0))
    assert not report.passed
    assert report["0.W"].failed and report["2.W"].failed
    assert not report["0.b"].failed and not report["2.b"].failed
    assert "or the regularizer's add_grad" in report["0.W"].advice()


def test_dominating_regularizer_gets_a_note(rng):
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    report = gradcheck(small_net(), HalfSquare(), x, y, regularizer=HalfL2(1e3))
    assert report.passed
    assert any("regularizer dominates the gradient of 0.W" in n for n in report.notes)
    assert "note:" in str(report)


def test_model_is_not_mutated(rng):
    model = small_net()
    before = {k: v.copy() for k, v in model.params.items()}
    gradcheck(model, HalfSquare(), rng.standard_normal((6, 3)), rng.standard_normal((6, 2)))
    assert all(np.array_equal(model.params[k], v) for k, v in before.items())
    assert not any(g.any() for g in model.grads.values())


# -- bad arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"eps": 0.0}, ValueError, "eps must be > 0"),
        ({"eps": "1e-5"}, TypeError, "eps must be a real number"),
        ({"max_entries": 0}, ValueError, "max_entries must be > 0"),
        ({"check_input": "yes"}, TypeError, "check_input must be a bool"),
        ({"seed": 1.5}, TypeError, "rng must be"),
    ],
)
def test_bad_hyperparameters(rng, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        gradcheck(Affine(3, 2), x=rng.standard_normal((4, 3)), **kwargs)


def test_bad_targets_and_inputs(rng):
    x = rng.standard_normal((4, 3))
    with pytest.raises(TypeError, match="target must be a Layer, a Sequential or a loss, got int"):
        gradcheck(3, x=x)
    with pytest.raises(ValueError, match="x is required"):
        gradcheck(Affine(3, 2))
    with pytest.raises(TypeError, match="x must be a numpy ndarray"):
        gradcheck(Affine(3, 2), x=[[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="x contains NaN"):
        gradcheck(Affine(3, 2), x=np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="needs a loss"):
        gradcheck(small_net(), x=x)
    with pytest.raises(ValueError, match="regularizer needs a Sequential"):
        gradcheck(Affine(3, 2), HalfSquare(), x, x[:, :2], regularizer=HalfL2(0.1))
    with pytest.raises(ValueError, match="loss must be None"):
        gradcheck(HalfSquare(), HalfSquare(), x, x)
    with pytest.raises(TypeError, match="loss must have forward"):
        gradcheck(Affine(3, 2), object(), x, x)
    with pytest.raises(TypeError, match="regularizer must have loss"):
        gradcheck(small_net(), HalfSquare(), x, x[:, :2], regularizer=object())
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(Rect(), x=x, check_input=False)
