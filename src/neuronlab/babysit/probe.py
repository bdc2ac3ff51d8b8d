"""Measure the objective's gradient at the current weights without disturbing the run.

Several instruments (the gradient-noise scale, the sharpness) need a gradient of their own,
taken on rows of their choosing, possibly between the trainer's backward and its update, when
``model.grads`` holds the gradient the optimizer is about to apply. :func:`probe` is the one
place that does this, and it changes nothing the run depends on:

* **Inference mode.** The forward runs with ``training=False``: dropout and Gaussian noise are
  the identity (no random numbers are drawn, no generator moves) and batch norm normalises
  with its running averages (which are not updated). Each row's output then depends on that
  row alone, which is what makes *per-sample* gradients meaningful.
* **Gradients.** Every layer's ``grads`` dict is swapped, for the duration of the call, for a
  dict of new arrays (zeros; for Linear, whose backward then writes rather than adds, the
  deferred zeroing of a lazy ``zero_grad``); the layers' own backward methods fill those, and
  the original dicts (with their arrays, bit for bit) are put back afterwards. Linear's "the
  next backward may overwrite the gradient" flag is restored too, so a probe taken between
  ``zero_grad(lazy=True)`` and the trainer's backward does not turn that backward's write into
  an add onto stale values.
* **Parameters, buffers, generators** are only read. The loss and the regulariser are deep
  copies, so their scratch buffers and caches are not touched either.

What does change: the layers' forward caches (what the next backward would read) now hold the
probe's rows. The trainer never reads them between its backward and the next forward, and the
:class:`~neuronlab.babysit.monitor.Monitor`'s own activation pass does the same.

With ``capture=True`` the probe also keeps, for every :class:`~neuronlab.layers.linear.Linear`
layer, its input ``x`` (n, n_in) and the gradient ``dout`` (n, n_out) that arrives at its
output. Because the data loss is a mean, ``dout`` row i is ``(1/n) ∂L_i/∂out_i``, and the
gradient of the i-th sample's own loss with respect to that layer's weights is the outer
product ``x_i ⊗ (n · dout_i)`` (and ``n · dout_i`` for the bias), the identity
:mod:`neuronlab.babysit.gradient_noise` is built on. The backward is each layer's own
``backward``: no formula is written twice.

For measurements that must move the weights (finite differences of gradients),
:func:`float64_copy` makes an independent float64 twin of the model, so the original is
never written at all.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuronlab._validation import check_array
from neuronlab.layers.linear import Linear
from neuronlab.layers.sequential import Sequential

__all__ = ["Probe", "float64_copy", "layers_of", "model_rows", "probe", "run_probe"]


@dataclass(frozen=True, eq=False)
class Probe:
    """What one :func:`probe` measured.

    Attributes
    ----------
    loss : float
        The data loss, the mean over the rows of the per-sample losses L_i.
    penalty : float
        The regulariser's penalty R(W) (0.0 without a regulariser).
    grads : dict of str to ndarray
        ∂loss/∂θ for every parameter, by dotted name (``"0.W"``), new arrays in the model's
        dtype: the gradient of the *data* loss only.
    penalty_grads : dict of str to ndarray
        ∂R/∂θ by dotted name (empty without a regulariser). The objective's gradient is
        ``grads + penalty_grads`` (see :meth:`objective_grads`).
    inputs : dict of int to ndarray
        With ``capture``: Linear layer index -> its input, shape (n, n_in).
    douts : dict of int to ndarray
        With ``capture``: Linear layer index -> ∂loss/∂(layer output), shape (n, n_out);
        row i is (1/n)·∂L_i/∂out_i.
    outputs : list of ndarray
        With ``capture``: every layer's output of the inference-mode forward, in order (what
        ``layer.forward(x, training=False)`` returned; the Monitor describes them when it
        measures the gradient noise and the activations at the same step).
    """

    loss: float
    penalty: float
    grads: dict[str, np.ndarray]
    penalty_grads: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: dict[int, np.ndarray] = field(default_factory=dict)
    douts: dict[int, np.ndarray] = field(default_factory=dict)
    outputs: list[np.ndarray] = field(default_factory=list)

    @property
    def objective(self) -> float:
        """loss + penalty: what the trainer minimises."""
        return self.loss + self.penalty

    def objective_grads(self) -> dict[str, np.ndarray]:
        """∂(loss + penalty)/∂θ by dotted name (new arrays)."""
        out = {k: g.copy() for k, g in self.grads.items()}
        for k, g in self.penalty_grads.items():
            out[k] += g
        return out


def layers_of(model: Any) -> list[Any]:
    """The model's layer list (the probes walk the layers one by one to capture what
    arrives at each).

    Parameters
    ----------
    model : Sequential
        A model with a non-empty ``layers`` list.

    Returns
    -------
    list of Layer
        ``model.layers`` itself.

    Raises
    ------
    TypeError
        If ``model`` has no non-empty ``layers`` list.
    """
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list) or not layers:
        raise TypeError(
            f"the gradient probes need a Sequential (a model with a 'layers' list), got "
            f"{type(model).__name__}")
    return layers


def model_rows(model: Any, X: Any) -> np.ndarray:
    """``X`` as an array in the model's dtype (the compute dtype), checked.

    Parameters
    ----------
    model : Sequential
        Its ``dtype`` is the target (float64 for a model without parameters).
    X : array-like of shape (n_samples, n_features)
        Numeric rows.

    Returns
    -------
    ndarray
        ``X`` itself when it already has the dtype, else a converted copy.

    Raises
    ------
    TypeError
        If ``X`` does not hold numbers.
    ValueError
        If ``X`` has fewer than 2 dimensions, no rows, or NaN or Inf.
    """
    dtype = getattr(model, "dtype", None)
    if dtype is None:  # (not ``or``: a dtype without fields is falsy)
        dtype = np.dtype(np.float64)
    if not isinstance(X, np.ndarray):
        X = np.asarray(X, dtype=dtype)
    if X.dtype != dtype and X.dtype.kind in "biuf":
        X = X.astype(dtype)
    return check_array("X", X)


def _swap_grads(layers: list[Any]) -> list[tuple[Any, dict[str, np.ndarray], Any]]:
    """Give every layer a dict of new gradient arrays; return what :func:`_restore` puts back.

    A layer that can defer its zeroing (Linear: its next backward *writes* dW with one GEMM
    through NumPy instead of adding to it through SciPy's BLAS) gets empty arrays and the
    deferral, as ``Sequential.zero_grad(lazy=True)`` does; every other layer gets zeros."""
    saved = []
    for layer in layers:
        flag = getattr(layer, "_grad_zero", None)
        saved.append((layer, layer.grads, flag if isinstance(flag, bool) else None))
        defer = getattr(layer, "_defer_zero_grad", None)
        if defer is not None:
            layer.grads = {k: np.empty_like(g) for k, g in layer.grads.items()}
            defer()
        else:
            layer.grads = {k: np.zeros_like(g) for k, g in layer.grads.items()}
    return saved


def _restore(saved: list[tuple[Any, dict[str, np.ndarray], Any]]) -> None:
    for layer, grads, flag in saved:
        layer.grads = grads
        if flag is not None:
            layer._grad_zero = flag


def _named(layers: list[Any]) -> dict[str, np.ndarray]:
    return {f"{i}.{k}": g for i, layer in enumerate(layers) for k, g in layer.grads.items()}


def run_probe(
    model: Any, loss: Any, X: np.ndarray, y: Any, regularizer: Any = None, *,
    capture: bool = False,
) -> Probe:
    """:func:`probe` without copying ``loss`` and ``regularizer`` and without converting ``X``:
    for callers that evaluate many gradients with copies of their own (the sharpness power
    iteration on its float64 twin). The model's gradients and flags are still restored.

    Parameters
    ----------
    model : Sequential
        The network; its layers' caches are overwritten, its gradients are not.
    loss : Loss
        Used as it is (its cache and buffers change).
    X : ndarray of shape (n, n_features)
        In the model's dtype already (see :func:`model_rows`).
    y : ndarray of shape (n,) or (n, n_outputs)
        Targets.
    regularizer : object with ``loss(model)`` and ``add_grad(model)``, optional
        Used as it is.
    capture : bool, default False
        Keep every Linear layer's input and output gradient, and every layer's output.

    Returns
    -------
    Probe
    """
    layers = layers_of(model)
    saved = _swap_grads(layers)
    inputs: dict[int, np.ndarray] = {}
    douts: dict[int, np.ndarray] = {}
    outputs: list[np.ndarray] = []
    try:
        x = X
        for i, layer in enumerate(layers):
            if capture and isinstance(layer, Linear):
                inputs[i] = x.reshape(x.shape[0], -1)
            x = layer.forward(x, training=False)
            if capture:
                outputs.append(x)
        value = float(loss.forward(x, y))
        dout: np.ndarray | None = loss.backward()
        for i in range(len(layers) - 1, -1, -1):
            assert dout is not None  # only layer 0 may return None, and it is the last
            if capture and isinstance(layers[i], Linear):
                douts[i] = dout.reshape(dout.shape[0], -1)
            dout = layers[i].backward(dout, input_grad=i > 0)
        grads = _named(layers)
        penalty, penalty_grads = 0.0, {}
        if regularizer is not None:
            for layer in layers:
                layer.grads = {k: np.zeros_like(g) for k, g in layer.grads.items()}
            penalty = float(regularizer.loss(model))
            regularizer.add_grad(model)
            penalty_grads = _named(layers)
    finally:
        _restore(saved)
    return Probe(value, penalty, grads, penalty_grads, inputs, douts, outputs)


def probe(
    model: Any, loss: Any, X: Any, y: Any, regularizer: Any = None, *, capture: bool = False
) -> Probe:
    """The objective and its gradient at the model's current weights, on rows ``X``, ``y``,
    leaving the run exactly as it was.

    Forward in inference mode (``training=False``), the data loss (the plain mean over the
    rows), each layer's own backward, then the regulariser's penalty and gradient. See the
    module docstring for what is and is not touched.

    Parameters
    ----------
    model : Sequential
    loss : Loss
        Deep-copied first: its buffers and cache are not the trainer's.
    X : ndarray of shape (n, n_features)
        Converted to the model's dtype.
    y : ndarray of shape (n,) or (n, n_outputs)
    regularizer : object with ``loss(model)`` and ``add_grad(model)``, optional
        Deep-copied first. Its penalty and gradient are reported apart from the data loss's.
    capture : bool, default False
        Keep every Linear layer's input and output gradient (:attr:`Probe.inputs`,
        :attr:`Probe.douts`) and every layer's output (:attr:`Probe.outputs`).

    Returns
    -------
    Probe
    """
    X = model_rows(model, X)
    reg = None if regularizer is None else copy.deepcopy(regularizer)
    return run_probe(model, copy.deepcopy(loss), X, y, reg, capture=capture)


def float64_copy(model: Any) -> Sequential:
    """An independent copy of ``model`` with float64 parameters, buffers and zero gradients.

    A deep copy (random generators included, so nothing the copy draws moves the original's),
    sharing only the fitted ``preprocessor``, which no probe uses. Measurements that must move
    the weights (finite differences) run on it, so the original's weights are never written,
    and in float64 a difference of two gradients is not rounding noise.

    Parameters
    ----------
    model : Sequential
        The model to copy.

    Returns
    -------
    Sequential

    Raises
    ------
    TypeError
        If ``model`` has no ``layers`` list.
    """
    layers_of(model)
    pre = getattr(model, "preprocessor", None)
    twin: Sequential = copy.deepcopy(model, memo={id(pre): pre})
    twin.astype(np.float64)
    twin.zero_grad()
    return twin
