"""Batch normalisation (Ioffe & Szegedy 2015) and layer normalisation (Ba et al. 2016).

Both normalise to zero mean and unit variance, then scale by a learned ``gamma`` and shift
by a learned ``beta``: batch norm per feature over the batch, layer norm per sample over its
features. Inputs are (n_samples, n_features) or (n_samples, ...) with n_features in total;
outputs keep the input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import check_float_dtype, check_number, check_positive_int
from neuronlab.layers._util import as_2d, check_dout, dtype_name
from neuronlab.layers.base import Layer
from neuronlab.registry import LAYERS

__all__ = ["BatchNorm", "LayerNorm"]


class _Norm(Layer):
    """gamma/beta bookkeeping shared by the two normalisations."""

    def __init__(self, n_features: int, eps: float, dtype: Any) -> None:
        super().__init__()
        self.n_features = check_positive_int("n_features", n_features)
        self.eps = check_number("eps", eps, low=0.0, low_inclusive=False)
        dt = check_float_dtype("dtype", dtype)
        self.add_param("gamma", np.ones(self.n_features, dtype=dt))
        self.add_param("beta", np.zeros(self.n_features, dtype=dt))
        self._xhat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None
        self._in_shape: tuple[int, ...] = ()

    def _gamma_beta(self, dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        # (n_features,) vectors: casting them to the compute dtype is cheap.
        return self.params["gamma"].astype(dt, copy=False), self.params["beta"].astype(
            dt, copy=False
        )

    def _param_grads(self, dout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add dgamma = Σ dout·x̂ and dbeta = Σ dout (over the batch); return (dout2, buffer)
        where the (N, D) buffer is free for the caller to build dx in."""
        xhat = self._cached(self._xhat)
        dout2 = check_dout(self, dout, self._in_shape).reshape(xhat.shape)
        buf = np.multiply(dout2, xhat)
        self.grads["gamma"] += buf.sum(axis=0)
        self.grads["beta"] += dout2.sum(axis=0)
        return dout2, buf



# -- compiled kernels ---------------------------------------------------------------------------
# BatchNorm's training forward and backward on one batch, beside the NumPy methods they are
# tested against, for the compiled training loop (neuronlab.engine): per feature j, the batch
# mean and biased variance (summed in float64, rounded to the dtype as NumPy's means are), the
# running averages r = m·r + (1 − m)·batch, x̂ = (x − μ)·inv_std and y = γ·x̂ + β; backward
# writes dγ = Σ d·x̂, dβ = Σ d and, in place, dx = γ·inv_std·(d − x̂·dγ/n − dβ/n).


def _batchnorm_forward(x, y, xhat, inv_std, gamma, beta, rmean, rvar, mom, rest, eps):  # type: ignore[no-untyped-def]
    m, n = x.shape
    T = x.dtype.type
    for j in range(n):
        s = 0.0
        for r in range(m):
            s += x[r, j]
        mu = T(s / m)
        v = 0.0
        for r in range(m):
            c = x[r, j] - mu
            xhat[r, j] = c
            v += c * c
        var = T(v / m)
        rmean[j] = rmean[j] * mom + rest * mu
        rvar[j] = rvar[j] * mom + rest * var
        istd = T(1) / np.sqrt(var + eps)
        inv_std[j] = istd
        for r in range(m):
            h = xhat[r, j] * istd
            xhat[r, j] = h
            y[r, j] = h * gamma[j] + beta[j]


def _batchnorm_backward(d, xhat, inv_std, gamma, dgamma, dbeta):  # type: ignore[no-untyped-def]
    m, n = d.shape
    T = d.dtype.type
    for j in range(n):
        sg = 0.0
        sb = 0.0
        for r in range(m):
            sg += d[r, j] * xhat[r, j]
            sb += d[r, j]
        dgamma[j] = sg
        dbeta[j] = sb
        a = T(sg) / m
        c = T(sb) / m
        scale = gamma[j] * inv_std[j]
        for r in range(m):
            d[r, j] = (d[r, j] - (xhat[r, j] * a + c)) * scale


@LAYERS.register("batchnorm")
class BatchNorm(_Norm):
    """Batch normalisation for fully-connected layers.

    Training: ``x̂ = (x − μ_B) / sqrt(σ²_B + eps)`` with the batch mean and *biased* batch
    variance, ``y = gamma·x̂ + beta``; the running averages are updated as
    ``r ← momentum·r + (1 − momentum)·batch value`` (the running variance averages the same
    biased batch variance). Inference: the running averages replace the batch statistics.

    Parameters
    ----------
    n_features : int
    momentum : float in [0, 1]
        Weight of the old running average in each update.
    eps : float > 0
        Added to the variance before the square root.
    dtype : float32 or float64

    Attributes
    ----------
    params : {"gamma": ones (n_features,), "beta": zeros (n_features,)}
    buffers : {"running_mean": (n_features,), "running_var": (n_features,)}
    """

    #: Its training forward and backward for the compiled engine (:mod:`neuronlab.engine`).
    kernel = (_batchnorm_forward, _batchnorm_backward)

    def __init__(
        self, n_features: int, *, momentum: float = 0.9, eps: float = 1e-5, dtype: Any = np.float32
    ) -> None:
        super().__init__(n_features, eps, dtype)
        self.momentum = check_number("momentum", momentum, low=0.0, high=1.0)
        dt = self.params["gamma"].dtype
        self.buffers["running_mean"] = np.zeros(self.n_features, dtype=dt)
        self.buffers["running_var"] = np.ones(self.n_features, dtype=dt)
        self._training = False

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """Normalise each feature, then scale by gamma and shift by beta; caches x̂ for backward.

        Parameters
        ----------
        x : ndarray of shape (n_samples, n_features) or (n_samples, ...)
            float32 or float64; trailing axes are flattened and must hold ``n_features`` values.
        training : bool, default False
            True: normalise with the batch's mean and biased variance and update the running
            averages (in place); False: use the running averages and change nothing.

        Returns
        -------
        ndarray of x's shape

        Raises
        ------
        TypeError
            If ``x`` is not a float32/float64 ndarray.
        ValueError
            If ``x`` has fewer than 2 dimensions or not ``n_features`` values per sample.
        """
        x2 = as_2d(self, x, self.n_features, "n_features")
        gamma, beta = self._gamma_beta(x2.dtype)
        if training:
            mu = x2.mean(axis=0)
            xc = x2 - mu
            y: np.ndarray = np.square(xc)  # reused below as the output buffer
            var = y.mean(axis=0)
            m = self.momentum
            for name, batch in (("running_mean", mu), ("running_var", var)):
                r = self.buffers[name]
                r *= m
                r += (1.0 - m) * batch
        else:
            mu = self.buffers["running_mean"].astype(x2.dtype, copy=False)
            var = self.buffers["running_var"].astype(x2.dtype, copy=False)
            xc = x2 - mu
            y = np.empty_like(xc)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xc *= inv_std  # now x̂
        np.multiply(xc, gamma, out=y)
        y += beta
        self._xhat, self._inv_std, self._training, self._in_shape = xc, inv_std, training, x.shape
        return y.reshape(x.shape)

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Closed form. In training μ and σ² depend on the whole batch:
        ``dx = gamma·inv_std·(dout − mean(dout) − x̂·mean(dout·x̂))`` (means over the batch);
        in inference they are constants and ``dx = gamma·inv_std·dout``.

        Adds dgamma = Σ dout·x̂ and dbeta = Σ dout (over the batch) into ``grads``.

        Parameters
        ----------
        dout : ndarray
            dL/d(output), of the output's shape.
        input_grad : bool, default True
            False returns None after adding dgamma and dbeta.

        Returns
        -------
        ndarray or None
            dL/dx in the input's shape, or None.

        Raises
        ------
        ValueError
            If called before ``forward``, or ``dout`` does not have the output's shape.
        """
        dout2, dx = self._param_grads(dout)
        if not input_grad:
            return None
        xhat, inv_std = self._cached(self._xhat), self._cached(self._inv_std)
        scale = self.params["gamma"].astype(dx.dtype, copy=False) * inv_std
        if self._training:
            n = dout2.shape[0]
            dgamma_b = dx.sum(axis=0)  # dx still holds dout·x̂ here
            dbeta_b = dout2.sum(axis=0)
            np.multiply(xhat, dgamma_b / n, out=dx)
            dx += dbeta_b / n
            np.subtract(dout2, dx, out=dx)
        else:
            np.copyto(dx, dout2)
        dx *= scale
        return dx.reshape(self._in_shape)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (``dtype`` is the parameters' current dtype).

        Returns
        -------
        dict
            ``{"n_features", "momentum", "eps", "dtype"}``.
        """
        return {
            "n_features": self.n_features,
            "momentum": self.momentum,
            "eps": self.eps,
            "dtype": dtype_name(self, np.float32),
        }



# LayerNorm's forward and backward on one batch, beside its NumPy methods, for the compiled
# training loop (neuronlab.engine): per row r, the mean and biased variance over its features,
# x̂ = (x − μ_r)·inv_std_r and y = γ·x̂ + β; backward writes dγ = Σ_r d·x̂, dβ = Σ_r d and, in
# place, dx = inv_std·(g − mean(g) − x̂·mean(g·x̂)) with g = γ·d.


def _layernorm_forward(x, y, xhat, inv_std, gamma, beta, eps):  # type: ignore[no-untyped-def]
    m, n = x.shape
    T = x.dtype.type
    for r in range(m):
        s = 0.0
        for j in range(n):
            s += x[r, j]
        mu = T(s / n)
        v = 0.0
        for j in range(n):
            c = x[r, j] - mu
            xhat[r, j] = c
            v += c * c
        istd = T(1) / np.sqrt(T(v / n) + eps)
        inv_std[r] = istd
        for j in range(n):
            h = xhat[r, j] * istd
            xhat[r, j] = h
            y[r, j] = h * gamma[j] + beta[j]


def _layernorm_backward(d, xhat, inv_std, gamma, dgamma, dbeta):  # type: ignore[no-untyped-def]
    m, n = d.shape
    T = d.dtype.type
    for j in range(n):
        sg = 0.0
        sb = 0.0
        for r in range(m):
            sg += d[r, j] * xhat[r, j]
            sb += d[r, j]
        dgamma[j] = sg
        dbeta[j] = sb
    for r in range(m):
        s1 = 0.0
        s2 = 0.0
        for j in range(n):
            g = d[r, j] * gamma[j]
            s1 += g
            s2 += g * xhat[r, j]
        g_mean = T(s1 / n)
        gx_mean = T(s2 / n)
        for j in range(n):
            g = d[r, j] * gamma[j]
            d[r, j] = (g - (xhat[r, j] * gx_mean + g_mean)) * inv_std[r]


@LAYERS.register("layernorm")
class LayerNorm(_Norm):
    """Layer normalisation: each sample is normalised over its own features,
    ``x̂ = (x − mean_j x) / sqrt(var_j x + eps)``, ``y = gamma·x̂ + beta``. Training and
    inference compute the same thing (no running statistics).

    Parameters
    ----------
    n_features : int
    eps : float > 0
    dtype : float32 or float64
    """

    #: Its forward and backward for the compiled engine (:mod:`neuronlab.engine`).
    kernel = (_layernorm_forward, _layernorm_backward)

    def __init__(self, n_features: int, *, eps: float = 1e-5, dtype: Any = np.float32) -> None:
        super().__init__(n_features, eps, dtype)

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """Normalise each sample over its features, then scale by gamma and shift by beta; caches
        x̂ for backward.

        Parameters
        ----------
        x : ndarray of shape (n_samples, n_features) or (n_samples, ...)
            float32 or float64; trailing axes are flattened and must hold ``n_features`` values.
        training : bool, default False
            Unused: training and inference compute the same thing.

        Returns
        -------
        ndarray of x's shape

        Raises
        ------
        TypeError
            If ``x`` is not a float32/float64 ndarray.
        ValueError
            If ``x`` has fewer than 2 dimensions or not ``n_features`` values per sample.
        """
        x2 = as_2d(self, x, self.n_features, "n_features")
        gamma, beta = self._gamma_beta(x2.dtype)
        mu = x2.mean(axis=1, keepdims=True)
        xc = x2 - mu
        y: np.ndarray = np.square(xc)  # reused below as the output buffer
        var = y.mean(axis=1, keepdims=True)
        inv_std = 1.0 / np.sqrt(var + self.eps)  # (N, 1)
        xc *= inv_std  # now x̂
        np.multiply(xc, gamma, out=y)
        y += beta
        self._xhat, self._inv_std, self._in_shape = xc, inv_std, x.shape
        return y.reshape(x.shape)

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """With g = gamma·dout (the gradient w.r.t. x̂) and means over each sample's features:
        ``dx = inv_std·(g − mean(g) − x̂·mean(g·x̂))``.

        Adds dgamma = Σ dout·x̂ and dbeta = Σ dout (over the batch) into ``grads``.

        Parameters
        ----------
        dout : ndarray
            dL/d(output), of the output's shape.
        input_grad : bool, default True
            False returns None after adding dgamma and dbeta.

        Returns
        -------
        ndarray or None
            dL/dx in the input's shape, or None.

        Raises
        ------
        ValueError
            If called before ``forward``, or ``dout`` does not have the output's shape.
        """
        dout2, dx = self._param_grads(dout)
        if not input_grad:
            return None
        xhat, inv_std = self._cached(self._xhat), self._cached(self._inv_std)
        g = np.multiply(dout2, self.params["gamma"].astype(dx.dtype, copy=False))
        g_mean = g.mean(axis=1, keepdims=True)
        np.multiply(g, xhat, out=dx)
        gx_mean = dx.mean(axis=1, keepdims=True)
        np.multiply(xhat, gx_mean, out=dx)
        dx += g_mean
        np.subtract(g, dx, out=dx)
        dx *= inv_std
        return dx.reshape(self._in_shape)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (``dtype`` is the parameters' current dtype).

        Returns
        -------
        dict
            ``{"n_features", "eps", "dtype"}``.
        """
        return {
            "n_features": self.n_features,
            "eps": self.eps,
            "dtype": dtype_name(self, np.float32),
        }
