"""Preprocessing: statistics from training data only, golden values, whitening, state round trip."""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.preprocessing import NotFittedError, Preprocessor
from neuronlab.registry import PREPROCESSORS

ALL = [
    lambda: nl.MeanCenter(),
    lambda: nl.Standardize(),
    lambda: nl.MinMax(),
    lambda: nl.PCA(),
    lambda: nl.PCA(3, whiten=True),
    lambda: nl.ZCA(),
]
IDS = ["mean_center", "standardize", "minmax", "pca", "pca3_whiten", "zca"]


def correlated(rng: np.random.Generator, n: int = 400, d: int = 5) -> np.ndarray:
    """Gaussian data with a non-trivial covariance and mean (well away from 0)."""
    mix = rng.standard_normal((d, d)) + 2.0 * np.eye(d)
    return rng.standard_normal((n, d)) @ mix + rng.uniform(-5, 5, size=d)


def population_cov(Z: np.ndarray) -> np.ndarray:
    Zc = Z - Z.mean(axis=0)
    return Zc.T @ Zc / Z.shape[0]


# -- registry ---------------------------------------------------------------------------
def test_registered_by_name():
    assert PREPROCESSORS.get("mean_center") is nl.MeanCenter
    assert PREPROCESSORS.get("standardize") is nl.Standardize
    assert PREPROCESSORS.get("minmax") is nl.MinMax
    assert PREPROCESSORS.get("pca") is nl.PCA
    assert PREPROCESSORS.get("zca") is nl.ZCA
    assert isinstance(PREPROCESSORS.create("pca", n_components=2, whiten=True), nl.PCA)
    with pytest.raises(ValueError, match="choose one of"):
        PREPROCESSORS.get("whitening")


# -- golden values worked out by hand ---------------------------------------------------
def test_standardize_golden():
    # column 0 = [1, 3, 5]: mean 3, population variance (4 + 0 + 4) / 3 = 8/3, so the
    # outputs are (-2, 0, 2) / sqrt(8/3) = (-sqrt(3/2), 0, sqrt(3/2)).
    # column 1 is constant 10: std 0 < eps, so it is only centred (scale 1) -> 0.
    X = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    s = nl.Standardize().fit(X)
    r = np.sqrt(1.5)
    np.testing.assert_allclose(s.transform(X), [[-r, 0], [0, 0], [r, 0]], atol=1e-15)
    # A validation row uses the training statistics: (7 - 3) / sqrt(8/3) = sqrt(6);
    # the constant column gives 11 - 10 = 1, not 1 / 0.
    np.testing.assert_allclose(
        s.transform(np.array([[7.0, 11.0]])), [[np.sqrt(6), 1.0]], rtol=1e-15
    )


def test_standardize_mean0_std1(rng):
    X = correlated(rng)
    Z = nl.Standardize().fit_transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1, rtol=1e-12)


def test_mean_center_golden():
    # means per column: (1 + 3) / 2 = 2 and (4 + 8) / 2 = 6
    X = np.array([[1.0, 4.0], [3.0, 8.0]])
    m = nl.MeanCenter().fit(X)
    np.testing.assert_array_equal(m.transform(X), [[-1.0, -2.0], [1.0, 2.0]])
    np.testing.assert_array_equal(m.transform(np.array([[0.0, 0.0]])), [[-2.0, -6.0]])


def test_minmax_golden_and_constant_feature():
    # column 0 = [2, 4, 10]: center (10 + 2) / 2 = 6, half range (10 - 2) / 2 = 4,
    # so (2-6)/4 = -1, (4-6)/4 = -0.5, (10-6)/4 = 1. Column 1 is constant: maps to 0.
    X = np.array([[2.0, 7.0], [4.0, 7.0], [10.0, 7.0]])
    m = nl.MinMax().fit(X)
    np.testing.assert_array_equal(m.transform(X), [[-1.0, 0.0], [-0.5, 0.0], [1.0, 0.0]])
    # validation data outside the training range is not clipped: (14 - 6) / 4 = 2
    np.testing.assert_array_equal(m.transform(np.array([[14.0, 8.0]])), [[2.0, 1.0]])
    np.testing.assert_array_equal(m.inverse_transform(m.transform(X)), X)


def test_minmax_range(rng):
    X = correlated(rng)
    Z = nl.MinMax().fit_transform(X)
    np.testing.assert_allclose(Z.min(axis=0), -1, atol=1e-12)
    np.testing.assert_allclose(Z.max(axis=0), 1, atol=1e-12)


def test_pca_golden():
    # Mean 0; covariance X.T @ X / 4 = [[10, 6], [6, 10]] / 4 = [[2.5, 1.5], [1.5, 2.5]],
    # eigenvalues 4 (direction (1, 1)/√2) and 1 (direction (1, -1)/√2).
    X = np.array([[2.0, 2.0], [-2.0, -2.0], [1.0, -1.0], [-1.0, 1.0]])
    p = nl.PCA(1).fit(X)
    np.testing.assert_allclose(p.explained_variance_, [4.0], rtol=1e-12)
    np.testing.assert_allclose(p.explained_variance_ratio_, [0.8], rtol=1e-12)  # 4 / (4 + 1)
    np.testing.assert_allclose(p.components_, np.array([[1.0], [1.0]]) / np.sqrt(2), rtol=1e-12)
    # projections onto (1, 1)/√2: ±4/√2 = ±2√2 for the first two, 0 for the others
    np.testing.assert_allclose(
        p.transform(X)[:, 0], [2 * np.sqrt(2), -2 * np.sqrt(2), 0, 0], atol=1e-12
    )
    # whitening divides by sqrt(4 + eps)
    w = nl.PCA(1, whiten=True, eps=1e-5).fit(X)
    np.testing.assert_allclose(
        w.transform(X)[:2, 0],
        [2 * np.sqrt(2) / np.sqrt(4 + 1e-5), -2 * np.sqrt(2) / np.sqrt(4 + 1e-5)],
        rtol=1e-12,
    )
    assert p.n_features_in_ == 2 and p.n_features_out_ == 1


# -- whitening --------------------------------------------------------------------------
def test_pca_whitened_training_data_has_identity_covariance(rng):
    X = correlated(rng)
    p = nl.PCA(whiten=True, eps=1e-5).fit(X)
    Z = p.transform(X)
    # Exactly cov = diag(λ / (λ + eps)); every λ here is > 0.1, so within 1e-4 of I.
    assert p.explained_variance_.min() > 0.1
    np.testing.assert_allclose(population_cov(Z), np.eye(5), atol=1e-4)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-10)
    # Components come in decreasing order of variance.
    assert np.all(np.diff(p.explained_variance_) <= 0)


def test_pca_whiten_float32_keeps_dtype_and_identity(rng):
    X = correlated(rng).astype(np.float32)
    Z = nl.PCA(whiten=True).fit(X).transform(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(population_cov(Z.astype(np.float64)), np.eye(5), atol=1e-3)


def test_zca_identity_covariance_and_relation_to_pca(rng):
    X = correlated(rng)
    z = nl.ZCA(eps=1e-5).fit(X)
    Z = z.transform(X)
    np.testing.assert_allclose(population_cov(Z), np.eye(5), atol=1e-4)
    # ZCA = PCA whitening followed by the rotation back: Z_zca = Z_pca_white @ Uᵀ.
    p = nl.PCA(whiten=True, eps=1e-5).fit(X)
    np.testing.assert_allclose(Z, p.transform(X) @ p.components_.T, atol=1e-10)
    np.testing.assert_allclose(z.inverse_transform(Z), X, atol=1e-10)


def test_pca_reconstruction(rng):
    X = correlated(rng)
    for whiten in (False, True):
        p = nl.PCA(whiten=whiten).fit(X)
        np.testing.assert_allclose(p.inverse_transform(p.transform(X)), X, atol=1e-10)
    # Keeping k components loses exactly the discarded variance: the mean squared
    # reconstruction error per sample equals the sum of the dropped eigenvalues.
    full = nl.PCA().fit(X)
    p2 = nl.PCA(2).fit(X)
    err = ((X - p2.inverse_transform(p2.transform(X))) ** 2).sum(axis=1).mean()
    np.testing.assert_allclose(err, full.explained_variance_[2:].sum(), rtol=1e-10)


def test_pca_deterministic_signs(rng):
    X = correlated(rng)
    a = nl.PCA().fit(X).components_
    b = nl.PCA().fit(X[rng.permutation(len(X))]).components_
    np.testing.assert_allclose(a, b, atol=1e-10)


# -- fit on training data, apply unchanged ----------------------------------------------
def test_validation_uses_training_statistics(rng):
    X = correlated(rng)
    train, val = X[:300], X[300:] * 3.0 + 1.0  # validation deliberately shifted
    s = nl.Standardize().fit(train)
    expected = (val - train.mean(axis=0)) / train.std(axis=0)
    np.testing.assert_allclose(s.transform(val), expected, rtol=1e-12)
    assert not np.allclose(s.transform(val), nl.Standardize().fit_transform(val))
    # transform does not refit: the state is unchanged afterwards
    before = s.state_dict()
    s.transform(val)
    for k, v in s.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    # same for PCA whitening: the validation covariance is NOT the identity
    p = nl.PCA(whiten=True).fit(train)
    Zv = p.transform(val)
    assert np.abs(population_cov(Zv) - np.eye(5)).max() > 1.0  # variance scaled by 9
    np.testing.assert_allclose(
        Zv,
        (val - train.mean(axis=0)) @ p.components_ / np.sqrt(p.explained_variance_ + p.eps),
        rtol=1e-9,
    )


# -- contract for every transform -------------------------------------------------------
@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_state_dict_round_trip(make, rng):
    X = correlated(rng)
    a = make().fit(X)
    state = a.state_dict()
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float64 for v in state.values())
    b = type(a).from_config(a.get_config()).load_state_dict(state)
    assert b.get_config() == a.get_config()
    Xv = correlated(rng)
    np.testing.assert_array_equal(b.transform(Xv), a.transform(Xv))
    np.testing.assert_array_equal(
        b.transform(Xv.astype(np.float32)), a.transform(Xv.astype(np.float32))
    )
    # state_dict hands out copies: changing them does not change the fitted transform
    for v in state.values():
        v += 1.0
    np.testing.assert_array_equal(b.transform(Xv), a.transform(Xv))


@pytest.mark.parametrize("make", ALL, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_follows_input_and_input_untouched(make, dtype, rng):
    X = correlated(rng).astype(dtype)
    copy = X.copy()
    p = make().fit(X)
    Z = p.transform(X)
    assert Z.dtype == dtype
    assert Z.shape == (X.shape[0], p.n_features_out_)
    np.testing.assert_array_equal(X, copy)
    assert p.inverse_transform(Z).dtype == dtype


@pytest.mark.parametrize("make", ALL, ids=IDS)
def test_errors(make, rng):
    p = make()
    assert isinstance(p, Preprocessor) and not p.is_fitted
    X = correlated(rng)
    with pytest.raises(NotFittedError, match="not fitted"):
        p.transform(X)
    with pytest.raises(ValueError, match="not fitted"):
        p.state_dict()
    assert not hasattr(p, "n_features_in_")
    with pytest.raises(ValueError, match="2-D"):
        p.fit(X[:, :, None])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        p.fit(X[0])
    with pytest.raises(TypeError, match="float32 or float64"):
        p.fit(X.astype(np.int64))
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        p.fit(bad)
    p.fit(X)
    with pytest.raises(ValueError, match="X has 4 features, but .* expecting 5"):
        p.transform(X[:, :4])
    with pytest.raises(ValueError, match="Z has 7 features"):
        p.inverse_transform(np.zeros((2, 7)))
    state = p.state_dict()
    with pytest.raises(ValueError, match="missing"):
        make().load_state_dict({k: v for k, v in list(state.items())[1:]})
    with pytest.raises(ValueError, match="unexpected"):
        make().load_state_dict({**state, "extra": np.zeros(5)})
    first, last = list(state)[0], list(state)[-1]
    with pytest.raises(ValueError, match=r"must have shape \(n_features,\)"):
        make().load_state_dict({**state, first: np.zeros((5, 1))})
    if first != last:  # arrays inconsistent with each other
        with pytest.raises(ValueError, match="must have shape"):
            make().load_state_dict({**state, last: np.zeros(state[last].shape[:-1] + (9,))})
    with pytest.raises(ValueError, match="NaN or Inf"):
        make().load_state_dict({**state, last: np.full_like(state[last], np.inf)})


def test_hyperparameter_validation():
    with pytest.raises(ValueError, match="eps must be >= 0"):
        nl.Standardize(eps=-1.0)
    with pytest.raises(ValueError, match="eps must be > 0"):
        nl.ZCA(eps=0.0)
    with pytest.raises(ValueError, match="n_components must be > 0, got 0"):
        nl.PCA(0)
    with pytest.raises(TypeError, match="n_components must be an integer"):
        nl.PCA(2.5)
    with pytest.raises(TypeError, match="whiten must be a bool"):
        nl.PCA(whiten="yes")
    with pytest.raises(TypeError, match="unexpected keyword"):
        nl.PCA(n_component=2)  # a typo fails
    with pytest.raises(ValueError, match="n_components must be <= n_features=3, got 4"):
        nl.PCA(4).fit(np.ones((10, 3)))
