"""PCA (optionally whitened) and ZCA whitening, from the eigenvectors of the training covariance."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuronlab._validation import check_number, check_positive_int
from neuronlab.preprocessing.base import Preprocessor
from neuronlab.registry import PREPROCESSORS

__all__ = ["PCA", "ZCA"]


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

    def __init__(
        self, n_components: int | None = None, *, whiten: bool = False, eps: float = 1e-5
    ) -> None:
        super().__init__()
        if n_components is not None:
            n_components = check_positive_int("n_components", n_components)
        self.n_components = n_components
        if not isinstance(whiten, (bool, np.bool_)):
            raise TypeError(f"whiten must be a bool, got {type(whiten).__name__}: {whiten!r}")
        self.whiten = bool(whiten)
        self.eps = check_number("eps", eps, low=0, low_inclusive=False)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"n_components": int or None, "whiten": bool, "eps": float}``.
        """
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
        """Width of the transformed data: ``n_components`` (all features when None)."""
        return self._k(self.n_features_in_)

    @property
    def components_(self) -> np.ndarray:
        """The kept eigenvectors of the training covariance, as columns: shape (n_features, k)."""
        return self._require_fitted()["components"]

    @property
    def explained_variance_(self) -> np.ndarray:
        """The kept eigenvalues (variance along each component), decreasing: shape (k,)."""
        return self._require_fitted()["explained_variance"]

    @property
    def explained_variance_ratio_(self) -> np.ndarray:
        """Each kept eigenvalue over the sum of all eigenvalues: shape (k,)."""
        return self._require_fitted()["explained_variance_ratio"]

    def _fit_state(self, X: np.ndarray) -> dict[str, np.ndarray]:
        k = self._k(X.shape[1])
        mean = X.mean(axis=0)
        vals, vecs = _eig_cov(X - mean)
        total = vals.sum()
        ratio = vals[:k] / total if total > 0 else np.zeros(k)
        return {
            "mean": mean,
            "components": vecs[:, :k],
            "explained_variance": vals[:k],
            "explained_variance_ratio": ratio,
        }

    def _shapes(self, n_features: int) -> dict[str, tuple[int, ...]]:
        k = self._k(n_features)
        return {
            "mean": (n_features,),
            "components": (n_features, k),
            "explained_variance": (k,),
            "explained_variance_ratio": (k,),
        }

    def _derive(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        U = state["components"]
        if self.whiten:
            s = np.sqrt(state["explained_variance"] + self.eps)
            # Fold the whitening scale into the projection: one GEMM per transform.
            return {"mean": state["mean"], "proj": U / s, "back": U.T * s[:, None]}
        return {"mean": state["mean"], "proj": U, "back": U.T}

    def _forward(self, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        # Centre before projecting (rather than X @ P - mean @ P): no cancellation in float32.
        out: np.ndarray = np.subtract(X, p["mean"]) @ p["proj"]
        return out

    def _inverse(self, Z: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out: np.ndarray = Z @ p["back"]
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
        """The constructor's arguments.

        Returns
        -------
        dict
            ``{"eps": float}``.
        """
        return {"eps": self.eps}

    def _fit_state(self, X: np.ndarray) -> dict[str, np.ndarray]:
        mean = X.mean(axis=0)
        vals, vecs = _eig_cov(X - mean)
        return {"mean": mean, "components": vecs, "explained_variance": vals}

    def _shapes(self, n_features: int) -> dict[str, tuple[int, ...]]:
        return {
            "mean": (n_features,),
            "components": (n_features, n_features),
            "explained_variance": (n_features,),
        }

    def _derive(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        U = state["components"]
        s = np.sqrt(state["explained_variance"] + self.eps)
        return {"mean": state["mean"], "W": (U / s) @ U.T, "W_inv": (U * s) @ U.T}

    def _forward(self, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out: np.ndarray = np.subtract(X, p["mean"]) @ p["W"]
        return out

    def _inverse(self, Z: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        out: np.ndarray = Z @ p["W_inv"]
        out += p["mean"]
        return out
