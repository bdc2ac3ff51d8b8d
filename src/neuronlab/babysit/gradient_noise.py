"""Gradient noise: how much the per-sample gradients disagree, and the batch size it suggests.

A minibatch gradient is an average of per-sample gradients g_i. Their mean over the data is
the true gradient G; their spread is the covariance Σ. A batch of B rows estimates G with
noise of covariance Σ/B, so whether a step is driven by signal or by noise depends on how B
compares with the **gradient noise scale** (McCandlish, Kaplan, Amodei et al. 2018, "An
Empirical Model of Large-Batch Training")::

    B_simple = tr(Σ) / |G|²

At B = B_simple the noise in the batch gradient (tr Σ / B) is as large as the signal (|G|²).
It predicts the *critical batch size*: well below it, every step is mostly noise and doubling
the batch (with the learning rate scaled up) nearly halves the steps needed, so small batches
waste steps; well above it, the batch gradient is already close to G and extra rows barely
shorten training, so large batches waste samples (compute). B_simple usually grows during
training as |G| shrinks.

Per-sample gradients from the explicit backward
-----------------------------------------------
For a :class:`~neuronlab.layers.linear.Linear` layer ``out = x W + b``, the gradient of the
i-th sample's loss is the outer product ``∂L_i/∂W = x_i ⊗ δ_i`` and ``∂L_i/∂b = δ_i``, where
δ_i = ∂L_i/∂out_i. The mean-loss backward delivers ``dout_i = δ_i / n`` (the loss's 1/n), so
δ_i = n · dout_i. :func:`~neuronlab.babysit.probe.probe` captures x and dout for every Linear
layer during one ordinary inference-mode backward, and everything here follows from them:

* ``‖∂L_i/∂W‖² = ‖x_i‖² ‖δ_i‖²`` (the norm of an outer product), plus ``‖δ_i‖²`` for b: the
  per-sample squared norms cost two row norms per layer, no outer product is formed;
* the mean gradient ``ḡ_W = (1/n) Σ_i x_i ⊗ δ_i = xᵀ δ / n``, which is the ordinary
  backward's dW (nothing to compute);
* the per-element second moment ``(1/n) Σ_i g_ijk² = (1/n) Σ_i x_ij² δ_ik² = (x²)ᵀ(δ²) / n``
  (one GEMM of the squares, the only extra GEMM).

Only Linear layers' parameters are included. Batch-norm γ/β and PReLU slopes have per-sample
gradients too in inference mode, but not from this identity, and in *training* mode batch norm
couples the rows (each row's output depends on the batch's mean and variance), so a
"per-sample gradient" of the training objective does not exist for them. In an MLP the Linear
weights are nearly all the parameters.

Estimators (n rows; the GEMMs in the model's dtype, the sums in float64)::

    tr(Σ) = n/(n−1) · (mean_i ‖g_i‖² − ‖ḡ‖²)          unbiased
    |G|²  = ‖ḡ‖² − tr(Σ)/n                             unbiased: E‖ḡ‖² = |G|² + tr(Σ)/n

|G|² can come out ≤ 0 when the noise swamps the mean on these n rows: G is not resolved, and
B_simple is reported as ``math.inf`` (``None`` in the records); it is then larger than n can
show. Use more rows.

With a regulariser the objective's per-sample gradient is ``g_i + r`` with the same r for
every row: r shifts the mean (|G|² uses ``ḡ + r``), not the covariance.

Gradient signal-to-noise ratio (Liu et al. 2020, "Understanding Why Neural Networks Generalize
Well Through GSNR of Parameters"): for each weight w_jk, ``ḡ_jk² / Var_i(g_ijk)`` (variance
unbiased, over the rows); a layer's value is its mean over the layer's W elements. Elements
whose variance is zero up to rounding (below :data:`VAR_FLOOR` machine epsilons of their
second moment: every row gives the same gradient, e.g. all zero for a unit dead on every row)
are left out of the mean. A GSNR well below 1 means the batch gradient
of that layer is mostly noise.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab.babysit.findings import Finding
from neuronlab.babysit.probe import Probe, layers_of, probe
from neuronlab.babysit.runview import number
from neuronlab.threads import blas_threads, limit_blas

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "NOISE_FACTOR",
    "NOISE_MIN_RECORDS",
    "NOISE_RECORD_KEYS",
    "GradientNoise",
    "LayerNoise",
    "gradient_noise",
    "gradient_noise_of",
    "noise_scale_rule",
    "per_sample_gradients",
    "plot_noise_scale",
    "records",
]

NOISE_FACTOR = 10.0
"""The rule speaks when the batch size is more than this factor away from B_simple."""
NOISE_MIN_RECORDS = 2
"""Resolved B_simple measurements the rule needs in the second half of the run."""
VAR_FLOOR = 100.0
"""An element's variance counts as zero (rounding) below this many machine epsilons of the
compute dtype times its second moment."""

#: The keys of the records :func:`records` writes (``kind = "noise"``): the run-wide record and
#: the per-layer ones.
NOISE_RECORD_KEYS = frozenset({"step", "kind", "layer", "type", "b_simple", "trace_cov",
                               "grad_sq", "n", "snr"})


def _check_rows(X: Any) -> int:
    n = int(np.shape(X)[0]) if np.ndim(X) else 0
    if n < 2:
        raise ValueError(
            f"gradient noise needs at least 2 rows (a spread of per-sample gradients), got {n}")
    return n


def per_sample_gradients(model: Any, loss: Any, X: Any, y: Any) -> dict[str, np.ndarray]:
    """The gradient of every row's own loss L_i, for every Linear layer's parameters.

    ``∂L_i/∂W = x_i ⊗ δ_i`` and ``∂L_i/∂b = δ_i`` with δ_i = n·dout_i, from one
    inference-mode backward over all rows (see the module docstring). Other parameters
    (batch-norm γ/β, PReLU slopes, maxout) are not included. The run is not disturbed
    (:func:`~neuronlab.babysit.probe.probe`). This materialises n copies of every weight
    matrix; for statistics use :func:`gradient_noise`, which forms none.

    Parameters
    ----------
    model : Sequential
    loss : Loss
        A mean over the rows (every library loss without sample weights).
    X : ndarray of shape (n, n_features)
    y : ndarray of shape (n,) or (n, n_outputs)

    Returns
    -------
    dict of str to ndarray
        ``"<layer>.W"`` -> shape (n, n_in, n_out), ``"<layer>.b"`` -> shape (n, n_out), in
        the model's dtype, for each Linear layer (no ``b`` for a layer without bias).
    """
    p = probe(model, loss, X, y, capture=True)
    layers = layers_of(model)
    n = next(iter(p.inputs.values())).shape[0] if p.inputs else 0
    out: dict[str, np.ndarray] = {}
    for i, x in p.inputs.items():
        delta = p.douts[i] * n
        out[f"{i}.W"] = x[:, :, None] * delta[:, None, :]
        if "b" in layers[i].params:
            out[f"{i}.b"] = delta
    return out


@dataclass(frozen=True, eq=False)
class LayerNoise:
    """Gradient noise of one Linear layer's parameters (W and b).

    Attributes
    ----------
    layer : int
        Index in the Sequential.
    trace_cov : float
        Unbiased tr(Σ) over the layer's parameters.
    grad_sq : float
        Unbiased |G|² over the layer's parameters (may be ≤ 0: not resolved).
    b_simple : float
        trace_cov / grad_sq, ``math.inf`` when grad_sq ≤ 0.
    snr : float
        Mean GSNR over the W elements with a non-zero variance (NaN when none has one).
    """

    layer: int
    trace_cov: float
    grad_sq: float
    b_simple: float
    snr: float


@dataclass(frozen=True, eq=False)
class GradientNoise:
    """The gradient noise measured on n rows (Linear layers' parameters).

    Attributes
    ----------
    n : int
        Rows measured.
    trace_cov : float
        Unbiased tr(Σ), the summed variance of a single row's gradient.
    grad_sq : float
        Unbiased |G|² = ‖ḡ‖² − tr(Σ)/n (ḡ including the regulariser's gradient, if any);
        ≤ 0 when the mean is not resolved on these rows.
    b_simple : float
        tr(Σ) / |G|², the noise scale (McCandlish et al. 2018); ``math.inf`` when
        ``grad_sq <= 0``.
    sample_sq_norms : ndarray of shape (n,)
        ‖g_i‖², each row's data-loss gradient (float64).
    mean_grad : dict of str to ndarray
        ḡ of the objective by dotted name (float64), the Linear parameters.
    layers : tuple of LayerNoise
        The same per Linear layer, with its GSNR.
    """

    n: int
    trace_cov: float
    grad_sq: float
    b_simple: float
    sample_sq_norms: np.ndarray
    mean_grad: dict[str, np.ndarray]
    layers: tuple[LayerNoise, ...]

    @property
    def resolved(self) -> bool:
        """True when |G|² > 0, so that B_simple is finite."""
        return self.grad_sq > 0


def _ratio(trace: float, grad_sq: float) -> float:
    return trace / grad_sq if grad_sq > 0 else math.inf


def _sq(a: np.ndarray) -> float:
    """‖a‖², summed in float64 (a float32 ``a`` is cast first: its squares are exact)."""
    flat = a.reshape(-1).astype(np.float64, copy=False)
    return float(np.dot(flat, flat))


def gradient_noise(
    model: Any, loss: Any, X: Any, y: Any, regularizer: Any = None
) -> GradientNoise:
    """Estimate tr(Σ), |G|², B_simple and the per-layer GSNR on rows ``X``, ``y``.

    One inference-mode forward and backward over the rows (the model's own, through
    :func:`~neuronlab.babysit.probe.probe`: nothing in the run changes), then per Linear layer
    two row norms and one GEMM, the second moments (x²)ᵀ(δ²)/n, in the model's dtype (the mean
    gradient is the backward's own). The formulas are in the module docstring.

    Parameters
    ----------
    model : Sequential
    loss : Loss
        A mean over rows.
    X : ndarray of shape (n, n_features), n >= 2
    y : ndarray of shape (n,) or (n, n_outputs)
    regularizer : object with ``loss(model)`` and ``add_grad(model)``, optional
        Its gradient is added to the mean (it is the same for every row).

    Returns
    -------
    GradientNoise

    Raises
    ------
    ValueError
        Fewer than 2 rows: a spread needs two.
    """
    n = _check_rows(X)
    # the thread policy of a fit also outside one: no BLAS threads spinning on small products
    with limit_blas(blas_threads(model, n)):
        return gradient_noise_of(probe(model, loss, X, y, regularizer, capture=True), model)


def gradient_noise_of(p: Probe, model: Any) -> GradientNoise:
    """The measurement of :func:`gradient_noise` from a probe taken with ``capture=True``
    (:func:`~neuronlab.babysit.probe.probe`) on ``model`` at n >= 2 rows: for a caller that
    also reads the probe's forward (the Monitor describes its layer outputs).

    Parameters
    ----------
    p : Probe
        Its ``inputs``, ``douts``, ``grads`` and ``penalty_grads``.
    model : Sequential
        The probed model.

    Returns
    -------
    GradientNoise

    Raises
    ------
    ValueError
        If the model has no Linear layer (nothing captured), or fewer than 2 rows were probed.
    """
    layers = layers_of(model)
    if not p.inputs:
        raise ValueError("gradient noise is measured on Linear layers, and the model has none")
    n = _check_rows(next(iter(p.inputs.values())))
    sample_sq = np.zeros(n)
    mean_grad: dict[str, np.ndarray] = {}
    per_layer = []
    total_mean_sq = total_obj_sq = 0.0
    scale = n / (n - 1)
    for i in sorted(p.inputs):
        # in the model's dtype (float32 training: half the cost of the float64 GEMM), with the
        # sums accumulated in float64
        x, delta = p.inputs[i], p.douts[i] * n
        has_bias = "b" in layers[i].params
        xsq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
        dsq = np.einsum("ij,ij->i", delta, delta, dtype=np.float64)
        per = xsq * dsq
        if has_bias:
            per += dsq
        sample_sq += per
        # ḡ is the backward's own dW = xᵀ dout and db = Σ dout: no GEMM of ours
        gW = p.grads[f"{i}.W"]
        second = np.square(x).T @ np.square(delta)  # Σ_i g_ijk², one GEMM
        second *= 1.0 / n
        # the data gradient in float64 (exact), then the objective's: plus the penalty's
        obj = {"W": gW.astype(np.float64)}
        if has_bias:
            obj["b"] = p.grads[f"{i}.b"].astype(np.float64)
        mean_sq = sum(_sq(g) for g in obj.values())
        var = second - np.square(gW)
        var *= scale
        keep = var > (VAR_FLOOR * float(np.finfo(var.dtype).eps)) * second
        snr = math.nan
        # the data gradient's signal (Liu et al.'s GSNR): a penalty's gradient is the same
        # for every row, so adding it would report signal that no example carries
        if keep.all():  # the common case, without boolean gathers
            snr = float(np.mean(np.square(obj["W"]) / var.astype(np.float64, copy=False)))
        elif keep.any():
            snr = float(np.mean(np.square(obj["W"][keep]) / var[keep].astype(np.float64)))
        obj_sq = mean_sq
        penalized = [k for k in obj if f"{i}.{k}" in p.penalty_grads]
        for k in penalized:
            obj[k] += p.penalty_grads[f"{i}.{k}"]
        if penalized:
            obj_sq = sum(_sq(g) for g in obj.values())
        mean_grad.update({f"{i}.{k}": g for k, g in obj.items()})
        trace = max(scale * (float(np.add.reduce(per)) / n - mean_sq), 0.0)
        grad_sq = obj_sq - trace / n
        per_layer.append(LayerNoise(i, trace, grad_sq, _ratio(trace, grad_sq), snr))
        total_mean_sq += mean_sq
        total_obj_sq += obj_sq
    trace = max(scale * (float(np.add.reduce(sample_sq)) / n - total_mean_sq), 0.0)
    grad_sq = total_obj_sq - trace / n
    return GradientNoise(n, trace, grad_sq, _ratio(trace, grad_sq), sample_sq, mean_grad,
                         tuple(per_layer))


# -- records -----------------------------------------------------------------------------------
def records(noise: GradientNoise, step: int) -> list[dict[str, Any]]:
    """The measurement as flat JSON-able records in the Monitor's style (``kind = "noise"``).

    One run-wide record, then one per Linear layer::

        {"step": 120, "kind": "noise", "layer": "", "type": "", "b_simple": 310.0,
         "trace_cov": 41.2, "grad_sq": 0.133, "n": 128}
        {"step": 120, "kind": "noise", "layer": "0", "type": "Linear", "snr": 0.21,
         "b_simple": 150.0}

    Non-finite numbers (B_simple when |G|² ≤ 0, a GSNR without elements) are ``None``.

    Parameters
    ----------
    noise : GradientNoise
        A measurement of :func:`gradient_noise`.
    step : int
        The step written into the records.

    Returns
    -------
    list of dict
    """
    out: list[dict[str, Any]] = [
        {"step": int(step), "kind": "noise", "layer": "", "type": "",
         "b_simple": number(noise.b_simple), "trace_cov": number(noise.trace_cov),
         "grad_sq": number(noise.grad_sq), "n": int(noise.n)}]
    for ln in noise.layers:
        out.append({"step": int(step), "kind": "noise", "layer": str(ln.layer), "type": "Linear",
                    "snr": number(ln.snr), "b_simple": number(ln.b_simple)})
    return out


def _noise_records(obj: Any) -> list[dict[str, Any]]:
    """``kind = "noise"`` records from a list of records, a History or a history dict."""
    if isinstance(obj, dict) or hasattr(obj, "epochs"):
        from neuronlab.plots._base import as_records

        obj = as_records(obj).monitor
    if not isinstance(obj, Iterable):
        raise TypeError(f"expected monitor records or a History, got {type(obj).__name__}")
    return [r for r in obj if isinstance(r, dict) and r.get("kind") == "noise"]


# -- the rule ----------------------------------------------------------------------------------
def noise_scale_rule(records: Any, batch_size: int) -> Finding | None:
    """An "info" finding when the training batch size is more than :data:`NOISE_FACTOR` away
    from the gradient noise scale B_simple (median of the run-wide records in the second half
    of the run, by step); None otherwise, or with fewer than :data:`NOISE_MIN_RECORDS`
    resolved measurements there.

    Parameters
    ----------
    records : list of dict, History or history dict
        Monitor records; only ``kind = "noise"`` run-wide ones (``layer == ""``) are read.
    batch_size : int
        The training batch size.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    run = sorted((r for r in _noise_records(records) if r.get("layer") == ""),
                 key=lambda r: int(r["step"]))
    if not run:
        return None
    last = int(run[-1]["step"])
    half = int(run[0]["step"]) + (last - int(run[0]["step"])) / 2
    late = [r for r in run if int(r["step"]) >= half]
    values = [float(r["b_simple"]) for r in late if r.get("b_simple") is not None]
    if len(values) < NOISE_MIN_RECORDS:
        return None
    median = statistics.median(values)
    if median <= 0:
        return None
    ratio = batch_size / median
    evidence = {"b_simple_median": median, "batch_size": int(batch_size), "ratio": ratio,
                "measurements": len(values), "unresolved": len(late) - len(values),
                "steps": [int(late[0]["step"]), last]}
    where = f"(median over steps {late[0]['step']}-{last})"
    if ratio > NOISE_FACTOR:
        return Finding(
            "noise_scale", "info",
            f"the batch size {batch_size} is {ratio:.3g}x the gradient noise scale "
            f"B_simple ≈ {median:.3g} {where}: the batch gradient is already close to the true "
            f"gradient, so most rows of each batch add compute without shortening training",
            evidence,
            f"try a smaller batch (towards {median:.3g}) with more steps for the same compute, "
            f"lowering the learning rate in proportion to the batch")
    if ratio < 1 / NOISE_FACTOR:
        return Finding(
            "noise_scale", "info",
            f"the batch size {batch_size} is {1 / ratio:.3g}x below the gradient noise scale "
            f"B_simple ≈ {median:.3g} {where}: each step's gradient is mostly noise, so many "
            f"steps are spent averaging it out",
            evidence,
            f"try a larger batch (towards {median:.3g}) with the learning rate raised in "
            f"proportion (linear scaling, with a warmup), or keep the batch and lower the "
            f"learning rate")
    return None


# -- the plot ----------------------------------------------------------------------------------
def plot_noise_scale(records: Any, *, batch_size: int | None = None,
                     ax: Axes | None = None) -> Figure:
    """B_simple over steps (log y) with the training batch size as a horizontal line, and the
    per-layer gradient signal-to-noise ratio in a second panel (log y).

    Parameters
    ----------
    records : list of dict, History or history dict
        Monitor records; the ``kind = "noise"`` ones are drawn.
    batch_size : int, optional
        Drawn as a dashed line on the B_simple panel.
    ax : matplotlib Axes, optional
        Draw only the B_simple panel into it (no SNR panel).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from neuronlab.plots._base import _empty, _marks

    recs = sorted(_noise_records(records), key=lambda r: int(r["step"]))
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 6.0), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True)
        axes = [top, bottom]
    else:
        fig, axes = ax.figure, [ax]  # type: ignore[assignment]
    top = axes[0]
    run = [(int(r["step"]), float(r["b_simple"])) for r in recs
           if r.get("layer") == "" and r.get("b_simple") is not None]
    if run:
        s, v = zip(*run)
        top.plot(s, v, color="C0", label="B_simple = tr(Σ)/|G|²", **_marks(len(s)))
    if batch_size is not None:
        top.axhline(batch_size, color="C3", ls="--", lw=1.0, label=f"batch size {batch_size}")
    top.set_yscale("log", nonpositive="mask")
    top.set_ylabel("B_simple (rows)")
    top.set_title("Gradient noise scale")
    if run:
        top.legend(loc="best", fontsize="x-small")
    else:
        _empty(top, "no resolved noise measurements")
    if len(axes) > 1:
        bottom = axes[1]
        by_layer: dict[str, list[tuple[int, float]]] = {}
        for r in recs:
            if r.get("layer") != "" and r.get("snr") is not None and float(r["snr"]) > 0:
                by_layer.setdefault(str(r["layer"]), []).append((int(r["step"]), float(r["snr"])))
        for j, name in enumerate(sorted(by_layer, key=int)):
            s, v = zip(*by_layer[name])
            bottom.plot(s, v, color=f"C{j % 10}", label=f"{name}: Linear", **_marks(len(s)))
        bottom.set_yscale("log", nonpositive="mask")
        bottom.set_ylabel("mean GSNR ḡ²/Var(g)")
        bottom.set_title("Gradient signal-to-noise ratio per layer")
        if by_layer:
            bottom.legend(loc="best", fontsize="x-small")
        else:
            _empty(bottom, "no SNR measurements")
        bottom.set_xlabel("step")
    else:
        top.set_xlabel("step")
    return fig
