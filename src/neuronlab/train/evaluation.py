"""One evaluator and one set of metric names, for training logs, ``Trainer.evaluate`` and runs.

Metrics of a model on ``(X, y)``:

* ``"loss"``: the mean data loss over the rows, plus the regulariser's penalty when one is
  given (the objective the trainer minimises);
* ``"acc"`` (classification and multilabel losses): the fraction of right predictions,
  ``loss.predict(scores) == y``, over every predicted value (rows x attributes);
* ``"error"`` (regression losses): the mean squared error per target value,
  ``Σ (scores - y)² / (n_rows · n_targets)``.

With sample weights w every mean is the weighted mean over the rows: ``loss`` is
Σ w_i L_i / Σ w_i, ``acc`` counts row i's right predictions w_i times, ``error`` weighs row
i's squared errors by w_i (so weights 1 give the unweighted numbers exactly).

Validation metrics carry the prefix ``"val_"``. The training epoch's metrics are the same sums
(:func:`accumulate`, :func:`summarize`) taken over the epoch's batches in training mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from neuronlab.data.arrays import batch
from neuronlab.layers.sequential import Sequential
from neuronlab.losses.base import check_sample_weight

__all__ = ["accumulate", "batches", "evaluate", "metric_names", "new_sums", "summarize"]


def metric_names(task: str, validation: bool = False) -> list[str]:
    """``["loss", "acc"]`` (or ``"error"`` for regression), then the ``val_`` ones."""
    names = ["loss", "error" if task == "regression" else "acc"]
    return names + [f"val_{n}" for n in names] if validation else names


def new_sums() -> dict[str, Any]:
    """Zeroed running sums: ``loss`` (loss times rows), ``n`` (rows), ``correct``, ``sq``.

    With sample weights every row counts w_i times: ``n`` is the rows' total weight and
    ``loss``, ``correct`` and ``sq`` are weighted sums (floats, where they are ints without).
    """
    return {"loss": 0.0, "n": 0, "correct": 0, "sq": 0.0}


def accumulate(
    sums: dict[str, Any], loss: Any, scores: np.ndarray, y: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> None:
    """Add one batch's right predictions (``correct``) or squared error (``sq``) to ``sums``.

    ``scores`` of shape (m, n_outputs), ``y`` of shape (m,) or (m, n_outputs) and
    ``sample_weight`` None or of shape (m,) (row i counts w_i times). The caller adds ``loss``
    and ``n``: training weighs the step's objective, evaluation the data loss.
    """
    if loss.task == "regression":
        d = scores - y.reshape(scores.shape)
        if sample_weight is None:
            sums["sq"] += float(np.dot(d.reshape(-1), d.reshape(-1)))
        else:  # Σ_i w_i Σ_j d_ij², in the scores' dtype like the unweighted sum
            w = sample_weight.astype(d.dtype, copy=False).reshape(-1, *(1,) * (d.ndim - 1))
            sums["sq"] += float(np.dot((d * w).reshape(-1), d.reshape(-1)))
    else:
        pred = loss.predict(scores)
        right = pred == y.reshape(pred.shape)
        if sample_weight is None:
            sums["correct"] += int(np.count_nonzero(right))
        else:  # Σ_i w_i (right values in row i)
            sums["correct"] += float(np.dot(sample_weight, right.reshape(len(right), -1)).sum())


def summarize(sums: dict[str, Any], task: str, width: int, prefix: str = "") -> dict[str, float]:
    """``{prefix + "loss": ..., prefix + "acc" or "error": ...}`` from ``sums``; ``width`` is
    the number of values per row that acc / error average over (1 for class labels). NaN when
    no row (no weight) was summed: an epoch stopped before its first weighted row."""
    n = sums["n"]
    if not n:
        nan = float("nan")
        return {f"{prefix}loss": nan, f"{prefix}{'error' if task == 'regression' else 'acc'}": nan}
    out = {f"{prefix}loss": sums["loss"] / n}
    if task == "regression":
        out[f"{prefix}error"] = sums["sq"] / (n * width)
    else:
        out[f"{prefix}acc"] = sums["correct"] / (n * width)
    return out


def batches(
    X: np.ndarray, batch_size: int, dtype: Any, *, rows: np.ndarray | None = None,
    preprocessor: Any = None,
) -> Iterator[tuple[slice | np.ndarray, np.ndarray]]:
    """``(which, xb)`` for consecutive batches of X (or of ``X[rows]``) as model input.

    ``which`` indexes the batch's rows in X (and y): a slice, or an index array. ``xb`` is in
    ``dtype`` after ``preprocessor.transform`` (applied in X's dtype). An in-memory X gives
    views; a memmap's rows (and any ``rows``) are read with :func:`neuronlab.data.batch`, a
    batch at a time, never mapping the file whole.
    """
    n = X.shape[0] if rows is None else len(rows)
    read = dtype if preprocessor is None else X.dtype
    for s in range(0, n, batch_size):
        which: slice | np.ndarray
        if rows is None and not isinstance(X, np.memmap):
            which = slice(s, s + batch_size)
            xb = X[which]
        else:
            end = min(s + batch_size, n)
            which = np.arange(s, end) if rows is None else rows[s:end]
            xb = batch(X, which, dtype=read)
        if preprocessor is not None:
            xb = preprocessor.transform(xb)
        yield which, (xb if xb.dtype == dtype else xb.astype(dtype))


def evaluate(
    model: Any,
    loss: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    regularizer: Any = None,
    rows: np.ndarray | None = None,
    preprocessor: Any = None,
    batch_size: int = 1024,
    prefix: str = "",
    check: bool = True,
    sample_weight: Any = None,
) -> dict[str, float]:
    """Loss and accuracy (or regression error) of ``model`` on ``(X, y)``, in inference mode.

    Parameters
    ----------
    model : Sequential
    loss : Loss
    X : ndarray or np.memmap of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    regularizer : object with ``loss(model)``, optional
        Its penalty is added to ``loss``.
    rows : ndarray of int of shape (n_rows,), optional
        Score only these rows of X and y.
    preprocessor : Preprocessor, optional
        Applied to each batch of X before the model.
    batch_size : int, default 1024
        Rows per forward pass.
    prefix : str, default ""
        Prepended to the keys (``"val_"``).
    check : bool, default True
        Scan every batch for NaN/Inf and the model's width; False for X validated already.
    sample_weight : array-like of shape (n_samples,), optional
        One weight per row of X (finite, >= 0): weighted means over the scored rows (see the
        module docstring). The scored rows' weights must not all be 0.

    Returns
    -------
    dict
        ``{"loss": ..., "acc": ...}`` (classification, multilabel) or
        ``{"loss": ..., "error": ...}`` (regression), keys prefixed by ``prefix``.
    """
    y = np.asarray(y)
    if (X.shape[0] if rows is None else len(rows)) == 0:
        raise ValueError("nothing to evaluate: no rows")
    w = None if sample_weight is None else check_sample_weight(sample_weight, X.shape[0])
    sums = new_sums()
    checked = {"check": check} if isinstance(model, Sequential) else {}
    for which, xb in batches(X, batch_size, model.dtype, rows=rows, preprocessor=preprocessor):
        yb = y[which]
        scores = model.forward(xb, training=False, **checked)
        if w is None:
            accumulate(sums, loss, scores, yb)
            sums["loss"] += loss.forward(scores, yb) * xb.shape[0]
            sums["n"] += xb.shape[0]
            continue
        wb = w[which]
        mass = float(wb.sum())
        if mass > 0:  # a batch of weight 0 adds nothing (and its weighted mean is undefined)
            accumulate(sums, loss, scores, yb, wb)
            sums["loss"] += loss.forward(scores, yb, sample_weight=wb) * mass
            sums["n"] += mass
    if not sums["n"]:
        raise ValueError("sample_weight is 0 on every evaluated row: nothing to evaluate")
    if regularizer is not None:
        sums["loss"] += regularizer.loss(model) * sums["n"]
    width = int(np.prod(np.shape(y)[1:], dtype=np.int64))
    return summarize(sums, loss.task, width, prefix)
