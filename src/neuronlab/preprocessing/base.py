"""The Preprocessor contract: fit statistics on training data, transform any data with them.

The fitted statistics are a dict of float64 arrays (:meth:`Preprocessor.state_dict`) so that
``io`` can store them in a model file next to the weights, and prediction applies the very
same transform. Statistics are computed in float64 whatever the input dtype; ``transform``
computes in the input's dtype (float32 stays float32), with the statistics cast once per
dtype and cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from neuronlab._validation import check_array

__all__ = ["NotFittedError", "Preprocessor"]


class NotFittedError(ValueError, AttributeError):
    """A transform was used before ``fit`` (or ``load_state_dict``).

    Subclasses both ValueError and AttributeError, as scikit-learn's does, so ``hasattr``
    on a fitted attribute of an unfitted object is simply False.
    """


class Preprocessor:
    """Base class: fit statistics on training data, then transform any data with them.

    Subclasses set ``_state_keys`` (the first key is a per-feature vector of shape
    (n_features_in,)) and implement ``_fit_state``, ``_shapes``, ``_derive``, ``_forward``
    and, where the transform is invertible, ``_inverse``.
    """

    registry_name: ClassVar[str] = ""
    _state_keys: ClassVar[tuple[str, ...]] = ()
    #: State arrays that fitting always makes > 0 (a scale divided by): a zero in a loaded
    #: state would turn every transformed value into Inf or NaN.
    _positive_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._state: dict[str, np.ndarray] | None = None
        # Derived arrays (reciprocals, projection matrices) cast to each compute dtype once.
        self._derived: dict[np.dtype, dict[str, np.ndarray]] = {}

    # -- public API ---------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: Any = None) -> Self:
        """Compute the statistics of the training data (in float64), replacing any earlier fit.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Training data, float32 or float64, finite.
        y : any, optional
            Ignored (accepted so the object fits scikit-learn pipelines).

        Returns
        -------
        Preprocessor
            ``self``.

        Raises
        ------
        TypeError
            If ``X`` is not a float32/float64 ndarray.
        ValueError
            If ``X`` is not 2-D, is empty, or holds NaN or Inf.
        """
        X = self._check_X(X, "X", None)
        state = self._fit_state(X.astype(np.float64, copy=False))
        self._set_state(state)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply the fitted transform: (n_samples, n_features_in) -> (n_samples, n_features_out).

        The result has the dtype of ``X``; ``X`` itself is not modified.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features_in)
            float32 or float64, finite.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)

        Raises
        ------
        NotFittedError
            If the transform has not been fitted (or loaded).
        ValueError
            If ``X`` has another width than the fitted data, or holds NaN or Inf.

        Examples
        --------
        >>> import numpy as np
        >>> from neuronlab.preprocessing import Standardize
        >>> X = np.array([[0.0, 10.0], [2.0, 30.0]])
        >>> Standardize().fit(X).transform(X)
        array([[-1., -1.],
               [ 1.,  1.]])
        """
        state = self._require_fitted()
        X = self._check_X(X, "X", state[self._state_keys[0]].shape[0])
        return self._forward(X, self._params(X.dtype))

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Training data, float32 or float64, finite.
        y : any, optional
            Ignored.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
        """
        return self.fit(X, y).transform(X)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Map transformed data back to the input space (up to rounding, and exactly only
        when no component was dropped).

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_features_out)
            Transformed data, float32 or float64.

        Returns
        -------
        ndarray of shape (n_samples, n_features_in)

        Raises
        ------
        NotFittedError
            If the transform has not been fitted (or loaded).
        NotImplementedError
            If the transform has no inverse.
        """
        self._require_fitted()
        Z = self._check_X(Z, "Z", self.n_features_out_)
        return self._inverse(Z, self._params(Z.dtype))

    @property
    def is_fitted(self) -> bool:
        """Whether statistics are present (from :meth:`fit` or :meth:`load_state_dict`)."""
        return self._state is not None

    @property
    def n_features_in_(self) -> int:
        """Width of the data the transform was fitted on."""
        return int(self._require_fitted()[self._state_keys[0]].shape[0])

    @property
    def n_features_out_(self) -> int:
        """Width of the transformed data (equal to ``n_features_in_`` except for PCA)."""
        return self.n_features_in_

    # -- configuration and state --------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Constructor keyword arguments as JSON-serialisable values."""
        return {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Preprocessor:
        """Rebuild an unfitted transform from :meth:`get_config`.

        Parameters
        ----------
        config : mapping
            Constructor keyword arguments.

        Returns
        -------
        Preprocessor
            Unfitted: load its statistics with :meth:`load_state_dict`.
        """
        return cls(**config)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The fitted statistics as float64 arrays (copies), for saving in a model file."""
        return {k: v.copy() for k, v in self._require_fitted().items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> Self:
        """Restore statistics from :meth:`state_dict`; keys and shapes are checked.

        Parameters
        ----------
        state : mapping of str to ndarray
            Exactly this transform's state keys, numeric arrays of the fitted shapes, finite
            (and > 0 where a scale divides); copied as float64.

        Returns
        -------
        Preprocessor
            ``self``.

        Raises
        ------
        TypeError
            If ``state`` is not a mapping or an entry is not a numeric ndarray.
        ValueError
            If a key is missing or unexpected, a shape is wrong, or a value is not finite
            (or not positive where it must be).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a mapping of arrays, got {type(state).__name__}")
        missing = [k for k in self._state_keys if k not in state]
        unexpected = sorted(set(state) - set(self._state_keys))
        if missing or unexpected:
            raise ValueError(
                f"{type(self).__name__} state keys do not match: missing {missing}, "
                f"unexpected {unexpected}; expected {list(self._state_keys)}"
            )
        arrays: dict[str, np.ndarray] = {}
        for k in self._state_keys:
            v = state[k]
            if not isinstance(v, np.ndarray) or v.dtype.kind not in "fiu":
                raise TypeError(f"state[{k!r}] must be a numeric ndarray, got {type(v).__name__}")
            arrays[k] = np.array(v, dtype=np.float64)  # a private copy
        key0 = self._state_keys[0]
        if arrays[key0].ndim != 1 or arrays[key0].shape[0] == 0:
            raise ValueError(
                f"state[{key0!r}] must have shape (n_features,), got {arrays[key0].shape}"
            )
        for k, shape in self._shapes(arrays[key0].shape[0]).items():
            if arrays[k].shape != shape:
                raise ValueError(f"state[{k!r}] must have shape {shape}, got {arrays[k].shape}")
            if not np.isfinite(arrays[k]).all():
                raise ValueError(f"state[{k!r}] contains NaN or Inf")
            if k in self._positive_keys and not (arrays[k] > 0).all():
                i = int(np.argmin(arrays[k] > 0))
                raise ValueError(
                    f"{type(self).__name__} state[{k!r}] is {arrays[k][i]:g} for feature {i}: a "
                    "fitted scale is always > 0 (it divides every value of that feature)"
                )
        self._set_state(arrays)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # -- helpers ------------------------------------------------------------------------
    def _check_X(self, X: object, name: str, width: int | None) -> np.ndarray:
        X = check_array(name, X)
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
        if X.shape[1] == 0:
            raise ValueError(f"{name} has no features: shape {X.shape}")
        if width is not None and X.shape[1] != width:
            raise ValueError(
                f"{name} has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{width} features as input"
            )
        return X

    def _require_fitted(self) -> dict[str, np.ndarray]:
        if self._state is None:
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call fit(X_train) "
                "(or load_state_dict) before using it"
            )
        return self._state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        keys = self._state_keys
        self._state = {k: np.ascontiguousarray(state[k], dtype=np.float64) for k in keys}
        self._derived = {}

    def _params(self, dtype: np.dtype) -> dict[str, np.ndarray]:
        dtype = np.dtype(dtype)
        p = self._derived.get(dtype)
        if p is None:
            # Derive in float64 first, then cast: reciprocals and products stay accurate.
            derived = self._derive(self._require_fitted())
            p = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in derived.items()}
            self._derived[dtype] = p
        return p

    # -- subclass hooks -----------------------------------------------------------------
    def _fit_state(self, X: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _shapes(self, n_features: int) -> dict[str, tuple[int, ...]]:
        return {k: (n_features,) for k in self._state_keys}

    def _derive(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(state)

    def _forward(self, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _inverse(self, Z: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no inverse_transform")
