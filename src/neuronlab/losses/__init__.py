"""Data losses: one signature for all, ``forward(scores, y, sample_weight=None) -> mean loss``
(the weighted mean Σ w_i L_i / Σ w_i with weights) and ``backward() -> dL/dscores``."""

from neuronlab.losses.base import Loss
from neuronlab.losses.classification import BinaryHinge, MulticlassHinge, SigmoidCrossEntropy, SoftmaxCrossEntropy
from neuronlab.losses.regression import MeanAbsoluteError, MeanSquaredError

__all__ = [
    "Loss", "SoftmaxCrossEntropy", "MulticlassHinge", "SigmoidCrossEntropy", "BinaryHinge",
    "MeanSquaredError", "MeanAbsoluteError",
]  # fmt: skip
