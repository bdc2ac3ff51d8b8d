"""Nesterov momentum: the gradient is (in effect) taken at the look-ahead point."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import check_number
from neuronlab.optim.base import Optimizer
from neuronlab.registry import OPTIMIZERS

__all__ = ["Nesterov"]


@OPTIMIZERS.register("nesterov")
class Nesterov(Optimizer):
    """Nesterov accelerated momentum in the notes' change of variables.

    The look-ahead form ``x_ahead = x + mu v; v := mu v - lr dx_ahead; x := x + v`` is
    rewritten so that the stored parameter is the look-ahead point and the gradient is the
    ordinary one::

        v_prev = v
        v := mu * v - lr * dw
        w := w - mu * v_prev + (1 + mu) * v

    Substituting v_prev = (v + lr dw) / mu shows the last line equals
    ``w := w + mu * v - lr * dw``, which is what is computed (no copy of v_prev needed).

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    momentum : float
        mu in [0, 1).
    clip_value, clip_norm, weight_decay
        See :class:`Optimizer`.
    """

    slots = ("v",)
    elementwise = True

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

    def _update(self, name: str, w: np.ndarray, g: np.ndarray, lr: float, state: dict) -> None:
        v, buf, mu = state["v"], self._scratch[name], self.momentum
        np.multiply(g, lr, out=buf)
        v *= mu
        v -= buf  # v = mu v_prev - lr g
        w -= buf  # w += -lr g ...
        np.multiply(v, mu, out=buf)
        w += buf  # ... + mu v

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum}
