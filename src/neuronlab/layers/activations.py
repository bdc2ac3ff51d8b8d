"""Element-wise nonlinearities, each one small class holding both directions.

Every activation keeps its input's shape and computes in the input's dtype. Sigmoid and
tanh take their derivative from the cached *output* (σ' = σ(1−σ), tanh' = 1 − tanh²), which
is cheaper than recomputing from the input. The piecewise ones (ReLU, leaky ReLU, PReLU,
ELU) report through ``kink_state()`` which side of 0 each element fell on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import check_float_dtype, check_number, check_positive_int
from neuronlab.layers._util import as_2d, check_dout, check_input, dtype_name
from neuronlab.layers.base import Layer
from neuronlab.registry import LAYERS

__all__ = ["ACTIVATIONS", "ELU", "LeakyReLU", "PReLU", "ReLU", "Sigmoid", "Tanh"]

#: Names ``mlp`` and the CLI accept for ``activation``. "maxout" is not an element-wise layer
#: (it has its own weights) but is chosen the same way.
ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "prelu", "elu", "tanh", "sigmoid", "maxout")


class _Elementwise(Layer):
    """Shared plumbing: cache one array from forward, check dout against it in backward."""

    statistics = frozenset({"activation"})
    #: ``(value, slope)``: the element formula and its derivative as plain functions that the
    #: compiled training loop (:mod:`neuronlab.engine`) runs; None keeps a network with this
    #: layer on the NumPy path.
    kernel: tuple[Any, Any] | None = None
    #: The attribute passed to the kernel as ``a`` (``"alpha"``), or None (``a`` is 0).
    kernel_arg: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self._y: np.ndarray | None = None  # what backward reads (output or input, per class)

    def _dout(self, dout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = self._cached(self._y)
        return y, check_dout(self, dout, y.shape)


# -- compiled kernels ---------------------------------------------------------------------------
# Each elementwise activation's formula for one element, beside the class that computes it with
# NumPy: ``(value(x, a), slope(x, y, a))`` with y = value(x, a) and ``a`` the layer's parameter
# (alpha) in the input's dtype, 0 where it has none. The compiled training loop
# (:mod:`neuronlab.engine`) applies them element by element; the NumPy methods above are the
# reference they are tested against.


def _sigmoid(x, a):  # type: ignore[no-untyped-def]
    return 1 / (1 + np.exp(-x)) if x >= 0 else np.exp(x) / (1 + np.exp(x))


def _sigmoid_slope(x, y, a):  # type: ignore[no-untyped-def]
    return (1 - y) * y


def _tanh(x, a):  # type: ignore[no-untyped-def]
    return np.tanh(x)


def _tanh_slope(x, y, a):  # type: ignore[no-untyped-def]
    return 1 - y * y


def _relu(x, a):  # type: ignore[no-untyped-def]
    return x if x > 0 or np.isnan(x) else 0.0  # np.maximum(x, 0): NaN stays NaN, -0 becomes +0


def _relu_slope(x, y, a):  # type: ignore[no-untyped-def]
    return 1 if y > 0 else 0


def _leaky_relu(x, a):  # type: ignore[no-untyped-def]
    ax = x * a
    return x if x >= ax or np.isnan(x) else ax  # np.maximum(x, αx)


def _leaky_relu_slope(x, y, a):  # type: ignore[no-untyped-def]
    return 1 if y > 0 else a


def _elu(x, a):  # type: ignore[no-untyped-def]
    return x if x > 0 else np.expm1(x) * a  # max(x, 0) + α·expm1(min(x, 0)), ±Inf included


def _elu_slope(x, y, a):  # type: ignore[no-untyped-def]
    return 1 if y > 0 else y + a


@LAYERS.register("sigmoid")
class Sigmoid(_Elementwise):
    """Logistic sigmoid ``σ(x) = 1 / (1 + e^{-x})``, shape-preserving.

    Uses ``scipy.special.expit``, which never overflows: σ(−1000) is 0 and σ(1000) is 1
    without warnings. The derivative σ(1−σ) comes from the cached output.
    """

    kernel = (_sigmoid, _sigmoid_slope)

    statistics = frozenset({"activation", "saturation"})
    saturation_band = (0.5, 0.45)  # y < 0.05 or y > 0.95: σ' < 0.048, a fifth of its peak

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """σ(x) element-wise (scipy's ``expit``); caches the output.

        Parameters
        ----------
        x : ndarray of shape (n_samples, ...)
            float32 or float64.
        training : bool, default False
            Unused: the function is the same in training and inference.

        Returns
        -------
        ndarray of x's shape and dtype

        Raises
        ------
        TypeError
            If ``x`` is not a float32/float64 ndarray.
        ValueError
            If ``x`` has fewer than 2 dimensions.
        """
        check_input(self, x)
        from scipy.special import expit  # here: scipy.special takes ~0.3 s to import

        y: np.ndarray = expit(x)
        self._y = y
        return y

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """dL/dx = dout · σ · (1 − σ), from the cached output.

        Parameters
        ----------
        dout : ndarray
            dL/d(output), of the last output's shape.
        input_grad : bool, default True
            Unused: the layer has no parameters, so dL/dx is always returned.

        Returns
        -------
        ndarray
            dL/dx, of the input's shape.

        Raises
        ------
        ValueError
            If called before ``forward``, or ``dout`` does not have the output's shape.
        """
        y, dout = self._dout(dout)
        dx: np.ndarray = np.subtract(1, y)  # dx = dout · y · (1 − y), from the output alone
        dx *= y
        dx *= dout
        return dx


@LAYERS.register("tanh")
class Tanh(_Elementwise):
    """Hyperbolic tangent (= 2σ(2x) − 1, zero-centred), shape-preserving.

    The derivative 1 − tanh² comes from the cached output.
    """

    kernel = (_tanh, _tanh_slope)

    statistics = frozenset({"activation", "saturation"})
    saturation_band = (0.0, 0.95)  # |y| > 0.95: tanh' < 0.098, a tenth of its peak

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """tanh(x) element-wise; caches the output.

        Parameters
        ----------
        x : ndarray of shape (n_samples, ...)
            float32 or float64.
        training : bool, default False
            Unused: the function is the same in training and inference.

        Returns
        -------
        ndarray of x's shape and dtype

        Raises
        ------
        TypeError
            If ``x`` is not a float32/float64 ndarray.
        ValueError
            If ``x`` has fewer than 2 dimensions.
        """
        check_input(self, x)
        y: np.ndarray = np.tanh(x)
        self._y = y
        return y

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """dL/dx = dout · (1 − tanh²), from the cached output.

        Parameters
        ----------
        dout : ndarray
            dL/d(output), of the last output's shape.
        input_grad : bool, default True
            Unused: the layer has no parameters, so dL/dx is always returned.

        Returns
        -------
        ndarray
            dL/dx, of the input's shape.

        Raises
        ------
        ValueError
            If called before ``forward``, or ``dout`` does not have the output's shape.
        """
        y, dout = self._dout(dout)
        dx: np.ndarray = np.multiply(y, y)  # dx = dout · (1 − y²)
        np.subtract(1, dx, out=dx)
        dx *= dout
        return dx


@LAYERS.register("relu")
class ReLU(_Elementwise):
    """Rectified linear unit ``max(0, x)``, shape-preserving. The derivative is taken as
    0 at x = 0. ``kink_state()`` is ``x > 0`` (read from the output: y > 0 ⇔ x > 0)."""

    kernel = (_relu, _relu_slope)

    statistics = frozenset({"activation", "dead"})

    def __init__(self) -> None:
        super().__init__()
        self._zeros: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """max(0, x) element-wise; caches the output.

        Parameters
        ----------
        x : ndarray of shape (n_samples, ...)
            float32 or float64.
        training : bool, default False
            Unused: the function is the same in training and inference.

        Returns
        -------
        ndarray of x's shape and dtype

        Raises
        ------
        TypeError
            If ``x`` is not a float32/float64 ndarray.
        ValueError
            If ``x`` has fewer than 2 dimensions.
        """
        check_input(self, x)
        # max(x, 0) taken against an array of zeros: NumPy's maximum vectorises two arrays but
        # not an array and a scalar (float32 256x512: 23 vs 58 µs)
        y: np.ndarray = np.maximum(x, self._zeros_for(x))
        self._y = y
        return y

    def _zeros_for(self, x: np.ndarray) -> np.ndarray:
        """Read-only zeros shaped like x: rows of one array kept for the largest batch seen."""
        z = self._zeros
        if z is None or z.dtype != x.dtype or z.shape[1:] != x.shape[1:] or len(z) < len(x):
            z = self._zeros = np.zeros(x.shape, x.dtype)
            z.flags.writeable = False
        return z[: len(x)]

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """dL/dx = dout where the output is > 0, else 0 (slope 0 at x = 0).

        Parameters
        ----------
        dout : ndarray
            dL/d(output), of the last output's shape.
        input_grad : bool, default True
            Unused: the layer has no parameters, so dL/dx is always returned.

        Returns
        -------
        ndarray
            dL/dx, of the input's shape.

        Raises
        ------
        ValueError
            If called before ``forward``, or ``dout`` does not have the output's shape.
        """
        y, dout = self._dout(dout)
        # Write the 0/1 slope straight into the result array (bool -> float cast), then
        # scale: no boolean temporary, no mask indexing.
        dx: np.ndarray = np.greater(y, 0, out=np.empty(y.shape, np.result_type(y, dout)))
        dx *= dout
        return dx

    def kink_state(self) -> np.ndarray | None:
        """Which side of the kink at 0 each element of the last forward pass fell on.

        Returns
        -------
        ndarray of bool or None
            ``x > 0`` element-wise; None before the first forward pass.
        """
        return None if self._y is None else self._y > 0


@LAYERS.register("leaky_relu")
class LeakyReLU(_Elementwise):
    """Leaky ReLU: ``x`` for x > 0, ``alpha·x`` otherwise; shape-preserving.

    Parameters
    ----------
    alpha : float in [0, 1]
        Slope for negative inputs (the notes: a small constant such as 0.01). Within [0, 1]
        the function equals ``max(x, alpha·x)``, which is how it is computed.
    """

    kernel = (_leaky_relu, _leaky_relu_slope)
    kernel_arg = "alpha"

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = check_number("alpha", alpha, low=0.0, high=1.0)

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """max(x, alpha·x) element-wise; caches the output.

        Parameters
        ----------
        x : ndarray of shape (n_samples, ...)
            float32 or float64.
        training : bool, default False
            Unused: the function is the same in training and inference.

        Returns
        -------
        ndarray of x's shape and dtype

        Raises
        ------
        TypeError
            If ``x`` is not a float32/float64 ndarray.
        ValueError
            If ``x`` has fewer than 2 dimensions.
        """
        check_input(self, x)
        y: np.ndarray = np.multiply(x, x.dtype.type(self.alpha))
        np.maximum(x, y, out=y)  # max(x, αx) is the leaky ReLU for 0 ≤ α ≤ 1
        self._y = y  # y > 0 ⇔ x > 0 for α ≥ 0, so the output tells the slope
        return y

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """dL/dx = dout · (1 where x > 0, else alpha), read from the cached output.

        Parameters
        ----------
        dout : ndarray
            dL/d(output), of the last output's shape.
        input_grad : bool, default True
            Unused: the layer has no parameters, so dL/dx is always returned.

        Returns
        -------
        ndarray
            dL/dx, of the input's shape.

        Raises
        ------
        ValueError
            If called before ``forward``, or ``dout`` does not have the output's shape.
        """
        y, dout = self._dout(dout)
        a = self.alpha
        dx: np.ndarray = np.greater(y, 0, out=np.empty(y.shape, np.result_type(y, dout)))
        dx *= 1.0 - a  # slope: 1 where x > 0, α elsewhere
        dx += a
        dx *= dout
        return dx

    def kink_state(self) -> np.ndarray | None:
        """Which side of the kink at 0 each element of the last forward pass fell on.

        Returns
        -------
        ndarray of bool or None
            ``x > 0`` element-wise; None before the first forward pass.
        """
        return None if self._y is None else self._y > 0

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"alpha": float}``.
        """
        return {"alpha": self.alpha}


@LAYERS.register("prelu")
class PReLU(Layer):
    """Parametric ReLU: a leaky ReLU whose negative slope is learned, one per unit.

    ``y = x`` for x > 0 and ``alpha_j · x`` otherwise, computed as ``x + (alpha − 1)·min(x, 0)``.
    Input (n_samples, n_units) (or (n_samples, ...) with n_units features in total); output
    has the input's shape. ``alpha`` is neither a weight nor a bias (it is not regularised).

    Parameters
    ----------
    n_units : int
    init_slope : float
        Initial value of every slope (He et al. use 0.25).
    dtype : float32 or float64
    """

    statistics = frozenset({"activation"})

    def __init__(self, n_units: int, *, init_slope: float = 0.25, dtype: Any = np.float32) -> None:
        super().__init__()
        self.n_units = check_positive_int("n_units", n_units)
        self.init_slope = check_number("init_slope", init_slope)
        dt = check_float_dtype("dtype", dtype)
        self.add_param("alpha", np.full(self.n_units, self.init_slope, dtype=dt))
        self._x: np.ndarray | None = None
        self._neg: np.ndarray | None = None
        self._alpha_c: np.ndarray | None = None
        self._in_shape: tuple[int, ...] = ()

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """x + (alpha − 1)·min(x, 0), each unit with its own slope; caches x and min(x, 0).

        Parameters
        ----------
        x : ndarray of shape (n_samples, n_units) or (n_samples, ...)
            float32 or float64; trailing axes are flattened and must hold ``n_units`` values.
        training : bool, default False
            Unused: the function is the same in training and inference.

        Returns
        -------
        ndarray of x's shape

        Raises
        ------
        TypeError
            If ``x`` is not a float32/float64 ndarray.
        ValueError
            If ``x`` has fewer than 2 dimensions or not ``n_units`` values per sample.
        """
        x2 = as_2d(self, x, self.n_units, "n_units")
        alpha = self.params["alpha"].astype(x2.dtype, copy=False)
        neg = np.minimum(x2, 0)  # also dy/dalpha
        y: np.ndarray = np.multiply(neg, alpha - 1)
        y += x2
        self._x, self._neg, self._alpha_c, self._in_shape = x2, neg, alpha, x.shape
        return y.reshape(x.shape)

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Add dL/dalpha_j = Σ dout · min(x, 0) into ``grads["alpha"]`` and return dL/dx = dout · (1 where x > 0, else alpha_j).

        Parameters
        ----------
        dout : ndarray
            dL/d(output), of the last output's shape.
        input_grad : bool, default True
            False skips dL/dx (returns None); the slopes' gradient is always added.

        Returns
        -------
        ndarray
            dL/dx, of the input's shape.

        Raises
        ------
        ValueError
            If called before ``forward``, or ``dout`` does not have the output's shape.
        """
        x2 = self._cached(self._x)
        neg, alpha = self._cached(self._neg), self._cached(self._alpha_c)
        dout2 = check_dout(self, dout, self._in_shape).reshape(x2.shape)
        dx: np.ndarray = np.multiply(dout2, neg)
        self.grads["alpha"] += dx.sum(axis=0)  # dL/dalpha_j = Σ_n dout · min(x, 0)
        if not input_grad:
            return None
        np.greater(x2, 0, out=dx)  # slope: 1 where x > 0, alpha_j elsewhere
        dx *= 1 - alpha
        dx += alpha
        dx *= dout2
        return dx.reshape(self._in_shape)

    def kink_state(self) -> np.ndarray | None:
        """Which side of the kink at 0 each element of the last forward pass fell on.

        Returns
        -------
        ndarray of bool or None
            ``x > 0`` element-wise; None before the first forward pass.
        """
        return None if self._x is None else self._x > 0

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (``dtype`` is the parameters' current dtype).

        Returns
        -------
        dict
            ``{"n_units": int, "init_slope": float, "dtype": str}``.
        """
        return {
            "n_units": self.n_units,
            "init_slope": self.init_slope,
            "dtype": dtype_name(self, np.float32),
        }


@LAYERS.register("elu")
class ELU(_Elementwise):
    """Exponential linear unit: ``x`` for x > 0, ``alpha·(e^x − 1)`` otherwise.

    Computed with ``expm1(min(x, 0))`` so large positive x never overflows. The derivative
    for x ≤ 0 is ``alpha·e^x = y + alpha``, taken from the cached output.

    Parameters
    ----------
    alpha : float >= 0
        Value the function approaches for x → −∞ is −alpha.
    """

    kernel = (_elu, _elu_slope)
    kernel_arg = "alpha"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = check_number("alpha", alpha, low=0.0)

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """x for x > 0, alpha·(e^x − 1) otherwise, element-wise; caches the output.

        Parameters
        ----------
        x : ndarray of shape (n_samples, ...)
            float32 or float64.
        training : bool, default False
            Unused: the function is the same in training and inference.

        Returns
        -------
        ndarray of x's shape and dtype

        Raises
        ------
        TypeError
            If ``x`` is not a float32/float64 ndarray.
        ValueError
            If ``x`` has fewer than 2 dimensions.
        """
        check_input(self, x)
        neg = np.minimum(x, 0)
        np.expm1(neg, out=neg)
        neg *= x.dtype.type(self.alpha)
        y: np.ndarray = np.maximum(x, 0)
        y += neg
        self._y = y  # y > 0 ⇔ x > 0 (for x ≤ 0, y = α(e^x − 1) ≤ 0)
        return y

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """dL/dx = dout · (1 where x > 0, else y + alpha = alpha·e^x), from the cached output y.

        Parameters
        ----------
        dout : ndarray
            dL/d(output), of the last output's shape.
        input_grad : bool, default True
            Unused: the layer has no parameters, so dL/dx is always returned.

        Returns
        -------
        ndarray
            dL/dx, of the input's shape.

        Raises
        ------
        ValueError
            If called before ``forward``, or ``dout`` does not have the output's shape.
        """
        y, dout = self._dout(dout)
        dx: np.ndarray = np.minimum(y, 0, dtype=np.result_type(y, dout))
        dx += self.alpha  # α·e^x for x ≤ 0 (and α for x > 0, replaced next)
        np.copyto(dx, 1, where=y > 0)
        dx *= dout
        return dx

    def kink_state(self) -> np.ndarray | None:
        """Which side of the kink at 0 each element of the last forward pass fell on.

        Returns
        -------
        ndarray of bool or None
            ``x > 0`` element-wise; None before the first forward pass.
        """
        return None if self._y is None else self._y > 0

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"alpha": float}``.
        """
        return {"alpha": self.alpha}
