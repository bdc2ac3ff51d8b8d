"""Adagrad: per-parameter learning rates from the running sum of squared gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import check_number
from neuronlab.optim.base import Optimizer
from neuronlab.registry import OPTIMIZERS

__all__ = ["Adagrad"]


# The rule as one pass over flat 1-D arrays, for the compiled training loop
# (neuronlab.engine): the same float operations in the same order as _update, so
# the result is bit-identical (tests/test_kernels.py).
def _adagrad_kernel(w, g, cache, lr, eps):  # type: ignore[no-untyped-def]
    """Adagrad's rule, ``c += g²; w −= lr·g/(√c + eps)``, as one pass over flat arrays.

    Parameters
    ----------
    w, g : ndarray
        The parameters (updated in place) and their gradient, 1-D.
    cache : ndarray
        The sum of squared gradients.
    lr : float
        The step's learning rate.
    eps : float
        The denominator's floor.
    """
    for i in range(w.size):
        gi = g[i]
        ci = cache[i] + gi * gi
        cache[i] = ci
        w[i] -= gi / (np.sqrt(ci) + eps) * lr

@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), the notes' form.

    ``cache := cache + dw**2``; ``w := w - lr * dw / (sqrt(cache) + eps)``. Parameters with
    large past gradients get smaller steps; the effective rate only ever decreases.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    eps : float
        Smoothing term (> 0) that keeps the division finite.
    clip_value, clip_norm, weight_decay
        See :class:`Optimizer`.
    """

    slots = ("cache",)
    elementwise = True
    kernel = staticmethod(_adagrad_kernel)

    def __init__(
        self,
        lr: float = 0.01,
        eps: float = 1e-8,
        *,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, clip_value=clip_value, clip_norm=clip_norm, weight_decay=weight_decay)
        self.eps = check_number("eps", eps, low=0, low_inclusive=False)

    def _update(
        self, name: str, w: np.ndarray, g: np.ndarray, lr: float, state: dict[str, np.ndarray]
    ) -> None:
        cache, buf = state["cache"], self._scratch[name]
        np.multiply(g, g, out=buf)
        cache += buf
        np.sqrt(cache, out=buf)
        buf += self.eps
        np.divide(g, buf, out=buf)
        buf *= lr
        w -= buf

    def _kernel_scalars(self, lr: float) -> tuple[float, ...]:
        return (lr, self.eps)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments: the base's ``lr``, ``clip_value``, ``clip_norm`` and
        ``weight_decay``, plus ``eps``.

        Returns
        -------
        dict
        """
        return {**super().get_config(), "eps": self.eps}
