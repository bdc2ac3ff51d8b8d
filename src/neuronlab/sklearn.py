"""scikit-learn estimators around neuronlab's MLP, for pipelines and grid searches.

``NeuralNetClassifier`` and ``NeuralNetRegressor`` follow the ``BaseEstimator`` conventions:
hyperparameters are constructor arguments stored verbatim, fitted state ends in ``_``,
``random_state`` makes fits reproducible, ``warm_start`` and ``partial_fit`` continue training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from neuronlab.config import RunConfig
from neuronlab.runs import build_run
from neuronlab.train import Trainer

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]


class _NeuralNetBase(BaseEstimator):
    """Shared fitting logic; subclasses choose the loss and the target encoding."""

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        *,
        activation: str = "relu",
        init: str = "he",
        out_init: str = "normal",
        optimizer: str = "adam",
        lr: float = 1e-3,
        alpha: float = 1e-4,
        dropout: float = 0.0,
        batchnorm: bool = False,
        epochs: int = 200,
        batch_size: int = 64,
        validation_fraction: float = 0.0,
        random_state: int | None = None,
        warm_start: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.init = init
        self.out_init = out_init
        self.optimizer = optimizer
        self.lr = lr
        self.alpha = alpha
        self.dropout = dropout
        self.batchnorm = batchnorm
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.warm_start = warm_start

    _loss: str  # the registry name of the subclass's loss

    # -- hooks for subclasses -----------------------------------------------------------

    def _encode_targets(self, y: np.ndarray, *, first: bool) -> np.ndarray:
        raise NotImplementedError

    def _n_outputs(self, y_enc: np.ndarray) -> int:
        raise NotImplementedError

    # -- fitting ------------------------------------------------------------------------
    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(2**31 - 1))
        return int(np.random.SeedSequence(rs).generate_state(1)[0])

    def _run_config(self) -> RunConfig:
        """The estimator's hyperparameters as a run config: the network, optimizer and
        regulariser are built by :func:`neuronlab.runs.build_run`, as ``neuronlab train``
        builds them."""
        return RunConfig.from_dict({
            "model": {"hidden": [int(h) for h in np.atleast_1d(self.hidden_layer_sizes)],
                      "activation": self.activation, "init": self.init,
                      "out_init": self.out_init, "dropout": float(self.dropout),
                      "batchnorm": bool(self.batchnorm), "loss": self._loss},
            "optim": {"optimizer": self.optimizer, "lr": float(self.lr)},
            "regularization": {"l2": float(self.alpha)},
            "train": {"epochs": int(self.epochs), "batch_size": int(self.batch_size),
                      "seed": self._rng_seed},
        }, source=f"{type(self).__name__} parameters")

    def _initialize(self, n_features: int, n_outputs: int, n_samples: int) -> None:
        self._rng_seed = self._seed()
        parts = build_run(self._run_config(), n_features, n_outputs, n_samples, dtype=np.float64)
        self.model_ = parts["model"]
        self.trainer_ = Trainer(**parts)
        self.loss_curve_: list[float] = []
        self.validation_loss_curve_: list[float] = []
        self.n_iter_ = 0

    def _fit(self, X: np.ndarray, y_enc: np.ndarray, epochs: int) -> None:
        validation = None
        Xt, yt = X, y_enc
        if self.validation_fraction and len(X) >= 10:
            n_val = max(1, int(round(self.validation_fraction * len(X))))
            order = np.random.default_rng(self._rng_seed).permutation(len(X))
            Xt, yt = X[order[n_val:]], y_enc[order[n_val:]]
            validation = (X[order[:n_val]], y_enc[order[:n_val]])
        history = self.trainer_.fit(
            Xt,
            yt,
            validation=validation,
            epochs=epochs,
            batch_size=min(int(self.batch_size), len(Xt)),
            seed=self._rng_seed + self.n_iter_,
        )
        for row in history.epochs:
            self.loss_curve_.append(float(row["loss"]))
            if validation is not None:
                self.validation_loss_curve_.append(float(row["val_loss"]))
        self.n_iter_ += epochs

    def _scores(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.model_.forward(X, training=False)

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class NeuralNetClassifier(ClassifierMixin, _NeuralNetBase):
    """A multilayer perceptron classifier trained with softmax cross-entropy.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        Widths of the hidden layers.
    activation, init, out_init, optimizer : str
        Registry names (``nl.ACTIVATIONS``, initialisers, optimizers); ``init`` for the hidden
        layers, ``out_init`` (default small ``normal`` weights) for the output layer.
    lr : float
        Learning rate of the optimizer.
    alpha : float
        L2 strength (½·alpha·‖W‖² on weights, never biases).
    dropout : float in [0, 1)
    batchnorm : bool
    epochs : int
        Epochs per ``fit`` (``partial_fit`` runs one).
    batch_size : int
    validation_fraction : float in [0, 1)
        Held-out share of the training data for ``validation_loss_curve_``.
    random_state : int, RandomState or None
    warm_start : bool
        Continue from the previous fit's weights instead of starting again.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    model_ : Sequential
    loss_curve_, validation_loss_curve_ : list of float, one value per epoch
    n_iter_ : int, epochs run so far
    """

    _loss = "softmax"

    def _prepare(self, X: Any, y: Any, *, reset: bool, classes: Any = None) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if reset:
            labels = unique_labels(y) if classes is None else np.asarray(classes)
            self._encoder = LabelEncoder().fit(labels)
            self.classes_ = self._encoder.classes_
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"y contains labels not seen in the first fit: {unknown[:5].tolist()}")
        return X, self._encoder.transform(y).astype(np.int64)

    def fit(self, X: Any, y: Any) -> NeuralNetClassifier:
        """Train for ``epochs`` epochs on X of shape (n_samples, n_features) and labels y."""
        first = not (self.warm_start and hasattr(self, "model_"))
        X, y_enc = self._prepare(X, y, reset=first)
        if first:
            self._initialize(X.shape[1], max(len(self.classes_), 2), len(X))
        self._fit(X, y_enc, int(self.epochs))
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> NeuralNetClassifier:
        """One epoch over (X, y); the first call needs ``classes`` (all labels that will occur)."""
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, y_enc = self._prepare(X, y, reset=first, classes=classes)
        if first:
            self._initialize(X.shape[1], max(len(self.classes_), 2), len(X))
        self._fit(X, y_enc, 1)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of shape (n_samples, n_classes)."""
        scores = self._scores(X)
        p = self.trainer_.loss.predict_proba(scores)
        return p[:, : len(self.classes_)] / p[:, : len(self.classes_)].sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels of shape (n_samples,)."""
        proba = self.predict_proba(X)  # first: raises NotFittedError before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]


class NeuralNetRegressor(RegressorMixin, _NeuralNetBase):
    """A multilayer perceptron regressor trained with the L2 (mean squared error) loss.

    Same parameters as :class:`NeuralNetClassifier`; ``predict`` returns shape (n_samples,)
    for 1-D targets and (n_samples, n_targets) otherwise.
    """

    _loss = "mse"

    def _prepare(self, X: Any, y: Any, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64, multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        if reset:
            self._y_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        if not reset and y2.shape[1] != self.model_.n_out:
            raise ValueError(f"y has {y2.shape[1]} targets, the first fit had {self.model_.n_out}")
        return X, y2

    def fit(self, X: Any, y: Any) -> NeuralNetRegressor:
        """Train for ``epochs`` epochs on X of shape (n_samples, n_features) and targets y."""
        first = not (self.warm_start and hasattr(self, "model_"))
        X, y2 = self._prepare(X, y, reset=first)
        if first:
            self._initialize(X.shape[1], y2.shape[1], len(X))
        self._fit(X, y2, int(self.epochs))
        return self

    def partial_fit(self, X: Any, y: Any) -> NeuralNetRegressor:
        """One epoch over (X, y)."""
        first = not hasattr(self, "model_")
        X, y2 = self._prepare(X, y, reset=first)
        if first:
            self._initialize(X.shape[1], y2.shape[1], len(X))
        self._fit(X, y2, 1)
        return self

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets: shape (n_samples,) for 1-D y, (n_samples, n_targets) otherwise."""
        scores = self._scores(X)
        return scores.ravel() if self._y_1d else scores
