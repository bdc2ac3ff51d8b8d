"""Momentum SGD: a velocity integrates the gradient, like a ball rolling downhill."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import check_number
from neuronlab.optim.base import Optimizer
from neuronlab.registry import OPTIMIZERS

__all__ = ["Momentum"]


# The rule as one pass over flat 1-D arrays, for the compiled training loop
# (neuronlab.engine): the same float operations in the same order as _update, so
# the result is bit-identical (tests/test_kernels.py).
def _momentum_kernel(w, g, v, lr, mu):  # type: ignore[no-untyped-def]
    """Momentum's rule, ``v = μv − lr·g; w += v``, as one pass over flat arrays.

    Parameters
    ----------
    w, g : ndarray
        The parameters (updated in place) and their gradient, 1-D.
    v : ndarray
        The velocity slot.
    lr : float
        The step's learning rate.
    mu : float
        The momentum.
    """
    for i in range(w.size):
        vi = v[i] * mu - g[i] * lr
        v[i] = vi
        w[i] += vi

@OPTIMIZERS.register("momentum")
class Momentum(Optimizer):
    """Classical momentum (the notes' form).

    ``v := mu * v - lr * dw``; ``w := w + v``, with v starting at 0.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    momentum : float
        mu in [0, 1): the "friction"; 0 gives plain SGD.
    clip_value, clip_norm, weight_decay
        See :class:`Optimizer`.
    """

    slots = ("v",)
    elementwise = True
    kernel = staticmethod(_momentum_kernel)

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.9,
        *,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, clip_value=clip_value, clip_norm=clip_norm, weight_decay=weight_decay)
        self.momentum = check_number("momentum", momentum, low=0, high=1, high_inclusive=False)

    def _update(
        self, name: str, w: np.ndarray, g: np.ndarray, lr: float, state: dict[str, np.ndarray]
    ) -> None:
        v, buf = state["v"], self._scratch[name]
        np.multiply(g, lr, out=buf)
        v *= self.momentum
        v -= buf
        w += v

    def _kernel_scalars(self, lr: float) -> tuple[float, ...]:
        return (lr, self.momentum)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments: the base's ``lr``, ``clip_value``, ``clip_norm`` and
        ``weight_decay``, plus ``momentum``.

        Returns
        -------
        dict
        """
        return {**super().get_config(), "momentum": self.momentum}
