"""Maxout units (Goodfellow et al. 2013): each unit is the max over k affine pieces."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import as_rng, check_float_dtype, check_positive_int
from neuronlab.init import initialize
from neuronlab.layers._util import add_at_b, as_2d, check_dout, dtype_name, seed_config
from neuronlab.layers.base import Layer
from neuronlab.registry import INITIALIZERS, LAYERS

__all__ = ["Maxout"]


@LAYERS.register("maxout")
class Maxout(Layer):
    """Maxout layer: ``y_j = max_p (x · W[:, j, p] + b[j, p])``.

    It generalises ReLU (pieces ``x`` and ``0``) and leaky ReLU (``x`` and ``αx``) at the cost
    of k times the parameters. Computed as one GEMM against W viewed as (n_in, n_out·k),
    then a running max over the pieces; backward routes each unit's gradient to its winning
    piece (the first one on ties, as ``argmax`` would).

    Parameters
    ----------
    n_in : int
        Input features ((n_samples, ...) inputs are flattened row-major).
    n_out : int
        Maxout units.
    pieces : int
        Affine pieces per unit (k >= 1; k = 1 is a plain linear layer).
    init : str
        Initialiser name; fan-in is n_in, so "he" gives variance 2/n_in.
    rng : None, int or numpy Generator
    dtype : float32 or float64

    Attributes
    ----------
    params : {"W": ndarray of shape (n_in, n_out, pieces), "b": ndarray of shape (n_out, pieces)}
    """

    weight_names = ("W",)
    statistics = frozenset({"activation"})
    bias_names = ("b",)

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        pieces: int = 2,
        init: str = "he",
        rng: Any = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        self.n_in = check_positive_int("n_in", n_in)
        self.n_out = check_positive_int("n_out", n_out)
        self.pieces = check_positive_int("pieces", pieces)
        INITIALIZERS.get(init)  # unknown names fail here, listing the choices
        self.init = init
        dt = check_float_dtype("dtype", dtype)
        self._seed = seed_config(rng)
        shape = (self.n_in, self.n_out, self.pieces)
        self.add_param("W", initialize(init, shape, as_rng(rng), dtype=dt))
        self.add_param("b", np.zeros((self.n_out, self.pieces), dtype=dt))
        self._idx_dtype = np.uint8 if self.pieces <= 255 else np.intp
        self._x: np.ndarray | None = None
        self._idx: np.ndarray | None = None
        self._in_shape: tuple[int, ...] = ()

    @property
    def n_neurons(self) -> int:
        """``n_out``: each maxout unit is one neuron (its k pieces share it)."""
        return self.n_out

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """The max over each unit's k affine pieces; caches x and the winning pieces.

        Parameters
        ----------
        x : ndarray of shape (n_samples, n_in) or (n_samples, ...)
            float32 or float64; trailing axes are flattened row-major and must hold ``n_in``
            values.
        training : bool, default False
            Unused: the layer is the same in training and inference.

        Returns
        -------
        ndarray of shape (n_samples, n_out)

        Raises
        ------
        TypeError
            If ``x`` is not a float32/float64 ndarray.
        ValueError
            If ``x`` has fewer than 2 dimensions or not ``n_in`` values per sample.
        """
        x2 = as_2d(self, x, self.n_in)
        n, k = x2.shape[0], self.pieces
        W = self.params["W"].reshape(self.n_in, self.n_out * k)
        b = self.params["b"].reshape(-1)
        if W.dtype != x2.dtype:  # the input dtype is the compute dtype
            W, b = W.astype(x2.dtype), b.astype(x2.dtype)
        z: np.ndarray = (x2 @ W).reshape(n, self.n_out, k)
        z += b.reshape(self.n_out, k)
        # Running max over the pieces, one strided (N, n_out) view at a time: much faster
        # than argmax/max along a short last axis. Strict ">" keeps the first piece on ties.
        y = z[..., 0].copy()
        idx = np.zeros((n, self.n_out), dtype=self._idx_dtype)
        for p in range(1, k):
            zp = z[..., p]
            np.copyto(idx, p, where=np.greater(zp, y))
            np.maximum(y, zp, out=y)
        self._x, self._idx, self._in_shape = x2, idx, x.shape
        return y

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Add dW and db into ``grads`` and return dx; only the winning piece of each unit
        gets gradient.

        Parameters
        ----------
        dout : ndarray of shape (n_samples, n_out)
            dL/d(output).
        input_grad : bool, default True
            False skips the dx product and returns None.

        Returns
        -------
        ndarray or None
            dx in the shape of the last forward pass's input, or None.

        Raises
        ------
        ValueError
            If called before ``forward``, or ``dout`` does not have shape (n_samples, n_out).
        """
        x2 = self._cached(self._x)
        idx = self._cached(self._idx)
        n, k = x2.shape[0], self.pieces
        dout = check_dout(self, dout, (n, self.n_out))
        # dL/dz: the winner's slot gets dout, the others 0 (piece by piece, strided views).
        dz = np.empty((n, self.n_out, k), dtype=dout.dtype)
        for p in range(k):
            dzp = dz[..., p]
            np.equal(idx, p, out=dzp)
            dzp *= dout
        dz2 = dz.reshape(n, self.n_out * k)
        add_at_b(self.grads["W"].reshape(self.n_in, self.n_out * k), x2, dz2)
        self.grads["b"] += dz.sum(axis=0)
        if not input_grad:
            return None
        W = self.params["W"].reshape(self.n_in, self.n_out * k)
        dx: np.ndarray = dz2 @ (W if W.dtype == dz2.dtype else W.astype(dz2.dtype)).T
        return dx.reshape(self._in_shape)

    def kink_state(self) -> np.ndarray | None:
        """Index of the winning piece per (sample, unit) in the last forward pass.

        Returns
        -------
        ndarray of shape (n_samples, n_out) or None
            None before the first forward pass.
        """
        return self._idx

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (``rng`` only when it was an int seed; ``dtype`` is the
        parameters' current dtype).

        Returns
        -------
        dict
        """
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "pieces": self.pieces,
            "init": self.init,
            **self._seed,
            "dtype": dtype_name(self, np.float32),
        }
