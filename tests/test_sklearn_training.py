"""What users expect of the estimators' training: sample and class weights, early stopping
with scikit-learn's meanings, and a regressor that standardises its targets."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, make_classification, make_regression
from sklearn.metrics import recall_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neuronlab.sklearn import NeuralNetClassifier, NeuralNetRegressor


def _weighted_and_repeated(n=40, seed=0, regression=False):
    rng = np.random.default_rng(seed)
    if regression:
        X, y = make_regression(n_samples=n, n_features=4, noise=5.0, random_state=seed)
    else:
        X, y = make_classification(n_samples=n, n_features=4, n_informative=3, n_redundant=0,
                                   n_classes=3, n_clusters_per_class=1, random_state=seed)
    w = rng.integers(0, 3, size=n)  # 0 drops a row, 2 repeats it
    return X, y, w, np.repeat(X, w, axis=0), np.repeat(y, w)


@pytest.mark.parametrize("cls", [NeuralNetClassifier, NeuralNetRegressor])
def test_integer_weights_are_repeated_rows_full_batch_lbfgs(cls):
    """Full-batch L-BFGS minimises the same objective for weights 2 / 0 and for rows repeated /
    dropped, penalty included (alpha / Σw = alpha / rows), so both fits agree."""
    X, y, w, X_rep, y_rep = _weighted_and_repeated(regression=cls is NeuralNetRegressor)
    # alpha large enough for one well-defined minimum, which one L-BFGS run reaches
    params = dict(hidden_layer_sizes=(8,), optimizer="lbfgs", epochs=1, alpha=5.0,
                  activation="tanh", random_state=0)
    weighted = cls(**params).fit(X, y, sample_weight=w)
    repeated = cls(**params).fit(X_rep, y_rep)
    unweighted = cls(**params).fit(X, y)
    out = "predict_proba" if cls is NeuralNetClassifier else "predict"
    a, b, c = (getattr(e, out)(X) for e in (weighted, repeated, unweighted))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    assert np.abs(a - c).max() > 1e-3  # the weights matter: the test can fail
    for k in weighted.model_.params:
        np.testing.assert_allclose(weighted.model_.params[k], repeated.model_.params[k],
                                   rtol=1e-6, atol=1e-8)


def test_integer_weights_are_repeated_rows_in_one_adam_batch():
    """One minibatch per epoch (batch_size above both row counts): the same Adam steps."""
    X, y, w, X_rep, y_rep = _weighted_and_repeated()
    params = dict(hidden_layer_sizes=(8,), epochs=20, batch_size=128, alpha=0.1, random_state=0)
    a = NeuralNetClassifier(**params).fit(X, y, sample_weight=w).predict_proba(X)
    b = NeuralNetClassifier(**params).fit(X_rep, y_rep).predict_proba(X)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_class_weight_dict_uses_the_labels_and_equals_sample_weight():
    X, y, _, _, _ = _weighted_and_repeated()
    labels = np.array(["a", "b", "c"])[y]
    params = dict(hidden_layer_sizes=(8,), epochs=5, random_state=0)
    by_class = NeuralNetClassifier(class_weight={"b": 3.0}, **params).fit(X, labels)
    by_row = NeuralNetClassifier(**params).fit(X, labels, sample_weight=np.where(y == 1, 3.0, 1.0))
    np.testing.assert_array_equal(by_class.predict_proba(X), by_row.predict_proba(X))
    plain = NeuralNetClassifier(**params).fit(X, labels)
    assert not np.array_equal(by_class.predict_proba(X), plain.predict_proba(X))
    with pytest.raises(ValueError, match="class_weight"):
        NeuralNetClassifier(class_weight="balance", **params).fit(X, labels)


def test_balanced_class_weight_raises_minority_recall():
    X, y = make_classification(n_samples=1000, n_features=6, n_informative=3, weights=[0.95],
                               flip_y=0, class_sep=0.7, random_state=0)
    assert np.bincount(y).tolist() == [950, 50]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    recall = {}
    for cw in (None, "balanced"):
        clf = NeuralNetClassifier((32,), epochs=10, class_weight=cw, random_state=0)
        recall[cw] = recall_score(y_te, clf.fit(X_tr, y_tr).predict(X_te))
    assert recall["balanced"] >= recall[None] + 0.3, recall
    with pytest.raises(ValueError, match="balanced"):
        NeuralNetClassifier(class_weight="balanced").partial_fit(X_tr, y_tr, classes=[0, 1])


def test_bad_sample_weight_is_refused():
    X, y, _, _, _ = _weighted_and_repeated()
    clf = NeuralNetClassifier((4,), epochs=1)
    for bad in (np.ones(3), -np.ones(len(y)), np.zeros(len(y)), np.full(len(y), np.nan)):
        with pytest.raises(ValueError, match="sample_weight"):
            clf.fit(X, y, sample_weight=bad)


def _noise(n=400, seed=0):
    """Random labels: the validation loss can only get worse once the net starts to fit."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 10)), rng.integers(0, 2, size=n)


def test_early_stopping_stops_on_a_plateau_and_keeps_the_best_epoch():
    X, y = _noise()
    params = dict(hidden_layer_sizes=(64,), lr=1e-2, epochs=200, early_stopping=True,
                  n_iter_no_change=5, tol=0.0, random_state=0)
    clf = NeuralNetClassifier(**params).fit(X, y)
    assert clf.n_iter_ < 50
    assert len(clf.loss_curve_) == len(clf.validation_loss_curve_) == clf.n_iter_
    best = int(np.argmin(clf.validation_loss_curve_))
    # scikit-learn's count: the stop comes at the (n_iter_no_change + 1)-th epoch without
    # improvement
    assert clf.n_iter_ == best + 1 + 5 + 1
    assert clf.best_loss_ is None and 0.0 <= clf.best_validation_score_ <= 1.0
    # the returned weights are the best epoch's: a run of exactly that many epochs without a
    # stopping criterion (same split, same shuffles) ends with the same model
    upto = NeuralNetClassifier(**{**params, "epochs": best + 1, "tol": None}).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), upto.predict_proba(X))
    assert upto.n_iter_ == best + 1


def test_early_stopping_split_is_stratified_and_checked():
    X, y = _noise(100)
    y[:10] = 2  # a rare class still appears in the training part
    clf = NeuralNetClassifier((8,), epochs=3, early_stopping=True, validation_fraction=0.2,
                              random_state=0).fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.validation_loss_curve_) == 3
    with pytest.raises(ValueError, match="validation_fraction"):
        NeuralNetClassifier(epochs=1, early_stopping=True, validation_fraction=0.01).fit(X, y)
    with pytest.raises(ValueError, match="partial_fit"):
        NeuralNetClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    # without early stopping every epoch runs and best_loss_ is the lowest training loss
    plain = NeuralNetClassifier((8,), epochs=3, random_state=0).fit(X, y)
    assert plain.best_loss_ == min(plain.loss_curve_) and plain.best_validation_score_ is None


def test_standardize_y_on_diabetes():
    X, y = load_diabetes(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0)
    r2, pred = {}, {}
    for standardize in (True, False):
        pipe = make_pipeline(StandardScaler(), NeuralNetRegressor(
            (64,), standardize_y=standardize, random_state=0)).fit(X_tr, y_tr)
        r2[standardize], pred[standardize] = pipe.score(X_te, y_te), pipe.predict(X_te)
    assert r2[True] > 0.3 and r2[True] > r2[False] + 0.5, r2
    reg = pipe.named_steps["neuralnetregressor"]
    assert reg.y_mean_.tolist() == [0.0] and reg.y_scale_.tolist() == [1.0]
    # predictions are in y's units (diabetes progression, 25..346), not standardised ones
    assert abs(pred[True].mean() - y_te.mean()) < 0.15 * y_te.mean()
    assert 30 < pred[True].std() < y_te.std()
