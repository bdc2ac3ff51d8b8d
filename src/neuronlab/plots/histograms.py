"""Histograms of each layer's activations and backpropagated gradients on a data sample."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab._validation import check_array, check_positive_int
from neuronlab.plots._base import _panels

__all__ = ["plot_activation_histograms", "plot_gradient_histograms"]

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _hist_panels(
    values: Sequence[tuple[str, np.ndarray]], bins: int, xlabel: str, color: str,
    *, log_abs: bool = False,
) -> Figure:
    """One histogram per (title, values). ``log_abs`` histograms log10 |v| of the non-zero
    values instead (gradients spread over decades: on a linear axis they are one spike at 0)
    and states the fraction of exact zeros (a dead unit's or a ReLU's blocked gradients)."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = _panels(len(values))
    for ax, (title, v) in zip(axes, values, strict=True):
        v = np.asarray(v, dtype=np.float64).ravel()
        text = f"mean {v.mean():.3g}\nstd {v.std():.3g}"
        if log_abs:
            nonzero = v[v != 0]
            text = f"median |g| {np.median(np.abs(nonzero)) if nonzero.size else 0:.2g}\n" \
                   f"zeros {1 - nonzero.size / max(v.size, 1):.0%}"
            v = np.log10(np.abs(nonzero)) if nonzero.size else np.zeros(0)
        counts, edges = np.histogram(v, bins=bins)
        ax.stairs(counts, edges, fill=True, color=color, alpha=0.8)
        ax.set_title(title, fontsize="small")
        ax.text(
            0.02 if log_abs else 0.98,  # log |g| piles up on the right
            0.95,
            text,
            ha="left" if log_abs else "right",
            va="top",
            transform=ax.transAxes,
            fontsize="x-small",
        )
        ax.tick_params(labelsize="x-small")
        ax.xaxis.set_major_locator(MaxNLocator(4))  # tiny gradient scales have long labels
        ax.set_xlabel(xlabel, fontsize="x-small")
    return fig


def _forward_layers(model: Any, X: np.ndarray) -> np.ndarray:
    """Scores for ``X`` in inference mode, one layer at a time (each caches what its backward
    reads): the values of ``model.forward``, whose fused Linear + ReLU kernel is
    bit-identical, without importing and loading the compiled kernels (numba, about half a
    second) for a picture of a few hundred rows."""
    out = X
    for layer in model.layers:
        out = layer.forward(out, training=False)
    return out


def plot_activation_histograms(model: Any, X: np.ndarray, *, bins: int = 50) -> Figure:
    """Histogram of every layer's output on a data sample, forwarded in inference mode.

    The notes' picture of healthy depth: activations that keep a spread through the layers,
    neither collapsing to 0 nor piling up at the saturation ends of tanh/sigmoid.

    Parameters
    ----------
    model : Sequential
    X : ndarray of shape (n_samples, n_in)
        A sample of (preprocessed) inputs; a few hundred rows are plenty.
    bins : int

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per layer except the last (the scores), titled ``"i: Type"``.
    """
    X = check_array("X", X)
    bins = check_positive_int("bins", bins)
    layers = list(model.layers)
    out, values = X, []
    for i, layer in enumerate(layers[:-1] if len(layers) > 1 else layers):
        out = layer.forward(out, training=False)
        values.append((f"{i}: {type(layer).__name__}", out))
    return _hist_panels(values, bins, "activation", "C0")


def plot_gradient_histograms(
    model: Any, loss: Any, X: np.ndarray, y: np.ndarray, *, bins: int = 50
) -> Figure:
    """Histogram of the gradient dL/d(output) arriving at each layer on a data sample
    (gradient flow: how the backward signal shrinks or grows through depth).

    The model's ``grads`` are left as they were (saved and put back).

    Parameters
    ----------
    model : Sequential
    loss : Loss
    X : ndarray of shape (n_samples, n_in)
    y : ndarray of targets for ``loss``
    bins : int

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per layer, titled ``"i: Type"``, in depth order: the histogram of
        log10 |gradient| over the non-zero entries (gradients spread over decades), with the
        median |gradient| and the fraction of exact zeros written in the panel.
    """
    X = check_array("X", X)
    bins = check_positive_int("bins", bins)
    grads = model.grads
    saved = {k: g.copy() for k, g in grads.items()}
    try:
        scores = _forward_layers(model, X)
        loss.forward(scores, y)
        dout = loss.backward()
        values = []
        layers = list(model.layers)
        for i in range(len(layers) - 1, -1, -1):
            values.append((f"{i}: {type(layers[i]).__name__}", np.array(dout, dtype=np.float64)))
            if i > 0:
                dout = layers[i].backward(dout, input_grad=True)
    finally:
        for k, g in grads.items():
            np.copyto(g, saved[k])
    values.reverse()
    return _hist_panels(values, bins, "log10 |∂L/∂output|", "C3", log_abs=True)
