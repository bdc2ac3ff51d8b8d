"""Adam (RMSprop with momentum and bias correction) and AdamW (decoupled weight decay)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neuronlab._validation import check_number
from neuronlab.optim.base import Optimizer
from neuronlab.registry import OPTIMIZERS

__all__ = ["Adam", "AdamW"]


# The rule as one pass over flat 1-D arrays, for the compiled training loop
# (neuronlab.engine): the same float operations in the same order as _update, so
# the result is bit-identical (tests/test_kernels.py).
def _adam_kernel(w, g, m, v, b1, c1, b2, c2, eps, step):  # type: ignore[no-untyped-def]
    """Adam's rule with the bias corrections folded into ``eps`` and ``step``, as one pass.

    Parameters
    ----------
    w, g : ndarray
        The parameters (updated in place) and their gradient, 1-D.
    m : ndarray
        The first-moment slot.
    v : ndarray
        The second-moment slot.
    b1 : float
        β1.
    c1 : float
        1 − β1.
    b2 : float
        β2.
    c2 : float
        1 − β2.
    eps : float
        Eps·√(1 − β2^t).
    step : float
        lr·√(1 − β2^t)/(1 − β1^t).
    """
    for i in range(w.size):
        gi = g[i]
        mi = m[i] * b1 + gi * c1
        m[i] = mi
        vi = v[i] * b2 + gi * gi * c2
        v[i] = vi
        w[i] -= mi / (np.sqrt(vi) + eps) * step

@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, the notes' full form.

    With the step counter t incremented before use (t = 1 on the first step)::

        m := beta1 * m + (1 - beta1) * dw
        v := beta2 * v + (1 - beta2) * dw**2
        mt = m / (1 - beta1**t);  vt = v / (1 - beta2**t)
        w := w - lr * mt / (sqrt(vt) + eps)

    On the first step mt = dw and vt = dw**2, so every weight moves by about lr whatever
    the gradient's scale.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    beta1, beta2 : float
        Decay rates of the first and second moment estimates, in [0, 1).
    eps : float
        Smoothing term (> 0).
    clip_value, clip_norm, weight_decay
        See :class:`Optimizer`.
    """

    slots = ("m", "v")
    elementwise = True
    kernel = staticmethod(_adam_kernel)
    kernel_scalars_use_t = True

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, clip_value=clip_value, clip_norm=clip_norm, weight_decay=weight_decay)
        self.beta1 = check_number("beta1", beta1, low=0, high=1, high_inclusive=False)
        self.beta2 = check_number("beta2", beta2, low=0, high=1, high_inclusive=False)
        self.eps = check_number("eps", eps, low=0, low_inclusive=False)

    def _update(
        self, name: str, w: np.ndarray, g: np.ndarray, lr: float, state: dict[str, np.ndarray]
    ) -> None:
        m, v, buf = state["m"], state["v"], self._scratch[name]
        b1, b2, t = self.beta1, self.beta2, self.t
        m *= b1
        np.multiply(g, 1.0 - b1, out=buf)
        m += buf
        np.multiply(g, g, out=buf)
        buf *= 1.0 - b2
        v *= b2
        v += buf
        # lr (m / bc1) / (sqrt(v / bc2) + eps)
        #   = (lr sqrt(bc2) / bc1) m / (sqrt(v) + eps sqrt(bc2)):
        # the corrections become two scalars, so no corrected copies of m and v are made.
        # (Python floats are weakly typed: float32 arrays stay float32.)
        sbc2 = math.sqrt(1.0 - b2**t)
        np.sqrt(v, out=buf)
        buf += self.eps * sbc2
        np.divide(m, buf, out=buf)
        buf *= lr * sbc2 / (1.0 - b1**t)
        w -= buf

    def _kernel_scalars(self, lr: float) -> tuple[float, ...]:
        b1, b2, t = self.beta1, self.beta2, self.t
        sbc2 = math.sqrt(1.0 - b2**t)  # as in _update
        return (b1, 1.0 - b1, b2, 1.0 - b2, self.eps * sbc2, lr * sbc2 / (1.0 - b1**t))

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments: the base's ``lr``, ``clip_value``, ``clip_norm`` and
        ``weight_decay``, plus ``beta1``, ``beta2`` and ``eps``.

        Returns
        -------
        dict
        """
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), on by default.

    The Adam step, then ``w := w - lr * weight_decay * w`` on the decayed parameters (the
    base class's mechanism; pass ``decay_keys=model.weight_keys`` to spare biases). Unlike
    an L2 term in the gradient, the decay is not rescaled by Adam's per-parameter rates.

    Parameters
    ----------
    lr, beta1, beta2, eps
        As :class:`Adam`.
    weight_decay : float
        Decay coefficient (>= 0), default 0.01.
    clip_value, clip_norm
        See :class:`Optimizer`.
    """

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(
            lr,
            beta1,
            beta2,
            eps,
            clip_value=clip_value,
            clip_norm=clip_norm,
            weight_decay=weight_decay,
        )
