"""Targets checked against the loss before anything is built: class labels 0..C-1, binary 0/1
labels, or finite regression targets.

A run sizes its output layer from its labels, so a typo in one label (``999`` among 0, 1, 2)
would silently build a network with 1,000 outputs, and a label of ``2e9`` would try to
allocate gigabytes. :func:`check_targets` refuses such data with a message that names the odd
labels and their rows, and says how to declare classes that are legitimately absent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["check_targets", "check_training_classes"]

#: Losses with one score per sample whose labels are 0/1.
BINARY_LOSSES = ("sigmoid_cross_entropy", "binary_hinge")
_SHOW = 5  # labels or rows quoted in a message


def _rows(mask: npt.ArrayLike) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(map(str, rows[:_SHOW]))
    return f"row {shown}" if rows.size == 1 else f"rows {shown}" + (", ..." if rows.size > _SHOW else "")


def _values(values: np.ndarray) -> str:
    shown = ", ".join(str(int(v)) for v in values[:_SHOW])
    return shown + (", ..." if values.size > _SHOW else "")


def _integer_labels(y: np.ndarray, name: str, hint: str) -> np.ndarray:
    """``y`` as int64 class labels; float labels must be whole numbers."""
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D class labels of shape (n_samples,), got shape {y.shape}; "
            f"{hint}"
        )
    if y.dtype.kind in "iub":
        return y.astype(np.int64, copy=False)
    if y.dtype.kind != "f":
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    bad = ~np.isfinite(y) | (y != np.round(y))
    if bad.any():
        raise ValueError(
            f"{name} holds labels that are not whole numbers ({float(y[bad][0]):g} at {_rows(bad)}); "
            f"class labels must be integers 0..C-1; {hint}"
        )
    if np.abs(y).max() >= 2**53:
        big = np.abs(y) >= 2**53
        raise ValueError(f"{name} holds a label too large to be a class ({float(y[big][0]):g} at {_rows(big)})")
    return y.astype(np.int64)


def check_targets(
    y: Any, loss_name: str, task: str, *, classes: int | None = None, name: str = "y"
) -> tuple[np.ndarray, int]:
    """Check the targets of a whole data set against the loss; return them and the width of
    the output layer.

    Parameters
    ----------
    y : array of shape (n_samples,) or (n_samples, n_targets)
    loss_name : str
        The loss's registry name (binary losses take 0/1 labels and one output).
    task : {"classification", "multilabel", "regression"}
    classes : int or None
        The declared number of classes (labels 0..classes-1, some may have no samples);
        None: the labels must be exactly 0..C-1, every one present.
    name : str
        How messages call ``y``.

    Returns
    -------
    y : ndarray (int64 labels for classification, float32 targets otherwise)
    n_outputs : int

    Raises
    ------
    ValueError, TypeError
        Naming the odd labels and their rows.
    """
    y = np.asarray(y)
    if task == "regression":
        if y.ndim not in (1, 2) or y.dtype.kind not in "iuf":
            raise ValueError(f"{name} must be numeric targets of shape (n_samples,) or (n_samples, n), got {y.dtype} {y.shape}")
        bad = ~np.isfinite(y) if y.dtype.kind == "f" else np.zeros(y.shape, bool)
        if bad.any():
            raise ValueError(f"{name} contains NaN or Inf (at {_rows(bad.reshape(len(y), -1).any(1))})")
        return y.astype(np.float32, copy=False), (int(np.prod(y.shape[1:])) if y.ndim > 1 else 1)
    if task == "multilabel":
        if y.ndim != 2 or not np.isin(y, (0, 1)).all():
            raise ValueError(f"{name} must be 0/1 attributes of shape (n_samples, n_attributes), got {y.shape}")
        return y.astype(np.int64, copy=False), y.shape[1]
    hint = "for real-valued targets use a regression loss (--loss mse)"
    labels = _integer_labels(y, name, hint)
    if loss_name in BINARY_LOSSES:
        present = np.unique(labels)
        if not np.isin(present, (0, 1)).all():
            odd = ~np.isin(labels, (0, 1))
            raise ValueError(
                f"loss {loss_name!r} takes binary labels 0 and 1, but {name} has "
                f"{present.size} distinct labels ({_values(present)}; {labels[odd][0]} at "
                f"{_rows(odd)}); for more than two classes use softmax or hinge"
            )
        return labels, 1
    if labels.min() < 0:
        neg = labels < 0
        raise ValueError(
            f"{name} has negative class labels ({labels[neg][0]} at {_rows(neg)}); "
            "class labels must be 0..C-1"
        )
    top = int(labels.max())
    if classes is not None:
        if top >= classes:
            over = labels >= classes
            raise ValueError(
                f"{name} has label {labels[over][0]} at {_rows(over)}, but the run declares "
                f"{classes} classes (labels 0..{classes - 1})"
            )
        return labels, classes
    present = np.unique(labels)
    if present.size < 2:
        raise ValueError(
            f"{name} has 1 class ({present[0]}); classification needs at least 2"
        )
    if present.size != top + 1:
        missing = top + 1 - present.size
        # the labels past the first gap are the odd ones (a typo such as 999 among 0, 1, 2)
        first_gap = int(np.flatnonzero(present != np.arange(present.size))[0])
        odd_values = present[first_gap:]
        odd = np.isin(labels, odd_values)
        raise ValueError(
            f"class labels must be 0..C-1 with every class present, but {name} has labels "
            f"{_values(present)} ({present.size} distinct): {missing} of 0..{top} have no "
            f"samples. Check the labels {_values(odd_values)} ({_rows(odd)}), or declare the "
            f"number of classes (--classes, data.classes, or the estimator's classes) if some "
            "really have no samples"
        )
    return labels, top + 1


def check_training_classes(y_train: np.ndarray, n_classes: int, y_all: np.ndarray) -> None:
    """Every class of 0..n_classes-1 that the data has must have a training sample (the split
    could otherwise leave a class only in the validation or test part)."""
    counts = np.bincount(y_all, minlength=n_classes)
    absent = np.flatnonzero((np.bincount(y_train, minlength=n_classes) == 0) & (counts > 0))
    if absent.size:
        c = int(absent[0])
        raise ValueError(
            f"class {c} has no sample in the training split (it has {counts[c]} in all); "
            "lower --test-size / --val-size or add samples of it"
        )
