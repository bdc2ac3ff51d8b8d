"""``alpha`` has scikit-learn's scale: with the same weights copied into scikit-learn's MLP,
the estimators' objective on a batch is MLPClassifier's (MLPRegressor's times 2·n_targets),
and so is its gradient, in float64."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

from neuronlab.sklearn import NeuralNetClassifier, NeuralNetRegressor
from neuronlab.train.step import loss_and_grads

ALPHA = 3.0  # large enough that a wrong scale of the penalty shows far above 1e-10


def _sklearn_twin(cls, est, X, y, batch_size):
    """A fitted scikit-learn MLP of the same shape holding ``est``'s weights."""
    sk = cls(hidden_layer_sizes=est.hidden_layer_sizes, activation="relu", alpha=ALPHA,
             batch_size=batch_size, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(X, y)
    keys = est.model_.weight_keys
    sk.coefs_ = [est.model_.params[k].copy() for k in keys]
    sk.intercepts_ = [est.model_.params[k[: -len("W")] + "b"].copy() for k in keys]
    return sk


def _sklearn_loss_and_grads(sk, X, Y):
    """scikit-learn's loss and gradients (its private ``_backprop``, as its own L-BFGS uses it)."""
    n_layers = len(sk.coefs_) + 1
    activations = [X] + [None] * (n_layers - 1)
    deltas = [None] * (n_layers - 1)
    coef_grads = [np.empty_like(c) for c in sk.coefs_]
    intercept_grads = [np.empty_like(b) for b in sk.intercepts_]
    loss, coef_grads, intercept_grads = sk._backprop(
        X, Y, None, activations, deltas, coef_grads, intercept_grads)
    return loss, coef_grads, intercept_grads


def _assert_grads(est, coef_grads, intercept_grads, factor):
    keys = est.model_.weight_keys
    for k, gw, gb in zip(keys, coef_grads, intercept_grads):
        np.testing.assert_allclose(est.model_.grads[k], factor * gw, rtol=0, atol=1e-10)
        np.testing.assert_allclose(est.model_.grads[k[:-1] + "b"], factor * gb, rtol=0, atol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_classifier_objective_is_mlpclassifiers_for_a_full_batch():
    X, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    B = 40
    clf = NeuralNetClassifier((8, 5), alpha=ALPHA, batch_size=B, epochs=2, random_state=0)
    clf.fit(X, y)
    sk = _sklearn_twin(MLPClassifier, clf, X, y, B)
    xb, yb = X[:B], y[:B]

    # scikit-learn's documented objective: mean log-loss + ½·alpha·Σ‖W‖² / n_samples
    p = sk.predict_proba(xb)
    penalty = 0.5 * ALPHA * sum(float((W**2).sum()) for W in sk.coefs_) / B
    documented = -np.mean(np.log(p[np.arange(B), yb])) + penalty
    sk_loss, coef_grads, intercept_grads = _sklearn_loss_and_grads(
        sk, xb, sk._label_binarizer.transform(yb).astype(np.float64))
    assert abs(sk_loss - documented) < 1e-12

    value, _ = loss_and_grads(clf.model_, clf.trainer_.loss, xb, yb, clf.trainer_.regularizer)
    assert abs(value - sk_loss) < 1e-10
    assert penalty > 0.05  # the penalty is a real part of the objective
    _assert_grads(clf, coef_grads, intercept_grads, 1.0)


def test_last_smaller_batch_gets_its_share_of_the_penalty():
    """Documented inexactness: l2 = alpha / batch_size, so a last batch of m < batch_size rows
    has the penalty ½·alpha·‖W‖²/batch_size where scikit-learn's has /m."""
    X, y = make_classification(n_samples=100, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    clf = NeuralNetClassifier((8,), alpha=ALPHA, batch_size=40, epochs=1, random_state=0).fit(X, y)
    sq = sum(float((clf.model_.params[k] ** 2).sum()) for k in clf.model_.weight_keys)
    penalty = clf.trainer_.regularizer.loss(clf.model_)
    assert penalty == pytest.approx(0.5 * ALPHA * sq / 40, rel=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_targets", [1, 2])
def test_regressor_objective_is_twice_mlpregressors(n_targets):
    """neuronlab's MSE has no ½: twice scikit-learn's objective and gradient. With several
    targets scikit-learn's gradient sums the targets' squared errors while its reported loss
    averages them; the estimator follows the gradient (what Adam and SGD fit), so only the
    gradient is compared there."""
    X, y = make_regression(n_samples=90, n_features=5, n_targets=n_targets, random_state=0)
    y = y / y.std(axis=0)
    B = 30
    reg = NeuralNetRegressor((7,), alpha=ALPHA, batch_size=B, epochs=2, standardize_y=False,
                             random_state=0).fit(X, y)
    sk = _sklearn_twin(MLPRegressor, reg, X, y, B)
    Y = y[:B].reshape(B, -1)
    sk_loss, coef_grads, intercept_grads = _sklearn_loss_and_grads(sk, X[:B], Y)
    value, _ = loss_and_grads(reg.model_, reg.trainer_.loss, X[:B], Y, reg.trainer_.regularizer)
    if n_targets == 1:
        assert abs(value - 2 * sk_loss) < 1e-10
    _assert_grads(reg, coef_grads, intercept_grads, 2.0)
