"""Classification losses: softmax cross-entropy, the Weston–Watkins multiclass hinge,
sigmoid cross-entropy (binary and multi-label attributes) and the binary hinge."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neuronlab._validation import check_array, check_labels, check_number, check_positive_int
from neuronlab.registry import LOSSES
from neuronlab.losses.base import Loss, _binary_signs, _check_class_scores, _check_column_scores, _match_targets

__all__ = ["BinaryHinge", "MulticlassHinge", "SigmoidCrossEntropy", "SoftmaxCrossEntropy"]



def _softmax_ce_kernel(scores, yi, yf, idx, d, wb):  # type: ignore[no-untyped-def]
    """:class:`SoftmaxCrossEntropy`'s forward and backward for one batch, one pass per row
    (the compiled training loop, :mod:`neuronlab.engine`), with the formulas of the weighted
    NumPy path: weights 1 give exactly the unweighted mean.

    Parameters
    ----------
    scores : ndarray of shape (m, n_classes)
    yi : ndarray of int64
        Labels of all training rows; row r of the batch is ``yi[idx[r]]``.
    yf : ndarray
        Unused (the regression losses' targets).
    idx : ndarray of int64
        The batch's rows.
    d : ndarray of shape (m, n_classes)
        Receives dL/dscores, ``ν_r (p_r - onehot(y_r))`` with ν_r = w_r / Σ w.
    wb : ndarray of float64
        The batch's row weights (not all 0).

    Returns
    -------
    tuple
        (weighted mean loss, right predictions counted by weight, whether every score was
        finite).
    """
    m, c = scores.shape
    T = scores.dtype.type  # a value rounded to the scores' dtype, as NumPy's arrays hold it
    top = 0.0
    for r in range(m):
        top = max(top, wb[r])
    total = 0.0
    for r in range(m):
        total += wb[r] / top
    logz = 0.0
    corr = 0.0
    right = 0.0
    for r in range(m):
        best = 0
        for j in range(c):
            v = scores[r, j]
            if not (-np.inf < v < np.inf):
                return 0.0, 0.0, False
            if v > scores[r, best]:
                best = j
        mx = scores[r, best]
        z = scores.dtype.type(0)
        for j in range(c):
            e = np.exp(scores[r, j] - mx)
            d[r, j] = e
            z += e
        y = yi[idx[r]]
        w = wb[r] / top
        wr = T(w)  # w_i / max w in the scores' dtype (the NumPy path's Weights.w)
        nu = T(w / total)
        logz += np.log(z) * wr
        corr += (scores[r, y] - mx) * wr
        if best == y:
            right += wb[r]
        for j in range(c):
            d[r, j] = d[r, j] / z * nu
        d[r, y] -= nu
    return (logz - corr) / total, right, True


@LOSSES.register("softmax")
class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy from raw scores.

    L_i = -ln(e^{s_{y_i}} / Σ_j e^{s_j}) = ln Σ_j e^{s_j - m_i} - (s_{y_i} - m_i), with the row
    maximum m_i subtracted first so that no exponent overflows. dL/ds_i = (p_i - onehot(y_i)) / N,
    or ν_i (p_i - onehot(y_i)) with sample weights (ν_i = w_i / Σ_j w_j).

    Parameters of ``forward``: ``scores`` float ndarray of shape (n_samples, n_classes),
    ``y`` integer labels of shape (n_samples,) in [0, n_classes), ``sample_weight`` None or
    non-negative weights of shape (n_samples,).
    """

    task = "classification"
    kernel = staticmethod(_softmax_ce_kernel)

    def forward(self, scores: np.ndarray, y: Any, sample_weight: Any = None) -> float:
        """Mean softmax cross-entropy; caches the probabilities for backward.

        Parameters
        ----------
        scores : ndarray of shape (n_samples, n_classes)
            Raw class scores (logits), float32 or float64, finite; n_classes >= 2.
        y : array-like of shape (n_samples,)
            Integer class labels in [0, n_classes) (whole-number floats are accepted).
        sample_weight : array-like of shape (n_samples,) or None
            Row weights (finite, >= 0, positive sum): the loss becomes their weighted mean.

        Returns
        -------
        float
            The (weighted) mean loss.

        Raises
        ------
        ValueError
            If the shapes do not match, a label is outside [0, n_classes), or a weight is invalid.
        TypeError
            If ``scores`` is not a float ndarray or ``y`` does not hold integer labels.
        """
        _check_class_scores(scores)
        n, c = scores.shape
        y = check_labels("y", y, n, c)
        wt = None if sample_weight is None else self._weights(sample_weight, scores)
        rows = self._rows(n)
        p = self._buffer("p", scores.shape, scores.dtype)
        # Row maxima as argmax + gather, row sums as a product with ones: on a small batch
        # each is half the time of the axis-1 reduction (a step of a 64-128-10 net is ~90 µs)
        m = scores[rows, scores.argmax(axis=1)].reshape(n, 1)
        np.subtract(scores, m, out=p)
        correct = p[rows, y]  # s_y - m, read before p is exponentiated
        np.exp(p, out=p)
        z = np.dot(p, self._ones(c, p.dtype)).reshape(n, 1)  # >= 1: the max entry gives e^0
        if wt is None:
            loss = (np.log(z).sum(dtype=np.float64) - correct.sum(dtype=np.float64)) / n
        else:
            loss = ((np.log(z) * wt.w).sum(dtype=np.float64)
                    - (correct * wt.w[:, 0]).sum(dtype=np.float64)) / wt.total
        np.divide(p, z, out=p)
        self._cache = (p, y, rows, wt)
        return float(loss)

    def backward(self) -> np.ndarray:
        """dL/dscores = (p − onehot(y)) / N (ν_i in place of 1/N with weights).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            A new array, in the scores' dtype.

        Raises
        ------
        ValueError
            If called before ``forward``.
        """
        p, y, rows, wt = self._state()
        if wt is None:
            n = p.shape[0]
            grad: np.ndarray = np.multiply(p, 1.0 / n)
            grad[rows, y] -= 1.0 / n
        else:
            grad = np.multiply(p, wt.nu)
            grad[rows, y] -= wt.nu[:, 0]
        return grad

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Class labels: the highest-scoring class of each row.

        Parameters
        ----------
        scores : ndarray of shape (n_samples, n_classes)
            Raw class scores (logits), float32 or float64, finite; n_classes >= 2.

        Returns
        -------
        ndarray of int of shape (n_samples,)
        """
        labels: np.ndarray = _check_class_scores(scores).argmax(axis=1)
        return labels

    def predict_proba(self, scores: np.ndarray) -> np.ndarray:
        """Softmax probabilities, computed with the row maximum subtracted (no overflow).

        Parameters
        ----------
        scores : ndarray of shape (n_samples, n_classes)
            Raw class scores (logits), float32 or float64, finite; n_classes >= 2.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Rows sum to 1.

        Examples
        --------
        >>> import numpy as np
        >>> SoftmaxCrossEntropy().predict_proba(np.array([[0.0, 0.0], [1000.0, 0.0]]))
        array([[0.5, 0.5],
               [1. , 0. ]])
        """
        _check_class_scores(scores)
        p: np.ndarray = scores - scores.max(axis=1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=1, keepdims=True)
        return p

    def expected_initial_loss(self, n_outputs: int) -> float:
        """ln C: with near-zero scores every class gets probability 1/C (the notes' 2.302 for C=10).

        Parameters
        ----------
        n_outputs : int
            The number of classes C, > 0.

        Returns
        -------
        float

        Examples
        --------
        >>> round(SoftmaxCrossEntropy().expected_initial_loss(10), 3)
        2.303
        """
        return math.log(check_positive_int("n_outputs", n_outputs))


@LOSSES.register("multiclass_hinge")
class MulticlassHinge(Loss):
    """Weston–Watkins multiclass SVM loss, L_i = Σ_{j≠y_i} max(0, s_j - s_{y_i} + margin).

    dL/ds_j = [margin_j > 0] / N for j ≠ y_i and dL/ds_{y_i} = -(number of active margins) / N;
    with sample weights ν_i = w_i / Σ_j w_j takes the place of 1/N.

    Parameters
    ----------
    margin : float, default 1.0
        Δ > 0, the required gap between the correct score and every other score.
    """

    task = "classification"

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = check_number("margin", margin, low=0.0, low_inclusive=False)

    def forward(self, scores: np.ndarray, y: Any, sample_weight: Any = None) -> float:
        """Mean multiclass hinge loss; caches the clamped margins for backward.

        Parameters
        ----------
        scores : ndarray of shape (n_samples, n_classes)
            Raw class scores (logits), float32 or float64, finite; n_classes >= 2.
        y : array-like of shape (n_samples,)
            Integer class labels in [0, n_classes) (whole-number floats are accepted).
        sample_weight : array-like of shape (n_samples,) or None
            Row weights (finite, >= 0, positive sum): the loss becomes their weighted mean.

        Returns
        -------
        float
            The (weighted) mean loss.

        Raises
        ------
        ValueError
            If the shapes do not match, a label is outside [0, n_classes), or a weight is invalid.
        TypeError
            If ``scores`` is not a float ndarray or ``y`` does not hold integer labels.
        """
        _check_class_scores(scores)
        n, c = scores.shape
        y = check_labels("y", y, n, c)
        wt = None if sample_weight is None else self._weights(sample_weight, scores)
        rows = np.arange(n)
        h = self._buffer("h", scores.shape, scores.dtype)
        np.subtract(scores, scores[rows, y][:, None], out=h)
        h += self.margin
        h[rows, y] = 0  # the correct class is not a term of the sum
        np.maximum(h, 0, out=h)
        self._cache = (h, y, rows, wt)
        if wt is None:
            return float(h.sum(dtype=np.float64) / n)
        return float((h * wt.w).sum(dtype=np.float64) / wt.total)

    def backward(self) -> np.ndarray:
        """dL/dscores: 1/N at each active wrong class, minus their count at the correct class
        (ν_i in place of 1/N with weights).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            A new array, in the scores' dtype.

        Raises
        ------
        ValueError
            If called before ``forward``.
        """
        h, y, rows, wt = self._state()
        grad: np.ndarray = np.sign(h)  # h >= 0 after the clamp, so sign is the 0/1 active indicator
        grad *= 1.0 / h.shape[0] if wt is None else wt.nu
        # the correct entry was 0, so the row sum counts only the active wrong classes
        grad[rows, y] = -grad.sum(axis=1)
        return grad

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Class labels: the highest-scoring class of each row.

        Parameters
        ----------
        scores : ndarray of shape (n_samples, n_classes)
            Raw class scores (logits), float32 or float64, finite; n_classes >= 2.

        Returns
        -------
        ndarray of int of shape (n_samples,)
        """
        labels: np.ndarray = _check_class_scores(scores).argmax(axis=1)
        return labels

    def expected_initial_loss(self, n_outputs: int) -> float:
        """(C - 1)·margin: with all scores ≈ 0 each of the C - 1 wrong classes adds ≈ margin.

        Parameters
        ----------
        n_outputs : int
            The number of classes C, > 0.

        Returns
        -------
        float
        """
        return (check_positive_int("n_outputs", n_outputs) - 1) * self.margin

    def kink_state(self) -> np.ndarray | None:
        """Boolean (n_samples, n_classes): which margins were active (> 0) in the last forward.

        Returns
        -------
        ndarray of bool or None
            None before the first forward.
        """
        return None if self._cache is None else self._cache[0] > 0

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"margin": float}``.
        """
        return {"margin": self.margin}


# -- binary and multi-label (attribute) targets -------------------------------------------
@LOSSES.register("sigmoid_cross_entropy")
class SigmoidCrossEntropy(Loss):
    """Logistic (sigmoid cross-entropy) loss from raw scores, for binary or attribute targets.

    L_i = -Σ_j [y_ij ln σ(s_ij) + (1 - y_ij) ln(1 - σ(s_ij))], summed over attributes j and
    averaged over samples i. With u = 1 - 2y (±1) this is Σ_j softplus(u s) = Σ_j ln(1 + e^{u s}),
    computed so that logits of any size stay finite; dL/ds = (σ(s) - y) / N = u σ(u s) / N
    (ν_i = w_i / Σ_j w_j in place of 1/N with sample weights).

    Parameters
    ----------
    multilabel : bool, default False
        False: one binary output; ``scores`` of shape (N,) or (N, 1) and ``y`` of shape (N,)
        (``task == "classification"``). True: C independent attributes; ``scores`` and ``y``
        of shape (N, C) (``task == "multilabel"``). Targets are 0/1 in both cases. The task is
        fixed at construction, not guessed per call, so trainers know it before any data.
    """

    def __init__(self, multilabel: bool = False) -> None:
        super().__init__()
        if not isinstance(multilabel, bool):
            raise TypeError(f"multilabel must be a bool, got {type(multilabel).__name__}: {multilabel!r}")
        self.multilabel = multilabel
        self.task = "multilabel" if multilabel else "classification"

    def _check_scores(self, scores: object) -> np.ndarray:
        if not self.multilabel:
            return _check_column_scores(scores)
        scores = check_array("scores", scores)
        if scores.ndim != 2:
            raise ValueError(f"scores must have shape (n_samples, n_attributes), got shape {scores.shape}")
        return scores

    def forward(self, scores: np.ndarray, y: Any, sample_weight: Any = None) -> float:
        """Mean sigmoid cross-entropy, summed over the attributes; caches what backward needs.

        Parameters
        ----------
        scores : ndarray
            Raw scores (logits), float32 or float64, finite: shape (n_samples,) or
            (n_samples, 1) for a binary loss, (n_samples, n_attributes) for a multi-label one.
        y : array-like
            0/1 targets (bool, integer or float) with the scores' shape; (n_samples,) against
            (n_samples, 1) scores is accepted.
        sample_weight : array-like of shape (n_samples,) or None
            Row weights (finite, >= 0, positive sum): the loss becomes their weighted mean.

        Returns
        -------
        float
            The (weighted) mean loss.

        Raises
        ------
        ValueError
            If the shapes do not match, a target is not 0 or 1, or a weight is invalid.
        TypeError
            If ``scores`` is not a float ndarray or ``y`` is not numeric.
        """
        self._check_scores(scores)
        y = _match_targets(y, scores)
        wt = None if sample_weight is None else self._weights(sample_weight, scores)
        u = _binary_signs(y, self._buffer("u", scores.shape, scores.dtype))
        np.negative(u, out=u)  # u = 1 - 2y
        z = self._buffer("z", scores.shape, scores.dtype)
        np.multiply(u, scores, out=z)
        # softplus(z) = max(z, 0) + ln(1 + e^{-|z|}): e^{-|z|} <= 1 never overflows.
        # (np.logaddexp(0, z) is the same number but runs ~20x slower.)
        sp = self._buffer("sp", scores.shape, scores.dtype)
        np.abs(z, out=sp)
        np.negative(sp, out=sp)
        np.exp(sp, out=sp)
        np.log1p(sp, out=sp)
        pos = self._buffer("pos", scores.shape, scores.dtype)
        np.maximum(z, 0, out=pos)
        sp += pos
        self._cache = (u, z, sp, wt)
        if wt is None:
            return float(sp.sum(dtype=np.float64) / scores.shape[0])
        return float((sp * wt.w).sum(dtype=np.float64) / wt.total)

    def backward(self) -> np.ndarray:
        """dL/dscores = (σ(s) − y) / N (ν_i in place of 1/N with weights).

        Returns
        -------
        ndarray
            A new array with the scores' shape and dtype.

        Raises
        ------
        ValueError
            If called before ``forward``.
        """
        u, z, sp, wt = self._state()
        # σ(z) = exp(z - softplus(z)): reuses the forward's softplus, and stays accurate for
        # very negative z, where 1 - σ(-z) would cancel to 0
        grad: np.ndarray = np.subtract(z, sp)
        np.exp(grad, out=grad)
        grad *= u
        grad *= 1.0 / z.shape[0] if wt is None else wt.nu
        return grad

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """0/1 labels (int64) with the targets' shape: 1 where σ(s) > 0.5, i.e. s > 0.

        Parameters
        ----------
        scores : ndarray
            Shape (n_samples,) or (n_samples, 1) (binary), or (n_samples, n_attributes)
            (multi-label).

        Returns
        -------
        ndarray of int64
            Shape (n_samples,) for binary, (n_samples, n_attributes) for multi-label.
        """
        s = self._check_scores(scores)
        out = (s > 0).astype(np.int64)
        return out if self.multilabel else out.reshape(-1)

    def predict_proba(self, scores: np.ndarray) -> np.ndarray:
        """σ(s), the probability of the positive class (of each attribute), with the targets'
        shape: (N,) for binary, (N, C) for multi-label.

        Parameters
        ----------
        scores : ndarray
            Shape (n_samples,) or (n_samples, 1) (binary), or (n_samples, n_attributes)
            (multi-label).

        Returns
        -------
        ndarray
        """
        s = self._check_scores(scores)
        from scipy.special import expit  # here: scipy.special takes ~0.3 s to import

        p: np.ndarray = expit(s)
        return p if self.multilabel else p.reshape(-1)

    def expected_initial_loss(self, n_outputs: int) -> float:
        """n_outputs · ln 2: with s ≈ 0 every attribute has σ(s) = 1/2.

        Parameters
        ----------
        n_outputs : int
            Outputs (attributes) of the network, > 0.

        Returns
        -------
        float
        """
        return check_positive_int("n_outputs", n_outputs) * math.log(2.0)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"multilabel": bool}``.
        """
        return {"multilabel": self.multilabel}


@LOSSES.register("binary_hinge")
class BinaryHinge(Loss):
    """Binary SVM hinge loss, L_i = max(0, margin - t_i s_i) with t_i = ±1.

    Labels may be given as {0, 1} (0 means t = -1) or as {-1, +1}. ``scores`` has shape (N,)
    or (N, 1); dL/ds_i = -t_i [margin - t_i s_i > 0] / N (ν_i = w_i / Σ_j w_j in place of 1/N
    with sample weights).

    Parameters
    ----------
    margin : float, default 1.0
    """

    task = "classification"

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = check_number("margin", margin, low=0.0, low_inclusive=False)

    def forward(self, scores: np.ndarray, y: Any, sample_weight: Any = None) -> float:
        """Mean binary hinge loss; caches the signs and the clamped margins for backward.

        Parameters
        ----------
        scores : ndarray of shape (n_samples,) or (n_samples, 1)
            Raw scores of the single binary output, float32 or float64, finite.
        y : array-like of shape (n_samples,) or (n_samples, 1)
            Targets in {0, 1} (0 means t = −1) or in {−1, +1}.
        sample_weight : array-like of shape (n_samples,) or None
            Row weights (finite, >= 0, positive sum): the loss becomes their weighted mean.

        Returns
        -------
        float
            The (weighted) mean loss.

        Raises
        ------
        ValueError
            If the shapes do not match, a target is outside those sets, or a weight is invalid.
        TypeError
            If ``scores`` is not a float ndarray or ``y`` is not numeric.
        """
        _check_column_scores(scores)
        y = _match_targets(y, scores)
        wt = None if sample_weight is None else self._weights(sample_weight, scores)
        t = _binary_signs(y, self._buffer("t", scores.shape, scores.dtype), allow_signs=True)
        h = self._buffer("h", scores.shape, scores.dtype)
        np.multiply(t, scores, out=h)
        np.subtract(self.margin, h, out=h)
        np.maximum(h, 0, out=h)
        self._cache = (t, h, wt)
        if wt is None:
            return float(h.sum(dtype=np.float64) / scores.shape[0])
        return float((h * wt.w).sum(dtype=np.float64) / wt.total)

    def backward(self) -> np.ndarray:
        """dL/dscores = −t_i / N where the margin is violated, else 0 (ν_i in place of 1/N with
        weights).

        Returns
        -------
        ndarray
            A new array with the scores' shape and dtype.

        Raises
        ------
        ValueError
            If called before ``forward``.
        """
        t, h, wt = self._state()
        grad: np.ndarray = np.sign(h)  # 0/1: whether the margin was violated
        grad *= t
        grad *= -1.0 / h.shape[0] if wt is None else -wt.nu
        return grad

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """0/1 labels (int64) of shape (n_samples,): 1 where s > 0.

        Parameters
        ----------
        scores : ndarray of shape (n_samples,) or (n_samples, 1)
            Raw scores of the single binary output, float32 or float64, finite.

        Returns
        -------
        ndarray of int64 of shape (n_samples,)
        """
        return (_check_column_scores(scores) > 0).astype(np.int64).reshape(-1)

    def expected_initial_loss(self, n_outputs: int) -> float:
        """margin: with s ≈ 0 every sample pays max(0, margin - 0).

        Parameters
        ----------
        n_outputs : int
            Outputs of the network, > 0 (checked only: the value does not depend on it).

        Returns
        -------
        float
        """
        check_positive_int("n_outputs", n_outputs)
        return self.margin

    def kink_state(self) -> np.ndarray | None:
        """Boolean with the scores' shape: which samples violated the margin.

        Returns
        -------
        ndarray of bool or None
            None before the first forward.
        """
        return None if self._cache is None else self._cache[1] > 0

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"margin": float}``.
        """
        return {"margin": self.margin}


# -- regression ---------------------------------------------------------------------------
