"""What the page shows of a network's current weights: softmax probabilities, loss and
accuracy in inference mode, and numbers made JSON-safe (NaN and infinity become None)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["finite", "metrics", "softmax"]


def finite(v: Any) -> float | None:
    """``float(v)``, or None when ``v`` is None, NaN or infinite."""
    return float(v) if v is not None and np.isfinite(v) else None


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 of scores of shape (n, n_classes); a row with NaN
    (a diverged network) reads as uniform."""
    z = scores.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return np.nan_to_num(z, nan=1.0 / z.shape[1])


def metrics(model: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    """Loss and accuracy of the current weights in inference mode (the epoch logs average
    over an epoch of changing weights; the page shows where the network is now)."""
    scores = model.forward(X, training=False).astype(np.float64)
    proba = softmax(scores)
    loss = -np.log(np.maximum(proba[np.arange(len(y)), y], 1e-300)).mean()
    acc = np.count_nonzero(scores.argmax(axis=1) == y) / len(y)
    return {"loss": finite(loss), "acc": float(acc)}
