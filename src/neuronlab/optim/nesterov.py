"""Nesterov momentum: the gradient is (in effect) taken at the look-ahead point."""

from __future__ import annotations

import numpy as np

from neuronlab.optim.momentum import Momentum
from neuronlab.registry import OPTIMIZERS

__all__ = ["Nesterov"]


# The rule as one pass over flat 1-D arrays, for the compiled training loop
# (neuronlab.engine): the same float operations in the same order as _update, so
# the result is bit-identical (tests/test_kernels.py).
def _nesterov_kernel(w, g, v, lr, mu):  # type: ignore[no-untyped-def]
    """Nesterov's rule (the notes' form), as one pass over flat arrays.

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
        step = g[i] * lr
        vi = v[i] * mu - step
        v[i] = vi
        w[i] = (w[i] - step) + vi * mu

@OPTIMIZERS.register("nesterov")
class Nesterov(Momentum):
    """Nesterov accelerated momentum in the notes' change of variables.

    The look-ahead form ``x_ahead = x + mu v; v := mu v - lr dx_ahead; x := x + v`` is
    rewritten so that the stored parameter is the look-ahead point and the gradient is the
    ordinary one::

        v_prev = v
        v := mu * v - lr * dw
        w := w - mu * v_prev + (1 + mu) * v

    Substituting v_prev = (v + lr dw) / mu shows the last line equals
    ``w := w + mu * v - lr * dw``, which is what is computed (no copy of v_prev needed).

    State slot and validation are those of :class:`Momentum`; only the update differs.

    Parameters
    ----------
    lr : float, default 0.01
        Learning rate (> 0).
    momentum : float, default 0.9
        mu in [0, 1).
    clip_value, clip_norm, weight_decay
        See :class:`Optimizer`.
    """

    kernel = staticmethod(_nesterov_kernel)  # Momentum's _kernel_scalars: (lr, momentum)

    def _update(
        self, name: str, w: np.ndarray, g: np.ndarray, lr: float, state: dict[str, np.ndarray]
    ) -> None:
        v, buf, mu = state["v"], self._scratch[name], self.momentum
        np.multiply(g, lr, out=buf)
        v *= mu
        v -= buf  # v = mu v_prev - lr g
        w -= buf  # w += -lr g ...
        np.multiply(v, mu, out=buf)
        w += buf  # ... + mu v

