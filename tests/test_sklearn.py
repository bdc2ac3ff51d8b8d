"""The scikit-learn estimators: the full check_estimator suite, the CLI's defaults, inputs
as scikit-learn takes them (lists, pandas, string labels), pipelines, grid search,
random_state, partial_fit, warm_start and verbose."""

import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, make_regression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuronlab.config import RunConfig
from neuronlab.sklearn import NeuralNetClassifier, NeuralNetRegressor


@parametrize_with_checks([NeuralNetClassifier(), NeuralNetRegressor()])
def test_check_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls", [NeuralNetClassifier, NeuralNetRegressor])
def test_defaults_are_the_clis(cls):
    """The signature's literal defaults are RunConfig()'s, so estimators and CLI agree."""
    cfg, p = RunConfig(), cls().get_params()
    assert list(p["hidden_layer_sizes"]) == cfg.model.hidden
    assert (p["activation"], p["init"], p["out_init"], p["dropout"], p["batchnorm"]) == (
        cfg.model.activation, cfg.model.init, cfg.model.out_init, cfg.model.dropout,
        cfg.model.batchnorm)
    assert (p["optimizer"], p["lr"]) == (cfg.optim.optimizer, cfg.optim.lr)
    assert (p["epochs"], p["batch_size"]) == (cfg.train.epochs, cfg.train.batch_size)
    # scikit-learn's names keep scikit-learn's defaults
    assert (p["alpha"], p["early_stopping"], p["validation_fraction"], p["n_iter_no_change"],
            p["tol"], p["verbose"]) == (1e-4, False, 0.1, 10, 1e-4, 0)
    assert set(inspect.signature(cls).parameters) == set(p)


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
    # early_stopping with tol=None: a validation split and its curve, no stopping
    reg = NeuralNetRegressor((32,), epochs=60, lr=1e-2, early_stopping=True, tol=None,
                             validation_fraction=0.2, random_state=0)
    reg.fit(X, y / y.std())
    assert len(reg.loss_curve_) == 60 and len(reg.validation_loss_curve_) == 60
    assert reg.best_loss_ is None and reg.best_validation_score_ > 0.9
    assert reg.loss_curve_[-1] < 0.1 * reg.loss_curve_[0]
    assert reg.score(X, y / y.std()) > 0.95
    assert reg.predict(X).shape == (300,)


def _frame(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"size": rng.normal(size=n) * 10 + 50, "ratio": rng.normal(size=n),
                      "noise": rng.normal(size=n)})
    y = pd.Series(np.where(X["ratio"] > 0.3, "spam", np.where(X["ratio"] < -0.3, "ham", "eggs")),
                  name="label")
    return X, y


def test_pandas_string_labels_in_pipeline_and_grid_search():
    X, y = _frame()
    pipe = Pipeline([("scale", StandardScaler()),
                     ("clf", NeuralNetClassifier((16,), epochs=20, lr=1e-2, random_state=0))])
    grid = GridSearchCV(pipe, {"clf__alpha": [1e-4, 1e-1]}, cv=2).fit(X, y)
    clf = grid.best_estimator_.named_steps["clf"]
    assert clf.classes_.tolist() == ["eggs", "ham", "spam"]
    pred = grid.predict(X)
    assert set(pred) <= {"eggs", "ham", "spam"} and grid.score(X, y) > 0.85
    assert grid.predict_proba(X.iloc[:5]).shape == (5, 3)
    # the estimator on its own keeps the frame's column names
    alone = NeuralNetClassifier((8,), epochs=2, random_state=0).fit(X, y)
    assert alone.feature_names_in_.tolist() == ["size", "ratio", "noise"]


def test_lists_and_hashable_labels():
    X = [[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.2]] * 5
    clf = NeuralNetClassifier((8,), epochs=30, lr=1e-2, random_state=0)
    assert clf.fit(X, [True, False, True, False] * 5).predict([[0.0, 1.0]]).tolist() == [True]
    assert clf.fit(X, [2.0, 5.0, 2.0, 5.0] * 5).classes_.tolist() == [2.0, 5.0]
    reg = NeuralNetRegressor((8,), epochs=2, random_state=0).fit(X, list(range(20)))
    assert reg.predict(X).shape == (20,)


def test_fractional_float_labels_are_refused():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="Unknown label type"):
        NeuralNetClassifier(epochs=1).fit(X, np.linspace(0, 1, 20))


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = _frame(60)
    NeuralNetClassifier((8,), epochs=3, verbose=1, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Epoch 1", "Epoch 2", "Epoch 3"]
    assert all("loss = " in line and "val_loss" not in line for line in lines)
    NeuralNetClassifier((8,), epochs=2, verbose=True, early_stopping=True, validation_fraction=0.2,
                        random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("val_loss = " in line for line in lines)
    NeuralNetClassifier((8,), epochs=2, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""  # verbose=0 prints nothing
