"""The Optimizer base class: what every update rule shares, written once.

One ``step`` applies, in this order,

1. gradient clipping by value (``clip_value``), then by global L2 norm over all gradients
   (``clip_norm``), both in place on ``grads``;
2. the subclass's per-parameter rule ``_update(name, w, g, lr, state)``;
3. decoupled weight decay ``w -= lr * weight_decay * w`` on the ``decay_keys`` parameters
   (Loshchilov & Hutter; this is not an L2 term added to the gradient).

Per-parameter state is ``self.state[name] = {slot: ndarray}``, created lazily with zeros like
the parameter on its first step and serialised by :meth:`Optimizer.state_dict`. Each
parameter also gets one scratch array (``self._scratch[name]``) so that the rules run with
in-place NumPy operations and allocate nothing the size of the weights per step. Scratch
carries no information between steps, so it is not part of the state dict.

Speed. Rules that declare ``elementwise = True`` (every built-in one) also give their rule as
a ``kernel``: one pass over flat arrays with the same float operations as ``_update``, which
the compiled training engine (:mod:`neuronlab.engine`) runs over the whole model's packed
parameters (bit-identical to ``_update``, tested for every rule). This file is the readable
rule.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

import numpy as np

from neuronlab._validation import check_number

__all__ = ["Optimizer"]

def _check_optional_positive(name: str, value: Any) -> float | None:
    if value is None:
        return None
    return check_number(name, value, low=0, low_inclusive=False)


class Optimizer:
    """Base class of the update rules.

    Parameters
    ----------
    lr : float
        Learning rate (> 0). ``step(..., lr=...)`` overrides it for one step (a schedule).
    clip_value : float or None
        If set (> 0), clip every gradient element to [-clip_value, clip_value].
    clip_norm : float or None
        If set (> 0), rescale all gradients together so that their global L2 norm
        sqrt(sum_k ||g_k||^2) is at most clip_norm (applied after ``clip_value``).
    weight_decay : float
        Decoupled weight decay coefficient (>= 0): after the update, w -= lr * weight_decay * w.

    Attributes
    ----------
    t : int
        Steps taken; incremented at the start of each step, so the first step sees t = 1.
    state : dict of str to dict of str to ndarray
        Per-parameter slots (``slots`` names them), same shape and dtype as the parameter.
    """

    registry_name: ClassVar[str] = ""
    #: Names of the per-parameter state arrays this rule keeps between steps.
    slots: ClassVar[tuple[str, ...]] = ()
    #: True for rules that need the loss and gradient of the whole data set (L-BFGS).
    full_batch: ClassVar[bool] = False
    #: True for rules whose ``_update`` treats every element on its own: the compiled engine
    #: may then run the rule's ``kernel`` over all parameters as one flat block.
    elementwise: ClassVar[bool] = False
    #: The rule as a plain function of 1-D arrays, ``kernel(w, g, *slots, *scalars)`` with the
    #: scalars of ``_kernel_scalars(lr)`` (an elementwise rule only; None: none), which the
    #: compiled engine (:mod:`neuronlab.engine`) runs.
    kernel: ClassVar[Any] = None
    #: True when ``_kernel_scalars`` depends on the step count ``t`` (Adam's bias
    #: corrections), not on ``lr`` alone: the compiled engine then asks for every step's.
    kernel_scalars_use_t: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_update" in cls.__dict__ and "kernel" not in cls.__dict__:
            cls.kernel = None  # a rule of its own: its parent's kernel would not run it

    def __init__(
        self,
        lr: float,
        *,
        clip_value: float | None = None,
        clip_norm: float | None = None,
        weight_decay: float = 0.0,
    ) -> None:
        self.lr = check_number("lr", lr, low=0, low_inclusive=False)
        self.clip_value = _check_optional_positive("clip_value", clip_value)
        self.clip_norm = _check_optional_positive("clip_norm", clip_norm)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0)
        self.t = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._scratch: dict[str, np.ndarray] = {}

    # -- the step -----------------------------------------------------------------------
    def step(
        self,
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
        *,
        lr: float | None = None,
        decay_keys: Collection[str] | None = None,
    ) -> None:
        """Update every array in ``params`` in place from ``grads``.

        Parameters
        ----------
        params, grads : dict of str to ndarray
            Same keys and shapes (a Sequential's ``model.params`` / ``model.grads``).
            ``grads`` is modified in place by clipping.
        lr : float or None
            Learning rate for this step (>= 0; a schedule may reach 0). None: ``self.lr``.
        decay_keys : collection of str or None
            Parameters that receive weight decay; None means all of them. Pass
            ``model.weight_keys`` to spare biases and batch-norm parameters.
        """
        if lr is None:
            lr = self.lr
        else:
            # a Python float is weakly typed: a NumPy float64 lr would promote float32
            # updates to float64 loops
            lr = float(lr)
            if not (0.0 <= lr < math.inf):  # also rejects NaN
                raise ValueError(f"lr must be >= 0 and finite, got {lr!r}")
        if params.keys() != grads.keys():
            raise ValueError(
                "params and grads must have the same keys, "
                f"got {sorted(params)} and {sorted(grads)}"
            )
        self.t += 1
        if self.clip_value is not None or self.clip_norm is not None:
            self._clip(grads)
        state, scratch, update = self.state, self._scratch, self._update
        for name, w in params.items():
            g = grads[name]
            s = state.get(name)
            if s is None or name not in scratch:
                s = self._init_state(name, w, g)
            update(name, w, g, lr, s)
        wd = self.weight_decay
        if wd > 0.0 and lr > 0.0:
            factor = 1.0 - lr * wd  # w -= lr*wd*w as one in-place scale
            if decay_keys is None:
                for w in params.values():
                    w *= factor
            else:
                keys = decay_keys
                if not isinstance(keys, (set, frozenset, dict)):
                    keys = set(keys)  # O(1) membership
                for name, w in params.items():
                    if name in keys:
                        w *= factor

    def _update(
        self, name: str, w: np.ndarray, g: np.ndarray, lr: float, state: dict[str, np.ndarray]
    ) -> None:
        """Apply the rule to one parameter ``w`` in place (gradient ``g``, slots ``state``)."""
        raise NotImplementedError

    def _kernel_scalars(self, lr: float) -> tuple[float, ...]:
        """The scalars that ``kernel`` takes after its arrays, for the step ``self.t`` at
        ``lr``, exactly as ``_update`` rounds them into the parameter's dtype."""
        raise NotImplementedError

    def _clip(self, grads: Mapping[str, np.ndarray]) -> None:
        """Clip by value, then by global norm, in place."""
        c = self.clip_value
        if c is not None:
            for g in grads.values():
                np.clip(g, -c, c, out=g)
        max_norm = self.clip_norm
        if max_norm is not None:
            # sum of squares by einsum: no squared temporary, and no level-1 BLAS (np.dot),
            # whose threads spin against other processes on a busy machine
            sq = 0.0
            for g in grads.values():
                flat = np.ravel(g, order="K")
                sq += float(np.einsum("i,i->", flat, flat))
            norm = math.sqrt(sq)
            # A non-finite norm is left alone: rescaling would turn it into NaNs everywhere and
            # hide which parameter diverged; the trainer's non-finite guard reports it.
            if max_norm < norm < math.inf:
                scale = max_norm / norm
                for g in grads.values():
                    g *= scale

    def _init_state(self, name: str, w: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
        """First step of a parameter (or first after load_state_dict): zero slots unless
        restored, and its scratch array."""
        if g.shape != w.shape:
            raise ValueError(
                f"grads[{name!r}] has shape {g.shape}, but the parameter has shape {w.shape}"
            )
        s = self.state.get(name)
        if s is None:
            s = self.state[name] = {slot: np.zeros_like(w) for slot in self.slots}
        else:
            for slot, v in s.items():
                if v.shape != w.shape:
                    raise ValueError(
                        f"optimizer state {name!r}/{slot!r} has shape {v.shape}, "
                        f"but the parameter has shape {w.shape}"
                    )
        self._scratch[name] = np.empty_like(w)
        return s

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: ``{"type", "config", "t", "state"}``.

        The arrays are copies, so later steps do not change a saved state dict.
        """
        return {
            "type": type(self).registry_name,
            "config": self.get_config(),
            "t": int(self.t),
            "state": {name: {k: v.copy() for k, v in s.items()} for name, s in self.state.items()},
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore the step counter and per-parameter state saved by :meth:`state_dict`.

        The arrays are copied (the caller's dict is not aliased). The hyperparameters are
        the constructor's, not the saved ``config``; build the optimizer with
        ``from_config(d["config"])`` to restore those too.

        Parameters
        ----------
        d : mapping
            A dictionary :meth:`state_dict` returned: ``"t"`` and ``"state"`` are required,
            ``"type"`` (when present) must be this optimizer's registry name.

        Raises
        ------
        ValueError
            If ``d`` lacks ``"t"`` or ``"state"``, is for another optimizer, has a negative
            or non-integer ``t``, or a parameter's slots are not this rule's.
        """
        if not isinstance(d, Mapping) or "t" not in d or "state" not in d:
            raise ValueError("optimizer state dict must be a mapping with 't' and 'state' keys")
        kind = d.get("type")
        if kind and kind != type(self).registry_name:
            raise ValueError(
                f"optimizer state dict is for {kind!r}, "
                f"cannot load it into {type(self).registry_name!r}"
            )
        t = d["t"]
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"optimizer state dict 't' must be an integer >= 0, got {t!r}")
        state: dict[str, dict[str, np.ndarray]] = {}
        for name, slots in d["state"].items():
            if set(slots) != set(self.slots):
                raise ValueError(
                    f"state for {name!r} has slots {sorted(slots)}, expected {sorted(self.slots)}"
                )
            state[name] = {k: np.array(v, copy=True) for k, v in slots.items()}
        self.t = int(t)
        self.state = state
        self._scratch = {}  # recreated lazily on the next step, where the parameter is known

    # -- configuration -----------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON-able) that rebuild this optimizer."""
        return {
            "lr": self.lr,
            "clip_value": self.clip_value,
            "clip_norm": self.clip_norm,
            "weight_decay": self.weight_decay,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Optimizer:
        """A new optimizer from :meth:`get_config` output: ``cls(**config)`` (no state: load
        that with :meth:`load_state_dict`).

        Parameters
        ----------
        config : mapping
            Constructor keyword arguments.

        Returns
        -------
        Optimizer
        """
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
