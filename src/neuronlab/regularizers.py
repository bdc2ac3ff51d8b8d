"""Weight penalties (L2, L1, elastic net) and the max-norm constraint.

They act on ``model.weight_keys`` only: biases are never regularised, because they do not
multiply the data and penalising them changes little (the notes). A model is any object with
``params`` and ``grads`` (dicts with the same keys) and ``weight_keys`` (a ``Sequential``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np
from scipy.linalg import blas

from neuronlab._validation import check_number
from neuronlab.registry import CONSTRAINTS, REGULARIZERS

__all__ = ["Regularizer", "L2", "L1", "ElasticNet", "MaxNorm"]


class Model(Protocol):
    @property
    def params(self) -> dict[str, np.ndarray]: ...

    @property
    def grads(self) -> dict[str, np.ndarray]: ...

    @property
    def weight_keys(self) -> list[str]: ...


_AXPY = {np.dtype(np.float32): blas.saxpy, np.dtype(np.float64): blas.daxpy}
_ASUM = {np.dtype(np.float32): blas.sasum, np.dtype(np.float64): blas.dasum}


def _axpy(alpha: float, x: np.ndarray, y: np.ndarray) -> None:
    """y += alpha * x in place, in one pass with no temporary (BLAS axpy) when both are
    contiguous arrays of one float dtype; otherwise NumPy (which makes one temporary)."""
    axpy = _AXPY.get(y.dtype)
    if axpy is not None and x.dtype == y.dtype and x.flags.c_contiguous and y.flags.c_contiguous:
        # ravel() of a C-contiguous array is a view, so BLAS writes into y itself
        axpy(x.ravel(), y.ravel(), a=alpha)
    else:
        y += alpha * x


def _sum_abs(x: np.ndarray) -> float:
    """Σ|x| without an |x| temporary (BLAS asum) where possible."""
    asum = _ASUM.get(x.dtype)
    if asum is not None and x.flags.c_contiguous:
        return float(asum(x.ravel()))
    return float(np.abs(x).sum())


class Regularizer:
    """Penalty R(W) = λ1 Σ|w| + ½ λ2 Σ w², summed over every weight array of the model.

    Subclasses fix which of the two coefficients they expose. ``loss(model)`` returns R and
    ``add_grad(model)`` adds dR/dW into ``model.grads`` in place.
    """

    registry_name: ClassVar[str] = ""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self._l1 = check_number("l1", l1, low=0.0)
        self._l2 = check_number("l2", l2, low=0.0)
        self._sign: dict[str, np.ndarray] = {}  # scratch for sign(W), one per weight array

    def loss(self, model: Model) -> float:
        """The penalty for the model's current weights (a float)."""
        params = model.params
        total = 0.0
        for key in model.weight_keys:
            w = params[key]
            if self._l1:
                total += self._l1 * _sum_abs(w)
            if self._l2:
                flat = w.reshape(-1)
                total += 0.5 * self._l2 * float(np.dot(flat, flat))
        return total

    def add_grad(self, model: Model) -> None:
        """Add λ1 sign(W) + λ2 W into ``model.grads[key]`` for every weight key (biases untouched)."""
        params, grads = model.params, model.grads
        for key in model.weight_keys:
            w, g = params[key], grads[key]
            if self._l2:
                _axpy(self._l2, w, g)
            if self._l1:
                # sign(0) = 0: the subgradient that leaves an exact zero weight where it is
                _axpy(self._l1, np.sign(w, out=self._scratch(key, w)), g)

    def _scratch(self, key: str, w: np.ndarray) -> np.ndarray:
        buf = self._sign.get(key)
        if buf is None or buf.shape != w.shape or buf.dtype != w.dtype:
            buf = self._sign[key] = np.empty_like(w)
        return buf

    def get_config(self) -> dict[str, Any]:
        return {"l1": self._l1, "l2": self._l2}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@REGULARIZERS.register("l2")
class L2(Regularizer):
    """L2 weight decay, R = ½ λ Σ w², dR/dW = λ W.

    Parameters
    ----------
    strength : float
        λ >= 0.
    """

    def __init__(self, strength: float) -> None:
        super().__init__(l2=check_number("strength", strength, low=0.0))
        self.strength = self._l2

    def get_config(self) -> dict[str, Any]:
        return {"strength": self.strength}


@REGULARIZERS.register("l1")
class L1(Regularizer):
    """L1 penalty, R = λ Σ |w|, dR/dW = λ sign(W) (0 at w = 0); drives weights to exact sparsity.

    Parameters
    ----------
    strength : float
        λ >= 0.
    """

    def __init__(self, strength: float) -> None:
        super().__init__(l1=check_number("strength", strength, low=0.0))
        self.strength = self._l1

    def get_config(self) -> dict[str, Any]:
        return {"strength": self.strength}


@REGULARIZERS.register("elastic_net")
class ElasticNet(Regularizer):
    """Elastic net, R = λ1 Σ |w| + ½ λ2 Σ w² (the ½ matches ``L2`` so that
    ``ElasticNet(0, λ)`` equals ``L2(λ)``); dR/dW = λ1 sign(W) + λ2 W.

    Parameters
    ----------
    l1 : float
        λ1 >= 0.
    l2 : float
        λ2 >= 0.
    """

    def __init__(self, l1: float, l2: float) -> None:
        super().__init__(l1=l1, l2=l2)
        self.l1, self.l2 = self._l1, self._l2


@CONSTRAINTS.register("max_norm")
class MaxNorm:
    """Max-norm constraint: after an update, rescale each unit's incoming weight vector w so
    that ‖w‖₂ <= c (the notes suggest c of 3 or 4).

    For W of shape (n_in, n_out) a unit's vector is a column; for a maxout W of shape
    (n_in, n_out, pieces) it is each (unit, piece) column over axis 0. Vectors already inside
    the ball are multiplied by exactly 1.0, which leaves them bit-for-bit unchanged.

    Parameters
    ----------
    max_norm : float
        c > 0.
    """

    registry_name: ClassVar[str] = ""

    def __init__(self, max_norm: float) -> None:
        self.max_norm = check_number("max_norm", max_norm, low=0.0, low_inclusive=False)

    def apply(self, model: Model) -> None:
        """Rescale, in place, the columns of every weight array of ``model`` whose norm exceeds c."""
        params = model.params
        c = self.max_norm
        for key in model.weight_keys:
            w = params[key]
            # squared column norms without a w*w temporary of the full matrix
            norms = np.atleast_1d(np.einsum("i...,i...->...", w, w))
            np.sqrt(norms, out=norms)
            # c / max(‖w‖, c): 1 inside the ball, c/‖w‖ outside; never divides by zero
            np.maximum(norms, c, out=norms)
            np.divide(c, norms, out=norms)
            w *= norms

    def get_config(self) -> dict[str, Any]:
        return {"max_norm": self.max_norm}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MaxNorm:
        return cls(**config)

    def __repr__(self) -> str:
        return f"MaxNorm(max_norm={self.max_norm!r})"
