"""Mean subtraction and the notes' two normalisations: standardising and scaling to [-1, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import check_number
from neuronlab.preprocessing.base import Preprocessor
from neuronlab.registry import PREPROCESSORS

__all__ = ["MeanCenter", "MinMax", "Standardize"]


@PREPROCESSORS.register("mean_center")
class MeanCenter(Preprocessor):
    """Mean subtraction: x - mean, the mean taken over the training samples, per feature."""

    _state_keys = ("mean",)

    def _fit_state(self, X: np.ndarray) -> dict[str, np.ndarray]:
        return {"mean": X.mean(axis=0)}

    def _forward(self, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out: np.ndarray = np.subtract(X, p["mean"])
        return out

    def _inverse(self, Z: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out: np.ndarray = np.add(Z, p["mean"])
        return out


@PREPROCESSORS.register("standardize")
class Standardize(Preprocessor):
    """Normalisation to zero mean and unit variance per feature: (x - mean) / std.

    Parameters
    ----------
    eps : float, default 1e-8
        A feature whose training standard deviation is below ``eps`` is treated as constant:
        it is centred but not scaled (scale 1), so it maps to 0 on the training data and
        never blows up a validation value by 1/std.
    """

    _state_keys = ("mean", "scale")
    _positive_keys = ("scale",)

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = check_number("eps", eps, low=0)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"eps": float}``.
        """
        return {"eps": self.eps}

    def _fit_state(self, X: np.ndarray) -> dict[str, np.ndarray]:
        mean = X.mean(axis=0)
        std = X.std(axis=0)  # population std (ddof=0): the transformed training std is 1
        return {"mean": mean, "scale": np.where(std < self.eps, 1.0, std)}

    def _derive(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Multiply by the reciprocal: one division per feature at fit, not per element.
        return {"mean": state["mean"], "scale": state["scale"], "inv_scale": 1.0 / state["scale"]}

    def _forward(self, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out: np.ndarray = np.subtract(X, p["mean"])
        out *= p["inv_scale"]
        return out

    def _inverse(self, Z: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out: np.ndarray = np.multiply(Z, p["scale"])
        out += p["mean"]
        return out


@PREPROCESSORS.register("minmax")
class MinMax(Preprocessor):
    """Scale each feature so the training minimum maps to -1 and the maximum to +1.

    x' = (x - center) / half_range with center = (max + min) / 2, half_range = (max - min) / 2.
    A constant feature (max == min) gets half_range 1, so it maps to 0 and stays invertible.
    Validation data may fall outside [-1, 1]; that is expected and not clipped.
    """

    _state_keys = ("center", "half_range")
    _positive_keys = ("half_range",)

    def _fit_state(self, X: np.ndarray) -> dict[str, np.ndarray]:
        lo, hi = X.min(axis=0), X.max(axis=0)
        half = (hi - lo) / 2.0
        return {"center": (hi + lo) / 2.0, "half_range": np.where(half > 0, half, 1.0)}

    def _derive(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**state, "inv_half_range": 1.0 / state["half_range"]}

    def _forward(self, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out: np.ndarray = np.subtract(X, p["center"])
        out *= p["inv_half_range"]
        return out

    def _inverse(self, Z: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out: np.ndarray = np.multiply(Z, p["half_range"])
        out += p["center"]
        return out
