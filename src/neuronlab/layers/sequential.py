"""A stack of layers applied in order, with dotted parameter names and a summary table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from neuronlab import prediction
from neuronlab._validation import check_array
from neuronlab.layers.base import Layer
from neuronlab.losses.base import Loss
from neuronlab.registry import LAYERS

__all__ = ["Sequential", "Summary"]


class Sequential:
    """Layers applied one after another.

    ``params`` and ``grads`` are dicts with the same dotted keys (``"0.W"``, ``"0.b"``, ...)
    whose values are the layers' own arrays, so in-place updates reach the layers.

    Parameters
    ----------
    layers : sequence of Layer
    """

    #: What :func:`neuronlab.io.load` restored with the model (no attribute on a new model).
    metadata: dict[str, Any]

    def __init__(self, layers: Sequence[Layer]) -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("layers must not be empty")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a Layer, got {type(layer).__name__}")
        self.layers = layers
        self.preprocessor: Any = None  # set by nl.load when a fitted transform was saved
        self._is_packed = False

    def pack(self) -> Sequential:
        """Lay the parameters out back to back in one flat array, and the gradients in another;
        returns self.

        Each layer's arrays are replaced by views of the two blocks (values kept), so arrays
        taken from the layers before this call are no longer the model's. The compiled training
        engine (:mod:`neuronlab.engine`) runs packed models only: its update is one pass over
        each block. ``mlp``
        and ``from_config`` pack the networks they build (nobody holds their arrays yet); a
        Sequential of your own layers is left as it is. Nothing happens when the parameters
        do not share one dtype."""
        entries = [(layer, k) for layer in self.layers for k in layer.params]
        dtypes = {layer.params[k].dtype for layer, k in entries}
        if len(entries) < 2 or len(dtypes) != 1:
            return self
        dtype = dtypes.pop()
        total = sum(layer.params[k].size for layer, k in entries)
        flat_w, flat_g = np.empty(total, dtype=dtype), np.empty(total, dtype=dtype)
        start = 0
        for layer, k in entries:
            w, g = layer.params[k], layer.grads[k]
            stop = start + w.size
            flat_w[start:stop] = w.reshape(-1)
            flat_g[start:stop] = g.reshape(-1)
            layer.params[k] = flat_w[start:stop].reshape(w.shape)
            layer.grads[k] = flat_g[start:stop].reshape(g.shape)
            start = stop
        self._is_packed = True
        return self

    # -- the two directions -------------------------------------------------------------
    def forward(self, x: np.ndarray, *, training: bool = False, check: bool = True) -> np.ndarray:
        """Scores for ``x``: each layer's ``forward`` in turn (``model(x)`` is the same call).

        Parameters
        ----------
        x : ndarray of shape (n_samples, n_in) or (n_samples, ...)
            float32 or float64; trailing axes are flattened. No preprocessing is applied
            (:meth:`decision_function` applies ``preprocessor``).
        training : bool, default False
            Training mode for every layer (dropout and noise active, batch norm on batch
            statistics).
        check : bool, default True
            False skips validating ``x`` (ndarray, float dtype, no NaN/Inf, width) for a
            caller that has validated it already: the Trainer checks X once per ``fit``, so
            its batches are not scanned again every step. The computation is the same
            either way.

        Returns
        -------
        ndarray of shape (n_samples, n_out)
            The last layer's output.

        Raises
        ------
        ValueError
            With ``check``: if ``x`` holds NaN or Inf or has the wrong number of features.
        TypeError
            With ``check``: if ``x`` is not a float ndarray.

        Examples
        --------
        >>> import numpy as np
        >>> from neuronlab.layers import Linear, ReLU, Sequential
        >>> model = Sequential([Linear(4, 8, rng=0), ReLU(), Linear(8, 3, rng=0)])
        >>> model.forward(np.ones((5, 4), dtype=np.float32)).shape
        (5, 3)
        """
        if check:
            check_array("x", x)
            n_in = self.n_in
            if n_in is not None:
                width = int(np.prod(x.shape[1:]))
                if width != n_in:
                    raise ValueError(
                        f"x has {width} features per sample, but the model expects {n_in}"
                    )
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate dL/dscores through the layers in reverse; every layer adds its
        gradients into ``grads`` (call :meth:`zero_grad` first for a fresh step).

        Parameters
        ----------
        dout : ndarray of shape (n_samples, n_out)
            dL/dscores for the last :meth:`forward` pass (what ``loss.backward()`` returns).
        input_grad : bool, default True
            False lets the first layer skip dL/dx (and returns None).

        Returns
        -------
        ndarray or None
            dL/dx in the input's shape, or None.
        """
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            # None comes only from layer 0, and only when input_grad is False: the last step
            dout = cast(np.ndarray, self.layers[i].backward(dout, input_grad=input_grad or i > 0))
        return dout

    __call__ = forward

    def zero_grad(self, *, lazy: bool = False) -> None:
        """Set every gradient to zero.

        Parameters
        ----------
        lazy : bool, default False
            For a caller that runs ``backward`` next (the Trainer, every step): layers that
            then write their gradient instead of adding to it (``Linear``) skip the fill, so
            until that backward their ``grads`` hold stale values.
        """
        for layer in self.layers:
            defer = getattr(layer, "_defer_zero_grad", None) if lazy else None
            if defer is not None:
                defer()
            else:
                layer.zero_grad()

    # -- prediction from raw inputs (neuronlab.prediction) --------------------------------
    def decision_function(
        self, X: Any, *, batch_size: int = prediction.DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """Raw scores for raw inputs: ``model.preprocessor`` (when set), then ``forward`` in
        inference mode, ``batch_size`` rows at a time (:func:`neuronlab.prediction.decision_function`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features (lists and DataFrames too).
        batch_size : int, default 1024
            Rows per forward pass.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            In the model's dtype.
        """
        return prediction.decision_function(self, X, batch_size=batch_size)

    def predict(
        self,
        X: Any,
        *,
        loss: Loss | str | None = None,
        batch_size: int = prediction.DEFAULT_BATCH_SIZE,
    ) -> np.ndarray:
        """Predictions for raw inputs: ``loss.predict`` of :meth:`decision_function`.

        Class labels of shape (n_samples,), 0/1 attributes (n_samples, n_attributes) or
        regression values (:func:`neuronlab.prediction.predict`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features (lists and DataFrames too).
        loss : Loss or str, optional
            The loss that reads the scores (a Loss or a registry name); defaults to
            ``self.metadata["loss"]`` (saved by training runs, restored by ``nl.load``),
            else softmax cross-entropy.
        batch_size : int, default 1024
            Rows per forward pass.

        Returns
        -------
        ndarray
            One prediction (row) per sample.
        """
        return prediction.predict(self, X, loss=loss, batch_size=batch_size)

    def predict_proba(
        self,
        X: Any,
        *,
        loss: Loss | str | None = None,
        batch_size: int = prediction.DEFAULT_BATCH_SIZE,
    ) -> np.ndarray:
        """Probabilities for raw inputs: ``loss.predict_proba`` of :meth:`decision_function`.

        Softmax: shape (n_samples, n_classes), rows summing to 1; sigmoid cross-entropy: the
        positive class's probability, (n_samples,) binary or (n_samples, n_attributes)
        multi-label (:func:`neuronlab.prediction.predict_proba`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features (lists and DataFrames too).
        loss : Loss or str, optional
            As in :meth:`predict`.
        batch_size : int, default 1024
            Rows per forward pass.

        Returns
        -------
        ndarray
            In the model's dtype.

        Raises
        ------
        NotImplementedError
            For a hinge or regression loss, which has no probabilities (use
            :meth:`decision_function`).
        """
        return prediction.predict_proba(self, X, loss=loss, batch_size=batch_size)

    # -- named arrays -------------------------------------------------------------------
    def _named(self, attr: str) -> dict[str, np.ndarray]:
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in getattr(layer, attr).items()}

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Every layer's parameters by dotted name (``"0.W"``, ``"0.b"``, ``"2.W"``...).

        A new dict on every access, holding the layers' own arrays: updating a value in place
        updates the model.
        """
        return self._named("params")

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """Every layer's gradients, with the same dotted keys as :attr:`params` (the layers' own
        arrays; a new dict on every access).
        """
        return self._named("grads")

    @property
    def buffers(self) -> dict[str, np.ndarray]:
        """Every layer's non-learnable saved state by dotted name (``"1.running_mean"``...), the
        layers' own arrays.
        """
        return self._named("buffers")

    @property
    def weight_keys(self) -> list[str]:
        """Dotted names of the parameters that regularisers and constraints act on."""
        return [f"{i}.{k}" for i, layer in enumerate(self.layers) for k in layer.weight_names if k in layer.params]

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Copy values into params and buffers by dotted name, in place.

        Parameters
        ----------
        arrays : dict of str to ndarray
            Exactly the keys of ``params`` and ``buffers`` together (``"0.W"``,
            ``"1.running_mean"``...), each of the model's shape; values are cast to the
            model's dtype.

        Raises
        ------
        ValueError
            If a key is missing or unknown, or an array's shape differs.
        """
        own = {**self.params, **self.buffers}
        missing = sorted(set(own) - set(arrays))
        unknown = sorted(set(arrays) - set(own))
        if missing or unknown:
            raise ValueError(f"arrays do not match the model: missing {missing}, unexpected {unknown}")
        for k, v in arrays.items():
            if own[k].shape != v.shape:
                raise ValueError(f"array {k!r} has shape {v.shape}, the model expects {own[k].shape}")
            own[k][...] = v

    def astype(self, dtype: Any) -> Sequential:
        """Convert every layer's floating-point arrays to ``dtype`` (re-packed if the model was
        packed); arrays taken from the model before the call are no longer its own.

        Parameters
        ----------
        dtype : dtype-like
            Such as ``np.float64``.

        Returns
        -------
        Sequential
            ``self``.
        """
        for layer in self.layers:
            layer.astype(dtype)
        return self.pack() if self._is_packed else self

    @property
    def dtype(self) -> np.dtype | None:
        """The first parameterised layer's dtype (the compute dtype), or None if no layer has parameters."""
        for layer in self.layers:
            if layer.dtype is not None:
                return layer.dtype
        return None

    @property
    def n_in(self) -> int | None:
        """The first layer's ``n_in`` (input features), or None when it has none (e.g. an activation)."""
        return getattr(self.layers[0], "n_in", None)

    @property
    def n_out(self) -> int | None:
        """The output width: the ``n_out`` of the last layer that has one, or None."""
        for layer in reversed(self.layers):
            n: int | None = getattr(layer, "n_out", None)
            if n is not None:
                return n
        return None

    # -- config -------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The architecture as JSON values: each layer's registry name and config (no weights).

        Returns
        -------
        dict
            ``{"layers": [{"type": str, "config": dict}, ...]}``.
        """
        return {"layers": [{"type": type(l).registry_name, "config": l.get_config()} for l in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        """A new, freshly initialised (and packed) model from :meth:`get_config` output.

        Parameters
        ----------
        config : dict
            ``{"layers": [{"type": name, "config": {...}}, ...]}``.

        Returns
        -------
        Sequential

        Raises
        ------
        ValueError
            If ``config`` has no ``"layers"`` list, a layer spec has no ``"type"``, or a type is
            not a registered layer name.
        """
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError("model config must be a dict with a 'layers' list")
        layers = []
        for i, spec in enumerate(config["layers"]):
            if not isinstance(spec, dict) or "type" not in spec:
                raise ValueError(f"layers[{i}] must be a dict with a 'type' key, got {spec!r}")
            layers.append(LAYERS.get(spec["type"]).from_config(dict(spec.get("config", {}))))
        return cls(layers).pack()

    # -- summary ------------------------------------------------------------------------
    def summary(self) -> Summary:
        """Neurons (inputs not counted), weights, biases and learnable parameters per layer.

        Returns
        -------
        Summary
            ``print(model.summary())`` shows the table; ``summary.total`` has the totals.
        """
        rows = [(f"{i}: {type(l).__name__}", l.counts()) for i, l in enumerate(self.layers)]
        return Summary(rows)

    # -- container protocol -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(l) for l in self.layers)
        return f"Sequential([\n  {inner}\n])"


@dataclass(frozen=True)
class Summary:
    """Rows of (layer name, counts) with totals; ``str()`` gives the table.

    The totals are also attributes: ``summary.neurons``, ``summary.weights``,
    ``summary.biases``, ``summary.params``.

    Parameters
    ----------
    rows : list of (str, dict)
        One ``(name, counts)`` pair per layer, ``counts`` as :meth:`Layer.counts` returns it.
    """

    rows: list[tuple[str, dict[str, int]]]

    KEYS = ("neurons", "weights", "biases", "params")

    @property
    def total(self) -> dict[str, int]:
        """Sums over the layers.

        Returns
        -------
        dict
            ``{"neurons", "weights", "biases", "params"}``.
        """
        return {k: sum(c[k] for _, c in self.rows) for k in self.KEYS}

    def __getattr__(self, name: str) -> int:
        if name in Summary.KEYS:
            return self.total[name]
        raise AttributeError(name)

    def __str__(self) -> str:
        head = f"{'layer':<24}{'neurons':>10}{'weights':>12}{'biases':>10}{'params':>12}"
        lines = [head, "-" * len(head)]
        for name, c in [*self.rows, ("total", self.total)]:
            if name == "total":
                lines.append("-" * len(head))
            lines.append(f"{name:<24}{c['neurons']:>10,}{c['weights']:>12,}{c['biases']:>10,}{c['params']:>12,}")
        return "\n".join(lines)
