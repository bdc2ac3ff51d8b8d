"""Weight spectra: singular values and stable rank against their definitions, the power-law
MLE against samples drawn from known power laws, random against heavy-tailed matrices."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

import neuronlab as nl
from neuronlab.babysit.spectrum import (
    MIN_DIM,
    SPECTRUM_RECORD_KEYS,
    fit_power_law,
    plot_spectrum,
    records,
    spectrum,
)


def pareto(rng: np.random.Generator, n: int, alpha: float, xmin: float) -> np.ndarray:
    """Draws from p(x) = (alpha - 1)/xmin (x/xmin)^-alpha, x >= xmin, by inverting the CDF."""
    return xmin * (1.0 - rng.random(n)) ** (-1.0 / (alpha - 1.0))


# -- singular values and stable rank ---------------------------------------------------------
def test_singular_values_are_numpys_and_the_stable_rank_their_ratio():
    W = np.random.default_rng(0).standard_normal((80, 60)).astype(np.float32)
    sp = spectrum(W)
    s = np.linalg.svd(W.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(sp.singular_values, s, rtol=1e-12)
    assert sp.top_singular == pytest.approx(s[0], rel=1e-12)
    fro2 = float((W.astype(np.float64) ** 2).sum())
    assert sp.stable_rank == pytest.approx(fro2 / s[0] ** 2, rel=1e-10)
    np.testing.assert_allclose(sp.eigenvalues, s**2, rtol=1e-12)
    assert sp.matrix_shape == (80, 60) and sp.shape == (80, 60)


def test_stable_rank_of_rank_one_and_orthogonal_matrices():
    rng = np.random.default_rng(1)
    one = np.outer(rng.standard_normal(70), rng.standard_normal(90))
    assert spectrum(one).stable_rank == pytest.approx(1.0, rel=1e-12)
    Q = np.linalg.qr(rng.standard_normal((60, 60)))[0]
    sp = spectrum(3.0 * Q)
    assert sp.stable_rank == pytest.approx(60.0, rel=1e-10)
    assert sp.top_singular == pytest.approx(3.0, rel=1e-12)
    # all 60 eigenvalues equal: there is no tail, and the reason says so
    assert sp.alpha is None and "no tail" in sp.reason
    # rank one: the numerical rank leaves one eigenvalue
    assert spectrum(one).alpha is None and "numerical rank 1" in spectrum(one).reason


def test_small_layers_and_zero_matrices_get_no_alpha_and_a_reason():
    small = spectrum(np.random.default_rng(0).standard_normal((30, 200)))
    assert small.alpha is None and small.alpha_low is None and small.n_tail == 0
    assert small.reason == f"too small for a power-law fit: 30 eigenvalues, {MIN_DIM} needed"
    assert small.stable_rank > 1  # the other numbers are still measured
    zero = spectrum(np.zeros((60, 60)))
    assert zero.alpha is None and zero.reason == "the matrix is zero" and zero.stable_rank == 0.0
    with pytest.raises(ValueError, match="NaN or Inf"):
        spectrum(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="2 or more dimensions"):
        spectrum(np.ones(5))


# -- the power-law fit -----------------------------------------------------------------------
def test_the_mle_is_the_closed_form_at_a_fixed_cutoff():
    x = pareto(np.random.default_rng(0), 500, 2.5, 1.0)
    fit = fit_power_law(x, xmin=1.0)
    alpha = 1 + 500 / np.log(x).sum()
    assert fit.alpha == pytest.approx(alpha, rel=1e-12) and fit.n_tail == 500
    half = 1.959963984540054 * (alpha - 1) / math.sqrt(500)
    assert (fit.alpha_low, fit.alpha_high) == pytest.approx((alpha - half, alpha + half), rel=1e-12)
    # values below the cut-off are not part of the tail
    fit2 = fit_power_law(np.concatenate([x, [0.5, 0.7]]), xmin=1.0)
    assert fit2.alpha == fit.alpha and fit2.n == 502


@pytest.mark.parametrize("alpha", [2.0, 3.0, 4.5])
def test_the_fit_recovers_alpha_of_pareto_samples(alpha):
    """Searching the cut-off too: within 15% every time, and inside the 95% interval in most
    samples (the interval ignores the uncertainty of the cut-off: about 88% at n = 1000)."""
    rng = np.random.default_rng(int(alpha * 10))
    hits = 0
    for _ in range(20):
        fit = fit_power_law(pareto(rng, 500, alpha, 0.5))
        assert abs(fit.alpha - alpha) < 0.2 * alpha and fit.xmin >= 0.5
        hits += fit.alpha_low <= alpha <= fit.alpha_high
    assert hits >= 15


def test_the_interval_covers_alpha_about_95_percent_of_the_time():
    rng = np.random.default_rng(123)
    hits = 0
    for _ in range(400):
        fit = fit_power_law(pareto(rng, 200, 2.5, 1.0), xmin=1.0)
        hits += fit.alpha_low <= 2.5 <= fit.alpha_high
    assert 0.90 <= hits / 400 <= 0.98


def test_the_cutoff_search_finds_where_a_power_law_tail_starts():
    """A uniform bulk on [0.1, 1) under a Pareto tail from 1 (alpha = 3): the KS search puts
    the cut-off near 1 and recovers alpha."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0.1, 1.0, 1000), pareto(rng, 1000, 3.0, 1.0)])
    fit = fit_power_law(x)
    assert 0.9 < fit.xmin < 1.4 and fit.alpha_low <= 3.0 <= fit.alpha_high
    with pytest.raises(ValueError, match="needs at least 10"):
        fit_power_law(x[:5])


@pytest.mark.parametrize("seed", range(5))
def test_random_gaussian_matrices_are_not_heavy_tailed(seed):
    """Marchenko-Pastur: a bulk with a sharp edge, so a large alpha; entries from a Student t
    with 1.5 degrees of freedom give a heavy tail (Martin & Mahoney: alpha about 1 + mu/2)."""
    rng = np.random.default_rng(seed)
    gauss = spectrum(rng.standard_normal((500, 250)))
    heavy = spectrum(rng.standard_t(1.5, (500, 250)))
    assert gauss.alpha > 4 and gauss.reason == ""
    assert 1.5 < heavy.alpha < 2.5
    assert heavy.alpha_high < gauss.alpha_low


# -- records and plots -----------------------------------------------------------------------
def test_records_cover_every_weight_matrix_in_the_monitors_style():
    model = nl.mlp(64, [100, 60], 10, activation="maxout", pieces=3, rng=0)
    recs = records(model, 7)
    assert [r["param"] for r in recs] == model.weight_keys == ["0.W", "1.W", "2.W"]
    assert [r["type"] for r in recs] == ["Maxout", "Maxout", "Linear"]
    for r in recs:
        assert set(r) == SPECTRUM_RECORD_KEYS and r["kind"] == "spectrum" and r["step"] == 7
        assert r["layer"] == r["param"].split(".")[0]
    json.dumps(recs)
    # Maxout's (n_in, n_out, pieces) weights are analysed as (n_in, n_out * pieces)
    W = model.params["0.W"]
    assert W.shape == (64, 100, 3)
    assert recs[0]["stable_rank"] == pytest.approx(spectrum(W.reshape(64, 300)).stable_rank)
    assert recs[0]["alpha"] is not None and recs[0]["reason"] is None
    # the 60 x 10 output layer is too small: None, with the reason
    assert recs[2]["alpha"] is None and recs[2]["n_tail"] == 0 and "too small" in recs[2]["reason"]


class Scale(nl.Layer):
    """A layer with a 1-D weight array (a per-feature scale)."""

    weight_names = ("w",)

    def __init__(self, n):
        super().__init__()
        self.add_param("w", np.ones(n, np.float32))

    def forward(self, x, *, training=False):
        return x * self.params["w"]


def test_a_one_dimensional_weight_gets_a_record_with_its_reason():
    model = nl.Sequential([Scale(4), nl.Linear(4, 3, rng=0)])
    recs = records(model, 0)
    assert [r["param"] for r in recs] == ["0.w", "1.W"]
    assert recs[0]["top_singular"] is None and recs[0]["reason"] == "a 1-D array, not a matrix"
    assert recs[1]["top_singular"] is not None and "too small" in recs[1]["reason"]
    assert len(plot_spectrum(model).axes) == 1


def test_plot_the_spectra_of_a_model():
    model = nl.mlp(64, [128], 10, rng=0)
    fig = plot_spectrum(model)
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(axes) == 2
    first = axes[0]
    assert first.get_xscale() == "log" and first.get_yscale() == "log"
    sp = spectrum(model.params["0.W"])
    (line,) = [ln for ln in first.lines if ln.get_label().startswith("α")]
    x, y = line.get_xdata(), line.get_ydata()
    slope = np.log(y[-1] / y[0]) / np.log(x[-1] / x[0])  # the fitted law: slope -alpha
    assert slope == pytest.approx(-sp.alpha, rel=1e-9)
    assert "no fit" in axes[1].get_title()  # the 128 x 10 layer


def test_plot_alpha_over_steps_from_records():
    model = nl.mlp(64, [128], 10, rng=0)
    recs = records(model, 0)
    model.params["0.W"][...] *= 2.0  # scaling does not change alpha
    recs += records(model, 50)
    fig = plot_spectrum(recs)
    (ax,) = fig.axes
    (line,) = [ln for ln in ax.lines if ln.get_label() == "0.W"]
    assert line.get_xdata().tolist() == [0, 50]
    assert line.get_ydata()[0] == pytest.approx(line.get_ydata()[1], rel=1e-9)
    # metrics.jsonl-style lines work too, and records without a fit say so
    lines = [{"event": "monitor", **r} for r in recs if r["param"] == "2.W"]
    fig2 = plot_spectrum(lines)
    assert "no layer big enough" in fig2.axes[0].texts[0].get_text()
