"""Checks of the trainer's collaborators and of training / evaluation data, done once per
call instead of once per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neuronlab._validation import check_array, check_labels
from neuronlab.data.arrays import release_pages
from neuronlab.train.base import Callback

__all__: list[str] = []  # internal: used by Trainer

_FINITE_CHUNK = 1 << 20  # elements per isfinite pass: bounded memory for memmapped data


def check_components(
    model: Any,
    loss: Any,
    optimizer: Any,
    schedule: Any,
    regularizer: Any,
    constraints: Sequence[Any],
    callbacks: Sequence[Any],
) -> None:
    """Check the Trainer's collaborators by the methods it calls on them."""
    for name, obj, attrs in (
        ("model", model, ("forward", "backward", "params", "grads", "zero_grad")),
        ("loss", loss, ("forward", "backward", "predict", "task")),
        ("optimizer", optimizer, ("step", "state_dict", "load_state_dict")),
    ):
        missing = [a for a in attrs if not hasattr(obj, a)]
        if missing:
            raise TypeError(
                f"{name} must provide {', '.join(attrs)}; {type(obj).__name__} lacks {missing}"
            )
    if loss.task not in ("classification", "multilabel", "regression"):
        raise ValueError(
            f"loss.task must be classification, multilabel or regression, got {loss.task!r}"
        )
    if schedule is not None and not callable(schedule):
        raise TypeError(f"schedule must be callable step -> lr, got {type(schedule).__name__}")
    if regularizer is not None and not (
        hasattr(regularizer, "loss") and hasattr(regularizer, "add_grad")
    ):
        raise TypeError(
            "regularizer must have loss(model) and add_grad(model), "
            f"got {type(regularizer).__name__}"
        )
    for i, c in enumerate(constraints):
        if not hasattr(c, "apply"):
            raise TypeError(f"constraints[{i}] must have apply(model), got {type(c).__name__}")
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks[{i}] must be a Callback, got {type(cb).__name__}")


def check_finite_rows(name: str, X: Any) -> np.ndarray:
    """``check_array`` for data that may be a memmap larger than memory: the NaN/Inf scan goes
    a chunk of rows at a time (no boolean temporary the size of X) and releases the pages it
    mapped. Returns X unchanged."""
    X = check_array(name, X, finite=False)
    rows = max(1, _FINITE_CHUNK // max(1, X[0].size))
    for s in range(0, X.shape[0], rows):
        if not np.isfinite(X[s : s + rows]).all():
            raise ValueError(f"{name} contains NaN or Inf")
        release_pages(X)  # a memmap: do not keep the whole file resident after one pass
    return X


def check_data(
    model: Any, task: str, xname: str, yname: str, X: Any, y: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(X, y)`` for ``model`` and a loss of ``task``.

    Parameters
    ----------
    model : Sequential
        Gives the expected input width (``n_in``), output width (``n_out``) and dtype.
    task : {"classification", "multilabel", "regression"}
    xname, yname : str
        Names used in error messages ("X", "y_val", ...).
    X : ndarray (or np.memmap) of shape (n_samples, n_features), float32 or float64
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)

    Returns
    -------
    X : the same array (never copied: it may be a memmap larger than memory)
    y : contiguous in-memory targets: int64 labels, or regression targets in the model's dtype
    """
    X = check_finite_rows(xname, X)
    n_in, n = getattr(model, "n_in", None), X.shape[0]
    if n_in is not None and X[0].size != n_in:
        raise ValueError(
            f"{xname} has {X[0].size} features per sample, but the model expects {n_in}"
        )
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"{xname} has {n} samples but {yname} has shape {y.shape}")
    n_out = getattr(model, "n_out", None)
    if task == "classification":
        # one output column is a binary loss (0/1 or ±1 labels): the loss checks the values
        y = check_labels(yname, y, n, n_out if n_out is not None and n_out >= 2 else None)
    elif task == "multilabel":
        if y.ndim != 2 or (n_out is not None and y.shape[1] != n_out):
            raise ValueError(
                f"{yname} must have shape ({n}, {n_out}) for a multilabel loss, got {y.shape}"
            )
        if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
            raise ValueError(f"{yname} must hold 0/1 attribute targets")
    else:
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{yname} must hold numeric regression targets, got dtype {y.dtype}")
        if y.ndim > 2 or (n_out is not None and y[0].size != n_out):
            raise ValueError(f"{yname} must have shape ({n},) or ({n}, {n_out}), got {y.shape}")
        y = y.astype(model.dtype)
        if not np.isfinite(y).all():
            raise ValueError(f"{yname} contains NaN or Inf (in {model.dtype})")
    return X, np.ascontiguousarray(y)
