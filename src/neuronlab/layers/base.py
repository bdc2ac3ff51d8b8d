"""The Layer contract every building block follows.

A layer holds ``params`` and ``grads``: two dicts with the same keys. ``forward`` caches
exactly what ``backward`` needs; ``backward`` *adds* into ``grads`` and returns the gradient
with respect to the layer's input. Non-learnable state that must be saved with the model
(batch-norm running averages) lives in ``buffers``.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np

__all__ = ["Layer"]

_T = TypeVar("_T")


class Layer:
    """Base class of all layers.

    Class attributes
    ----------------
    weight_names : tuple of str
        Parameters that regularisers and max-norm act on (never biases).
    bias_names : tuple of str
        Parameters counted as biases by :meth:`Sequential.summary`.
    stochastic : bool
        True for layers that draw random numbers in training (dropout, noise). They skip the
        noise while ``noise_off`` is set, which gradient checks use.
    statistics : frozenset of str
        What the babysitting :class:`~neuronlab.babysit.monitor.Monitor` measures on this
        layer's output besides its mean and spread: ``"activation"`` (a nonlinearity, whose
        spread is compared across depth), ``"dead"`` (units that output 0 on every example:
        ReLU) and ``"saturation"`` (outputs outside ``saturation_band``).
    saturation_band : (centre, half width) or None
        An output ``y`` is saturated when ``|y - centre| > half width``.
    """

    registry_name: ClassVar[str] = ""
    weight_names: ClassVar[tuple[str, ...]] = ()
    bias_names: ClassVar[tuple[str, ...]] = ()
    stochastic: ClassVar[bool] = False
    statistics: ClassVar[frozenset[str]] = frozenset()
    saturation_band: ClassVar[tuple[float, float] | None] = None

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.noise_off = False

    # -- the two directions -------------------------------------------------------------
    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """Compute the output for ``x``; cache what backward needs.

        Parameters
        ----------
        x : ndarray of shape (n_samples, ...)
            The layer's input, one row per sample.
        training : bool, default False
            Training mode: stochastic layers draw their noise and batch norm uses the batch's
            statistics; inference mode is deterministic.

        Returns
        -------
        ndarray of shape (n_samples, ...)
            The layer's output.
        """
        raise NotImplementedError

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Add dL/dparams into ``grads`` and return dL/dx.

        Parameters
        ----------
        dout : ndarray
            dL/d(output): the gradient of the loss with respect to the last forward pass's
            output, of its shape.
        input_grad : bool, default True
            Whether to compute dL/dx; the first layer of a network needs only its parameter
            gradients.

        Returns
        -------
        ndarray or None
            dL/dx, of the shape of the last forward pass's input; ``None`` when
            ``input_grad`` is False and the layer can skip that work.

        Raises
        ------
        ValueError
            If called before ``forward``.
        """
        raise NotImplementedError

    # -- helpers shared by all layers ---------------------------------------------------
    def _cached(self, value: _T | None) -> _T:
        """Return a cached forward value, or raise the error for backward-before-forward."""
        if value is None:
            raise ValueError(f"{type(self).__name__}.backward called before forward(training=...)")
        return value

    def add_param(self, name: str, value: np.ndarray) -> None:
        """Register a learnable array and its zero gradient (same key in ``params`` and
        ``grads``).

        Parameters
        ----------
        name : str
            Key of the parameter (``"W"``, ``"b"``...).
        value : ndarray
            The array itself (not copied).
        """
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)

    def zero_grad(self) -> None:
        """Set every gradient array to zero, in place."""
        for g in self.grads.values():
            g.fill(0)

    def astype(self, dtype: Any) -> Layer:
        """Convert the floating-point params, grads and buffers to ``dtype``.

        The dicts get new arrays (the old ones are not changed).

        Parameters
        ----------
        dtype : dtype-like
            Such as ``np.float32`` or ``"float64"``.

        Returns
        -------
        Layer
            ``self``.
        """
        dtype = np.dtype(dtype)
        for store in (self.params, self.grads, self.buffers):
            for k, v in store.items():
                if v.dtype != dtype and np.issubdtype(v.dtype, np.floating):
                    store[k] = v.astype(dtype)
        return self

    @property
    def dtype(self) -> np.dtype | None:
        """The dtype of the first parameter, or None for a layer without parameters."""
        for v in self.params.values():
            return v.dtype
        return None

    # -- counting for summary() ---------------------------------------------------------
    @property
    def n_neurons(self) -> int:
        """Neurons this layer adds to the network (units with their own weights)."""
        return 0

    def counts(self) -> dict[str, int]:
        """What :meth:`Sequential.summary` counts for this layer.

        Returns
        -------
        dict
            ``{"neurons", "weights", "biases", "params"}``: :attr:`n_neurons`, the elements
            of the ``weight_names`` and ``bias_names`` parameters, and of all parameters.
        """
        weights = sum(self.params[k].size for k in self.weight_names if k in self.params)
        biases = sum(self.params[k].size for k in self.bias_names if k in self.params)
        total = sum(v.size for v in self.params.values())
        return {"neurons": self.n_neurons, "weights": weights, "biases": biases, "params": total}

    # -- gradient checks ----------------------------------------------------------------
    def kink_state(self) -> np.ndarray | None:
        """For piecewise functions (ReLU, max): an array saying which piece each element of
        the last forward pass fell on. A gradient check that sees it change between x+h and
        x-h knows the centered difference straddles a kink. ``None`` for smooth layers."""
        return None

    # -- configuration ------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Constructor keyword arguments as JSON-serialisable values (no RNG, no arrays)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """A new layer built from :meth:`get_config` output: ``cls(**config)``.

        Parameters
        ----------
        config : dict
            Constructor keyword arguments.

        Returns
        -------
        Layer
            A freshly initialised layer (its weights are not part of the config).
        """
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
