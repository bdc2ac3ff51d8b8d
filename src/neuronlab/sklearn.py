"""scikit-learn estimators around neuronlab's MLP, for pipelines and grid searches.

``NeuralNetClassifier`` and ``NeuralNetRegressor`` follow the ``BaseEstimator`` conventions:
hyperparameters are constructor arguments stored verbatim, fitted state ends in ``_``,
``random_state`` makes fits reproducible, ``warm_start`` and ``partial_fit`` continue training.
Their network, loss and optimizer come from a :class:`~neuronlab.config.RunConfig` through
:func:`neuronlab.runs.build_run`, as ``neuronlab train`` builds them, and the defaults of the
shared settings (hidden widths, activation, init, out_init, optimizer, lr, epochs, batch size)
are ``RunConfig()``'s (a test holds them equal).

Where a name comes from scikit-learn's ``MLPClassifier`` it has its meaning there:

- ``alpha``: the penalty ½·alpha·‖W‖² (weights, never biases) is divided by the weight sum of
  the batch (its row count when unweighted). neuronlab adds ½·l2·‖W‖² to the (weighted) mean
  batch loss, so the estimators pass ``l2 = alpha / (batch_rows · mean weight)``: exactly
  scikit-learn's objective for every full batch of unit-weight rows, and for full-batch
  L-BFGS with any weights. A last, smaller batch of m rows gets m/batch_rows of
  scikit-learn's penalty for that one step; a weighted minibatch gets alpha over its
  expected weight sum (batch_rows · mean weight), not over its own. The regressor's loss, the mean over rows of the
  squared error summed over the targets, has no ½, so its l2 is twice that: objective and
  gradient are exactly twice MLPRegressor's. (With several targets MLPRegressor's gradient
  sums the targets while the loss it reports averages them; the estimator matches the
  gradient, which is what its optimizers follow.)
- ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``, ``tol``: see the classes.
- ``sample_weight``: rows weigh in the weighted mean Σ w_i L_i / Σ w_i; integer weights act
  as repeated rows.

The estimators train in float64 (the CLI in float32): scikit-learn's ``check_estimator``
compares fits and predictions at float64 tolerances (``assert_allclose``'s rtol 1e-7), and
L-BFGS's line search needs the precision.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from neuronlab._validation import check_number, check_positive_int
from neuronlab.config import RunConfig
from neuronlab.data.split import split_indices
from neuronlab.registry import OPTIMIZERS
from neuronlab.regularizers import L2
from neuronlab.runs import build_run
from neuronlab.train import EarlyStopping, Trainer
from neuronlab.train.base import Callback

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]


class _EpochPrinter(Callback):
    """``verbose > 0``: one line per epoch on stdout, as scikit-learn's MLP prints them."""

    def __init__(self, done: int) -> None:
        self.done = done  # epochs of earlier fits (warm_start, partial_fit): numbering goes on

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        line = f"Epoch {self.done + epoch + 1}, loss = {logs['loss']:.8f}"
        if logs.get("val_loss") is not None:
            line += f", val_loss = {logs['val_loss']:.8f}"
        print(line, flush=True)


def _row_weights(sample_weight: Any, n: int) -> np.ndarray | None:
    """``sample_weight`` as float64 of shape (n,), checked; None when absent."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must hold finite values >= 0")
    if not w.sum() > 0:
        raise ValueError("sample_weight must not be all zero")
    return w


class _NeuralNetBase(BaseEstimator):
    """Shared fitting logic; subclasses choose the loss and the target encoding."""

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (256,),
        *,
        activation: str = "relu",
        init: str = "he",
        out_init: str = "normal",
        optimizer: str = "adam",
        lr: float = 1e-3,
        alpha: float = 1e-4,
        dropout: float = 0.0,
        batchnorm: bool = False,
        epochs: int = 30,
        batch_size: int = 32,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float | None = 1e-4,
        verbose: int = 0,
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
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.warm_start = warm_start

    _loss: str  # the registry name of the subclass's loss

    # -- hooks for subclasses -----------------------------------------------------------
    def _loss_scale(self, n_outputs: int) -> float:
        """neuronlab's data loss over scikit-learn's for the same predictions."""
        return 1.0

    def _stratify(self, y_enc: np.ndarray) -> np.ndarray | None:
        """Labels to stratify the validation split by, or None."""
        return None

    def _validation_score(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> float:
        raise NotImplementedError

    # -- fitting ------------------------------------------------------------------------
    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(2**31 - 1))
        return int(np.random.SeedSequence(rs).generate_state(1)[0])

    def _check_params(self) -> None:
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise TypeError(f"early_stopping must be a bool, got {self.early_stopping!r}")
        check_number("validation_fraction", self.validation_fraction, low=0, high=1,
                     low_inclusive=False, high_inclusive=False)
        check_positive_int("n_iter_no_change", self.n_iter_no_change)
        if self.tol is not None:
            check_number("tol", self.tol, low=0)
        if not isinstance(self.verbose, (bool, np.bool_)):
            check_number("verbose", self.verbose, low=0)
        check_number("alpha", self.alpha, low=0)

    def _run_config(self, l2: float = 0.0) -> RunConfig:
        """The estimator's hyperparameters as a run config: the network, optimizer and
        regulariser are built by :func:`neuronlab.runs.build_run`, as ``neuronlab train``
        builds them. ``l2`` is ``alpha`` converted to neuronlab's scale (module docstring)."""
        return RunConfig.from_dict({
            "model": {"hidden": [int(h) for h in np.atleast_1d(self.hidden_layer_sizes)],
                      "activation": self.activation, "init": self.init,
                      "out_init": self.out_init, "dropout": float(self.dropout),
                      "batchnorm": bool(self.batchnorm), "loss": self._loss},
            "optim": {"optimizer": self.optimizer, "lr": float(self.lr)},
            "regularization": {"l2": float(l2)},
            "train": {"epochs": int(self.epochs), "batch_size": int(self.batch_size),
                      "seed": self._rng_seed},
        }, source=f"{type(self).__name__} parameters")

    def _l2(self, n_train: int, w: np.ndarray | None, n_outputs: int, *, first: bool) -> float:
        """``alpha`` on neuronlab's scale: divided by a full batch's expected weight sum."""
        opt = OPTIMIZERS.get(self.optimizer) if first else self._parts["optimizer"]
        rows = n_train if getattr(opt, "full_batch", False) else min(int(self.batch_size), n_train)
        mean_weight = 1.0 if w is None else float(w.mean())
        return self._loss_scale(n_outputs) * float(self.alpha) / (rows * mean_weight)

    def _fit(self, X: np.ndarray, y_fit: np.ndarray, y: np.ndarray, w: np.ndarray | None,
             epochs: int, *, n_outputs: int, first: bool, incremental: bool = False) -> None:
        """Train on X and the loss's targets ``y_fit``, building the network first if
        ``first``; ``y`` (the targets as given) and the row weights ``w`` score the
        validation split."""
        self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if first:
            self._rng_seed = self._seed()
        Xt, yt, wt, val = X, y_fit, w, None  # all rows train unless early stopping
        if self.early_stopping:
            train, val = self._split(y_fit)
            Xt, yt, wt = X[train], y_fit[train], None if w is None else w[train]
        l2 = self._l2(len(Xt), wt, n_outputs, first=first)
        if first:
            self._parts = build_run(self._run_config(l2), X.shape[1], n_outputs, len(Xt),
                                    dtype=np.float64)
            self._parts_l2 = l2
            self.model_ = self._parts["model"]
            self.loss_curve_: list[float] = []
            self.validation_loss_curve_: list[float] = []
            self.n_iter_ = 0
        regularizer = self._parts["regularizer"]
        if l2 != self._parts_l2:  # another batch size or weights than the first fit's
            regularizer = L2(l2) if l2 else None  # what build_run builds for this l2
        callbacks: list[Callback] = [_EpochPrinter(self.n_iter_)] if self.verbose else []
        stopper = None
        if val is not None and self.tol is not None:
            # scikit-learn stops once more than n_iter_no_change epochs missed the tol
            stopper = EarlyStopping("val_loss", patience=int(self.n_iter_no_change) + 1,
                                    min_delta=float(self.tol), restore_best=True)
            callbacks.append(stopper)
        self.trainer_ = Trainer(**{**self._parts, "regularizer": regularizer},
                                callbacks=callbacks)
        validation = None
        if val is not None:
            validation = (X[val], y_fit[val]) + (() if w is None else (w[val],))
        history = self.trainer_.fit(
            Xt, yt, sample_weight=wt, validation=validation, epochs=epochs,
            batch_size=min(int(self.batch_size), len(Xt)), seed=self._rng_seed + self.n_iter_,
        )
        done = self.n_iter_
        for row in history.epochs:
            self.loss_curve_.append(float(row["loss"]))
            if val is not None:
                self.validation_loss_curve_.append(float(row["val_loss"]))
        self.n_iter_ += len(history.epochs)
        self.best_loss_ = None if val is not None else min(self.loss_curve_)
        self.best_validation_score_ = None
        if val is not None:
            self.best_validation_score_ = self._validation_score(
                X[val], y[val], None if w is None else w[val])
        if self.verbose and stopper is not None and stopper.stopped_epoch is not None:
            print(f"Validation loss did not improve more than tol={self.tol} for "
                  f"{self.n_iter_no_change + 1} consecutive epochs; kept epoch "
                  f"{done + (stopper.best_epoch or 0) + 1}.", flush=True)

    def _split(self, y_fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation rows for early stopping (stratified for a classifier)."""
        n, frac = len(y_fit), float(self.validation_fraction)
        if math.floor(frac * n + 0.5) < 2:
            raise ValueError(
                f"validation_fraction={frac!r} of {n} samples leaves fewer than 2 for "
                "validation; increase validation_fraction or the size of your dataset"
            )
        labels = self._stratify(y_fit)
        parts = split_indices(np.zeros(n) if labels is None else labels, val_size=frac,
                              test_size=0.0, stratify=labels is not None, seed=self._rng_seed)
        return parts.train, parts.val

    def _scores(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.model_.forward(X, training=False)

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


_PARAMETERS = """
    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (256,)
        Widths of the hidden layers.
    activation, init, out_init, optimizer : str
        Registry names (``nl.ACTIVATIONS``, initialisers, optimizers); ``init`` for the hidden
        layers, ``out_init`` (default small ``normal`` weights) for the output layer.
        ``optimizer="lbfgs"`` trains full batch (each epoch is one L-BFGS run).
    lr : float, default 1e-3
        Learning rate of the optimizer.
    alpha : float, default 1e-4
        L2 strength with scikit-learn's scale: ½·alpha·‖W‖² (weights, never biases) divided
        by the batch's weight sum (its row count when unweighted); exact for full batches
        (module docstring).
    dropout : float in [0, 1)
    batchnorm : bool
    epochs : int, default 30
        Epochs per ``fit`` (``partial_fit`` runs one); early stopping may end a fit sooner.
    batch_size : int, default 32
        Rows per minibatch (at most the number of training rows).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the rows (stratified by class for the classifier)
        and stop once the validation loss has not fallen by more than ``tol`` for more than
        ``n_iter_no_change`` consecutive epochs (scikit-learn's count: the stop comes at the
        ``n_iter_no_change + 1``-th such epoch); the weights of the best epoch are kept.
        scikit-learn's MLP watches the validation *score* instead; the loss is smoother.
        Without early stopping every epoch runs (scikit-learn's MLP would also stop on a
        training-loss plateau) and all rows train. ``partial_fit`` refuses it.
    validation_fraction : float in (0, 1), default 0.1
        Share of the rows held out when ``early_stopping``; unused otherwise.
    n_iter_no_change : int, default 10
    tol : float >= 0 or None, default 1e-4
        None with ``early_stopping=True``: no stopping criterion (as in scikit-learn's
        ``SGDClassifier``): every epoch runs and the last weights are kept, while
        ``validation_loss_curve_`` is recorded, for validation curves.
    verbose : int, default 0
        > 0 prints one line per epoch (epoch, loss, validation loss) to stdout.
    random_state : int, RandomState or None
        Seeds the initial weights, the shuffling and the validation split.
    warm_start : bool
        Continue from the previous fit's weights instead of starting again."""

_ATTRIBUTES = """
    model_ : Sequential
    trainer_ : Trainer
        The trainer of the latest fit (its ``regularizer`` holds the l2 used).
    loss_curve_ : list of float
        Training loss (with the penalty) of each epoch of every fit so far.
    validation_loss_curve_ : list of float
        Validation loss of each epoch, when a validation split was held out.
    n_iter_ : int
        Epochs run so far, including those after the best one when early stopping ends a fit.
    best_loss_ : float or None
        The lowest training loss so far; None when the latest fit held out validation rows
        (as in scikit-learn).
    best_validation_score_ : float or None
        With a validation split: the score (accuracy, or R² in y's units), weighted by the
        rows' weights, of the returned model on that split; else None."""


class NeuralNetClassifier(ClassifierMixin, _NeuralNetBase):
    __doc__ = f"""A multilayer perceptron classifier trained with softmax cross-entropy.

    Labels may be any hashable values (strings, ints, whole floats; pandas Series work);
    ``classes_`` holds them sorted and ``predict`` returns them. Non-integral float labels
    are refused as continuous targets, as scikit-learn refuses them.
{_PARAMETERS}
    class_weight : None, dict or "balanced", default None
        Weight of each class's rows, multiplying ``sample_weight``: a dict maps labels (as
        in y) to weights (missing classes weigh 1); "balanced" is n_samples / (n_classes ·
        count of the class) over the ``fit`` data (not with ``partial_fit``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,){_ATTRIBUTES}
    """

    _loss = "softmax"

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (256,),
        *,
        activation: str = "relu",
        init: str = "he",
        out_init: str = "normal",
        optimizer: str = "adam",
        lr: float = 1e-3,
        alpha: float = 1e-4,
        dropout: float = 0.0,
        batchnorm: bool = False,
        epochs: int = 30,
        batch_size: int = 32,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float | None = 1e-4,
        class_weight: dict[Any, float] | str | None = None,
        verbose: int = 0,
        random_state: int | None = None,
        warm_start: bool = False,
    ) -> None:
        super().__init__(
            hidden_layer_sizes, activation=activation, init=init, out_init=out_init,
            optimizer=optimizer, lr=lr, alpha=alpha, dropout=dropout, batchnorm=batchnorm,
            epochs=epochs, batch_size=batch_size, early_stopping=early_stopping,
            validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change,
            tol=tol, verbose=verbose, random_state=random_state, warm_start=warm_start,
        )
        self.class_weight = class_weight

    def _prepare(self, X: Any, y: Any, sample_weight: Any, *, reset: bool, classes: Any = None,
                 partial: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """Validated X, labels y, their codes 0..C-1 and the row weights (or None)."""
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
        y_enc = self._encoder.transform(y).astype(np.int64)
        w = _row_weights(sample_weight, len(y))
        cw = self.class_weight
        if cw is None:
            return X, y, y_enc, None if w is not None and (w == 1).all() else w
        if isinstance(cw, str) and cw == "balanced":
            if partial:
                raise ValueError(
                    "class_weight='balanced' needs the whole data set; for partial_fit pass "
                    "a dict, e.g. from sklearn.utils.class_weight.compute_class_weight"
                )
        elif not isinstance(cw, dict):
            raise ValueError(f"class_weight must be None, a dict or 'balanced', got {cw!r}")
        per_class = compute_class_weight(cw, classes=self.classes_, y=y)
        w = per_class[y_enc] * (1.0 if w is None else w)
        if not w.sum() > 0:
            raise ValueError("class_weight and sample_weight give every row weight 0")
        return X, y, y_enc, w

    def _stratify(self, y_enc: np.ndarray) -> np.ndarray:
        return y_enc

    def _validation_score(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> float:
        pred = self.classes_[np.argmax(self._proba(self.model_.forward(X, training=False)), 1)]
        return float(accuracy_score(y, pred, sample_weight=w))

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NeuralNetClassifier:
        """Train for ``epochs`` epochs (from fresh weights, unless ``warm_start`` and already
        fitted).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,)
            Class labels (any hashable values).
        sample_weight : array-like of shape (n_samples,) or None
            Row weights (finite, >= 0, not all zero): the loss becomes their weighted mean.

        Returns
        -------
        NeuralNetClassifier
            ``self``.

        Raises
        ------
        ValueError
            If y holds continuous values, a label was not seen in the first fit (with
            ``warm_start``), or the weights are invalid.
        """
        first = not (self.warm_start and hasattr(self, "model_"))
        X, y, y_enc, w = self._prepare(X, y, sample_weight, reset=first)
        self._fit(X, y_enc, y, w, int(self.epochs), n_outputs=max(len(self.classes_), 2),
                  first=first)
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
                    ) -> NeuralNetClassifier:
        """One epoch over (X, y), continuing from the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,)
            Class labels, all in ``classes``.
        sample_weight : array-like of shape (n_samples,) or None
            Row weights (finite, >= 0, not all zero): the loss becomes their weighted mean.
        classes : array-like, optional
            Every label that will ever occur; required on the first call, ignored after.

        Returns
        -------
        NeuralNetClassifier
            ``self``.

        Raises
        ------
        ValueError
            If ``classes`` is missing on the first call, y has a label outside the classes,
            or ``class_weight="balanced"`` (it needs the whole data set).
        """
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, y, y_enc, w = self._prepare(X, y, sample_weight, reset=first, classes=classes,
                                       partial=True)
        self._fit(X, y_enc, y, w, 1, n_outputs=max(len(self.classes_), 2), first=first,
                  incremental=True)
        return self

    def _proba(self, scores: np.ndarray) -> np.ndarray:
        p = self._parts["loss"].predict_proba(scores)[:, : len(self.classes_)]
        return p / p.sum(axis=1, keepdims=True)  # one class: its output only

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Rows sum to 1.

        Raises
        ------
        NotFittedError
            If the estimator has not been fitted.
        """
        return self._proba(self._scores(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels: the most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        ndarray of shape (n_samples,)
            Values of ``classes_``.

        Raises
        ------
        NotFittedError
            If the estimator has not been fitted.
        """
        proba = self.predict_proba(X)  # first: raises NotFittedError before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]


class NeuralNetRegressor(RegressorMixin, _NeuralNetBase):
    __doc__ = f"""A multilayer perceptron regressor trained with the L2 (mean squared error) loss.

    ``predict`` returns shape (n_samples,) for 1-D targets and (n_samples, n_targets)
    otherwise, in y's units.
{_PARAMETERS}
    standardize_y : bool, default True
        Train on y standardised with the statistics of the first fit's y (weighted by
        ``sample_weight``; a constant column keeps scale 1) and map predictions back, so the
        output layer's small initial weights and the lr suit targets of any scale. The loss
        curves and ``alpha``'s balance against the data term are then in standardised
        units. False trains on y as given (then objective and gradient are twice
        ``MLPRegressor``'s).

    Attributes
    ----------
    y_mean_, y_scale_ : ndarray of shape (n_targets,)
        What y was standardised with (0 and 1 when ``standardize_y=False``).{_ATTRIBUTES}
    """

    _loss = "mse"

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (256,),
        *,
        activation: str = "relu",
        init: str = "he",
        out_init: str = "normal",
        optimizer: str = "adam",
        lr: float = 1e-3,
        alpha: float = 1e-4,
        dropout: float = 0.0,
        batchnorm: bool = False,
        epochs: int = 30,
        batch_size: int = 32,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float | None = 1e-4,
        standardize_y: bool = True,
        verbose: int = 0,
        random_state: int | None = None,
        warm_start: bool = False,
    ) -> None:
        super().__init__(
            hidden_layer_sizes, activation=activation, init=init, out_init=out_init,
            optimizer=optimizer, lr=lr, alpha=alpha, dropout=dropout, batchnorm=batchnorm,
            epochs=epochs, batch_size=batch_size, early_stopping=early_stopping,
            validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change,
            tol=tol, verbose=verbose, random_state=random_state, warm_start=warm_start,
        )
        self.standardize_y = standardize_y

    def _loss_scale(self, n_outputs: int) -> float:
        # Σ_j mean_i (s - y)², against the ½ · Σ_j mean_i (s - y)² whose gradient
        # MLPRegressor follows (its reported loss also divides by the targets)
        return 2.0

    def _prepare(self, X: Any, y: Any, sample_weight: Any, *, reset: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """Validated X, the targets to train on (standardised), y of shape
        (n_samples, n_targets) and the row weights (or None)."""
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64, multi_output=True,
                             y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        y2 = y.reshape(len(y), -1)
        if not reset and y2.shape[1] != self.model_.n_out:
            raise ValueError(f"y has {y2.shape[1]} targets, the first fit had {self.model_.n_out}")
        w = _row_weights(sample_weight, len(y2))
        w = None if w is not None and (w == 1).all() else w
        if reset:
            if not isinstance(self.standardize_y, (bool, np.bool_)):
                raise TypeError(f"standardize_y must be a bool, got {self.standardize_y!r}")
            self._y_1d = y.ndim == 1
            self.y_mean_, self.y_scale_ = np.zeros(y2.shape[1]), np.ones(y2.shape[1])
            if self.standardize_y:
                self.y_mean_ = np.average(y2, axis=0, weights=w)
                scale = np.sqrt(np.average((y2 - self.y_mean_) ** 2, axis=0, weights=w))
                self.y_scale_ = np.where(scale < 10 * np.finfo(np.float64).eps, 1.0, scale)
        return X, (y2 - self.y_mean_) / self.y_scale_, y2, w

    def _validation_score(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> float:
        pred = self.model_.forward(X, training=False) * self.y_scale_ + self.y_mean_
        return float(r2_score(y, pred, sample_weight=w))

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NeuralNetRegressor:
        """Train for ``epochs`` epochs (from fresh weights, unless ``warm_start`` and already
        fitted).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Regression targets.
        sample_weight : array-like of shape (n_samples,) or None
            Row weights (finite, >= 0, not all zero): the loss becomes their weighted mean.

        Returns
        -------
        NeuralNetRegressor
            ``self``.
        """
        first = not (self.warm_start and hasattr(self, "model_"))
        X, y_fit, y2, w = self._prepare(X, y, sample_weight, reset=first)
        self._fit(X, y_fit, y2, w, int(self.epochs), n_outputs=y2.shape[1], first=first)
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> NeuralNetRegressor:
        """One epoch over (X, y), continuing from the current weights; the first call fixes
        the standardisation of y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Regression targets, with as many targets as the first call.
        sample_weight : array-like of shape (n_samples,) or None
            Row weights (finite, >= 0, not all zero): the loss becomes their weighted mean.

        Returns
        -------
        NeuralNetRegressor
            ``self``.

        Raises
        ------
        ValueError
            If y has another number of targets than the first fit.
        """
        first = not hasattr(self, "model_")
        X, y_fit, y2, w = self._prepare(X, y, sample_weight, reset=first)
        self._fit(X, y_fit, y2, w, 1, n_outputs=y2.shape[1], first=first, incremental=True)
        return self

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets in y's units.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        ndarray
            Shape (n_samples,) when the model was fitted on 1-D y, else
            (n_samples, n_targets).

        Raises
        ------
        NotFittedError
            If the estimator has not been fitted.
        """
        pred = self._scores(X) * self.y_scale_ + self.y_mean_
        return pred.ravel() if self._y_1d else pred
