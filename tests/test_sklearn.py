"""The scikit-learn estimators: the full check_estimator suite, pipelines, grid search,
random_state, partial_fit and warm_start."""

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_regression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuronlab.sklearn import NeuralNetClassifier, NeuralNetRegressor


@parametrize_with_checks([NeuralNetClassifier(), NeuralNetRegressor()])
def test_check_estimator(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def test_pipeline_on_digits(digits):
    X_tr, X_te, y_tr, y_te = digits
    pipe = make_pipeline(StandardScaler(), NeuralNetClassifier((64,), epochs=50, random_state=0))
    pipe.fit(X_tr, y_tr)
    assert pipe.score(X_te, y_te) >= 0.95
    proba = pipe.predict_proba(X_te)
    assert proba.shape == (len(X_te), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-10)


def test_grid_search(digits):
    X_tr, _, y_tr, _ = digits
    grid = GridSearchCV(NeuralNetClassifier((32,), epochs=5, random_state=0), {"lr": [1e-5, 1e-2]}, cv=2)
    grid.fit(X_tr[:600] / 16, y_tr[:600])
    assert grid.best_params_ == {"lr": 1e-2}  # 1e-5 barely moves in 5 epochs


def test_random_state_reproducible_and_distinct(digits):
    X_tr, X_te, y_tr, _ = digits
    a = NeuralNetClassifier((16,), epochs=3, random_state=1).fit(X_tr / 16, y_tr)
    b = NeuralNetClassifier((16,), epochs=3, random_state=1).fit(X_tr / 16, y_tr)
    c = NeuralNetClassifier((16,), epochs=3, random_state=2).fit(X_tr / 16, y_tr)
    np.testing.assert_array_equal(a.predict_proba(X_te / 16), b.predict_proba(X_te / 16))
    assert not np.array_equal(a.predict_proba(X_te / 16), c.predict_proba(X_te / 16))


def test_partial_fit_continues_and_needs_classes(digits):
    X_tr, X_te, y_tr, y_te = digits
    clf = NeuralNetClassifier((32,), random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X_tr / 16, y_tr)
    clf.partial_fit(X_tr[:100] / 16, y_tr[:100], classes=np.arange(10))
    first = clf.score(X_te / 16, y_te)
    for _ in range(10):
        clf.partial_fit(X_tr / 16, y_tr)
    assert clf.n_iter_ == 11 and len(clf.loss_curve_) == 11
    assert clf.score(X_te / 16, y_te) > first + 0.2


def test_warm_start_keeps_weights(digits):
    X_tr, _, y_tr, _ = digits
    clf = NeuralNetClassifier((16,), epochs=2, random_state=0, warm_start=True).fit(X_tr / 16, y_tr)
    w = clf.model_.params["0.W"].copy()
    model = clf.model_
    clf.fit(X_tr / 16, y_tr)
    assert clf.model_ is model and clf.n_iter_ == 4
    assert not np.array_equal(w, clf.model_.params["0.W"])
    cold = NeuralNetClassifier((16,), epochs=2, random_state=0).fit(X_tr / 16, y_tr)
    cold.fit(X_tr / 16, y_tr)
    assert cold.n_iter_ == 2  # without warm_start every fit starts again


def test_loss_curves_and_regressor():
    X, y = make_regression(n_samples=300, n_features=5, noise=1.0, random_state=0)
    reg = NeuralNetRegressor((32,), epochs=60, lr=1e-2, validation_fraction=0.2, random_state=0)
    reg.fit(X, y / y.std())
    assert len(reg.loss_curve_) == 60 and len(reg.validation_loss_curve_) == 60
    assert reg.loss_curve_[-1] < 0.1 * reg.loss_curve_[0]
    assert reg.score(X, y / y.std()) > 0.95
    assert reg.predict(X).shape == (300,)
