"""Model ensembles and parameter averaging (the notes' last few percent).

- :class:`Ensemble` averages the predicted class probabilities of independent models:
  different seeds or configurations, the top k of a search (:meth:`Ensemble.from_search`),
  run directories (:meth:`Ensemble.from_runs`), or the checkpoints of a single run
  (:meth:`Ensemble.from_checkpoints`, a snapshot ensemble).
- :class:`EMA` / :class:`Polyak` keep a running average of the weights during training
  (a callback: ``on_batch_end``); averaged weights no longer match the batch-norm running
  statistics gathered along the way, so :func:`recompute_batchnorm` re-estimates them with a
  pass over training data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuronlab import prediction
from neuronlab._validation import check_array, check_number, check_positive_int
from neuronlab.train.callbacks import Callback

__all__ = ["EMA", "Ensemble", "Polyak", "recompute_batchnorm"]

PathLike = str | os.PathLike[str]


def _direction(directory: PathLike) -> str:
    """The direction a search directory's study optimised (``search.json``), else maximize."""
    import json

    try:
        spec = json.loads((Path(directory) / "search.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "maximize"
    return "minimize" if isinstance(spec, dict) and spec.get("direction") == "minimize" else "maximize"


class Ensemble:
    """Average of the predicted probabilities of several classifiers.

    Parameters
    ----------
    models : sequence of Sequential
        Each applies its own ``model.preprocessor`` (when set) to the raw input, so members
        trained with different preprocessing can be combined.
    losses : sequence of str, optional
        The loss of each member, which turns scores into probabilities (softmax for
        ``"softmax"``); default: each model's saved ``metadata["loss"]``, else softmax.
        Resolved as a single model's ``predict_proba`` resolves it
        (:func:`neuronlab.prediction.resolve_loss`): ``"sigmoid_cross_entropy"`` on a
        member with more than one output is the multi-label form.
    weights : sequence of float, optional
        Non-negative member weights (normalised to sum 1); default equal.
    """

    def __init__(self, models: Sequence[Any], *, losses: Sequence[str] | None = None,
                 weights: Sequence[float] | None = None) -> None:
        models = list(models)
        if not models:
            raise ValueError("an ensemble needs at least one model")
        names = [None] * len(models) if losses is None else list(losses)
        if len(names) != len(models):
            raise ValueError(f"losses has {len(names)} entries for {len(models)} models")
        self.models = models
        self.losses = [prediction.resolve_loss(m, name) for m, name in zip(models, names)]
        for loss in self.losses:
            if loss.task == "regression":
                name = type(loss).registry_name or type(loss).__name__
                raise ValueError(f"an ensemble averages class probabilities; loss {name!r} is a regression loss")
        tasks = {loss.task for loss in self.losses}
        if len(tasks) > 1:  # one class each (softmax) and attributes (multilabel) cannot be averaged
            raise ValueError(f"an ensemble's members must predict the same kind of labels; these "
                             f"mix {' and '.join(sorted(tasks))} members: "
                             f"{[t.task for t in self.losses]}")
        if weights is None:
            w = np.full(len(models), 1.0 / len(models))
        else:
            w = np.array([check_number(f"weights[{i}]", v, low=0) for i, v in enumerate(weights)])
            if w.shape != (len(models),) or w.sum() <= 0:
                raise ValueError(f"weights must be {len(models)} non-negative numbers with a positive sum, got {list(weights)!r}")
            w = w / w.sum()
        self.weights = w
        self.names = [f"member {i}" for i in range(len(models))]

    def __len__(self) -> int:
        return len(self.models)

    # -- construction from files ----------------------------------------------------------
    @classmethod
    def from_files(cls, paths: Sequence[PathLike], *, names: Sequence[str] | None = None) -> Ensemble:
        """Members loaded from model files (``.safetensors``) or run directories.

        Each member's loss is its saved ``metadata["loss"]`` (softmax when none is saved).

        Parameters
        ----------
        paths : sequence of str or os.PathLike
            Model files, or run directories (their ``model.safetensors``).
        names : sequence of str, optional
            Member names used in messages and reports; default: the paths.

        Returns
        -------
        Ensemble
        """
        from neuronlab.io import load

        models = []
        for p in paths:
            p = Path(p)
            models.append(load(p / "model.safetensors" if p.is_dir() else p))
        ens = cls(models)
        ens.names = [str(n) for n in names] if names is not None else [str(p) for p in paths]
        return ens

    @classmethod
    def from_runs(cls, run_dirs: Sequence[PathLike]) -> Ensemble:
        """Members from the ``model.safetensors`` of training run directories.

        Parameters
        ----------
        run_dirs : sequence of str or os.PathLike
            Run directories written by ``neuronlab train``.

        Returns
        -------
        Ensemble
        """
        return cls.from_files(run_dirs)

    @classmethod
    def from_search(cls, directory: PathLike, top_k: int = 5) -> Ensemble:
        """The ``top_k`` completed trials of a search directory, best objective value first:
        the highest, or the lowest for a search that minimised (``search.json``'s
        ``direction``); ties broken by the lower recorded ``val_loss``.

        Parameters
        ----------
        directory : str or os.PathLike
            A search directory (written by :func:`~neuronlab.search.run_search`).
        top_k : int, default 5
            Members to take (> 0); fewer when fewer trials completed with a saved model.

        Returns
        -------
        Ensemble
            Members named ``"trial <number>"``.

        Raises
        ------
        FileNotFoundError
            If ``directory`` has no ``trials/`` folder.
        ValueError
            If no trial completed with a saved model.
        """
        from neuronlab.search.output import read_records, trial_dir

        top_k = check_positive_int("top_k", top_k)
        done = [r for r in read_records(directory) if r["state"] == "COMPLETE" and r["value"] is not None
                and (trial_dir(directory, r["number"]) / "model.safetensors").is_file()]
        if not done:
            raise ValueError(f"{directory} has no completed trial with a saved model")
        sign = -1.0 if _direction(directory) == "maximize" else 1.0
        # equal accuracies (steps of 1/n_val) are ordered by validation loss when recorded
        done.sort(key=lambda r: (sign * r["value"], r.get("val_loss", math.inf), r["number"]))
        chosen = done[:top_k]
        paths = [trial_dir(directory, r["number"]) / "model.safetensors" for r in chosen]
        return cls.from_files(paths, names=[f"trial {r['number']}" for r in chosen])

    @classmethod
    def from_checkpoints(cls, directory: PathLike, *, last: int = 5, preprocessor: Any = None,
                         loss: str | None = None) -> Ensemble:
        """A snapshot ensemble: the models of the ``last`` end-of-epoch checkpoints of one run.

        Parameters
        ----------
        directory : str or os.PathLike
            A checkpoints folder, or a run directory (its ``checkpoints/``; the run's
            ``model.safetensors``, when present, supplies the preprocessor and loss).
        last : int, default 5
            How many of the newest end-of-epoch checkpoints to use (> 0).
        preprocessor : Preprocessor, optional
            Given to every member; default: the run model's.
        loss : str, optional
            Loss name of every member; default: the run model's, else ``"softmax"``.

        Returns
        -------
        Ensemble
            Members named by their checkpoint files, oldest first.

        Raises
        ------
        FileNotFoundError
            If the folder has no end-of-epoch checkpoints.
        """
        from neuronlab.train.checkpoint import CHECKPOINT_NAME, load_checkpoint

        last = check_positive_int("last", last)
        folder = Path(directory)
        run_model = folder / "model.safetensors"
        if (folder / "checkpoints").is_dir():
            folder = folder / "checkpoints"
        if run_model.is_file() and (preprocessor is None or loss is None):
            from neuronlab.io import load

            saved = load(run_model)
            preprocessor = saved.preprocessor if preprocessor is None else preprocessor
            loss = loss or (saved.metadata or {}).get("loss")
        found = []
        for name in os.listdir(folder):
            m = CHECKPOINT_NAME.match(name)
            if m and m.group(1) is not None:  # end-of-epoch snapshots only
                found.append((int(m.group(2)), name))
        if not found:
            raise FileNotFoundError(f"no end-of-epoch checkpoints in {folder}")
        chosen = [name for _, name in sorted(found)[-last:]]
        models = []
        for name in chosen:
            model = load_checkpoint(folder / name).build_model()
            model.preprocessor = preprocessor
            models.append(model)
        ens = cls(models, losses=[loss or "softmax"] * len(models))
        ens.names = chosen
        return ens

    # -- prediction -------------------------------------------------------------------------
    def member_proba(self, i: int, X: Any, *, batch_size: int = 2048) -> np.ndarray:
        """Probabilities of member ``i`` for raw inputs, in float64
        (:func:`neuronlab.prediction.predict_proba`: its preprocessor, then its loss).

        Parameters
        ----------
        i : int
            Index of the member.
        X : array-like of shape (n_samples, n_features)
            Raw inputs.
        batch_size : int, default 2048
            Rows per forward pass.

        Returns
        -------
        ndarray of float64
            Shape (n_samples, n_classes), (n_samples, n_attributes) for a multi-label
            member, or (n_samples,) for a binary member.
        """
        proba = prediction.predict_proba(self.models[i], X, loss=self.losses[i],
                                          batch_size=batch_size)
        return np.asarray(proba, dtype=np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Weighted mean of the members' probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw inputs, finite (lists, DataFrames, integer data are converted to float once;
            each member applies its preprocessor).

        Returns
        -------
        ndarray of float64
            Shape (n_samples, n_classes), (n_samples, n_attributes) for multi-label members,
            or (n_samples,) for binary members with one output.

        Raises
        ------
        ValueError
            If X holds NaN or Inf or has the wrong number of features, or the members'
            probabilities have different shapes.
        TypeError
            If X does not hold numbers.
        """
        X = prediction._as_inputs(X)
        total: np.ndarray | None = None
        for i, w in enumerate(self.weights):
            p = self.member_proba(i, X)
            if total is None:
                total = p * w
            elif p.shape != total.shape:
                raise ValueError(f"{self.names[i]} predicts shape {p.shape}, the others {total.shape}")
            else:
                total += w * p
        assert total is not None  # an ensemble has at least one member
        return total

    def _labels(self, proba: np.ndarray) -> np.ndarray:
        if proba.ndim == 1 or self.losses[0].task == "multilabel":  # each p against 0.5
            return np.asarray(proba >= 0.5, dtype=np.int64)
        return np.asarray(proba.argmax(axis=1))

    def _accuracy(self, labels: np.ndarray, y: Any) -> float:
        """The fraction of rows predicted right (for multilabel members: every attribute)."""
        y = np.asarray(y)
        if labels.ndim == 2:
            if y.shape != labels.shape:
                raise ValueError(f"y must hold the 0/1 attributes of each row, shape "
                                 f"{labels.shape} (multilabel members), got shape {y.shape}")
            return float(np.mean(np.all(labels == y, axis=1)))
        return float(np.mean(labels == y.reshape(-1)))

    def predict(self, X: Any) -> np.ndarray:
        """Class labels of the averaged probabilities (argmax; ``p >= 0.5`` for binary
        members, and for each attribute of multilabel members).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw inputs.

        Returns
        -------
        ndarray of int of shape (n_samples,), or (n_samples, n_attributes) for multilabel
        members
        """
        return self._labels(self.predict_proba(X))

    def score(self, X: Any, y: Any) -> float:
        """Accuracy of the ensemble on (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_attributes)
            Integer class labels, or 0/1 attributes for multilabel members.

        Returns
        -------
        float
            Fraction of rows whose predicted label equals ``y`` (multilabel: whose every
            attribute does, scikit-learn's subset accuracy).
        """
        return self._accuracy(self.predict(X), y)

    def member_scores(self, X: Any, y: Any) -> list[float]:
        """Accuracy of each member on (X, y), to compare with :meth:`score`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_attributes)
            As for :meth:`score`.

        Returns
        -------
        list of float
            One accuracy per member, in member order.
        """
        X = prediction._as_inputs(X)
        return [self._accuracy(self._labels(self.member_proba(i, X)), y) for i in range(len(self))]


# -- parameter averaging ----------------------------------------------------------------------
class EMA(Callback):
    """Exponential moving average of the parameters: ``a ← decay·a + (1 − decay)·w`` after
    every optimizer step from ``start_step`` on (before it, ``a`` follows ``w``).

    The update is done in place with one scratch buffer per parameter
    (``buf = w − a; buf *= 1 − decay; a += buf``), three vector operations per array.

    Parameters
    ----------
    decay : float in [0, 1)
    start_step : int >= 0
        First step that is averaged (skip the noisy start of training).

    Attributes
    ----------
    averaged : dict of str to ndarray
        The averaged parameters by dotted name.
    """

    def __init__(self, decay: float = 0.999, *, start_step: int = 0) -> None:
        self.decay = check_number("decay", decay, low=0, high=1, high_inclusive=False)
        if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
            raise ValueError(f"start_step must be an integer >= 0, got {start_step!r}")
        self.start_step = start_step
        self.averaged: dict[str, np.ndarray] = {}
        self.n_averaged = 0
        self._buf: dict[str, np.ndarray] = {}

    def _rate(self) -> float:
        """Weight of the new parameters in this step's update."""
        return 1.0 - self.decay

    def on_train_begin(self, trainer: Any) -> None:
        """Start the average at the model's current parameters (and allocate the scratch buffers).

        Parameters
        ----------
        trainer : Trainer
            The trainer that is about to train.
        """
        params = trainer.model.params
        self.averaged = {k: v.copy() for k, v in params.items()}
        self._buf = {k: np.empty_like(v) for k, v in params.items()}
        self.n_averaged = 0

    def on_batch_end(self, trainer: Any, step: int, logs: dict[str, Any]) -> None:
        """Fold the step's parameters into the average (before ``start_step``: copy them).

        Parameters
        ----------
        trainer : Trainer
            The trainer running the step.
        step : int
            0-based index of the step just done.
        logs : dict
            The batch's logs (unused).
        """
        params = trainer.model.params
        if step < self.start_step:
            for k, a in self.averaged.items():
                np.copyto(a, params[k])
            return
        self.n_averaged += 1
        rate = self._rate()
        for k, a in self.averaged.items():
            buf = self._buf[k]
            np.subtract(params[k], a, out=buf)
            buf *= rate
            a += buf

    def copy_to(self, model: Any) -> None:
        """Write the averaged parameters into ``model`` (buffers untouched).

        Parameters
        ----------
        model : Sequential
            The trained model (or one of the same architecture).

        Raises
        ------
        ValueError
            If the model's parameter names or shapes differ from the averaged ones.
        """
        model.set_arrays({k: v.copy() for k, v in self.averaged.items()})

    def averaged_model(self, model: Any, X: np.ndarray | None = None, *, batch_size: int = 256) -> Any:
        """A copy of ``model`` with the averaged parameters (``model`` is not changed).

        Parameters
        ----------
        model : Sequential
            The trained model: its architecture, dtype, buffers and preprocessor are copied.
        X : ndarray of shape (n_samples, n_features), optional
            Training inputs, already preprocessed: the copy's batch-norm statistics are
            recomputed on them (:func:`recompute_batchnorm`). Without it they are the
            model's, gathered for the unaveraged weights.
        batch_size : int, default 256
            Rows per forward pass of the recomputation.

        Returns
        -------
        Sequential
        """
        from neuronlab.layers.sequential import Sequential

        copy = Sequential.from_config(model.get_config())
        if model.dtype is not None:
            copy.astype(model.dtype)
        copy.set_arrays({**{k: v.copy() for k, v in model.buffers.items()},
                         **{k: v.copy() for k, v in self.averaged.items()}})
        copy.preprocessor = getattr(model, "preprocessor", None)
        if X is not None:
            recompute_batchnorm(copy, X, batch_size=batch_size)
        return copy

    def state_dict(self) -> dict[str, Any]:
        """The average and the count of averaged steps, for a resumed run.

        Returns
        -------
        dict
            ``{"averaged": {name: ndarray}, "n_averaged": int}`` (the arrays themselves, not
            copies).
        """
        return {"averaged": dict(self.averaged), "n_averaged": self.n_averaged}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy a saved average into this one's arrays (made by :meth:`on_train_begin`).

        Parameters
        ----------
        state : dict
            A dictionary :meth:`state_dict` returned.
        """
        for k, v in state["averaged"].items():
            np.copyto(self.averaged[k], v)
        self.n_averaged = int(state["n_averaged"])


class Polyak(EMA):
    """Polyak averaging: the plain mean of the parameters after every step from
    ``start_step`` on (``a ← a + (w − a)/n`` at the n-th averaged step).

    Parameters
    ----------
    start_step : int >= 0, default 0
        First step that is averaged (before it, the average follows the parameters).
    """

    def __init__(self, *, start_step: int = 0) -> None:
        super().__init__(0.0, start_step=start_step)

    def _rate(self) -> float:
        return 1.0 / self.n_averaged


def recompute_batchnorm(model: Any, X: np.ndarray, *, batch_size: int = 256) -> Any:
    """Re-estimate every BatchNorm layer's running mean and variance on inputs ``X``.

    The running values become the sample-size-weighted means of the per-batch mean and
    (biased) variance over one pass in training mode (dropout and noise switched off), as if
    the momentum were ``seen / (seen + batch)`` at each batch. Needed after the weights are
    replaced by averaged ones, whose activations the old statistics do not describe.

    Parameters
    ----------
    model : Sequential
    X : ndarray of shape (n_samples, n_features)
        Training inputs, already preprocessed as the model expects.
    batch_size : int

    Returns
    -------
    model (updated in place)
    """
    from neuronlab.layers.normalization import BatchNorm

    X = check_array("X", X)
    batch_size = check_positive_int("batch_size", batch_size)
    norms = [layer for layer in model if isinstance(layer, BatchNorm)]
    if not norms:
        return model
    saved = [(layer, layer.momentum) for layer in norms]
    noisy = [(layer, layer.noise_off) for layer in model if getattr(layer, "stochastic", False)]
    try:
        for layer, _ in noisy:
            layer.noise_off = True
        seen = 0
        for s in range(0, X.shape[0], batch_size):
            xb = np.asarray(X[s : s + batch_size], dtype=model.dtype)
            m = xb.shape[0]
            for layer in norms:  # r ← (seen·r + m·batch) / (seen + m)
                layer.momentum = seen / (seen + m)
            model.forward(xb, training=True)
            seen += m
    finally:
        for layer, mom in saved:
            layer.momentum = mom
        for layer, off in noisy:
            layer.noise_off = off
    return model
