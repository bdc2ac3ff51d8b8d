"""Checks of the trainer's collaborators and of training / evaluation data, done once per
call instead of once per batch.

Data come in as scikit-learn takes them: ndarrays, but also lists, pandas DataFrames and
Series and any array-like, converted with ``np.asarray`` at the entry. A float32 or float64
X is used as it is (never copied: it may be a memmap larger than memory); other numeric X
becomes an array of the model's dtype, except a memmap, which stays one and is cast a batch
at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neuronlab._validation import FLOAT_DTYPES, check_array, check_labels
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


def as_features(name: str, X: object, dtype: Any) -> np.ndarray:
    """``X`` as an ndarray of numbers, converted as little as possible.

    Parameters
    ----------
    name : str
        Used in error messages ("X", "X_val").
    X : array-like of shape (n_samples, n_features)
        An ndarray (or np.memmap), list, DataFrame, ...
    dtype : float32 or float64
        The model's dtype: what numeric X that is not float32 / float64 becomes.

    Returns
    -------
    ndarray
        ``X`` itself when it is a float32 / float64 ndarray or any numeric memmap (a memmap
        is never copied; the batches cast it); otherwise a new array of ``dtype``.
    """
    if isinstance(X, np.ndarray) and (X.dtype in FLOAT_DTYPES or (
            isinstance(X, np.memmap) and X.dtype.kind in "biuf")):
        return X
    X = np.asarray(X)
    if X.dtype in FLOAT_DTYPES:
        return X
    if X.dtype.kind in "biuf":
        return X.astype(dtype)
    if X.dtype.kind == "O":  # e.g. a DataFrame with mixed columns: numbers as objects
        try:
            return X.astype(dtype)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"{name} must hold real numbers, got an array of dtype {X.dtype}")


def check_finite_rows(name: str, X: object) -> np.ndarray:
    """``check_array`` for data that may be a memmap larger than memory: the NaN/Inf scan goes
    a chunk of rows at a time (no boolean temporary the size of X) and releases the pages it
    mapped. Returns X unchanged. A memmap of other numbers (see :func:`as_features`) has
    its shape checked, and is scanned only if it holds floats (integers cannot be NaN)."""
    if isinstance(X, np.memmap) and X.dtype not in FLOAT_DTYPES and X.dtype.kind in "biuf":
        if X.ndim < 2 or X.shape[0] == 0:
            raise ValueError(
                f"{name} must have shape (n_samples, n_features) with n_samples > 0, got {X.shape}")
        if X.dtype.kind != "f":
            return X
    else:
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
    X : array-like of shape (n_samples, n_features)
        See :func:`as_features`.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Float class labels must be whole numbers.

    Returns
    -------
    X : the same array when it is a float ndarray or a memmap (never copied: it may be a
        memmap larger than memory), else X converted to the model's dtype
    y : contiguous in-memory targets: int64 labels, or regression targets in the model's dtype
    """
    dtype = getattr(model, "dtype", None)
    X = check_finite_rows(xname, as_features(xname, X, np.float64 if dtype is None else dtype))
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
        _check_whole_labels(yname, y)
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


def _check_whole_labels(name: str, y: np.ndarray) -> None:
    """Float class labels must be whole numbers (``2.0`` is class 2; ``0.5`` is no class)."""
    if y.dtype.kind != "f" or y.ndim != 1:
        return
    bad = ~np.isfinite(y) | (y != np.round(y))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must hold integer class labels, but {name}[{i}] = {float(y[i])!r} is not a "
            f"whole number ({int(bad.sum())} such rows); regression targets need a regression "
            "loss")
