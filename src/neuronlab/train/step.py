"""The one step function: the objective at a batch and its gradient.

:func:`loss_and_grads` is what the minibatch loop does every step, what L-BFGS evaluates at
every point of its line search, and what the sanity checks train and measure with, so the
three cannot drift apart: zero the gradients, forward in training mode, data loss, backward,
then the regulariser's penalty and gradient. With sample weights the data loss is the batch's
weighted mean (the loss's ``sample_weight``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab.layers.sequential import Sequential
from neuronlab.train.errors import DivergenceError

__all__ = ["loss_and_grads"]


def loss_and_grads(
    model: Any,
    loss: Any,
    x: np.ndarray,
    y: np.ndarray,
    regularizer: Any = None,
    *,
    step: int = 0,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """The objective ``loss(model(x), y) + regularizer.loss(model)``; its gradient is left in
    ``model.grads``.

    Parameters
    ----------
    model : Sequential (or any model with zero_grad, forward, backward, grads)
        A Sequential skips re-validating ``x`` (``check=False``) and zeroes lazily (its Linear
        layers write the gradient that the backward right after computes instead of adding it
        to a filled zero): x must be finite with the model's width, as the callers ensure
        once for the whole data.
    loss : Loss
    x : ndarray of shape (n_batch, n_features), in the model's dtype
    y : ndarray of shape (n_batch,) or (n_batch, n_outputs)
    regularizer : object with ``loss(model)`` and ``add_grad(model)``, optional
    step : int, default 0
        Names the step in a :class:`DivergenceError`.
    sample_weight : ndarray of shape (n_batch,), optional
        The rows' weights (finite, >= 0): the data loss is Σ w_i L_i / Σ w_i. A batch whose
        weights are all 0 has data loss 0 and gradient 0 (only the regulariser acts). None
        calls ``loss.forward(scores, y)`` exactly as an unweighted loss expects.

    Returns
    -------
    value : float
        Data loss plus the regulariser's penalty.
    scores : ndarray of shape (n_batch, n_outputs)
        The network's output for x (backward leaves it as it was).

    Raises
    ------
    DivergenceError
        The scores are not finite (the weights have diverged), so the loss refused them.
    """
    if isinstance(model, Sequential):
        model.zero_grad(lazy=True)
        scores = model.forward(x, training=True, check=False)
    else:
        model.zero_grad()
        scores = model.forward(x, training=True)
    if sample_weight is not None and not sample_weight.any():
        # no weight, no data: the weighted mean of nothing adds nothing to the objective
        value, dscores = 0.0, np.zeros_like(scores)
    else:
        try:
            if sample_weight is None:
                value = loss.forward(scores, y)
            else:
                value = loss.forward(scores, y, sample_weight=sample_weight)
        except ValueError:
            bad = ~np.isfinite(scores)
            if bad.any():  # overflowed scores are divergence, not bad input
                raise DivergenceError(step, "scores", float(scores[bad][0])) from None
            raise
        dscores = loss.backward()
    model.backward(dscores, input_grad=False)
    if regularizer is not None:
        value += regularizer.loss(model)
        regularizer.add_grad(model)
    return value, scores
