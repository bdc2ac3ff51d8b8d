"""Baselines a trained network must beat, and checks of the data it learns from.

Two pieces of advice from model debugging: compare the network with trivial baselines (a
network that does not beat a linear model is not earning its hidden layers), and look at the
data before blaming the model (test rows that repeat training rows inflate the test score;
identical inputs with different labels cap what any model can reach).

Baselines (:func:`baselines`), fitted on the training rows and scored on evaluation rows with
the metric names of :mod:`neuronlab.train.evaluation` (``"acc"`` or ``"error"``):

==============  ===================================  ======================================
task            constant baseline                    linear baseline
==============  ===================================  ======================================
classification  the majority class of the training  a network with no hidden layer
                labels (its accuracy); its loss for  (``mlp(n_in, [], n_out)``) and the
                softmax / sigmoid cross-entropy is   run's loss, trained by the library's
                that of predicting the training      own :class:`~neuronlab.train.Trainer`
                class frequencies                    (Adam, a few epochs, monitor off)
multilabel      the majority value of each           the same, with sigmoid cross-entropy
                attribute                            over the attributes
regression      the training mean (its mean squared  least squares with an intercept, in
                error)                               closed form (``np.linalg.lstsq``)
==============  ===================================  ======================================

Data checks, exact and linear in the number of rows (each row's bytes are hashed to 64 bits
a chunk at a time, so a memory-mapped file is read once without being mapped whole; rows with
equal hashes are then compared byte for byte, so a hash collision can never report a false
match):

* :func:`duplicates_across` — rows of one array (a test set) that also appear in another (the
  training set);
* :func:`conflicting_labels` — groups of identical inputs that carry different labels. For
  regression the same groups are reported (identical inputs with different targets), but they
  are noise rather than a labelling error: the report's ``best_possible`` is then the lowest
  mean squared error any function can reach on those rows (the within-group variance).

Rows are compared after casting both arrays to a common dtype (``np.result_type``), with
``-0.0`` made ``+0.0``; NaN values match only when their bits are equal.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuronlab._validation import as_rng, check_positive_int
from neuronlab.babysit.runview import number
from neuronlab.data.arrays import batch

__all__ = [
    "LINEAR_BATCH_SIZE",
    "LINEAR_EPOCHS",
    "LINEAR_LR",
    "LINEAR_MIN_STEPS",
    "MAX_ROWS",
    "TASKS",
    "Baselines",
    "ConflictReport",
    "DuplicateReport",
    "baselines",
    "baselines_for_run",
    "conflicting_labels",
    "duplicates_across",
]

TASKS = ("classification", "multilabel", "regression")
#: The linear classifier trains on at most this many training rows (a seeded random subset),
#: and the least-squares fit solves on as many: a baseline costs well under a second.
MAX_ROWS = 10_000
#: Epochs, minibatch size and Adam learning rate of the linear classifier. On standardised
#: digits 10 epochs reach 95-96% validation accuracy, within a point of a converged fit.
LINEAR_EPOCHS = 10
#: ... and at least this many steps: small data gets more epochs (100 rows: 150 epochs).
LINEAR_MIN_STEPS = 300
LINEAR_BATCH_SIZE = 64
LINEAR_LR = 1e-2
_CHUNK_BYTES = 16 << 20  # rows hashed per chunk
_EXAMPLES = 5  # index pairs / groups kept as examples
_PART_NAMES = {"train": "training", "val": "validation", "test": "test"}


# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Baselines:
    """The numbers a trained network must beat (see the module docstring).

    Attributes
    ----------
    task : {"classification", "multilabel", "regression"}
    metric : {"acc", "error"}
        Accuracy (fraction right over every predicted value) or mean squared error per
        target value, as :func:`neuronlab.train.evaluation.evaluate` names them.
    constant, constant_name : float, str
        The constant baseline's metric on the evaluation rows and what it is ("majority
        class", "majority of each attribute", "training mean").
    constant_value : int, float or list
        What it predicts: the majority class, each attribute's majority, the training mean.
    constant_loss : float or None
        The loss of the constant prediction on the evaluation rows: softmax cross-entropy of
        the training class frequencies (−mean ln f[y]); sigmoid cross-entropy of the
        training frequency of each attribute; a regression loss of the training mean. None
        for the hinge losses. Infinite when an evaluation label never occurs in training.
    linear, linear_loss : float or None
        The linear baseline's metric and loss on the evaluation rows (None when ``linear``
        was False).
    linear_name, linear_how : str
        "linear baseline", and how it was fitted.
    n_train, n_eval, linear_rows : int
        Training rows (the constant baseline uses all), evaluation rows, and the training
        rows the linear baseline was fitted on (at most ``max_rows``).
    part : str
        The evaluation rows: "val", "test", "train" (as ``neuronlab train`` names the parts
        of a run) or "eval" (rows given to :func:`baselines`).
    degenerate : str
        Why there is nothing to learn ("" when there is): one class, or constant targets
        (the linear baseline is then not fitted).
    """

    task: str
    metric: str
    constant: float
    constant_name: str
    constant_value: Any
    constant_loss: float | None
    linear: float | None
    linear_loss: float | None
    linear_name: str
    linear_how: str
    n_train: int
    n_eval: int
    linear_rows: int
    part: str = "eval"
    degenerate: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-able values (non-finite numbers as None)."""
        return {
            "task": self.task, "metric": self.metric, "part": self.part,
            "constant": number(self.constant), "constant_name": self.constant_name,
            "constant_value": self.constant_value, "constant_loss": number(self.constant_loss),
            "linear": number(self.linear), "linear_loss": number(self.linear_loss),
            "linear_name": self.linear_name, "linear_how": self.linear_how,
            "n_train": self.n_train, "n_eval": self.n_eval, "linear_rows": self.linear_rows,
            "degenerate": self.degenerate,
        }

    # -- sentences ------------------------------------------------------------------------
    def _fmt(self, v: float) -> str:
        return f"{100 * v:.1f}%" if self.metric == "acc" else f"{v:.4g}"

    @property
    def metric_name(self) -> str:
        """The metric in words: "accuracy" or "mean squared error"."""
        return "accuracy" if self.metric == "acc" else "mean squared error"

    def summary(self) -> str:
        """One line: the baseline numbers, e.g. "majority class 10.1% accuracy (loss 2.30),
        linear baseline 96.0% (loss 0.141) on 450 test rows", or "mean squared error of the
        training mean 1.02, of the linear baseline 0.41 on 200 validation rows"."""
        where = _PART_NAMES.get(self.part, "evaluation")
        if self.metric == "error":
            text = f"mean squared error of the {self.constant_name} {self._fmt(self.constant)}"
            if self.linear is not None:
                text += f", of the {self.linear_name} {self._fmt(self.linear)}"
            return f"{text} on {self.n_eval} {where} rows"
        loss = "" if self.constant_loss is None else f" (loss {self.constant_loss:.3g})"
        text = f"{self.constant_name} {self._fmt(self.constant)} {self.metric_name}{loss}"
        if self.linear is not None:
            lin = "" if self.linear_loss is None else f" (loss {self.linear_loss:.3g})"
            text += f", {self.linear_name} {self._fmt(self.linear)}{lin}"
        return f"{text} on {self.n_eval} {where} rows"

    def network_value(self, network_metrics: Mapping[str, Any]) -> float:
        """The network's metric from ``network_metrics``: the key ``metric`` ("acc" or
        "error"), else with a ``val_`` or ``test_`` prefix (``evaluate``'s output).

        Parameters
        ----------
        network_metrics : mapping
            The network's metrics on the same rows, e.g. ``trainer.evaluate(X, y)`` or an
            epoch record.

        Returns
        -------
        float

        Raises
        ------
        KeyError
            If none of the three keys has a value.
        """
        for key in (self.metric, f"val_{self.metric}", f"test_{self.metric}"):
            if key in network_metrics and network_metrics[key] is not None:
                return float(network_metrics[key])
        raise KeyError(f"network_metrics has no {self.metric!r} (nor val_/test_ "
                       f"{self.metric!r}); it has {sorted(network_metrics)}")

    def compare(self, network_metrics: Mapping[str, Any]) -> str:
        """The sentence the report and the CLI print, e.g. "the network beats the linear
        baseline by 6.1 points of accuracy (97.8% vs 91.7%) and the majority class by 87.6
        points (97.8% vs 10.2%)". A tie does not beat.

        Parameters
        ----------
        network_metrics : mapping
            As for :meth:`network_value`, measured on the same rows (``part``).

        Returns
        -------
        str

        Raises
        ------
        KeyError
            If ``network_metrics`` has no value of the metric.
        """
        v = self.network_value(network_metrics)
        if not math.isfinite(v):
            return f"the network's {self.metric_name} is not finite ({v}); it beats no baseline"
        acc = self.metric == "acc"
        rivals = [(n, b) for n, b in ((self.linear_name, self.linear),
                                      (self.constant_name, self.constant)) if b is not None]
        beaten = [(v > b) if acc else (v < b) for _, b in rivals]

        def gap(b: float) -> str:  # how far apart, in the metric's natural unit
            if acc:
                return f"{100 * abs(v - b):.1f} points"
            if b <= 0:
                return "n/a"
            if 0 < v <= b / 10:
                return f"{b / v:.0f} times lower"
            if v >= 10 * b:
                return f"{v / b:.0f} times higher"
            return f"{100 * abs(1 - v / b):.0f}% {'lower' if v < b else 'higher'}"

        first_name, first = rivals[0]
        unit = " of accuracy" if acc else ""
        if acc:
            head = (f"the network beats the {first_name} by {gap(first)}{unit} "
                    f"({self._fmt(v)} vs {self._fmt(first)})" if beaten[0] else
                    f"the network does not beat the {first_name} ({self._fmt(v)} vs "
                    f"{self._fmt(first)} accuracy, {gap(first)} below)")
        else:
            head = (f"the network beats the {first_name}: mean squared error {self._fmt(v)} "
                    f"vs {self._fmt(first)} ({gap(first)})" if beaten[0] else
                    f"the network does not beat the {first_name} (mean squared error "
                    f"{self._fmt(v)} vs {self._fmt(first)}, {gap(first)})")
        if len(rivals) == 1:
            return head
        name, b = rivals[1]
        if beaten[1]:
            how = f"by {gap(b)} ({self._fmt(v)} vs {self._fmt(b)})" if acc else (
                f"({self._fmt(b)}, {gap(b)})")
            return f"{head} and the {name} {how}" if beaten[0] else f"{head}; it beats the {name} {how}"
        tail = f"({self._fmt(b)})"
        return f"{head} nor the {name} {tail}" if not beaten[0] else (
            f"{head} but not the {name} {tail}")


@dataclass(frozen=True)
class DuplicateReport:
    """Rows of ``X_b`` that also appear in ``X_a`` (:func:`duplicates_across`).

    Attributes
    ----------
    n_a, n_b : int
        Rows compared on each side.
    n_duplicates : int
        Rows of X_b equal to some row of X_a.
    rows_b, rows_a : ndarray of int64, shape (n_duplicates,)
        Each duplicated row of X_b and the first equal row of X_a (row numbers of the arrays
        given, also when ``rows_a`` / ``rows_b`` selected a part of them), in X_b's order.
    """

    n_a: int
    n_b: int
    n_duplicates: int
    rows_b: np.ndarray
    rows_a: np.ndarray

    @property
    def fraction(self) -> float:
        """n_duplicates / n_b (0 for an empty X_b)."""
        return self.n_duplicates / self.n_b if self.n_b else 0.0

    @property
    def examples(self) -> list[tuple[int, int]]:
        """The first few ``(row of X_a, row of X_b)`` pairs."""
        return [(int(a), int(b)) for a, b in zip(self.rows_a[:_EXAMPLES], self.rows_b[:_EXAMPLES])]

    def to_dict(self) -> dict[str, Any]:
        """The counts as JSON-able values.

        Returns
        -------
        dict
            ``n_a``, ``n_b``, ``n_duplicates``, ``fraction`` and ``examples`` (the first
            few ``[row of X_a, row of X_b]`` pairs; not the full row arrays).
        """
        return {"n_a": self.n_a, "n_b": self.n_b, "n_duplicates": self.n_duplicates,
                "fraction": self.fraction, "examples": [list(p) for p in self.examples]}


@dataclass(frozen=True)
class ConflictReport:
    """Groups of identical input rows whose labels (targets) differ (:func:`conflicting_labels`).

    Attributes
    ----------
    task : {"classification", "multilabel", "regression"}
    n_rows : int
        Rows examined.
    n_repeated : int
        Rows equal to an earlier row (whatever their labels).
    n_groups : int
        Groups of identical inputs with more than one distinct label (target row).
    n_conflicting_rows : int
        Rows in those groups.
    metric : {"acc", "error"}
    best_possible : float
        Classification / multilabel: the highest accuracy any function of the inputs can
        reach on these rows (each conflicting group predicted by its most common label, per
        attribute for multilabel). Regression: the lowest mean squared error per target value
        (each group predicted by its mean). 1.0 / 0.0 without conflicts.
    groups : list of list of int
        The first few conflicting groups, as row numbers (at most 10 rows each).
    labels : list of list
        Their labels, in the same order.
    """

    task: str
    n_rows: int
    n_repeated: int
    n_groups: int
    n_conflicting_rows: int
    metric: str
    best_possible: float
    groups: list[list[int]]
    labels: list[list[Any]]

    @property
    def fraction(self) -> float:
        """n_conflicting_rows / n_rows."""
        return self.n_conflicting_rows / self.n_rows if self.n_rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The fields, and ``fraction``, as JSON-able values.

        Returns
        -------
        dict
        """
        return {"task": self.task, "n_rows": self.n_rows, "n_repeated": self.n_repeated,
                "n_groups": self.n_groups, "n_conflicting_rows": self.n_conflicting_rows,
                "fraction": self.fraction, "metric": self.metric,
                "best_possible": self.best_possible, "groups": self.groups, "labels": self.labels}


# -- row hashing -------------------------------------------------------------------------------
# splitmix64's finaliser: a bijection of uint64 that mixes every input bit into every output bit
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser applied in place (uint64 arithmetic wraps: no warnings for arrays)."""
    x ^= x >> _S30
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


def _salts(n: int) -> np.ndarray:
    """A distinct mixed constant per 8-byte word position, so that moving a word changes the
    hash (the row hash is a sum over positions)."""
    return _mix(np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))


def _words(chunk: np.ndarray) -> np.ndarray:
    """The row bytes of a contiguous chunk as (m, w) uint64 words, zero-padded to 8 bytes."""
    m = chunk.shape[0]
    b = chunk.reshape(m, -1).view(np.uint8)
    pad = -b.shape[1] % 8
    if pad:
        b = np.concatenate([b, np.zeros((m, pad), np.uint8)], axis=1)
    return np.ascontiguousarray(b).view(np.uint64)


def _hash_words(words: np.ndarray, salts: np.ndarray) -> np.ndarray:
    x = words + salts[: words.shape[1]]
    h = _mix(x).sum(axis=1, dtype=np.uint64)
    return _mix(h)


def _as_rows(name: str, data: Any) -> np.ndarray:
    X: np.ndarray = data if isinstance(data, np.ndarray) else np.asarray(data)
    if X.ndim < 2 or X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric array of shape (n_samples, n_features, ...), "
                         f"got {X.dtype} {X.shape}")
    return X


def _check_rows(name: str, rows: Any, n: int) -> np.ndarray | None:
    if rows is None:
        return None
    r = np.asarray(rows)
    if r.ndim != 1 or (r.size and r.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be a 1-D array of row indices, got {r.dtype} {r.shape}")
    r = r.astype(np.int64, copy=False)
    if r.size and (r.min() < 0 or r.max() >= n):
        raise IndexError(f"{name} holds indices outside 0..{n - 1}")
    return r


def _chunks(X: np.ndarray, rows: np.ndarray | None, dtype: np.dtype[Any]
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(row numbers, rows as dtype, contiguous, -0.0 made +0.0)`` a chunk at a time; a
    memmap's rows are read from its file (:func:`neuronlab.data.batch`)."""
    n = X.shape[0] if rows is None else rows.size
    width = int(np.prod(X.shape[1:], dtype=np.int64))
    step = max(1, _CHUNK_BYTES // max(1, width * dtype.itemsize))
    for s in range(0, n, step):
        idx = np.arange(s, min(s + step, n), dtype=np.int64) if rows is None else rows[s : s + step]
        if isinstance(X, np.memmap) or rows is not None or X.dtype != dtype:
            chunk = batch(X, idx, dtype=dtype)
        else:
            chunk = np.array(X[s : s + step], dtype=dtype, order="C")
        if dtype.kind == "f":
            chunk += 0.0  # -0.0 + 0.0 is +0.0: the two zeros compare equal
        yield idx, chunk


def _hash_rows(X: np.ndarray, rows: np.ndarray | None, dtype: np.dtype[Any]
               ) -> tuple[np.ndarray, np.ndarray]:
    """(row numbers, 64-bit hashes) of every row (of ``rows``) of X."""
    width = int(np.prod(X.shape[1:], dtype=np.int64)) * dtype.itemsize
    salts = _salts(-(-width // 8))
    ids, hashes = [], []
    for idx, chunk in _chunks(X, rows, dtype):
        ids.append(idx)
        hashes.append(_hash_words(_words(chunk), salts))
    if not ids:
        return np.empty(0, np.int64), np.empty(0, np.uint64)
    return np.concatenate(ids), np.concatenate(hashes)


def _read(X: np.ndarray, idx: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    out = batch(X, idx, dtype=dtype).reshape(len(idx), -1)
    if dtype.kind == "f":
        out += 0.0
    return _words(out)


class _RowIndex:
    """The rows of X (of ``rows``) by hash, to find exact copies of other rows."""

    def __init__(self, X: np.ndarray, rows: np.ndarray | None, dtype: np.dtype[Any]) -> None:
        ids, hashes = _hash_rows(X, rows, dtype)
        order = np.argsort(hashes, kind="stable")  # equal hashes: lowest row number first
        self.X, self.dtype = X, dtype
        self.hashes, self.ids, self.n = hashes[order], ids[order], ids.size

    def find(self, Y: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
        """(rows of Y found in X, the first equal row of X for each, rows of Y examined)."""
        width = int(np.prod(Y.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        salts = _salts(-(-width // 8))
        found_b, found_a, n_b = [], [], 0
        for idx, chunk in _chunks(Y, rows, self.dtype):
            n_b += idx.size
            words = _words(chunk)
            h = _hash_words(words, salts)
            lo = np.searchsorted(self.hashes, h, side="left")
            hi = np.searchsorted(self.hashes, h, side="right")
            cand = np.flatnonzero(hi > lo)
            if cand.size == 0:
                continue
            a_rows = self.ids[lo[cand]]
            same = (_read(self.X, a_rows, self.dtype) == words[cand]).all(axis=1)
            match = np.where(same, a_rows, -1)
            for j in np.flatnonzero(~same):  # a 64-bit hash collision: try the others
                for k in range(lo[cand[j]] + 1, hi[cand[j]]):
                    other = self.ids[k : k + 1]
                    if (_read(self.X, other, self.dtype)[0] == words[cand[j]]).all():
                        match[j] = other[0]
                        break
            keep = match >= 0
            found_b.append(idx[cand[keep]])
            found_a.append(match[keep])
        if not found_b:
            return np.empty(0, np.int64), np.empty(0, np.int64), n_b
        return np.concatenate(found_b), np.concatenate(found_a), n_b


def _common_dtype(*arrays: np.ndarray) -> np.dtype[Any]:
    return np.dtype(np.result_type(*(a.dtype for a in arrays)))


def duplicates_across(
    X_a: Any, X_b: Any, *, rows_a: Any = None, rows_b: Any = None
) -> DuplicateReport:
    """Rows of ``X_b`` that also appear, exactly, in ``X_a``.

    Rows are equal when their bytes are, after casting both arrays to their common dtype
    (``-0.0`` counted as ``+0.0``). Every row is hashed once, a chunk at a time (a memmap is
    read from its file), then the hashes of X_a are sorted and those of X_b looked up; a
    match is confirmed byte for byte, so the result is exact.

    Parameters
    ----------
    X_a, X_b : ndarray or np.memmap of shape (n, n_features, ...)
        The same feature shape.
    rows_a, rows_b : array of int, optional
        Compare only these rows (e.g. the training and test parts of one data file); the
        report still numbers rows as in ``X_a`` / ``X_b``.

    Returns
    -------
    DuplicateReport
    """
    X_a, X_b = _as_rows("X_a", X_a), _as_rows("X_b", X_b)
    if X_a.shape[1:] != X_b.shape[1:]:
        raise ValueError(f"X_a and X_b have different row shapes: {X_a.shape[1:]} and {X_b.shape[1:]}")
    ra, rb = _check_rows("rows_a", rows_a, X_a.shape[0]), _check_rows("rows_b", rows_b, X_b.shape[0])
    index = _RowIndex(X_a, ra, _common_dtype(X_a, X_b))
    found_b, found_a, n_b = index.find(X_b, rb)
    return DuplicateReport(index.n, n_b, int(found_b.size), found_b, found_a)


# -- conflicting labels ------------------------------------------------------------------------
def _groups(X: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Rows that have an identical twin: ``(row numbers, group id)``, a group's id being its
    lowest row number; groups contiguous, in the order of their first rows, rows ascending."""
    dtype = X.dtype
    ids, hashes = _hash_rows(X, rows, dtype)
    order = np.argsort(hashes, kind="stable")
    h, ids = hashes[order], ids[order]
    if h.size < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    same_next = h[1:] == h[:-1]
    in_run = np.zeros(h.size, bool)
    in_run[1:] |= same_next
    in_run[:-1] |= same_next
    cand, hc = ids[in_run], h[in_run]
    if cand.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    # verify: each row against the first row of its hash run; the rest of a run (a collision,
    # ~never) is re-grouped by exact bytes
    start = np.concatenate(([True], hc[1:] != hc[:-1]))
    first = np.maximum.accumulate(np.where(start, np.arange(cand.size), 0))
    out_rows, out_gid = [], []
    step = max(2, _CHUNK_BYTES // max(1, int(np.prod(X.shape[1:], dtype=np.int64)) * dtype.itemsize))
    starts = np.flatnonzero(start)
    i = 0
    while i < starts.size:  # whole runs per chunk, about `step` rows each
        j = int(np.searchsorted(starts, starts[i] + step, side="left"))
        j = max(j, i + 1)
        lo, hi = starts[i], (starts[j] if j < starts.size else cand.size)
        words = _read(X, cand[lo:hi], dtype)
        f = first[lo:hi] - lo
        same = (words == words[f]).all(axis=1)
        rows_here, gid = cand[lo:hi], first[lo:hi].copy()
        if not same.all():
            for r in np.unique(f[~same]):  # regroup this run by its bytes
                members = np.flatnonzero(f == r)
                seen: dict[bytes, int] = {}
                for m in members:
                    gid[m] = lo + seen.setdefault(words[m].tobytes(), int(m))
        out_rows.append(rows_here)
        out_gid.append(gid)
        i = j
    rows_all, gid_all = np.concatenate(out_rows), np.concatenate(out_gid)
    order = np.lexsort((rows_all, gid_all))
    rows_all, gid_all = rows_all[order], gid_all[order]
    starts = np.flatnonzero(np.concatenate(([True], gid_all[1:] != gid_all[:-1])))
    sizes = np.diff(np.append(starts, gid_all.size))
    keep = np.repeat(sizes >= 2, sizes)  # a collision's odd row out is alone: no group
    first_row = np.repeat(rows_all[starts], sizes)  # a group's id: its lowest row number
    rows_all, gid_all = rows_all[keep], first_row[keep]
    order = np.lexsort((rows_all, gid_all))  # groups in the order of their first rows
    return rows_all[order], gid_all[order]


def conflicting_labels(X: Any, y: Any, *, task: str = "classification",
                       rows: Any = None) -> ConflictReport:
    """Groups of identical input rows whose labels differ.

    Identical means bytewise equal in X's dtype (``-0.0`` as ``+0.0``), found by hashing
    every row once (a memmap a chunk at a time) and confirmed byte for byte.

    Parameters
    ----------
    X : ndarray or np.memmap of shape (n_samples, n_features, ...)
    y : array of shape (n_samples,) or (n_samples, n_outputs)
        Class labels, 0/1 attributes (multilabel) or regression targets; a label differs when
        any of its values does.
    task : {"classification", "multilabel", "regression"}
        Decides what ``best_possible`` means (see :class:`ConflictReport`). For regression
        identical inputs with different targets are measurement noise, not a labelling
        error: they are reported with the noise floor they put on the mean squared error.
    rows : array of int, optional
        Examine only these rows (numbered as in X in the report).

    Returns
    -------
    ConflictReport
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    X = _as_rows("X", X)
    yy = np.asarray(y)
    if yy.ndim == 0 or yy.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has shape {yy.shape}")
    r = _check_rows("rows", rows, X.shape[0])
    n = X.shape[0] if r is None else int(r.size)
    members, gid = _groups(X, r)
    metric = "error" if task == "regression" else "acc"
    width = int(np.prod(yy.shape[1:], dtype=np.int64))
    if members.size == 0:
        return ConflictReport(task, n, 0, 0, 0, metric, 0.0 if metric == "error" else 1.0, [], [])
    Y = yy[members].reshape(members.size, -1)
    starts = np.flatnonzero(np.concatenate(([True], gid[1:] != gid[:-1])))
    sizes = np.diff(np.append(starts, members.size))
    n_repeated = int(members.size - starts.size)
    firsts = np.repeat(starts, sizes)
    differs = (Y != Y[firsts]).any(axis=1)
    bad = np.add.reduceat(differs.astype(np.int64), starts) > 0
    n_groups, n_bad_rows = int(bad.sum()), int(sizes[bad].sum())
    best = _best_possible(task, Y, starts, sizes, bad, n, width)
    groups, labels = [], []
    for g in np.flatnonzero(bad)[:_EXAMPLES]:
        s, k = int(starts[g]), int(min(sizes[g], 10))
        groups.append([int(v) for v in members[s : s + k]])
        labels.append([(v.tolist() if width > 1 or yy.ndim > 1 else v.item())
                       for v in yy[members[s : s + k]]])
    return ConflictReport(task, n, n_repeated, n_groups, n_bad_rows, metric, best, groups, labels)


def _best_possible(task: str, Y: np.ndarray, starts: np.ndarray, sizes: np.ndarray,
                   bad: np.ndarray, n: int, width: int) -> float:
    """The accuracy ceiling (or the MSE floor) the conflicting groups put on all n rows."""
    if not bad.any():
        return 0.0 if task == "regression" else 1.0
    gid = np.repeat(np.arange(starts.size), sizes)
    if task == "regression":
        Yf = Y.astype(np.float64)
        mean = np.add.reduceat(Yf, starts, axis=0) / sizes[:, None]
        sq = ((Yf - mean[gid]) ** 2).sum()  # groups without conflict contribute exactly 0
        return float(sq / (n * width))
    if task == "multilabel":
        ones = np.add.reduceat(Y.astype(np.int64), starts, axis=0)
        wrong = np.minimum(ones, sizes[:, None] - ones).sum()
        return 1.0 - float(wrong) / (n * width)
    # classification: each group's best guess is its most common label
    keys = Y[:, 0] if Y.shape[1] == 1 else np.unique(Y, axis=0, return_inverse=True)[1].ravel()
    order = np.lexsort((keys, gid))
    g, k = gid[order], keys[order]
    new = np.concatenate(([True], (g[1:] != g[:-1]) | (k[1:] != k[:-1])))
    run_starts = np.flatnonzero(new)
    counts = np.diff(np.append(run_starts, g.size))
    run_group = g[run_starts]
    top = np.zeros(starts.size, np.int64)
    np.maximum.at(top, run_group, counts)
    wrong = int((sizes - top).sum())
    return 1.0 - wrong / n


# -- baselines ---------------------------------------------------------------------------------
def _default_loss(task: str) -> Any:
    from neuronlab.losses.classification import SigmoidCrossEntropy, SoftmaxCrossEntropy
    from neuronlab.losses.regression import MeanSquaredError

    if task == "regression":
        return MeanSquaredError()
    return SigmoidCrossEntropy(multilabel=True) if task == "multilabel" else SoftmaxCrossEntropy()


def _xlogp(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """x·ln p with 0·ln 0 = 0 (and x·ln 0 = -inf for x > 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(x == 0, 0.0, x * np.log(p))
    return out


def _labels(name: str, y: Any) -> np.ndarray:
    a = np.asarray(y)
    if a.dtype.kind == "f" and np.isfinite(a).all() and (a == np.round(a)).all():
        a = a.astype(np.int64)
    if a.dtype.kind not in "biu":
        raise ValueError(f"{name} must hold integer class labels, got {a.dtype}")
    return a.astype(np.int64, copy=False)


def _binary_output(loss: Any) -> bool:
    from neuronlab.data.labels import BINARY_LOSSES

    return getattr(type(loss), "registry_name", "") in BINARY_LOSSES


def _subset(X: np.ndarray, y: np.ndarray, max_rows: int, seed: int
            ) -> tuple[np.ndarray, np.ndarray]:
    n = X.shape[0]
    idx = np.arange(n) if n <= max_rows else np.sort(
        as_rng(seed).choice(n, size=max_rows, replace=False))
    dtype = X.dtype if X.dtype == np.float64 else np.float32
    return batch(X, idx, dtype=dtype), y[idx]


def _constant_classification(loss: Any, y_tr: np.ndarray, y_ev: np.ndarray
                             ) -> tuple[float, Any, float | None, str]:
    from neuronlab.losses.classification import SigmoidCrossEntropy, SoftmaxCrossEntropy

    values, counts = np.unique(y_tr, return_counts=True)
    major = int(values[np.argmax(counts)])  # ties: the smallest label
    acc = float(np.count_nonzero(y_ev == major)) / y_ev.size
    closs: float | None = None
    if isinstance(loss, SoftmaxCrossEntropy) and values.min() >= 0:
        c = int(max(values.max(), y_ev.max(initial=0))) + 1
        freq = np.bincount(y_tr, minlength=c) / y_tr.size
        with np.errstate(divide="ignore"):
            closs = float(-np.log(freq[y_ev]).mean())
    elif isinstance(loss, SigmoidCrossEntropy):
        p = np.array(float(np.count_nonzero(y_tr == 1)) / y_tr.size)  # 0/1 labels
        t = (y_ev == 1).astype(np.float64)
        closs = float(-(_xlogp(t, p) + _xlogp(1 - t, 1 - p)).mean())
    degenerate = "" if values.size > 1 else (
        f"the training labels have one class ({major}): there is nothing to learn")
    return acc, major, closs, degenerate


def _constant_multilabel(loss: Any, y_tr: np.ndarray, y_ev: np.ndarray
                         ) -> tuple[float, Any, float | None, str]:
    from neuronlab.losses.classification import SigmoidCrossEntropy

    p = y_tr.mean(axis=0)
    major = (p > 0.5).astype(np.int64)  # ties (p = 0.5): 0
    acc = float((y_ev == major).mean())
    closs = None
    if isinstance(loss, SigmoidCrossEntropy):
        t = y_ev.astype(np.float64)
        closs = float(-(_xlogp(t, p) + _xlogp(1 - t, 1 - p)).sum(axis=1).mean())
    constant = bool((y_tr == y_tr[:1]).all())
    degenerate = ("the training attributes are all constant: there is nothing to learn"
                  if constant else "")
    return acc, major.tolist(), closs, degenerate


def _linear_classifier(X_tr: np.ndarray, y_tr: np.ndarray, X_ev: np.ndarray, y_ev: np.ndarray,
                       loss: Any, n_out: int, epochs: int, seed: int) -> tuple[float, float]:
    from neuronlab.layers.builders import mlp
    from neuronlab.optim import Adam
    from neuronlab.train.evaluation import evaluate
    from neuronlab.train.trainer import Trainer

    width = int(np.prod(X_tr.shape[1:], dtype=np.int64))
    model = mlp(width, [], n_out, rng=seed, dtype=X_tr.dtype)
    lossc = copy.deepcopy(loss)
    Trainer(model, lossc, Adam(lr=LINEAR_LR), monitor=False).fit(
        X_tr, y_tr, epochs=epochs, batch_size=LINEAR_BATCH_SIZE, seed=seed)
    scores = evaluate(model, lossc, X_ev, y_ev)
    return float(scores["acc"]), float(scores["loss"])


def _linear_epochs(n_rows: int, epochs: int) -> int:
    """``epochs``, raised so that the fit takes at least LINEAR_MIN_STEPS steps."""
    per_epoch = -(-n_rows // LINEAR_BATCH_SIZE)
    return max(epochs, -(-LINEAR_MIN_STEPS // per_epoch))


def _regression(X_tr: np.ndarray, y_tr: np.ndarray, X_ev: np.ndarray, y_ev: np.ndarray,
                loss: Any, linear: bool, max_rows: int, seed: int) -> dict[str, Any]:
    Yt = np.asarray(y_tr, dtype=np.float64).reshape(len(y_tr), -1)
    Ye = np.asarray(y_ev, dtype=np.float64).reshape(len(y_ev), -1)
    mean = Yt.mean(axis=0)
    out: dict[str, Any] = {
        "constant": float(((Ye - mean) ** 2).mean()),
        "constant_value": float(mean[0]) if np.ndim(y_tr) == 1 else mean.tolist(),
        "constant_loss": float(copy.deepcopy(loss).forward(
            np.broadcast_to(mean, Ye.shape).reshape(np.shape(y_ev)).copy(), y_ev)),
        "degenerate": "the training targets are constant: there is nothing to learn"
        if bool((Yt == Yt[:1]).all()) else "",
        "linear": None, "linear_loss": None, "linear_rows": 0, "linear_how": "",
    }
    if not linear or out["degenerate"]:
        out["linear_how"] = "not fitted: nothing to learn" if linear else ""
        return out
    Xs, ys = _subset(X_tr, np.arange(X_tr.shape[0]), max_rows, seed)
    A = np.empty((Xs.shape[0], int(np.prod(Xs.shape[1:], dtype=np.int64)) + 1))
    A[:, :-1] = Xs.reshape(Xs.shape[0], -1)
    A[:, -1] = 1.0
    coef = np.linalg.lstsq(A, Yt[ys], rcond=None)[0]
    pred = np.empty_like(Ye)
    step = max(1, _CHUNK_BYTES // (8 * A.shape[1]))
    for s in range(0, X_ev.shape[0], step):
        idx = np.arange(s, min(s + step, X_ev.shape[0]))
        xb = batch(X_ev, idx, dtype=np.float64).reshape(idx.size, -1)
        pred[idx] = xb @ coef[:-1] + coef[-1]
    out.update(
        linear=float(((pred - Ye) ** 2).mean()),
        linear_loss=float(copy.deepcopy(loss).forward(pred.reshape(np.shape(y_ev)), y_ev)),
        linear_rows=int(Xs.shape[0]),
        linear_how=f"least squares with an intercept (np.linalg.lstsq) on {Xs.shape[0]} rows",
    )
    return out


def baselines(
    X_train: Any,
    y_train: Any,
    X_eval: Any,
    y_eval: Any,
    *,
    task: str,
    loss: Any = None,
    linear: bool = True,
    epochs: int = LINEAR_EPOCHS,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
    part: str = "eval",
) -> Baselines:
    """The constant and linear baselines, fitted on the training rows and scored on the
    evaluation rows (see the module docstring).

    Parameters
    ----------
    X_train, X_eval : ndarray or np.memmap of shape (n, n_features, ...)
        As the network sees them (preprocessed).
    y_train, y_eval : array of shape (n,) or (n, n_outputs)
    task : {"classification", "multilabel", "regression"}
    loss : Loss, optional
        The network's loss (its ``task`` must be ``task``): the linear classifier trains with
        a copy of it, and the baselines' losses are measured with it. Default: softmax
        cross-entropy, sigmoid cross-entropy over the attributes, or mean squared error.
    linear : bool, default True
        Fit the linear baseline (False: the constant one only, which reads only the labels).
    epochs : int > 0, default LINEAR_EPOCHS
        Epochs of the linear classifier (Adam at LINEAR_LR, minibatches of LINEAR_BATCH_SIZE),
        raised when they would make fewer than LINEAR_MIN_STEPS steps.
    max_rows : int > 0, default MAX_ROWS
        The linear baseline is fitted on at most this many training rows (a seeded random
        subset); the constant baseline uses every label.
    seed : int, default 0
        Seeds the subset, the linear model's weights and its shuffling.
    part : str, default "eval"
        What the evaluation rows are, for the report ("val", "test", "train").

    Returns
    -------
    Baselines
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if loss is None:
        loss = _default_loss(task)
    elif getattr(loss, "task", None) != task:
        raise ValueError(f"the loss {type(loss).__name__} is for {getattr(loss, 'task', None)!r}, "
                         f"not {task!r}")
    epochs, max_rows = check_positive_int("epochs", epochs), check_positive_int("max_rows", max_rows)
    X_tr, X_ev = _as_rows("X_train", X_train), _as_rows("X_eval", X_eval)
    y_tr, y_ev = np.asarray(y_train), np.asarray(y_eval)
    for xn, X, yn, y in (("X_train", X_tr, "y_train", y_tr), ("X_eval", X_ev, "y_eval", y_ev)):
        if X.shape[0] == 0:
            raise ValueError(f"{xn} has no rows: the baselines need training and evaluation rows")
        if y.ndim == 0 or y.shape[0] != X.shape[0]:
            raise ValueError(f"{xn} has {X.shape[0]} samples but {yn} has shape {y.shape}")
    if X_tr.shape[1:] != X_ev.shape[1:]:
        raise ValueError(f"X_train and X_eval have different row shapes: {X_tr.shape[1:]} "
                         f"and {X_ev.shape[1:]}")
    if y_tr.shape[1:] != y_ev.shape[1:]:
        raise ValueError(f"y_train and y_eval have different shapes per row: {y_tr.shape[1:]} "
                         f"and {y_ev.shape[1:]}")
    common: dict[str, Any] = {"task": task, "n_train": int(y_tr.shape[0]),
                              "n_eval": int(y_ev.shape[0]), "part": part}
    if task == "regression":
        r = _regression(X_tr, y_tr, X_ev, y_ev, loss, linear, max_rows, seed)
        return Baselines(metric="error", constant_name="training mean",
                         linear_name="linear baseline", **r, **common)
    if task == "multilabel":
        y_tr, y_ev = _labels("y_train", y_tr), _labels("y_eval", y_ev)
        if y_tr.ndim != 2:
            raise ValueError("multilabel targets must have shape (n_samples, n_attributes), "
                             f"got {y_tr.shape}")
        acc, value, closs, degenerate = _constant_multilabel(loss, y_tr, y_ev)
        name, n_out = "majority of each attribute", y_tr.shape[1]
    else:
        if y_tr.ndim > 1 and y_tr.shape[1:] != (1,):
            raise ValueError(f"class labels must have shape (n_samples,), got {y_tr.shape}; for "
                             "0/1 attributes use task='multilabel'")
        y_tr, y_ev = _labels("y_train", y_tr).reshape(-1), _labels("y_eval", y_ev).reshape(-1)
        acc, value, closs, degenerate = _constant_classification(loss, y_tr, y_ev)
        name = "majority class"
        n_out = 1 if _binary_output(loss) else max(2, int(max(y_tr.max(), y_ev.max())) + 1)
    lin = lin_loss = None
    rows, how = 0, ""
    if linear and degenerate:
        how = "not fitted: nothing to learn"
    elif linear:
        Xs, ys = _subset(X_tr, y_tr, max_rows, seed)
        rows = int(Xs.shape[0])
        epochs = _linear_epochs(rows, epochs)
        lin, lin_loss = _linear_classifier(Xs, ys, X_ev, y_ev, loss, n_out, epochs, seed)
        how = (f"no hidden layer, {type(loss).__name__}, Adam lr {LINEAR_LR:g}, {epochs} epochs "
               f"of batches of {LINEAR_BATCH_SIZE} on {rows} rows")
    return Baselines(metric="acc", constant=acc, constant_name=name, constant_value=value,
                     constant_loss=closs, linear=lin, linear_loss=lin_loss,
                     linear_name="linear baseline", linear_how=how, linear_rows=rows,
                     degenerate=degenerate, **common)


def baselines_for_run(run: Any, *, part: str | None = None, linear: bool = True) -> Baselines:
    """The baselines of a prepared run (:func:`neuronlab.runs.prepare_run`), fitted on its
    training part and scored on ``part``: "val", "test" or "train"; default the validation
    part, else the test part, else (neither has rows) the training part. The run's loss and
    seed are used; ``Baselines.part`` says which part was scored, so that
    ``b.compare(scores[b.part])`` compares the network on the same rows.

    Parameters
    ----------
    run : RunData or PreparedRun
        ``train``, ``val``, ``test`` pairs (preprocessed), and ``loss`` (a RunData without a
        loss gets the task's default) and ``config`` when it has them.
    part : {"val", "test", "train"} or None
    linear : bool, default True

    Returns
    -------
    Baselines
    """
    pairs = {"train": run.train, "val": run.val, "test": run.test}
    if part is None:
        part = next((p for p in ("val", "test") if pairs[p] is not None and len(pairs[p][1])), "train")
    if part not in pairs:
        raise ValueError(f"part must be 'val', 'test' or 'train', got {part!r}")
    pair = pairs[part]
    if pair is None or not len(pair[1]):
        raise ValueError(f"the run has no {_PART_NAMES[part]} rows to score the baselines on")
    loss = getattr(run, "loss", None)
    cfg = getattr(run, "config", None)
    seed = int(cfg.train.seed) if cfg is not None else 0
    if loss is None:
        from neuronlab.runs import loss_kind

        task = loss_kind(cfg.model.loss)[1] if cfg is not None else "classification"
    else:
        task = loss.task
    return baselines(*run.train, *pair, task=task, loss=loss, linear=linear, seed=seed, part=part)
