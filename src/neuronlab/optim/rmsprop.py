"""RMSprop: Adagrad with a leaky (exponentially decaying) squared-gradient cache."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import check_number
from neuronlab.optim.base import Optimizer
from neuronlab.registry import OPTIMIZERS

__all__ = ["RMSprop"]


# The rule as one pass over flat 1-D arrays, for the compiled training loop
# (neuronlab.engine): the same float operations in the same order as _update, so
# the result is bit-identical (tests/test_kernels.py).
def _rmsprop_kernel(w, g, cache, lr, decay, rest, eps):  # type: ignore[no-untyped-def]
    """RMSprop's rule, ``c = decay·c + (1 − decay)·g²; w −= lr·g/(√c + eps)``, as one pass.

    Parameters
    ----------
    w, g : ndarray
        The parameters (updated in place) and their gradient, 1-D.
    cache : ndarray
        The running mean of squared gradients.
    lr : float
        The step's learning rate.
    decay : float
        The decay.
    rest : float
        1 − decay.
    eps : float
        The denominator's floor.
    """
    for i in range(w.size):
        gi = g[i]
        ci = cache[i] * decay + gi * gi * rest
        cache[i] = ci
        w[i] -= gi / (np.sqrt(ci) + eps) * lr

@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), the notes' form.

    ``cache := decay * cache + (1 - decay) * dw**2``;
    ``w := w - lr * dw / (sqrt(cache) + eps)``, with the cache starting at 0.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    decay : float
        Decay rate in (0, 1); typical values 0.9, 0.99, 0.999.
    eps : float
        Smoothing term (> 0).
    clip_value, clip_norm, weight_decay
        See :class:`Optimizer`.
    """

    slots = ("cache",)
    elementwise = True
    kernel = staticmethod(_rmsprop_kernel)

    def __init__(
        self,
        lr: float = 0.001,
        decay: float = 0.99,
        eps: float = 1e-8,
        *,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, clip_value=clip_value, clip_norm=clip_norm, weight_decay=weight_decay)
        self.decay = check_number(
            "decay", decay, low=0, high=1, low_inclusive=False, high_inclusive=False
        )
        self.eps = check_number("eps", eps, low=0, low_inclusive=False)

    def _update(
        self, name: str, w: np.ndarray, g: np.ndarray, lr: float, state: dict[str, np.ndarray]
    ) -> None:
        cache, buf, d = state["cache"], self._scratch[name], self.decay
        np.multiply(g, g, out=buf)
        buf *= 1.0 - d
        cache *= d
        cache += buf
        np.sqrt(cache, out=buf)
        buf += self.eps
        np.divide(g, buf, out=buf)
        buf *= lr
        w -= buf

    def _kernel_scalars(self, lr: float) -> tuple[float, ...]:
        return (lr, self.decay, 1.0 - self.decay, self.eps)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments: the base's ``lr``, ``clip_value``, ``clip_norm`` and
        ``weight_decay``, plus ``decay`` and ``eps``.

        Returns
        -------
        dict
        """
        return {**super().get_config(), "decay": self.decay, "eps": self.eps}
