"""The spectrum of each weight matrix: top singular value, stable rank and a power-law tail.

Heavy-tailed self-regularisation (Martin & Mahoney, the idea behind *weightwatcher*): the
eigenvalues λ = s² of WᵀW (s the singular values of W) of a random matrix follow the
Marchenko-Pastur law, a bulk with a sharp edge; training builds correlations that show up as a
heavy, power-law tail of the empirical spectral density (ESD), p(λ) ∝ λ^(−α) for λ ≥ λ_min.
Martin & Mahoney read α as a quality measure that needs no data: α between about 2 and 6 in
well-trained layers, smaller is more strongly correlated (α < 2: very heavy-tailed, maybe
over-fitted), larger is closer to random (an untrained or under-trained layer; a random
Gaussian matrix fits α well above 4).

Measured per matrix (:func:`spectrum`):

* ``singular_values`` — those of ``np.linalg.svd(W, compute_uv=False)``, in descending order,
  computed as the square roots of the eigenvalues of the smaller Gram matrix (faster);
* ``top_singular`` — ‖W‖₂, the largest singular value (the layer's largest gain);
* ``stable_rank`` — ‖W‖_F² / ‖W‖₂² = Σ s² / s_max², between 1 (rank one) and min(shape)
  (all singular values equal, e.g. an orthogonal matrix): how many directions carry weight;
* ``alpha`` — the power-law exponent of the ESD's tail by maximum likelihood (Clauset,
  Shalizi & Newman 2009, continuous case): α̂ = 1 + n_tail / Σ ln(λ_i / λ_min) over the n_tail
  eigenvalues λ_i ≥ λ_min, with λ_min the candidate cut-off that minimises the
  Kolmogorov-Smirnov distance between the tail and the fitted law. ``alpha_low`` and
  ``alpha_high`` bound a 95% confidence interval from the estimator's asymptotic standard error
  (α̂ − 1)/√n_tail: α̂ ± 1.96 (α̂ − 1)/√n_tail (it ignores the uncertainty of λ_min, so it is
  somewhat narrow when λ_min is searched for).

α needs enough eigenvalues: it is fitted only when min(W's shape) ≥ :data:`MIN_DIM` and the
chosen tail holds at least :data:`MIN_TAIL` eigenvalues; otherwise ``alpha`` is None and
``reason`` says why (a small layer is never skipped silently). Eigenvalues below the matrix's
numerical rank (λ ≤ max(shape)·eps·λ_max, the rounding of the Gram matrix's eigenvalues) are
left out of the fit.

A Maxout layer's weights have shape (n_in, n_out, pieces); the layer computes one product
against W viewed as (n_in, n_out·pieces), so that is the matrix analysed. Any other array of
more than two dimensions is viewed likewise as (shape[0], the rest).

Cost: one SVD per matrix, O(m·n·min(m, n)): about 1 ms for 64×256, 65 ms for 500×250 (on
one BLAS thread, as every SVD below 1e8 of m·n·min(m, n) runs), some 0.5 s for 1024×1024. The
fit adds at most :data:`MAX_CANDIDATES` cut-offs of O(min(m, n)) each, vectorised. Sample it
at epoch ends, not every step.

:func:`records` gives one Monitor-style record per weight matrix, and :func:`plot_spectrum`
draws the ESDs with their fitted lines, or α over the steps of a run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab.babysit.runview import number

__all__ = [
    "MAX_CANDIDATES",
    "MIN_DIM",
    "MIN_TAIL",
    "SPECTRUM_RECORD_KEYS",
    "PowerLawFit",
    "Spectrum",
    "fit_power_law",
    "plot_spectrum",
    "records",
    "spectrum",
]

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: α is fitted only for matrices whose smaller side is at least this: fewer eigenvalues give
#: a tail too short to tell a power law from the edge of a random bulk.
MIN_DIM = 50
#: ... and only on a tail of at least this many eigenvalues: the standard error of α̂ is
#: (α̂ − 1)/√n_tail, about a third of α̂ − 1 at 10.
MIN_TAIL = 10
#: At most this many cut-offs λ_min are tried (evenly spaced in rank when there are more).
MAX_CANDIDATES = 1000
#: The keys of a ``kind = "spectrum"`` record (:func:`records`), for the Monitor's RECORD_KEYS.
SPECTRUM_RECORD_KEYS = frozenset({"step", "kind", "layer", "type", "param", "top_singular",
                                  "stable_rank", "alpha", "alpha_low", "alpha_high", "n_tail",
                                  "reason"})
_Z95 = 1.959963984540054  # the normal distribution's 97.5% quantile
_SPREAD = 1e-9  # relative differences below this are rounding, not a tail
#: An SVD of m·n·min(m, n) below this runs on one BLAS thread (a 500×250 matrix: 3e7, 65 ms
#: on one thread, 0.2-1.3 s on two beside other work; see neuronlab.threads).
_SMALL_SVD = 1e8


@dataclass(frozen=True)
class PowerLawFit:
    """A continuous power law p(x) ∝ x^(−alpha) fitted to the values ≥ ``xmin``.

    Attributes
    ----------
    alpha, alpha_low, alpha_high : float
        The maximum-likelihood exponent and its 95% interval α̂ ± 1.96 (α̂ − 1)/√n_tail.
    xmin : float
        The tail's lower cut-off λ_min.
    n_tail, n : int
        Values in the tail (≥ xmin) and in all.
    ks : float
        The Kolmogorov-Smirnov distance between the tail and the fitted law.
    """

    alpha: float
    alpha_low: float
    alpha_high: float
    xmin: float
    n_tail: int
    n: int
    ks: float


def _fits(logs: np.ndarray, cands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """α̂ and the KS distance of the tail from each candidate cut-off ``cands`` (indices into
    the ascending values whose logarithms are ``logs``), a block of candidates at a time."""
    N = logs.size
    suffix = np.concatenate((np.cumsum(logs[::-1])[::-1], [0.0]))  # Σ_{i>=k} ln x_i
    n = (N - cands).astype(np.float64)
    alpha = 1.0 + n / (suffix[cands] - n * logs[cands])
    ks = np.empty(cands.size)
    pos = np.arange(N)
    block = max(1, (1 << 21) // N)
    for s in range(0, cands.size, block):
        k = cands[s : s + block, None]
        a, nk = alpha[s : s + block, None], n[s : s + block, None]
        inside = pos >= k  # (block, N): the tail of each candidate
        cdf = -np.expm1((1.0 - a) * (logs - logs[k]))  # 1 − (x/x_min)^(1−α)
        j = pos - k  # 0-based rank inside the tail
        d = np.maximum((j + 1) / nk - cdf, cdf - j / nk)
        ks[s : s + block] = np.where(inside, d, -np.inf).max(axis=1)
    return alpha, ks


def fit_power_law(values: Any, *, xmin: float | None = None, min_tail: int = MIN_TAIL) -> PowerLawFit:
    """Fit a continuous power law to the tail of ``values`` (Clauset, Shalizi & Newman 2009).

    α̂ = 1 + n_tail / Σ ln(x_i / x_min) over the n_tail values x_i ≥ x_min. With ``xmin``
    None, x_min is the candidate (each distinct value leaving at least ``min_tail`` above it;
    at most :data:`MAX_CANDIDATES`, evenly spaced in rank) whose fit has the smallest
    Kolmogorov-Smirnov distance to the tail.

    Parameters
    ----------
    values : array-like of positive numbers
        Non-positive and non-finite values are left out.
    xmin : float > 0, optional
        A fixed cut-off instead of the search.
    min_tail : int, default MIN_TAIL

    Returns
    -------
    PowerLawFit

    Raises
    ------
    ValueError
        Fewer than ``min_tail`` (at least 2) usable values at or above the cut-off, or all
        of them equal.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = np.sort(x[np.isfinite(x) & (x > 0)])
    min_tail = max(2, int(min_tail))
    logs = np.log(x)
    if xmin is not None:
        if not xmin > 0:
            raise ValueError(f"xmin must be > 0, got {xmin}")
        k = int(np.searchsorted(x, xmin, side="left"))
        if x.size - k < min_tail:
            raise ValueError(f"{x.size - k} values are >= xmin = {xmin:g}; the fit needs at "
                             f"least {min_tail}")
        n = x.size - k
        total = float(logs[k:].sum()) - n * math.log(xmin)
        if not total > n * _SPREAD:
            raise ValueError("every value at or above xmin equals it (to rounding): no tail to fit")
        alpha = 1.0 + n / total
        cdf = 1.0 - (x[k:] / xmin) ** (1.0 - alpha)
        upper = np.arange(1, n + 1) / n
        ks = max(float((upper - cdf).max()), float((cdf - (upper - 1.0 / n)).max()))
        return _result(alpha, float(xmin), n, x.size, ks)
    if x.size < min_tail:
        raise ValueError(f"{x.size} positive values; the fit needs at least {min_tail}")
    # candidate cut-offs: the first occurrence of each distinct value with >= min_tail above,
    # and a tail that spans more than rounding (an orthogonal matrix's equal eigenvalues
    # differ in their last bits)
    first = np.flatnonzero(np.concatenate(([True], x[1:] != x[:-1])))
    cands = first[(first <= x.size - min_tail) & (x[-1] > x[first] * (1 + _SPREAD))]
    if cands.size > MAX_CANDIDATES:
        cands = cands[np.linspace(0, cands.size - 1, MAX_CANDIDATES).round().astype(np.int64)]
    if cands.size == 0:
        raise ValueError("the values are all equal (to rounding): no tail to fit")
    alphas, kss = _fits(logs, cands)
    i = int(np.argmin(kss))  # ties: the lowest cut-off, the longest tail
    k = int(cands[i])
    return _result(float(alphas[i]), float(x[k]), x.size - k, x.size, float(kss[i]))


def _result(alpha: float, xmin: float, n_tail: int, n: int, ks: float) -> PowerLawFit:
    half = _Z95 * (alpha - 1.0) / math.sqrt(n_tail)
    return PowerLawFit(alpha, alpha - half, alpha + half, xmin, n_tail, n, ks)


@dataclass(frozen=True)
class Spectrum:
    """The spectral summary of one weight matrix (see the module docstring).

    Attributes
    ----------
    shape : tuple of int
        The array's shape.
    matrix_shape : (int, int)
        The 2-D view analysed: ``(shape[0], product of the other dimensions)``.
    singular_values : ndarray of shape (min(matrix_shape),)
        Descending, float64.
    top_singular, stable_rank : float
    alpha, alpha_low, alpha_high : float or None
        The tail's power-law exponent and its 95% interval; None when not fitted.
    n_tail : int
        Eigenvalues in the fitted tail (0 when not fitted).
    lambda_min, ks : float or None
        The tail's cut-off and the fit's Kolmogorov-Smirnov distance.
    reason : str
        Why ``alpha`` is None ("" when it was fitted).
    """

    shape: tuple[int, ...]
    matrix_shape: tuple[int, int]
    singular_values: np.ndarray = field(repr=False)
    top_singular: float
    stable_rank: float
    alpha: float | None = None
    alpha_low: float | None = None
    alpha_high: float | None = None
    n_tail: int = 0
    lambda_min: float | None = None
    ks: float | None = None
    reason: str = ""

    @property
    def eigenvalues(self) -> np.ndarray:
        """λ = s², the eigenvalues of WᵀW, descending."""
        ev: np.ndarray = self.singular_values**2
        return ev


def _as_matrix(W: Any) -> tuple[np.ndarray, tuple[int, ...]]:
    a = np.asarray(W)
    if a.ndim < 2 or a.dtype.kind not in "biuf" or a.size == 0:
        raise ValueError("W must be a non-empty numeric array of 2 or more dimensions, got "
                         f"{a.dtype} {a.shape}")
    shape = tuple(int(d) for d in a.shape)
    m = a.reshape(a.shape[0], -1).astype(np.float64)
    if not np.isfinite(m).all():
        raise ValueError("W contains NaN or Inf")
    return m, shape


def spectrum(W: Any, *, min_dim: int = MIN_DIM, min_tail: int = MIN_TAIL) -> Spectrum:
    """Singular values, top singular value, stable rank and power-law α of a weight matrix.

    Parameters
    ----------
    W : array of shape (m, n), or (m, ...) viewed as (m, prod(rest)) (a Maxout layer's
        (n_in, n_out, pieces) weights as (n_in, n_out·pieces))
    min_dim : int, default MIN_DIM
        α is fitted only when min(m, n) is at least this.
    min_tail : int, default MIN_TAIL
        ... and on a tail of at least this many eigenvalues.

    Returns
    -------
    Spectrum
    """
    from neuronlab.threads import limit_blas

    m, shape = _as_matrix(W)
    small_svd = m.shape[0] * m.shape[1] * min(m.shape) < _SMALL_SVD
    with limit_blas(1 if small_svd else None):  # threads only spin on small products
        # the eigenvalues of the smaller Gram matrix (WᵀW or WWᵀ) are the squared singular
        # values: one GEMM and a symmetric eigensolver, ~9x faster than an SVD of a 3072x512
        # matrix, equal to it within 1e-14 relative in float64 for the well-conditioned part
        tall = m if m.shape[0] >= m.shape[1] else m.T
        s = np.sqrt(np.clip(np.linalg.eigvalsh(tall.T @ tall)[::-1], 0.0, None))
    top = float(s[0])
    base: dict[str, Any] = {"shape": shape, "matrix_shape": (int(m.shape[0]), int(m.shape[1])),
            "singular_values": s, "top_singular": top}
    if top == 0.0:
        return Spectrum(**base, stable_rank=0.0, reason="the matrix is zero")
    stable = float(np.dot(s / top, s / top))
    small = min(m.shape)
    if small < min_dim:
        return Spectrum(**base, stable_rank=stable, reason=(
            f"too small for a power-law fit: {small} eigenvalues, {min_dim} needed"))
    # eigenvalues of the Gram matrix carry an absolute error of about eps·λ_max: those below
    # max(shape)·eps·λ_max are zero within rounding (the numerical rank)
    lam = s[s * s > max(m.shape) * np.finfo(np.float64).eps * top * top] ** 2
    if lam.size < min_tail:
        return Spectrum(**base, stable_rank=stable, reason=(
            f"numerical rank {lam.size}: too few nonzero eigenvalues for a tail of {min_tail}"))
    try:
        fit = fit_power_law(lam, min_tail=min_tail)
    except ValueError as e:
        return Spectrum(**base, stable_rank=stable, reason=f"no power-law fit: {e}")
    return Spectrum(**base, stable_rank=stable, alpha=fit.alpha, alpha_low=fit.alpha_low,
                    alpha_high=fit.alpha_high, n_tail=fit.n_tail, lambda_min=fit.xmin,
                    ks=fit.ks)


# -- records and plots -------------------------------------------------------------------------
def _weights(model: Any) -> list[tuple[str, str, str, np.ndarray]]:
    """(param name, layer index, layer type, array) of every weight matrix of ``model``."""
    layers = getattr(model, "layers", None)
    out = []
    for key in model.weight_keys:
        idx = key.partition(".")[0]
        layer = layers[int(idx)] if layers is not None and idx.isdigit() else None
        out.append((key, idx, type(layer).__name__ if layer is not None else "", model.params[key]))
    return out


def records(model: Any, step: int) -> list[dict[str, Any]]:
    """One Monitor-style record per weight matrix (``model.weight_keys``) of ``model``::

        {"step": 1200, "kind": "spectrum", "layer": "0", "type": "Linear", "param": "0.W",
         "top_singular": 3.1, "stable_rank": 12.4, "alpha": 4.2, "alpha_low": 3.1,
         "alpha_high": 5.3, "n_tail": 38, "reason": None}

    ``alpha``, ``alpha_low`` and ``alpha_high`` are None when α was not fitted, with
    ``reason`` saying why (None when it was); non-finite numbers are None. A weight array of
    fewer than two dimensions (a custom layer's) or holding NaN/Inf gets a record of Nones
    with its reason.

    Parameters
    ----------
    model : Sequential
        Or any object with ``weight_keys`` and ``params``.
    step : int
        The step written into the records.

    Returns
    -------
    list of dict
    """
    out: list[dict[str, Any]] = []
    for key, idx, kind, W in _weights(model):
        # a layer's own 1-D weights (none of neuronlab's), or weights that overflowed (the
        # divergence is the trainer's to report, not an instrument's): no spectrum
        why = f"a {W.ndim}-D array, not a matrix" if W.ndim < 2 else (
            None if np.isfinite(W).all() else "the weights hold NaN or Inf")
        if why is not None:
            out.append({"step": int(step), "kind": "spectrum", "layer": idx, "type": kind,
                        "param": key, "top_singular": None, "stable_rank": None, "alpha": None,
                        "alpha_low": None, "alpha_high": None, "n_tail": 0, "reason": why})
            continue
        sp = spectrum(W)
        out.append({
            "step": int(step), "kind": "spectrum", "layer": idx, "type": kind, "param": key,
            "top_singular": number(sp.top_singular), "stable_rank": number(sp.stable_rank),
            "alpha": number(sp.alpha), "alpha_low": number(sp.alpha_low),
            "alpha_high": number(sp.alpha_high), "n_tail": sp.n_tail,
            "reason": sp.reason or None,
        })
    return out


def _plot_esd(ax: Axes, name: str, sp: Spectrum) -> None:
    lam = sp.eigenvalues
    lam = lam[lam > 0]
    if lam.size == 0:
        ax.text(0.5, 0.5, "zero matrix", ha="center", va="center", transform=ax.transAxes)
        return
    lo, hi = float(lam.min()), float(lam.max())
    bins: Any = np.geomspace(lo, hi * (1 + 1e-9), max(5, min(50, lam.size // 3))) if hi > lo else 5
    ax.hist(lam, bins=bins, density=True, color="C0", alpha=0.6, label="ESD")
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):  # a narrow log range labels its minor ticks on top of each other
        axis.set_minor_formatter(NullFormatter())
    if sp.alpha is not None and sp.lambda_min is not None:
        a, xmin = sp.alpha, sp.lambda_min
        x = np.geomspace(xmin, hi, 50)
        # the tail's share of the eigenvalues times the power law's density on [xmin, inf)
        share = sp.n_tail / lam.size
        ax.plot(x, share * (a - 1) / xmin * (x / xmin) ** (-a), color="C3",
                label=f"α = {a:.2f}")
        ax.axvline(xmin, color="C3", ls=":", lw=1)
        ax.legend(fontsize="small", loc="lower left")
    title = f"{name} {sp.matrix_shape[0]}×{sp.matrix_shape[1]}"
    ax.set_title(title if sp.alpha is not None else f"{title}\n(no fit: too small)"
                 if sp.reason.startswith("too small") else f"{title}\n(no fit)", fontsize="small")
    ax.set_xlabel("eigenvalue λ of WᵀW")


def _plot_alpha(ax: Axes, recs: list[dict[str, Any]]) -> None:
    by_param: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        by_param.setdefault(str(r.get("param")), []).append(r)
    drawn = 0
    for i, (param, rs) in enumerate(sorted(by_param.items())):
        rs = sorted((r for r in rs if r.get("alpha") is not None), key=lambda r: int(r["step"]))
        if not rs:
            continue
        steps = np.array([r["step"] for r in rs], dtype=np.float64)
        a = np.array([r["alpha"] for r in rs], dtype=np.float64)
        color = f"C{i % 10}"
        marks: dict[str, Any] = {"marker": "o", "ms": 3.0} if len(rs) <= 30 else {}
        ax.plot(steps, a, color=color, label=param, **marks)
        low, high = (np.array([np.nan if r.get(k) is None else r[k] for r in rs], dtype=np.float64)
                     for k in ("alpha_low", "alpha_high"))
        ax.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
        drawn += 1
    if not drawn:
        skipped = sorted({str(r.get("param")) for r in recs})
        what = (f"no layer big enough for a fit ({', '.join(skipped)})" if skipped
                else "no spectrum records")
        ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="0.4")
        return
    ax.axhspan(2.0, 6.0, color="0.9", zorder=0, label="2 ≤ α ≤ 6")
    ax.set_xlabel("step")
    ax.set_ylabel("power-law α of the ESD tail")
    ax.legend(fontsize="small")


def plot_spectrum(model_or_records: Any, *, ax: Axes | None = None) -> Figure:
    """The weight spectra of a model, or α over a run.

    Parameters
    ----------
    model_or_records : Sequential, or records
        A model (it has ``weight_keys``): per weight matrix the ESD (the eigenvalues of WᵀW)
        as a histogram on log-log axes, with the fitted power law over the tail (from the
        cut-off λ_min, dotted). Otherwise the spectrum records of a run (:func:`records`'s
        dicts, a History, or metrics.jsonl records; other records are ignored): α over the
        steps, one line per weight matrix, with its 95% interval shaded and the band
        2 ≤ α ≤ 6 in grey.
    ax : matplotlib Axes, optional
        Draw there (a model's matrices all on it); default a new figure (one panel per matrix
        for a model).

    Returns
    -------
    matplotlib Figure
    """
    from neuronlab.plots._base import _axes, _panels, as_records

    if hasattr(model_or_records, "weight_keys"):
        mats = [(key, spectrum(W)) for key, _, _, W in _weights(model_or_records) if W.ndim >= 2]
        if ax is not None:
            for key, sp in mats:
                _plot_esd(ax, key, sp)
            fig: Figure = ax.figure  # type: ignore[assignment]
            return fig
        if not mats:
            fig, one = _axes(None)
            one.text(0.5, 0.5, "no weight matrices", ha="center", va="center", transform=one.transAxes)
            return fig
        fig, axes = _panels(len(mats), ncols=3, size=3.2)
        for a, (key, sp) in zip(axes, mats):
            _plot_esd(a, key, sp)
        return fig
    recs = model_or_records
    if not isinstance(recs, Iterable) or isinstance(recs, (str, bytes, dict)) or hasattr(recs, "loss"):
        recs = as_records(recs).monitor
    else:
        recs = list(recs)
        if any(isinstance(r, dict) and "event" in r for r in recs):  # metrics.jsonl lines
            recs = as_records(recs).monitor
    spec = [r for r in recs if isinstance(r, dict) and r.get("kind") == "spectrum"]
    fig, target = _axes(ax)
    _plot_alpha(target, spec)
    return fig
