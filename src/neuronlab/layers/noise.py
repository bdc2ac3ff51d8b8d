"""Layers that inject noise in training only: inverted dropout and additive Gaussian noise.

Both are the identity at inference and while ``noise_off`` is set (gradient checks set it).
Each keeps its own ``numpy.random.Generator`` as ``self.rng`` so a checkpoint can save and
restore ``rng.bit_generator.state`` and a resumed run draws the same masks.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from neuronlab._validation import as_rng, check_number
from neuronlab.layers._util import check_dout, check_input, seed_config
from neuronlab.layers.base import Layer
from neuronlab.registry import LAYERS

__all__ = ["Dropout", "GaussianNoise"]

_IDENTITY = "identity"  # cached marker: the last forward passed x through unchanged


@LAYERS.register("dropout")
class Dropout(Layer):
    """Inverted dropout: in training each unit is zeroed with probability ``rate`` and the
    survivors are scaled by 1/(1 − rate), so the expected activation is unchanged and
    inference needs no rescaling (it is the identity).

    Parameters
    ----------
    rate : float in [0, 1)
        Probability of dropping a unit (note: the notes' ``p`` is the probability of
        *keeping* one, p = 1 − rate).
    rng : None, int or numpy Generator
        Source of the masks; kept as ``self.rng``.
    """

    stochastic = True

    def __init__(self, rate: float, *, rng: Any = None) -> None:
        super().__init__()
        self.rate = check_number("rate", rate, low=0.0, high=1.0, high_inclusive=False)
        self._seed = seed_config(rng)
        self.rng = as_rng(rng)
        self._mask: np.ndarray | str | None = None

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """In training, zero each element with probability ``rate`` and scale the rest by
        1/(1 − rate); otherwise (or while ``noise_off`` is set) return ``x`` itself.

        Parameters
        ----------
        x : ndarray of shape (n_samples, ...)
            float32 or float64.
        training : bool, default False
            Draw a new mask from ``self.rng``; False is the identity.

        Returns
        -------
        ndarray of x's shape

        Raises
        ------
        TypeError
            If ``x`` is not a float32/float64 ndarray.
        ValueError
            If ``x`` has fewer than 2 dimensions.
        """
        check_input(self, x)
        if not training or self.noise_off or self.rate == 0.0:
            self._mask = _IDENTITY
            return x
        # Draw uniforms in x's dtype straight into the mask buffer, turn them into 0/1 in
        # place (bool -> float cast), then scale the survivors by 1/(1 − rate).
        mask = self.rng.random(x.shape, dtype=x.dtype)
        np.greater_equal(mask, self.rate, out=mask)
        mask *= 1.0 / (1.0 - self.rate)
        self._mask = mask
        return x * mask

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """dL/dx = dout times the last forward pass's mask (``dout`` itself after an identity pass).

        Parameters
        ----------
        dout : ndarray
            dL/d(output), of the output's shape.
        input_grad : bool, default True
            Unused: the layer has no parameters, so dL/dx is always returned.

        Returns
        -------
        ndarray

        Raises
        ------
        ValueError
            If called before ``forward``, or ``dout`` does not have the mask's shape.
        """
        # cast: for a two-type Optional, mypy infers _cached's result as their join, object
        mask = cast("np.ndarray | str", self._cached(self._mask))
        if isinstance(mask, str):
            return dout
        dx: np.ndarray = check_dout(self, dout, mask.shape) * mask
        return dx

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (``rng`` only when it was an int seed).

        Returns
        -------
        dict
        """
        return {"rate": self.rate, **self._seed}


@LAYERS.register("gaussian_noise")
class GaussianNoise(Layer):
    """Additive input noise: ``y = x + std·ε`` with ε ~ N(0, 1) drawn fresh each training
    step; the identity at inference. The gradient passes through unchanged.

    Parameters
    ----------
    std : float >= 0
        Standard deviation of the noise.
    rng : None, int or numpy Generator
        Source of the noise; kept as ``self.rng``.
    """

    stochastic = True

    def __init__(self, std: float, *, rng: Any = None) -> None:
        super().__init__()
        self.std = check_number("std", std, low=0.0)
        self._seed = seed_config(rng)
        self.rng = as_rng(rng)
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """In training, ``x + std·ε`` with fresh ε ~ N(0, 1) from ``self.rng``; otherwise
        (or while ``noise_off`` is set) return ``x`` itself.

        Parameters
        ----------
        x : ndarray of shape (n_samples, ...)
            float32 or float64.
        training : bool, default False
            Add noise; False is the identity.

        Returns
        -------
        ndarray of x's shape

        Raises
        ------
        TypeError
            If ``x`` is not a float32/float64 ndarray.
        ValueError
            If ``x`` has fewer than 2 dimensions.
        """
        check_input(self, x)
        self._shape = x.shape
        if not training or self.noise_off or self.std == 0.0:
            return x
        y = self.rng.standard_normal(x.shape, dtype=x.dtype)
        y *= x.dtype.type(self.std)
        y += x
        return y

    def backward(self, dout: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """dL/dx = dout: additive noise does not change the gradient.

        Parameters
        ----------
        dout : ndarray
            dL/d(output), of the output's shape.
        input_grad : bool, default True
            Unused: dL/dx is always returned.

        Returns
        -------
        ndarray
            ``dout`` itself.

        Raises
        ------
        ValueError
            If called before ``forward``, or ``dout`` does not have the input's shape.
        """
        return check_dout(self, dout, self._cached(self._shape))

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (``rng`` only when it was an int seed).

        Returns
        -------
        dict
        """
        return {"std": self.std, **self._seed}
