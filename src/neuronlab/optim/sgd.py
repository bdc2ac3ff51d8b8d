"""Vanilla stochastic gradient descent: w -= lr * g."""

from __future__ import annotations

import numpy as np

from neuronlab.optim.base import Optimizer
from neuronlab.registry import OPTIMIZERS

__all__ = ["SGD"]


# The rule as one pass over flat 1-D arrays, for the compiled training loop
# (neuronlab.engine): the same float operations in the same order as _update, so
# the result is bit-identical (tests/test_kernels.py).
def _sgd_kernel(w, g, lr):  # type: ignore[no-untyped-def]
    """SGD's rule, ``w -= lr·g``, as one pass over flat arrays (the engine's update).

    Parameters
    ----------
    w, g : ndarray
        The parameters (updated in place) and their gradient, 1-D.
    lr : float
        The step's learning rate, in the arrays' dtype.
    """
    for i in range(w.size):
        w[i] -= g[i] * lr

@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Plain gradient descent, the notes' vanilla update.

    ``w := w - lr * dw`` for every parameter. Keeps no state between steps.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    clip_value, clip_norm, weight_decay
        See :class:`Optimizer`.
    """

    slots = ()
    elementwise = True
    kernel = staticmethod(_sgd_kernel)

    def __init__(
        self,
        lr: float = 0.01,
        *,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, clip_value=clip_value, clip_norm=clip_norm, weight_decay=weight_decay)

    def _update(
        self, name: str, w: np.ndarray, g: np.ndarray, lr: float, state: dict[str, np.ndarray]
    ) -> None:
        buf = self._scratch[name]
        np.multiply(g, lr, out=buf)
        w -= buf

    def _kernel_scalars(self, lr: float) -> tuple[float, ...]:
        return (lr,)
