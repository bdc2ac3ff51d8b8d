"""Sample and class weights of a training run, resolved once per ``fit`` into one weight per row.

A weighted run minimises, batch by batch, the weighted mean Σ_i w_i L_i / Σ_i w_i of the
loss (see :mod:`neuronlab.losses`), and reports weighted metrics. The weight of row i is

    w_i = sample_weight_i · class_weight[y_i]

with scikit-learn's conventions: ``class_weight`` is a dict ``{label: weight}`` (labels it
does not name weigh 1) or ``"balanced"``, which gives class c the weight
``n_samples / (n_classes · count_c)`` over the classes present in y, so that every class
carries the same total weight (counts of rows, not of their sample weights).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from neuronlab.losses.base import check_sample_weight

__all__ = ["check_weights", "class_weights", "resolve_sample_weight"]


def class_weights(y: Any, class_weight: Mapping[Any, float] | str) -> np.ndarray:
    """One weight per row from its class: float64 of shape (n_samples,).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Integer class labels (0..C-1, or 0/1 / ±1 for a binary loss).
    class_weight : dict {label: weight} or "balanced"
        Dict weights are finite and >= 0; labels the dict does not name weigh 1. A label that
        is not in y is refused when some label of y is missing from the dict (the dict is then
        most likely about other labels: scikit-learn's rule).

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(
            f"class_weight needs 1-D class labels of shape (n_samples,), got y of shape {y.shape}")
    classes, inverse = np.unique(y, return_inverse=True)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError("class_weight must be a dict {label: weight} or 'balanced', "
                             f"got {class_weight!r}")
        counts = np.bincount(inverse).astype(np.float64)
        per_class: np.ndarray = y.shape[0] / (classes.size * counts)
        return per_class[inverse]
    if not isinstance(class_weight, Mapping):
        raise TypeError(
            "class_weight must be a dict {label: weight} or 'balanced', "
            f"got {type(class_weight).__name__}")
    per_class = np.ones(classes.size)
    known = set(classes.tolist())
    for label, weight in class_weight.items():
        if isinstance(label, bool) or not isinstance(label, numbers.Integral):
            raise ValueError(
                f"class_weight keys must be integer class labels, got {label!r}")
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not (
                np.isfinite(weight) and weight >= 0):
            raise ValueError(
                f"class_weight[{label!r}] must be a finite number >= 0, got {weight!r}")
        if int(label) in known:
            per_class[np.searchsorted(classes, int(label))] = float(weight)
    unnamed = sorted(known - {int(k) for k in class_weight})
    absent = sorted({int(k) for k in class_weight} - known)
    if unnamed and absent:
        raise ValueError(
            f"class_weight names the labels {absent}, which are not in y, and not the labels "
            f"{unnamed}, which are (labels in y: {classes.tolist()})")
    return per_class[inverse]


def resolve_sample_weight(
    y: Any, sample_weight: Any, class_weight: Mapping[Any, float] | str | None, task: str
) -> np.ndarray | None:
    """The weight of every row, ``sample_weight · class_weight[y]``, or None when neither is
    given (the unweighted run, which does no weighting work at all).

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        The targets, as the trainer validated them.
    sample_weight : array-like of shape (n_samples,) or None
        Finite, >= 0 (list, Series and any array-like are accepted).
    class_weight : dict {label: weight}, "balanced" or None
        Only for a classification loss (``task == "classification"``).
    task : {"classification", "multilabel", "regression"}
        The loss's task.

    Returns
    -------
    ndarray of float64 of shape (n_samples,), or None

    Raises
    ------
    ValueError
        A bad weight (named ``sample_weight`` or ``class_weight``), ``class_weight`` with a
        multilabel or regression loss, or weights whose total is 0.
    """
    if sample_weight is None and class_weight is None:
        return None
    n = np.shape(y)[0] if np.ndim(y) else 0
    w = None if sample_weight is None else check_weights(sample_weight, n)
    if class_weight is not None:
        if task != "classification":
            raise ValueError(
                f"class_weight applies to classification losses only; this loss's task is {task!r} "
                "(weigh rows with sample_weight)")
        per_row = class_weights(y, class_weight)
        w = per_row if w is None else w * per_row
        if not w.sum() > 0:
            what = "class_weight" if sample_weight is None else "sample_weight times class_weight"
            raise ValueError(f"{what} gives every row the weight 0: nothing would be learned")
    return np.ascontiguousarray(w)


def check_weights(sample_weight: Any, n_samples: int, name: str = "sample_weight") -> np.ndarray:
    """Per-row weights checked against ``n_samples`` rows of y: float64 of shape (n_samples,),
    finite, >= 0, with a positive sum. ValueErrors name ``name``."""
    w = np.asarray(sample_weight)
    if w.ndim == 1 and w.shape[0] != n_samples:
        raise ValueError(f"{name} has {w.shape[0]} weights but y has {n_samples} samples")
    return check_sample_weight(w, n_samples, name)
