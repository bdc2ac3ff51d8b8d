"""Data preprocessing from the notes: mean subtraction, normalisation, PCA and whitening.

Every transform is fitted on the *training* data only and then applied unchanged to the
validation and test data (the notes: never preprocess the whole data set and split after).
The fitted statistics are a dict of float64 arrays (:meth:`Preprocessor.state_dict`) so that
``io`` can store them in a model file next to the weights and prediction applies the very
same transform.

Statistics are computed in float64 whatever the input dtype; ``transform`` computes in the
input's dtype (float32 stays float32), with the statistics cast once per dtype and cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from neuronlab._validation import check_array, check_number, check_positive_int
from neuronlab.registry import PREPROCESSORS

__all__ = ["Preprocessor", "NotFittedError", "MeanCenter", "Standardize", "MinMax", "PCA", "ZCA"]


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

    def __init__(self) -> None:
        self._state: dict[str, np.ndarray] | None = None
        # Derived arrays (reciprocals, projection matrices) cast to each compute dtype once.
        self._derived: dict[np.dtype, dict[str, np.ndarray]] = {}

    # -- public API ---------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: Any = None) -> Self:
        """Compute the statistics of the training data ``X`` of shape (n_samples, n_features).

        ``y`` is ignored (accepted so the object fits scikit-learn pipelines). Returns self.
        """
        X = self._check_X(X, "X", None)
        state = self._fit_state(X.astype(np.float64, copy=False))
        self._set_state(state)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply the fitted transform: (n_samples, n_features_in) -> (n_samples, n_features_out).

        The result has the dtype of ``X``; ``X`` itself is not modified.
        """
        state = self._require_fitted()
        X = self._check_X(X, "X", state[self._state_keys[0]].shape[0])
        return self._forward(X, self._params(X.dtype))

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X, y).transform(X)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Map transformed data (n_samples, n_features_out) back to the input space."""
        self._require_fitted()
        Z = self._check_X(Z, "Z", self.n_features_out_)
        return self._inverse(Z, self._params(Z.dtype))

    @property
    def is_fitted(self) -> bool:
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
        """Rebuild an unfitted transform from :meth:`get_config`."""
        return cls(**config)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The fitted statistics as float64 arrays (copies), for saving in a model file."""
        return {k: v.copy() for k, v in self._require_fitted().items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> Self:
        """Restore statistics from :meth:`state_dict`; keys and shapes are checked. Returns self."""
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
            if not isinstance(v, np.ndarray) or not (
                np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)
            ):
                raise TypeError(f"state[{k!r}] must be a numeric ndarray, got {type(v).__name__}")
            arrays[k] = np.array(v, dtype=np.float64)  # a private copy
        first = arrays[self._state_keys[0]]
        if first.ndim != 1 or first.shape[0] == 0:
            raise ValueError(f"state[{self._state_keys[0]!r}] must have shape (n_features,), got {first.shape}")
        for k, shape in self._shapes(first.shape[0]).items():
            if arrays[k].shape != shape:
                raise ValueError(f"state[{k!r}] must have shape {shape}, got {arrays[k].shape}")
            if not np.isfinite(arrays[k]).all():
                raise ValueError(f"state[{k!r}] contains NaN or Inf")
        self._set_state(arrays)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # -- helpers ------------------------------------------------------------------------
    def _check_X(self, X: Any, name: str, width: int | None) -> np.ndarray:
        check_array(name, X)
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
        self._state = {k: np.ascontiguousarray(state[k], dtype=np.float64) for k in self._state_keys}
        self._derived = {}

    def _params(self, dtype: np.dtype) -> dict[str, np.ndarray]:
        dtype = np.dtype(dtype)
        p = self._derived.get(dtype)
        if p is None:
            # Derive in float64 first, then cast: reciprocals and products stay accurate.
            p = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in self._derive(self._state).items()}
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


@PREPROCESSORS.register("mean_center")
class MeanCenter(Preprocessor):
    """Mean subtraction: x - mean, the mean taken over the training samples, per feature."""

    _state_keys = ("mean",)

    def _fit_state(self, X: np.ndarray) -> dict[str, np.ndarray]:
        return {"mean": X.mean(axis=0)}

    def _forward(self, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        return np.subtract(X, p["mean"])

    def _inverse(self, Z: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        return np.add(Z, p["mean"])


@PREPROCESSORS.register("standardize")
class Standardize(Preprocessor):
    """Normalisation to zero mean and unit variance per feature: (x - mean) / std.

    Parameters
    ----------
    eps : float, default 1e-8
        A feature whose training standard deviation is below ``eps`` is treated as constant:
        it is centred but not scaled (scale 1), so it maps to 0 on the training data and
        never blows up a validation value by 1/std.
    """

    _state_keys = ("mean", "scale")

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = check_number("eps", eps, low=0)

    def get_config(self) -> dict[str, Any]:
        return {"eps": self.eps}

    def _fit_state(self, X: np.ndarray) -> dict[str, np.ndarray]:
        mean = X.mean(axis=0)
        std = X.std(axis=0)  # population std (ddof=0): the transformed training std is 1
        return {"mean": mean, "scale": np.where(std < self.eps, 1.0, std)}

    def _derive(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Multiply by the reciprocal: one division per feature at fit, not per element.
        return {"mean": state["mean"], "scale": state["scale"], "inv_scale": 1.0 / state["scale"]}

    def _forward(self, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out = np.subtract(X, p["mean"])
        out *= p["inv_scale"]
        return out

    def _inverse(self, Z: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out = np.multiply(Z, p["scale"])
        out += p["mean"]
        return out


@PREPROCESSORS.register("minmax")
class MinMax(Preprocessor):
    """Scale each feature so the training minimum maps to -1 and the maximum to +1.

    x' = (x - center) / half_range with center = (max + min) / 2, half_range = (max - min) / 2.
    A constant feature (max == min) gets half_range 1, so it maps to 0 and stays invertible.
    Validation data may fall outside [-1, 1]; that is expected and not clipped.
    """

    _state_keys = ("center", "half_range")

    def _fit_state(self, X: np.ndarray) -> dict[str, np.ndarray]:
        lo, hi = X.min(axis=0), X.max(axis=0)
        half = (hi - lo) / 2.0
        return {"center": (hi + lo) / 2.0, "half_range": np.where(half > 0, half, 1.0)}

    def _derive(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**state, "inv_half_range": 1.0 / state["half_range"]}

    def _forward(self, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out = np.subtract(X, p["center"])
        out *= p["inv_half_range"]
        return out

    def _inverse(self, Z: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out = np.multiply(Z, p["half_range"])
        out += p["center"]
        return out


def _eig_cov(Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of the covariance Xc.T @ Xc / N of centred data (the notes' formula).

    Returns (eigenvalues descending, shape (D,); eigenvectors as columns, shape (D, D)).
    ``eigh`` on the D x D covariance is cheaper than an SVD of the N x D data when N > D.
    """
    cov = Xc.T @ Xc
    cov /= Xc.shape[0]
    vals, vecs = np.linalg.eigh(cov)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    np.maximum(vals, 0.0, out=vals)  # rounding can make zero eigenvalues slightly negative
    # Eigenvectors are defined up to sign; fix it (largest |entry| positive) so that two fits
    # of the same data give the same transform.
    rows = np.abs(vecs).argmax(axis=0)
    vecs *= np.sign(vecs[rows, np.arange(vecs.shape[1])])
    return np.ascontiguousarray(vals), np.ascontiguousarray(vecs)


@PREPROCESSORS.register("pca")
class PCA(Preprocessor):
    """Principal component analysis, optionally whitened.

    Fit: mean and covariance of the training data; its eigenvectors U (columns, by decreasing
    eigenvalue λ). Transform: z = (x - mean) @ U[:, :k], divided by sqrt(λ + eps) when
    whitening, which gives the training data (nearly) identity covariance.

    Parameters
    ----------
    n_components : int or None, default None
        Number k of leading components kept; None keeps all n_features.
    whiten : bool, default False
        Divide each component by sqrt(eigenvalue + eps).
    eps : float, default 1e-5
        Added to the eigenvalues before the square root so near-zero-variance directions
        (constant pixels) are not amplified into noise.

    Attributes
    ----------
    components_ : ndarray of shape (n_features, k)
    explained_variance_ : ndarray of shape (k,)
    explained_variance_ratio_ : ndarray of shape (k,)
    """

    _state_keys = ("mean", "components", "explained_variance", "explained_variance_ratio")

    def __init__(self, n_components: int | None = None, *, whiten: bool = False, eps: float = 1e-5) -> None:
        super().__init__()
        self.n_components = None if n_components is None else check_positive_int("n_components", n_components)
        if not isinstance(whiten, (bool, np.bool_)):
            raise TypeError(f"whiten must be a bool, got {type(whiten).__name__}: {whiten!r}")
        self.whiten = bool(whiten)
        self.eps = check_number("eps", eps, low=0, low_inclusive=False)

    def get_config(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "whiten": self.whiten, "eps": self.eps}

    def _k(self, n_features: int) -> int:
        if self.n_components is None:
            return n_features
        if self.n_components > n_features:
            raise ValueError(
                f"n_components must be <= n_features={n_features}, got {self.n_components!r}"
            )
        return self.n_components

    @property
    def n_features_out_(self) -> int:
        return self._k(self.n_features_in_)

    @property
    def components_(self) -> np.ndarray:
        return self._require_fitted()["components"]

    @property
    def explained_variance_(self) -> np.ndarray:
        return self._require_fitted()["explained_variance"]

    @property
    def explained_variance_ratio_(self) -> np.ndarray:
        return self._require_fitted()["explained_variance_ratio"]

    def _fit_state(self, X: np.ndarray) -> dict[str, np.ndarray]:
        k = self._k(X.shape[1])
        mean = X.mean(axis=0)
        vals, vecs = _eig_cov(X - mean)
        total = vals.sum()
        ratio = vals[:k] / total if total > 0 else np.zeros(k)
        return {"mean": mean, "components": vecs[:, :k], "explained_variance": vals[:k],
                "explained_variance_ratio": ratio}

    def _shapes(self, n_features: int) -> dict[str, tuple[int, ...]]:
        k = self._k(n_features)
        return {"mean": (n_features,), "components": (n_features, k),
                "explained_variance": (k,), "explained_variance_ratio": (k,)}

    def _derive(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        U = state["components"]
        if self.whiten:
            s = np.sqrt(state["explained_variance"] + self.eps)
            # Fold the whitening scale into the projection: one GEMM per transform.
            return {"mean": state["mean"], "proj": U / s, "back": U.T * s[:, None]}
        return {"mean": state["mean"], "proj": U, "back": U.T}

    def _forward(self, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        # Centre before projecting (rather than X @ P - mean @ P): no cancellation in float32.
        return np.subtract(X, p["mean"]) @ p["proj"]

    def _inverse(self, Z: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out = Z @ p["back"]
        out += p["mean"]
        return out


@PREPROCESSORS.register("zca")
class ZCA(Preprocessor):
    """ZCA whitening: PCA whitening with all components, rotated back to the input axes.

    W = U diag(1 / sqrt(λ + eps)) Uᵀ and z = (x - mean) @ W. The training data gets (nearly)
    identity covariance while each output feature stays close to its input feature (images
    still look like images).

    Parameters
    ----------
    eps : float, default 1e-5
        Added to the eigenvalues before the square root (regularises flat directions).
    """

    _state_keys = ("mean", "components", "explained_variance")

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = check_number("eps", eps, low=0, low_inclusive=False)

    def get_config(self) -> dict[str, Any]:
        return {"eps": self.eps}

    def _fit_state(self, X: np.ndarray) -> dict[str, np.ndarray]:
        mean = X.mean(axis=0)
        vals, vecs = _eig_cov(X - mean)
        return {"mean": mean, "components": vecs, "explained_variance": vals}

    def _shapes(self, n_features: int) -> dict[str, tuple[int, ...]]:
        return {"mean": (n_features,), "components": (n_features, n_features),
                "explained_variance": (n_features,)}

    def _derive(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        U = state["components"]
        s = np.sqrt(state["explained_variance"] + self.eps)
        return {"mean": state["mean"], "W": (U / s) @ U.T, "W_inv": (U * s) @ U.T}

    def _forward(self, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        return np.subtract(X, p["mean"]) @ p["W"]

    def _inverse(self, Z: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out = Z @ p["W_inv"]
        out += p["mean"]
        return out
