"""Weight penalties (L2, L1, elastic net) and the max-norm constraint.

They act on ``model.weight_keys`` only: biases are never regularised, because they do not
multiply the data and penalising them changes little (the notes). A model is any object with
``params`` and ``grads`` (dicts with the same keys) and ``weight_keys`` (a ``Sequential``).

Speed. A penalty runs every step on every weight, so it uses no level-1 BLAS (``np.dot``,
``axpy``, ``asum``): threaded OpenBLAS wakes its threads for a few thousand elements, and on
a busy machine they spin against other processes (the digits MLP with L2 took 28× as long as
without: 9 ms an ``axpy`` and 12 ms a ``dot`` for microseconds of work). In NumPy the sums
are reductions (``einsum``, ``add.reduce``) and the gradient two in-place ufuncs through a
scratch array. The compiled engine (:mod:`neuronlab.engine`) runs the penalty inside its
step with the kernels below (one pass each: the gradient bit-identical to the NumPy code,
Σ w² equal within rounding).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np

from neuronlab._validation import check_number
from neuronlab.layers.sequential import Sequential
from neuronlab.registry import CONSTRAINTS, REGULARIZERS

__all__ = ["Regularizer", "L2", "L1", "ElasticNet", "MaxNorm"]


class Model(Protocol):
    @property
    def params(self) -> dict[str, np.ndarray]: ...

    @property
    def grads(self) -> dict[str, np.ndarray]: ...

    @property
    def weight_keys(self) -> list[str]: ...


def _weights(model: Model) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """``(key, W, dL/dW)`` for every weight array of ``model``, in ``weight_keys`` order. A
    Sequential's layers are read directly: its ``params``, ``grads`` and ``weight_keys``
    build a dict or list of dotted names on every access, some µs a step."""
    if isinstance(model, Sequential):
        return [((i, name), layer.params[name], layer.grads[name])
                for i, layer in enumerate(model.layers)
                for name in layer.weight_names if name in layer.params]
    params, grads = model.params, model.grads
    return [(key, params[key], grads[key]) for key in model.weight_keys]


# The penalty's passes over one weight array, for the compiled training loop (neuronlab.engine):
# Σ w² as 16 partial sums, and the L2 and L1 gradients added in place.

def _sum_squares(w):  # type: ignore[no-untyped-def]
    # Σ w² as 16 partial sums in w's dtype (a vector register's lanes: one running sum would
    # wait on each addition), then added in float64. NumPy's einsum also sums in the dtype,
    # in another order: the two agree within rounding, not bit for bit
    n = w.size
    m = n - n % 16
    acc = np.zeros(16, w.dtype)
    for i in range(0, m, 16):
        for j in range(16):
            v = w[i + j]
            acc[j] += v * v
    s = 0.0
    for j in range(16):
        s += acc[j]
    for i in range(m, n):
        v = w[i]
        s += v * v
    return s

def _add_scaled(w, g, a):  # type: ignore[no-untyped-def]
    # g += a * w, as np.multiply(w, a, out=buf); g += buf (the L2 gradient)
    for i in range(w.size):
        g[i] += w[i] * a

def _add_scaled_sign(w, g, a):  # type: ignore[no-untyped-def]
    # g += a * sign(w), as np.sign(w, out=buf); buf *= a; g += buf (the L1 subgradient):
    # np.sign's 0 for ±0 and NaN for NaN, in w's dtype
    for i in range(w.size):
        g[i] += np.sign(w[i]) * a


class Regularizer:
    """Penalty R(W) = λ1 Σ|w| + ½ λ2 Σ w², summed over every weight array of the model.

    Subclasses fix which of the two coefficients they expose. ``loss(model)`` returns R and
    ``add_grad(model)`` adds dR/dW into ``model.grads`` in place.

    Parameters
    ----------
    l1 : float, default 0.0
        λ1 >= 0.
    l2 : float, default 0.0
        λ2 >= 0.
    """

    registry_name: ClassVar[str] = ""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self._l1 = check_number("l1", l1, low=0.0)
        self._l2 = check_number("l2", l2, low=0.0)
        self._buf: dict[Any, np.ndarray] = {}  # scratch like each weight array

    def loss(self, model: Model) -> float:
        """The penalty for the model's current weights (a float).

        Σ|w| is a NumPy sum of |W| (written into a scratch array), Σ w² an ``einsum`` (one
        pass, no temporary, and no level-1 BLAS, whose threads spin against other processes
        on a busy machine).

        Parameters
        ----------
        model : Sequential
            Or any object with ``params``, ``grads`` and ``weight_keys``.

        Returns
        -------
        float
            R(W); 0.0 when both coefficients are 0.

        Examples
        --------
        >>> from neuronlab.layers import Linear, Sequential
        >>> model = Sequential([Linear(2, 1)])
        >>> model.params["0.W"][...] = [[3.0], [4.0]]
        >>> L2(0.1).loss(model)  # ½ · 0.1 · (3² + 4²); the bias is not penalised
        1.25
        """
        l1, l2 = self._l1, self._l2
        total = 0.0
        for key, w, _ in _weights(model):
            if l1:
                total += l1 * float(np.add.reduce(np.abs(w, out=self._scratch(key, w)),
                                                  axis=None))
            if l2:
                flat = np.ravel(w, order="K")  # a view of any contiguous array
                total += 0.5 * l2 * float(np.einsum("i,i->", flat, flat))
        return total

    def add_grad(self, model: Model) -> None:
        """Add λ1 sign(W) + λ2 W into ``model.grads[key]`` for every weight key (biases untouched).

        ``g += λ2·W`` then ``g += λ1·sign(W)``, each through a scratch array (no temporary).

        Parameters
        ----------
        model : Sequential
            Or any object with ``params``, ``grads`` and ``weight_keys``.
        """
        l1, l2 = self._l1, self._l2
        for key, w, g in _weights(model):
            if l2:
                buf = self._scratch(key, w)
                np.multiply(w, l2, out=buf)
                g += buf
            if l1:
                # sign(0) = 0: the subgradient that leaves an exact zero weight where it is
                buf = np.sign(w, out=self._scratch(key, w))
                buf *= l1
                g += buf

    def _scratch(self, key: Any, w: np.ndarray) -> np.ndarray:
        buf = self._buf.get(key)
        if buf is None or buf.shape != w.shape or buf.dtype != w.dtype:
            buf = self._buf[key] = np.empty_like(w)
        return buf

    def __getstate__(self) -> dict[str, Any]:
        # the scratch arrays are caches: a pickle or a deep copy starts without them
        return {**self.__dict__, "_buf": {}}

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"l1": float, "l2": float}``.
        """
        return {"l1": self._l1, "l2": self._l2}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """A new regulariser from :meth:`get_config` output: ``cls(**config)``.

        Parameters
        ----------
        config : dict
            Constructor keyword arguments.

        Returns
        -------
        Regularizer
        """
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
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"strength": float}``.
        """
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
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"strength": float}``.
        """
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
        """Rescale, in place, the columns of every weight array of ``model`` whose norm exceeds c.

        Parameters
        ----------
        model : Sequential
            Or any object with ``params``, ``grads`` and ``weight_keys``.
        """
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
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"max_norm": float}``.
        """
        return {"max_norm": self.max_norm}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MaxNorm:
        """A new constraint from :meth:`get_config` output: ``cls(**config)``.

        Parameters
        ----------
        config : dict
            Constructor keyword arguments.

        Returns
        -------
        MaxNorm
        """
        return cls(**config)

    def __repr__(self) -> str:
        return f"MaxNorm(max_norm={self.max_norm!r})"
