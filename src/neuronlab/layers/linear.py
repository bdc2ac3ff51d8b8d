"""The affine (fully-connected) layer ``y = x W + b``."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import (
    as_rng,
    check_float_dtype,
    check_number,
    check_positive_int,
)
from neuronlab.init import initialize
from neuronlab.layers._util import add_at_b, as_2d, check_dout, dtype_name, seed_config
from neuronlab.layers.base import Layer
from neuronlab.registry import INITIALIZERS, LAYERS

__all__ = ["Linear"]


@LAYERS.register("linear")
class Linear(Layer):
    """Fully-connected layer: ``y = x W + b``.

    Parameters
    ----------
    n_in : int
        Input features; an input of shape (n_samples, ...) is flattened row-major to
        (n_samples, n_in).
    n_out : int
        Output units (neurons).
    init : str
        Weight initialiser name from ``INITIALIZERS`` (he, glorot, lecun, normal, sparse, zeros).
    bias : float or None
        Initial value of every bias (the notes: 0, or 0.01 for ReLU units). None: no bias
        at all (``y = x W``), for a layer followed by batch norm, whose β takes its place and
        whose mean subtraction would cancel a bias (its gradient would be exactly 0).
    rng : None, int or numpy Generator
        Randomness for the initial weights.
    dtype : float32 or float64
        Parameter dtype.

    Attributes
    ----------
    params : {"W": ndarray of shape (n_in, n_out), "b": ndarray of shape (n_out,)}
        (no ``"b"`` when ``bias`` is None)
    """

    weight_names = ("W",)
    bias_names = ("b",)

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        init: str = "he",
        bias: float | None = 0.0,
        rng: Any = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        self.n_in = check_positive_int("n_in", n_in)
        self.n_out = check_positive_int("n_out", n_out)
        INITIALIZERS.get(init)  # unknown names fail here, listing the choices
        self.init = init
        self.bias = None if bias is None else check_number("bias", bias)
        dt = check_float_dtype("dtype", dtype)
        self._seed = seed_config(rng)
        self.add_param("W", initialize(init, (self.n_in, self.n_out), as_rng(rng), dtype=dt))
        if self.bias is not None:
            self.add_param("b", np.full(self.n_out, self.bias, dtype=dt))
        self._x: np.ndarray | None = None
        self._in_shape: tuple[int, ...] = ()
        self._grad_zero = False  # set by zero_grad: the next backward may write dW, not add

    @property
    def n_neurons(self) -> int:
        """``n_out``: each output unit is a neuron with its own weights."""
        return self.n_out

    def zero_grad(self) -> None:
        """Set dW and db to zero, and note that the next backward may write them instead of adding."""
        super().zero_grad()
        self._grad_zero = True

    def _defer_zero_grad(self) -> None:
        """``Sequential.zero_grad(lazy=True)``: skip the fill, because the next backward
        writes dW and db instead of adding to them (until then grads hold stale values)."""
        self._grad_zero = True

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """``y = x W + b``, computed in x's dtype; caches x for backward.

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
        W, b = self.params["W"], self.params.get("b")
        if W.dtype != x2.dtype:  # the input dtype is the compute dtype
            W = W.astype(x2.dtype)
        out: np.ndarray = x2 @ W
        if b is not None:
            out += b
        self._x, self._in_shape = x2, x.shape
        return out

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Add dW = x.T dout and db = sum(dout) into ``grads``; return dx = dout W.T.

        Parameters
        ----------
        dout : ndarray of shape (n_samples, n_out)
            dL/d(output).
        input_grad : bool, default True
            False skips the dx product (the input layer needs none) and returns None.

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
        dout = check_dout(self, dout, (x2.shape[0], self.n_out))
        gW, gb = self.grads["W"], self.grads.get("b")
        if self._grad_zero and gW.dtype == np.result_type(x2, dout) and (gb is None or gb.dtype == gW.dtype):
            # Right after zero_grad, 0 + x.T dout is x.T dout: one GEMM writes dW in place
            # through NumPy's BLAS (no read of the zeros, and no call into SciPy's separate
            # BLAS, whose thread pool fights NumPy's for the cores), and the sum writes db.
            np.matmul(x2.T, dout, out=gW)
            if gb is not None:
                np.add.reduce(dout, axis=0, out=gb)  # the ufunc itself: np.sum's wrapper costs a µs
        else:
            if self._grad_zero:  # a lazy zero_grad left stale values: zero them now
                super().zero_grad()
            add_at_b(gW, x2, dout)
            if gb is not None:
                gb += dout.sum(axis=0)
        self._grad_zero = False
        if not input_grad:
            return None
        W = self.params["W"]
        dx: np.ndarray = dout @ (W if W.dtype == dout.dtype else W.astype(dout.dtype)).T
        return dx.reshape(self._in_shape)

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
            "init": self.init,
            "bias": self.bias,
            **self._seed,
            "dtype": dtype_name(self, np.float32),
        }
