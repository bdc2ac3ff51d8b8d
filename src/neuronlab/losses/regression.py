"""Regression losses: the notes' L2 (mean squared error) and L1 (mean absolute error)."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import check_array
from neuronlab.registry import LOSSES
from neuronlab.losses.base import Loss, _match_targets

__all__ = ["MeanAbsoluteError", "MeanSquaredError"]


class _Regression(Loss):
    task = "regression"

    def _difference(self, scores: Any, y: Any) -> np.ndarray:
        check_array("scores", scores, min_ndim=1)
        if scores.ndim > 2:
            raise ValueError(f"scores must have shape (n_samples,) or (n_samples, n_targets), got {scores.shape}")
        y = _match_targets(y, scores)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"y must hold numeric regression targets, got dtype {y.dtype}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError("y contains NaN or Inf")
        d = self._buffer("d", scores.shape, scores.dtype)
        np.subtract(scores, y, out=d, casting="same_kind")
        return d

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """The scores themselves (the network's output is the prediction).

        Parameters
        ----------
        scores : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Network outputs, float32 or float64, finite.

        Returns
        -------
        ndarray
            ``scores`` (the same array, not a copy).
        """
        return check_array("scores", scores, min_ndim=1)



def _mse_kernel(scores, yi, yf, idx, d, wb):  # type: ignore[no-untyped-def]
    """:class:`MeanSquaredError`'s forward and backward for one batch (the compiled training
    loop, :mod:`neuronlab.engine`), with the formulas of the weighted NumPy path: weights 1
    give exactly the unweighted mean.

    Parameters
    ----------
    scores : ndarray of shape (m, n_targets)
    yi : ndarray
        Unused (the classification losses' labels).
    yf : ndarray of float64, shape (n_rows, n_targets)
        Targets of all training rows; row r of the batch is ``yf[idx[r]]``.
    idx : ndarray of int64
        The batch's rows.
    d : ndarray of shape (m, n_targets)
        Receives dL/dscores, ``2 ν_r (s_r - y_r)`` with ν_r = w_r / Σ w.
    wb : ndarray of float64
        The batch's row weights (not all 0).

    Returns
    -------
    tuple
        (weighted mean loss, squared error summed with the rows' weights, whether every
        score was finite).
    """
    m, c = scores.shape
    T = scores.dtype.type  # a value rounded to the scores' dtype, as NumPy's arrays hold it
    top = 0.0
    for r in range(m):
        top = max(top, wb[r])
    total = 0.0
    for r in range(m):
        total += wb[r] / top
    # sums in the scores' dtype, as the NumPy path's dot products make them (an overflow to
    # Inf is the same divergence there and here)
    loss = scores.dtype.type(0)
    sq = scores.dtype.type(0)
    for r in range(m):
        w = wb[r] / top
        wr = T(w)
        wraw = T(wb[r])
        two = (T(w / total)) * 2  # 2 ν_r in the scores' dtype
        for j in range(c):
            v = scores[r, j]
            if not (-np.inf < v < np.inf):
                return 0.0, 0.0, False
            e = T(v - yf[idx[r], j])
            loss += (e * wr) * e
            sq += (e * wraw) * e
            d[r, j] = e * two
    return float(loss) / total, float(sq), True


@LOSSES.register("mse")
class MeanSquaredError(_Regression):
    """The notes' L2 loss, L = (1/N) Σ_i ‖s_i - y_i‖₂² = (1/N) Σ_i Σ_j (s_ij - y_ij)².

    Summed over the D outputs and averaged over the N samples, with no ½ (so it differs from
    PyTorch's ``MSELoss``, which also divides by D). dL/ds = 2 (s - y) / N, with sample weights
    2 ν_i (s_i - y_i) (ν_i = w_i / Σ_j w_j). ``scores`` and ``y`` have shape (N,) or (N, D).
    """

    kernel = staticmethod(_mse_kernel)

    def forward(self, scores: np.ndarray, y: Any, sample_weight: Any = None) -> float:
        """Mean over the samples of the squared error summed over the outputs; caches s − y.

        Parameters
        ----------
        scores : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predicted values, float32 or float64, finite.
        y : array-like
            Numeric targets with the scores' shape ((n_samples,) against (n_samples, 1) is
            accepted), finite.
        sample_weight : array-like of shape (n_samples,) or None
            Row weights (finite, >= 0, positive sum): the loss becomes their weighted mean.

        Returns
        -------
        float
            The (weighted) mean loss.

        Raises
        ------
        ValueError
            If the shapes do not match, ``y`` holds NaN or Inf, or a weight is invalid.
        TypeError
            If ``scores`` is not a float ndarray or ``y`` is not numeric.
        """
        d = self._difference(scores, y)
        wt = None if sample_weight is None else self._weights(sample_weight, scores)
        self._cache = (d, wt)
        flat = d.reshape(-1)
        if wt is None:
            return float(np.dot(flat, flat) / d.shape[0])
        return float(np.dot((d * wt.w).reshape(-1), flat) / wt.total)

    def backward(self) -> np.ndarray:
        """dL/dscores = 2 (s − y) / N (2 ν_i (s_i − y_i) with weights).

        Returns
        -------
        ndarray
            A new array with the scores' shape and dtype.

        Raises
        ------
        ValueError
            If called before ``forward``.
        """
        d, wt = self._state()
        grad: np.ndarray = np.multiply(d, 2.0 / d.shape[0] if wt is None else 2.0 * wt.nu)
        return grad


@LOSSES.register("mae")
class MeanAbsoluteError(_Regression):
    """The notes' L1 loss, L = (1/N) Σ_i ‖s_i - y_i‖₁ = (1/N) Σ_i Σ_j |s_ij - y_ij|.

    dL/ds = sign(s - y) / N (0 where s = y exactly), with sample weights ν_i sign(s_i - y_i)
    (ν_i = w_i / Σ_j w_j). ``scores`` and ``y`` have shape (N,) or (N, D).
    """

    def forward(self, scores: np.ndarray, y: Any, sample_weight: Any = None) -> float:
        """Mean over the samples of the absolute error summed over the outputs; caches sign(s − y).

        Parameters
        ----------
        scores : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predicted values, float32 or float64, finite.
        y : array-like
            Numeric targets with the scores' shape ((n_samples,) against (n_samples, 1) is
            accepted), finite.
        sample_weight : array-like of shape (n_samples,) or None
            Row weights (finite, >= 0, positive sum): the loss becomes their weighted mean.

        Returns
        -------
        float
            The (weighted) mean loss.

        Raises
        ------
        ValueError
            If the shapes do not match, ``y`` holds NaN or Inf, or a weight is invalid.
        TypeError
            If ``scores`` is not a float ndarray or ``y`` is not numeric.
        """
        d = self._difference(scores, y)
        wt = None if sample_weight is None else self._weights(sample_weight, scores)
        sign = self._buffer("sign", d.shape, d.dtype)
        np.sign(d, out=sign)
        self._cache = (d, sign, wt)
        # Σ|d| = Σ sign(d)·d: reuses the sign backward needs instead of an |d| temporary
        if wt is None:
            return float(np.dot(sign.reshape(-1), d.reshape(-1)) / d.shape[0])
        return float(np.dot((sign * wt.w).reshape(-1), d.reshape(-1)) / wt.total)

    def backward(self) -> np.ndarray:
        """dL/dscores = sign(s − y) / N (ν_i sign(s_i − y_i) with weights).

        Returns
        -------
        ndarray
            A new array with the scores' shape and dtype.

        Raises
        ------
        ValueError
            If called before ``forward``.
        """
        _, sign, wt = self._state()
        grad: np.ndarray = np.multiply(sign, 1.0 / sign.shape[0] if wt is None else wt.nu)
        return grad

    def kink_state(self) -> np.ndarray | None:
        """Boolean with the scores' shape: where s > y in the last forward.

        Returns
        -------
        ndarray of bool or None
            None before the first forward.
        """
        return None if self._cache is None else self._cache[0] > 0
