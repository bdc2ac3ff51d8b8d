"""Prediction from raw inputs, end to end: the model's preprocessor, an inference-mode forward
in batches, then the loss's reading of the scores (labels, probabilities or values).

``Sequential.predict`` / ``predict_proba`` / ``decision_function`` are these functions, so a
model from :func:`neuronlab.load` predicts on raw features with no manual steps::

    model = nl.load("model.safetensors")
    model.predict_proba(X_raw)   # == loss.predict_proba(model(model.preprocessor.transform(X_raw)))

Which loss reads the scores: the ``loss=`` argument (a :class:`~neuronlab.losses.Loss` or a
registry name such as ``"softmax"``); else ``model.metadata["loss"]``, the name a training
run saves with the model (``neuronlab train``, search trials); else softmax cross-entropy.
A ``"sigmoid_cross_entropy"`` name on a network with more than one output means the
multi-label form (a binary one has exactly one output).

Probabilities exist for the losses with a probabilistic reading: ``SoftmaxCrossEntropy``
(softmax over the classes) and ``SigmoidCrossEntropy`` (σ of each output). The hinge losses
score margins and the regression losses predict values: ``predict_proba`` refuses them with a
``NotImplementedError`` before any forward pass (use ``decision_function`` for raw scores).

This module is core: it imports layers' protocol only through the model it is given, and the
loss registry; the small batch loop is its own, not the trainer's evaluator.
"""

from __future__ import annotations

import inspect

from collections.abc import Iterator
from typing import Any

import numpy as np

from neuronlab._validation import FLOAT_DTYPES, check_array, check_positive_int
from neuronlab.losses import Loss, SigmoidCrossEntropy
from neuronlab.registry import LOSSES

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LOSS",
    "decision_function",
    "has_probabilities",
    "predict",
    "predict_proba",
    "resolve_loss",
]

#: Rows per forward pass (the evaluator's default too).
DEFAULT_BATCH_SIZE = 1024
#: The loss that reads a model's scores when neither ``loss=`` nor its metadata names one.
DEFAULT_LOSS = "softmax"


def resolve_loss(model: Any, loss: Loss | str | None = None) -> Loss:
    """The loss whose ``predict`` / ``predict_proba`` read ``model``'s scores.

    Parameters
    ----------
    model : Sequential
        Its ``metadata["loss"]`` (set by :func:`neuronlab.load`) is used when ``loss`` is None.
    loss : Loss or str, optional
        A loss object (used as it is) or a registry name.

    Returns
    -------
    Loss
        Softmax cross-entropy when neither ``loss`` nor the metadata names one.
    """
    if isinstance(loss, Loss):
        return loss
    source = "loss"
    if loss is None:
        metadata = getattr(model, "metadata", None)
        loss = metadata.get("loss") if isinstance(metadata, dict) else None
        if loss is None:
            loss = DEFAULT_LOSS
        else:
            source = "model.metadata['loss']"
    if not isinstance(loss, str):
        raise TypeError(
            f"{source} must be a Loss or a loss name such as 'softmax', "
            f"got {type(loss).__name__}: {loss!r:.80}"
        )
    try:
        cls = LOSSES.get(loss)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None
    if cls is SigmoidCrossEntropy and (getattr(model, "n_out", None) or 1) > 1:
        return SigmoidCrossEntropy(multilabel=True)  # a binary one has exactly one output
    result: Loss = cls()
    return result


def has_probabilities(loss: Loss) -> bool:
    """Whether ``loss`` has a probabilistic reading of the scores (its own ``predict_proba``).

    Parameters
    ----------
    loss : Loss
        A loss object.

    Returns
    -------
    bool
        True for softmax and sigmoid cross-entropy; False for the hinge and regression losses.

    Examples
    --------
    >>> from neuronlab.losses import MeanSquaredError, SoftmaxCrossEntropy
    >>> has_probabilities(SoftmaxCrossEntropy()), has_probabilities(MeanSquaredError())
    (True, False)
    """
    return type(loss).predict_proba is not Loss.predict_proba


def _as_inputs(X: Any) -> np.ndarray:
    """X as a 2-D (or more) float array: lists, tuples and DataFrames become arrays, integer
    and bool data float64. Nothing is copied for a float32/float64 array (or memmap)."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if X.dtype not in FLOAT_DTYPES:
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must hold numbers, got dtype {X.dtype}")
        X = X.astype(np.float64)
    return check_array("X", X, finite=False)


def _score_batches(model: Any, X: Any, batch_size: int) -> Iterator[np.ndarray]:
    """Scores for consecutive batches of X: each batch checked finite, transformed by
    ``model.preprocessor`` (in X's dtype, as the evaluator does), cast to the model's dtype and
    forwarded in inference mode."""
    X = _as_inputs(X)
    batch_size = check_positive_int("batch_size", batch_size)
    pre = getattr(model, "preprocessor", None)
    dtype = getattr(model, "dtype", None)
    n_in = getattr(model, "n_in", None)
    # each batch is checked here, once: a Sequential need not scan it again
    checked = {"check": False} if "check" in inspect.signature(model.forward).parameters else {}
    for start in range(0, X.shape[0], batch_size):
        xb = np.asarray(X[start : start + batch_size])  # a memmap is read a batch at a time
        if not np.logical_and.reduce(np.isfinite(xb), axis=None):
            finite = np.isfinite(xb).reshape(xb.shape[0], -1).all(axis=1)
            raise ValueError(f"X contains NaN or Inf (row {start + int(np.argmin(finite))})")
        if pre is not None:
            xb = pre.transform(xb)
        if dtype is not None and xb.dtype != dtype:
            xb = xb.astype(dtype)
        width = int(np.prod(xb.shape[1:]))
        if n_in is not None and width != n_in:
            raise ValueError(f"x has {width} features per sample, but the model expects {n_in}")
        yield model.forward(xb, training=False, **checked)


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


def decision_function(model: Any, X: Any, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Raw scores (logits, margins or values) for raw inputs.

    Parameters
    ----------
    model : Sequential
    X : array-like of shape (n_samples, n_features)
        Raw features: ``model.preprocessor`` (when set) is applied first.
    batch_size : int, default 1024
        Rows per forward pass.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)
        The network's output in its dtype.
    """
    return _join(list(_score_batches(model, X, batch_size)))


def predict(
    model: Any, X: Any, *, loss: Loss | str | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """``loss.predict`` of the scores: class labels (n_samples,), 0/1 attributes
    (n_samples, n_attributes) or regression values (n_samples, n_outputs).

    ``loss`` is resolved by :func:`resolve_loss` (argument, ``model.metadata["loss"]``, softmax).

    Parameters
    ----------
    model : Sequential
        The network; ``model.preprocessor`` (when set) is applied to each batch first.
    X : array-like of shape (n_samples, n_features)
        Raw features (lists, DataFrames, integer data are converted to float).
    loss : Loss or str, optional
        The loss that reads the scores, resolved by :func:`resolve_loss`.
    batch_size : int, default 1024
        Rows per forward pass.

    Returns
    -------
    ndarray
        The predictions, one row per sample.

    Raises
    ------
    ValueError
        If X holds NaN or Inf (the message names the row) or has the wrong number of
        features, or ``loss`` is an unknown name.
    TypeError
        If X does not hold numbers, or ``loss`` is neither a Loss nor a name.
    """
    reader = resolve_loss(model, loss)
    return _join([reader.predict(s) for s in _score_batches(model, X, batch_size)])


def predict_proba(
    model: Any, X: Any, *, loss: Loss | str | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """``loss.predict_proba`` of the scores: softmax probabilities (n_samples, n_classes),
    rows summing to 1, or sigmoid probabilities of the positive class, (n_samples,) binary and
    (n_samples, n_attributes) multi-label; in the model's dtype.

    Parameters
    ----------
    model : Sequential
        The network; ``model.preprocessor`` (when set) is applied to each batch first.
    X : array-like of shape (n_samples, n_features)
        Raw features (lists, DataFrames, integer data are converted to float).
    loss : Loss or str, optional
        The loss that reads the scores, resolved by :func:`resolve_loss`.
    batch_size : int, default 1024
        Rows per forward pass.

    Returns
    -------
    ndarray
        The probabilities, one row per sample.

    Raises
    ------
    NotImplementedError
        For a loss without probabilities (hinge, regression), before any forward pass.
    ValueError
        If X holds NaN or Inf, or has the wrong number of features.
    """
    reader = resolve_loss(model, loss)
    if not has_probabilities(reader):
        name = type(reader).registry_name or type(reader).__name__
        raise NotImplementedError(
            f"{type(reader).__name__} ({name!r}) gives scores, not probabilities: use "
            "decision_function(X) for the raw scores or predict(X) for the predictions; "
            "probabilities are defined for the 'softmax' and 'sigmoid_cross_entropy' losses"
        )
    return _join([reader.predict_proba(s) for s in _score_batches(model, X, batch_size)])
