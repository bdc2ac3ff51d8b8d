"""Data losses: one signature for all, ``forward(scores, y, sample_weight=None) -> mean
loss`` and ``backward() -> dL/dscores``.

Every loss is the mean over the batch of a per-sample loss L_i, L = (1/N) Σ_i L_i, so the
gradient carries a factor 1/N. With ``sample_weight`` w (one weight w_i >= 0 per sample) it
is the *weighted mean* L = Σ_i w_i L_i / Σ_i w_i: the factor 1/N of sample i becomes
ν_i = w_i / Σ_j w_j, so only the ratios of the weights matter (w = 2 on a row is the same as
the row twice, and w = 1 everywhere is the plain mean). Without weights the loss runs its
plain-mean code, unchanged. Classification losses work from raw scores (logits) and are
stable for logits of any size. ``backward`` returns a fresh array (same shape and dtype as
the scores); the per-sample work of ``forward`` goes into buffers the loss reuses across
calls, so a training step allocates little.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import numpy as np

from neuronlab._validation import check_array, check_positive_int

__all__ = ["Loss", "Weights", "check_sample_weight"]


class Weights(NamedTuple):
    """Sample weights of one forward, prepared for the loss formulas.

    Both arrays are in the scores' dtype, shaped (N,) for scores of shape (N,) and (N, 1)
    otherwise, so that they broadcast over a row's outputs.
    """

    w: np.ndarray  #: w_i / max_j w_j: ratios kept, no overflow in float32; exactly 1 for w = 1
    total: float  #: Σ_i of ``w`` (float64)
    nu: np.ndarray  #: ν_i = w_i / Σ_j w_j, what replaces the plain mean's factor 1/N


def check_sample_weight(
    sample_weight: Any, n_samples: int, name: str = "sample_weight"
) -> np.ndarray:
    """Validate per-sample weights; return them as a float64 array of shape (n_samples,).

    Weights must be real numbers, 1-D with one weight per sample, finite and >= 0, with a
    positive sum (a weighted mean of nothing is undefined). Every refusal is a ValueError
    naming ``name``.
    """
    w = np.asarray(sample_weight)
    if w.dtype.kind == "O":  # e.g. a list mixing numbers and Decimals
        try:
            w = w.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if w.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {w.dtype}")
    w = w.astype(np.float64, copy=False)
    if w.shape != (n_samples,):
        raise ValueError(
            f"{name} must have shape ({n_samples},), one weight per sample, got shape {w.shape}")
    bad = ~np.isfinite(w)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite, got {w[i]} at row {i}")
    if n_samples and w.min() < 0:
        i = int(np.argmin(w))
        raise ValueError(f"{name} must be >= 0, got {w[i]:g} at row {i}")
    if not w.sum() > 0:
        raise ValueError(f"{name} must have a positive sum (some weight > 0), got all zeros")
    return w


class Loss:
    """Base class of the data losses.

    Attributes
    ----------
    task : {"classification", "multilabel", "regression"}
        What the targets are; trainers and estimators choose metrics from it.
    """

    registry_name: ClassVar[str] = ""
    task: str = "classification"
    #: The loss of one batch as a plain function for the compiled training loop
    #: (:mod:`neuronlab.engine`), beside the NumPy ``forward``/``backward`` it is tested
    #: against: ``kernel(scores, yi, yf, idx, d, wb) -> (mean loss, right predictions or
    #: squared error, scores finite)``, the targets of row r being ``yi[idx[r]]`` (labels) or
    #: ``yf[idx[r]]`` (values), ``wb`` the rows' weights (ones without), dL/dscores written
    #: into ``d``. None: the NumPy path only.
    kernel: ClassVar[Any] = None

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}
        self._cache: Any = None  # what backward needs; None until the first forward

    # -- the two directions -------------------------------------------------------------
    def forward(self, scores: np.ndarray, y: Any, sample_weight: Any = None) -> float:
        """Mean loss over the batch; caches what :meth:`backward` needs.

        Parameters
        ----------
        scores : ndarray of shape (n_samples, n_outputs)
            Raw network outputs (logits, margins or values), float32 or float64, finite.
        y : array-like
            Targets: integer labels, 0/1 attributes or values, as the subclass says.
        sample_weight : array-like of shape (n_samples,) or None
            Makes the result the weighted mean Σ_i w_i L_i / Σ_i w_i (weights finite,
            >= 0, with a positive sum).

        Returns
        -------
        float
            The (weighted) mean loss.
        """
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        """dL/dscores for the last forward: a new array with the scores' shape and dtype."""
        raise NotImplementedError

    def __call__(self, scores: np.ndarray, y: Any, sample_weight: Any = None) -> float:
        return self.forward(scores, y, sample_weight)

    # -- inference ----------------------------------------------------------------------
    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Predictions (labels, 0/1 attributes or values) for ``scores``.

        Parameters
        ----------
        scores : ndarray of shape (n_samples, n_outputs)
            Raw network outputs.

        Returns
        -------
        ndarray
        """
        raise NotImplementedError

    def predict_proba(self, scores: np.ndarray) -> np.ndarray:
        """Probabilities for ``scores``; only losses with a probabilistic reading have it.

        Parameters
        ----------
        scores : ndarray of shape (n_samples, n_outputs)
            Raw network outputs.

        Returns
        -------
        ndarray

        Raises
        ------
        NotImplementedError
            Always, in the base class: only softmax and sigmoid cross-entropy override it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not give probabilities")

    # -- sanity checks ------------------------------------------------------------------
    def expected_initial_loss(self, n_outputs: int) -> float | None:
        """The loss a network with small random weights should start near, or None.

        A first loss far from it points at a bug or a bad initialisation (the babysitting
        check :mod:`neuronlab.babysit.initial_loss` compares them).

        Parameters
        ----------
        n_outputs : int
            Outputs of the network (classes, attributes or targets), > 0.

        Returns
        -------
        float or None
            None in the base class and for the regression losses.

        Raises
        ------
        ValueError
            If ``n_outputs`` is not a positive integer.
        """
        check_positive_int("n_outputs", n_outputs)
        return None

    def kink_state(self) -> np.ndarray | None:
        """For piecewise losses, which piece each element of the last forward fell on
        (hinge: which margins were active); a gradient check that sees it change between
        x+h and x-h knows it straddled a kink. None for smooth losses."""
        return None

    # -- configuration ------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Constructor keyword arguments as JSON-serialisable values."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """A new loss from :meth:`get_config` output: ``cls(**config)``.

        Parameters
        ----------
        config : dict
            Constructor keyword arguments.

        Returns
        -------
        Loss
        """
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # -- helpers ------------------------------------------------------------------------
    def _buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A reusable scratch array. It grows to the largest batch seen, so the smaller last
        batch of an epoch does not force a reallocation every epoch."""
        size = math.prod(shape)
        flat = self._bufs.get(name)
        if flat is None or flat.dtype != dtype or flat.size < size:
            flat = np.empty(size, dtype=dtype)
            self._bufs[name] = flat
        return flat[:size].reshape(shape)

    def _rows(self, n: int) -> np.ndarray:
        """``np.arange(n)`` (row indices for gathers), kept across calls."""
        rows = self._bufs.get("rows")
        if rows is None or rows.size < n:
            rows = self._bufs["rows"] = np.arange(max(n, 1))
        return rows[:n]

    def _ones(self, n: int, dtype: np.dtype) -> np.ndarray:
        """A vector of n ones (row sums as a matrix-vector product), kept across calls."""
        ones = self._bufs.get("ones")
        if ones is None or ones.size != n or ones.dtype != dtype:
            ones = self._bufs["ones"] = np.ones(n, dtype=dtype)
        return ones

    @staticmethod
    def _weights(sample_weight: Any, scores: np.ndarray) -> Weights:
        """``sample_weight`` checked against the scores' rows and prepared for the formulas.
        (Callers test ``sample_weight is None`` themselves: the plain mean pays nothing.)"""
        n = scores.shape[0]
        w64 = check_sample_weight(sample_weight, n)
        w64 = w64 / w64.max()  # the mean is the same; w_i <= 1 cannot overflow float32
        total = float(w64.sum())
        shape = (n,) if scores.ndim == 1 else (n, 1)
        return Weights(w64.astype(scores.dtype).reshape(shape), total,
                       (w64 / total).astype(scores.dtype).reshape(shape))

    def _state(self) -> Any:
        if self._cache is None:
            raise ValueError(f"{type(self).__name__}.backward called before forward")
        return self._cache


# -- shared input checks ----------------------------------------------------------------
def _check_class_scores(scores: object) -> np.ndarray:
    scores = check_array("scores", scores)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(
            f"scores must have shape (n_samples, n_classes) with n_classes >= 2, got shape {scores.shape}"
        )
    return scores


def _check_column_scores(scores: object) -> np.ndarray:
    """Scores of a single binary output: shape (N,) or (N, 1)."""
    scores = check_array("scores", scores, min_ndim=1)
    if scores.ndim > 2 or (scores.ndim == 2 and scores.shape[1] != 1):
        raise ValueError(f"scores must have shape (n_samples,) or (n_samples, 1), got shape {scores.shape}")
    return scores


def _match_targets(y: object, scores: np.ndarray) -> np.ndarray:
    """Targets with the scores' shape; a (N,) vs (N, 1) mismatch is reshaped (never broadcast
    to (N, N), the classic silent bug)."""
    y = np.asarray(y)
    if y.shape == scores.shape:
        return y
    n = scores.shape[0]
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"y has shape {y.shape} but scores have {n} rows")
    columns = {(n,), (n, 1)}
    if y.shape in columns and scores.shape in columns:
        return y.reshape(scores.shape)
    raise ValueError(f"y must have the scores' shape {scores.shape}, got shape {y.shape}")


def _binary_signs(y: np.ndarray, out: np.ndarray, *, allow_signs: bool = False) -> np.ndarray:
    """Write the targets as signs t = ±1 into ``out`` and return it. ``y`` must be 0/1
    (0 -> -1, 1 -> +1), or already ±1 when ``allow_signs``."""
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y must hold numeric 0/1 targets, got dtype {y.dtype}")
    if y.dtype.kind == "b":
        zero_one, signs = True, False
    elif y.dtype.kind in "iu":  # integers: the range decides
        lo, hi = int(y.min()), int(y.max())
        zero_one = lo >= 0 and hi <= 1
        signs = lo >= -1 and hi <= 1 and not bool((y == 0).any())
    else:
        zero_one = bool(((y == 0) | (y == 1)).all())
        signs = not zero_one and bool(((y == -1) | (y == 1)).all())
    if zero_one:
        np.multiply(y, 2, out=out, casting="unsafe")
        out -= 1
        return out
    if allow_signs and signs:
        np.copyto(out, y, casting="unsafe")
        return out
    allowed = "{0, 1} or {-1, +1}" if allow_signs else "{0, 1}"
    raise ValueError(f"y must hold targets in {allowed}, got values {np.unique(y)[:8].tolist()}")


# -- classification over C exclusive classes ----------------------------------------------
