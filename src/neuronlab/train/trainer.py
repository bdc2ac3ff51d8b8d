"""The training loop: minibatch gradient descent with validation, callbacks and exact resume.

Read :meth:`Trainer.fit` and :meth:`Trainer._train_epoch` top to bottom: one shuffle per
epoch from an explicit seed; per batch the step function
(:func:`~neuronlab.train.step.loss_and_grads`: zero_grad, forward, loss, backward,
regulariser gradient), the optimizer step at ``lr = schedule(step) * lr_scale``, constraints,
callbacks; validation (:func:`~neuronlab.train.evaluation.evaluate`) at the end of each
epoch. Sample and class weights (:mod:`~neuronlab.train.weights`) are resolved once per fit
into one weight per row; each batch hands its rows' weights to the step function. Where the
run is lives in one value, ``trainer.state`` (a
:class:`~neuronlab.train.state.TrainState`), which checkpoints save and restore. Everything
optional (early stopping, checkpoints, logging, progress) is a
:class:`~neuronlab.train.base.Callback`.
"""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from neuronlab._validation import check_positive_int
from neuronlab.babysit.monitor import Monitor
from neuronlab.data.arrays import batch
from neuronlab.threads import blas_threads, check_threads, limit_blas
from neuronlab.train.base import Callback, overrides
from neuronlab.train.checkpoint import load_checkpoint
from neuronlab.train.errors import DivergenceError
from neuronlab.train.evaluation import accumulate, evaluate, metric_names, summarize
from neuronlab.train.history import History
from neuronlab.train.inputs import check_components, check_data
from neuronlab.train.state import TrainState
from neuronlab.train.step import loss_and_grads
from neuronlab.train.weights import check_weights, resolve_sample_weight

__all__ = ["Trainer"]

log = logging.getLogger(__name__)


class _FromState:
    """A Trainer attribute that is the same attribute of ``trainer.state`` (read-only unless
    ``writable``: callbacks set ``stop_training`` and ``lr_scale``, the loop the rest)."""

    def __init__(self, writable: bool = False) -> None:
        self.writable = writable

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, trainer: Any, owner: Any = None) -> Any:
        return self if trainer is None else getattr(trainer.state, self.name)

    def __set__(self, trainer: Any, value: Any) -> None:
        if not self.writable:
            raise AttributeError(f"trainer.{self.name} is read-only: trainer.state holds it")
        setattr(trainer.state, self.name, value)


class Trainer:
    """Train a model by minibatch gradient descent (or full-batch L-BFGS).

    Parameters
    ----------
    model : Sequential
        The network; its parameter dtype is the compute dtype (inputs are cast per batch).
    loss : Loss
        Data loss with ``forward(scores, y)``, ``backward()``, ``predict`` and ``task``.
    optimizer : Optimizer
        ``step(params, grads, lr=..., decay_keys=...)``; one with ``full_batch = True``
        (L-BFGS) runs one ``minimize`` over the whole training set per epoch instead.
    schedule : callable step -> lr, or None
        Learning rate of each step (0-based global step); None uses ``optimizer.lr``.
    regularizer : object with ``loss(model)`` and ``add_grad(model)``, or None
        Its loss is part of every reported loss (training and validation).
    constraints : sequence of objects with ``apply(model)``
        Applied after every update (max-norm).
    callbacks : sequence of Callback
    monitor : bool or Monitor, default True
        True adds a :class:`~neuronlab.babysit.monitor.Monitor` with its defaults (unless ``callbacks``
        holds one); a Monitor instance is used as given; False or None turns monitoring off.
    threads : int or None, default None
        BLAS threads during ``fit``, ``evaluate`` and ``predict``. None: the policy of
        :mod:`neuronlab.threads` (one thread when the network's largest product is too small
        to gain from more, else BLAS as it is); an integer > 0: that many. The previous
        limits are restored when the call returns.
    engine : bool or None, default None
        The compiled training engine (:mod:`neuronlab.engine`, with numba): None uses it
        when it supports the run and says in a log line why not otherwise; False always runs
        the NumPy layers (the readable reference); True requires it (ValueError naming what
        it does not support).

    Attributes
    ----------
    state : TrainState
        Where the run is (what a checkpoint restores). ``step``, ``epoch``,
        ``batch_in_epoch``, ``epoch_done``, ``history``, ``epochs``, ``batch_size``,
        ``n_samples``, ``n_batches`` and the writable ``stop_training`` and ``lr_scale`` are
        its attributes, readable on the trainer too.
    train_data : (X, y) or None
        The training arrays of the current ``fit`` (references, not copies).
    sample_weight : ndarray of shape (n_samples,) or None
        The current ``fit``'s weight of every training row (``sample_weight`` times the
        class weights), or None for an unweighted fit.
    resumed : bool
        The current ``fit`` continues a checkpointed run.
    engine_used : str
        What ran the current (or last) ``fit``'s steps: ``"compiled"``, or ``"numpy: "``
        followed by the reason.
    """

    step = _FromState()
    epoch = _FromState()
    batch_in_epoch = _FromState()
    epoch_done = _FromState()
    history = _FromState()
    epochs = _FromState()
    batch_size = _FromState()
    n_samples = _FromState()
    n_batches = _FromState()
    stop_training = _FromState(writable=True)
    lr_scale = _FromState(writable=True)
    #: On a DivergenceError, replay the failing step's batch to name the layer where the first
    #: NaN/Inf appeared (:mod:`neuronlab.babysit.sentinel`); set False to skip the replay.
    sentinel: bool = True

    def __init__(
        self,
        model: Any,
        loss: Any,
        optimizer: Any,
        *,
        schedule: Callable[[int], float] | None = None,
        regularizer: Any = None,
        constraints: Sequence[Any] = (),
        callbacks: Sequence[Callback] = (),
        monitor: Any = True,
        threads: int | None = None,
        engine: bool | None = None,
    ) -> None:
        constraints, callbacks = tuple(constraints), list(callbacks)
        check_components(model, loss, optimizer, schedule, regularizer, constraints, callbacks)
        if isinstance(monitor, Monitor):
            callbacks.append(monitor)
        elif monitor is True:
            if not any(isinstance(cb, Monitor) for cb in callbacks):
                callbacks.append(Monitor())
        elif monitor is not False and monitor is not None:
            raise TypeError(f"monitor must be a bool or a Monitor, got {type(monitor).__name__}")
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.schedule, self.regularizer, self.constraints = schedule, regularizer, constraints
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)  # stable: ties keep user order
        self.full_batch = bool(getattr(optimizer, "full_batch", False))
        self.state = TrainState(full_batch=self.full_batch)
        self.has_validation = self.resumed = False
        self.train_data: tuple[np.ndarray, np.ndarray] | None = None
        self.sample_weight: np.ndarray | None = None
        self.grads: dict[str, np.ndarray] = {}
        self.threads = check_threads(threads)
        if engine is not None and not isinstance(engine, bool):
            raise TypeError(f"engine must be None, True or False, got {engine!r}")
        self.engine = engine
        self.engine_used = ""
        self._engine: Any = None
        # (step, x, y, w) of a step that raised DivergenceError: what the sentinel replays
        self._failed_batch: tuple[int, np.ndarray, np.ndarray, np.ndarray | None] | None = None

    # -- learning rate ----------------------------------------------------------------------
    def base_lr(self, step: int) -> float:
        """The schedule's lr for ``step`` (or the optimizer's own lr), before ``lr_scale``.

        Parameters
        ----------
        step : int
            0-based global optimizer step.

        Returns
        -------
        float
        """
        return float(self.schedule(step)) if self.schedule is not None else float(self.optimizer.lr)

    @property
    def total_steps(self) -> int:
        """Optimizer steps of the whole run: ``epochs * n_batches`` (one per epoch for
        full-batch L-BFGS)."""
        return self.state.epochs * self.state.n_batches

    @property
    def epoch_metric_names(self) -> list[str]:
        """Keys of the epoch logs this run produces (``"loss"``, ``"acc"``, ``"val_loss"``...)."""
        return metric_names(self.loss.task, self.has_validation)

    # -- fit ---------------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        *,
        sample_weight: Any = None,
        class_weight: dict[Any, float] | str | None = None,
        validation: tuple[Any, ...] | None = None,
        epochs: int = 30,
        batch_size: int = 32,
        seed: int = 0,
        resume: str | os.PathLike[str] | None = None,
    ) -> History:
        """Train for ``epochs`` epochs (in total, counting those of a resumed run).

        Each call starts a new run (a new :class:`TrainState`: fresh history, step 0, a new
        shuffle generator) from the model's current weights and the optimizer's current
        state; ``resume`` instead continues a checkpointed run exactly where it stopped.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            An ndarray, list, DataFrame, ... A float32 / float64 array is used as it is, other
            numbers become the model's dtype; an np.memmap is never copied (each batch reads
            its rows in sorted order and casts them).
        y : array-like of shape (n_samples,) integer labels (whole-number floats work),
            (n_samples, n_outputs) 0/1 for a multilabel loss, or float targets of shape
            (n_samples,) / (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows (finite, >= 0): each batch minimises its weighted mean loss
            Σ w_i L_i / Σ w_i, and the epoch's ``loss`` / ``acc`` / ``error`` are weighted
            means (:mod:`~neuronlab.train.evaluation`). Weights 1 train exactly as none.
        class_weight : dict {label: weight}, "balanced" or None
            Classification only: multiplies each row's weight by its class's;
            ``"balanced"`` is ``n_samples / (n_classes * bincount(y))``
            (:func:`~neuronlab.train.weights.resolve_sample_weight`). Training rows only:
            validation is weighted by ``w_val`` alone.
        validation : (X_val, y_val), (X_val, y_val, w_val) or None
            Evaluated in inference mode at the end of every epoch, weighted by ``w_val``.
        epochs, batch_size : int > 0
        seed : int
            Seeds the shuffling generator (np.random.default_rng(seed)).
        resume : path or None
            A checkpoint file, or a folder (its newest checkpoint), written by
            :class:`Checkpoint`: continue that run exactly. Weights are data, like X and y:
            a checkpoint does not store them, so pass the same ``sample_weight``,
            ``class_weight`` and validation weights again.

        Returns
        -------
        History
        """
        epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an integer, got {type(seed).__name__}: {seed!r}")
        X, y = self._check_data("X", "y", X, y)
        w = resolve_sample_weight(y, sample_weight, class_weight, self.loss.task)
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
                raise TypeError(
                    "validation must be a tuple (X_val, y_val) or (X_val, y_val, w_val)")
            Xv, yv = self._check_data("X_val", "y_val", *validation[:2])
            wv = None if len(validation) == 2 else self._check_weight("w_val", yv, validation[2])
            validation = (Xv, yv, wv)
        self.has_validation = validation is not None
        self.train_data, self.sample_weight = (X, y), w
        self.state = TrainState(
            n_samples=X.shape[0], batch_size=batch_size, epochs=epochs, seed=int(seed),
            full_batch=self.full_batch, metrics=self.epoch_metric_names,
        )
        self.resumed, ckpt = False, None
        if resume is not None:
            ckpt = load_checkpoint(resume)
            ckpt.restore(self.model, self.optimizer, self.state)
            self.resumed = True
        self.grads = self.model.grads  # the layers' own arrays, gathered once per fit
        # hooks in use, once: callbacks that do not override a hook cost nothing per step
        self._before_update: list[Callback] = [
            cb for cb in self.callbacks if overrides(cb, "on_before_update")]
        self._batch_end: list[Callback] = [
            cb for cb in self.callbacks if overrides(cb, "on_batch_end")]
        self._engine = self._plan_engine(X, y, w)
        try:
            # Overflow on the way to a NaN is reported once, as a DivergenceError by
            # NonFiniteGuard (or a NaN in the history), not as RuntimeWarnings from every layer.
            with (np.errstate(over="ignore", invalid="ignore", divide="ignore"),
                  self._blas(X.shape[0] if self.full_batch else min(batch_size, X.shape[0]))):
                self._run(X, y, w, validation, ckpt)
        except DivergenceError as err:  # recorded for diagnose(): the history ends here
            failed, self._failed_batch = self._failed_batch, None
            # the step's update was not applied (s.step not advanced): replay its batch
            if self.sentinel and failed is not None and failed[0] == err.step == self.state.step:
                from neuronlab.babysit.sentinel import explain

                explain(self, err, *failed[1:])
            self.history.info.update(err.info())
            raise
        finally:
            self._engine = None  # buffers and compiled code: nothing a pickled trainer keeps
            for cb in self.callbacks:
                cb.close()
        return self.history

    def _run(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, validation: Any,
             ckpt: Any) -> None:
        s = self.state
        for cb in self.callbacks:
            cb.on_train_begin(self)
        if ckpt is not None:
            ckpt.restore_callbacks(self.callbacks)
        # a resumed run first finishes the epoch it was in (once that epoch's order is drawn)
        mid_epoch = self.resumed and not s.epoch_done and (s.full_batch or s.order is not None)
        for epoch in range(s.epoch + 1 if s.epoch_done else s.epoch, s.epochs):
            if s.stop_training and not mid_epoch:
                break
            if not mid_epoch:
                s.begin_epoch(epoch)
            mid_epoch = False
            for cb in self.callbacks:
                cb.on_epoch_begin(self, epoch)
            if s.batch_in_epoch < s.n_batches and not s.stop_training:  # resumed: maybe none left
                if s.full_batch:
                    self._train_full_batch(X, y, w)
                elif self._engine is not None:
                    self._engine.train_epoch()
                else:
                    self._train_epoch(X, y, w)
            logs = self._epoch_logs(y, validation)
            s.history.record_epoch(logs)
            s.epoch_done = True
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, logs)
        for cb in self.callbacks:
            cb.on_train_end(self)

    def _plan_engine(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> Any:
        """The compiled engine for this fit, or None (``engine_used`` says why)."""
        if self.engine is False:
            self.engine_used = "numpy: Trainer(engine=False)"
            return None
        from neuronlab.engine import plan

        found = plan(self, X, y, w)
        if isinstance(found, str):
            if self.engine:
                raise ValueError(f"Trainer(engine=True): the compiled engine cannot run this: {found}")
            self.engine_used = f"numpy: {found}"
            log.info("training on the NumPy path: %s", found)
            return None
        self.engine_used = "compiled"
        return found

    def _train_epoch(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None,
                     stop: int | None = None) -> None:
        """The rest of the current epoch (up to batch ``stop``), step by step in NumPy."""
        model, loss, opt, reg = self.model, self.loss, self.optimizer, self.regularizer
        s = self.state
        params, grads, decay_keys = model.params, self.grads, model.weight_keys
        order, bs, sums, history = s.order, s.batch_size, s.sums, s.history
        # reused by every batch; never more rows than the data has (a batch_size above n_samples
        # is one full batch)
        xbuf = np.empty((min(bs, X.shape[0]), *X.shape[1:]), dtype=model.dtype)
        # the batch of the step in progress, handed to the sentinel if that step diverges
        # (entering a try costs nothing per step)
        xb: np.ndarray | None = None
        yb: np.ndarray | None = None
        wb: np.ndarray | None = None
        try:
            for b in range(s.batch_in_epoch, s.n_batches if stop is None else stop):
                if s.stop_training:  # checked first, so a resumed run stops where the original did
                    break
                # sorted rows: sequential reads from a memmap; the order inside a batch is
                # irrelevant
                assert order is not None  # minibatch training: the epoch's order is drawn
                idx = np.sort(order[b * bs : (b + 1) * bs])
                m = idx.shape[0]
                xb = batch(X, idx, out=xbuf)  # contiguous rows in the model's dtype, no allocation
                yb, wb = y[idx], None if w is None else w[idx]
                step = s.step
                value, scores = loss_and_grads(model, loss, xb, yb, reg, step=step,
                                               sample_weight=wb)
                accumulate(sums, loss, scores, yb, wb)
                lr = (self.schedule(step) if self.schedule is not None else opt.lr) * s.lr_scale
                for cb in self._before_update:
                    if step % cb.interval == 0:
                        cb.on_before_update(self, step, value)
                opt.step(params, grads, lr=lr, decay_keys=decay_keys)
                for c in self.constraints:
                    c.apply(model)
                s.step, s.batch_in_epoch = step + 1, b + 1
                history.loss.append(value)
                history.lr.append(lr)
                mass = m if wb is None else float(wb.sum())  # the batch's rows, counted by weight
                sums["loss"] += value * mass
                sums["n"] += mass
                if self._batch_end:
                    logs = {"loss": value, "lr": lr, "batch_size": m}
                    for cb in self._batch_end:
                        if step % cb.interval == 0:
                            cb.on_batch_end(self, step, logs)
        except DivergenceError:
            if xb is not None and yb is not None:
                self._failed_batch = (s.step, xb, yb, wb)
            raise

    def _train_full_batch(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> None:
        """One L-BFGS ``minimize`` over the whole training set; counts as one step.
        Callbacks' ``on_before_update`` see its final loss and gradients (the line search
        owns the intermediate updates)."""
        model, loss, s = self.model, self.loss, self.state
        Xf, step = np.asarray(X, dtype=model.dtype), s.step

        def objective() -> float:
            return loss_and_grads(model, loss, Xf, y, self.regularizer, step=step,
                                  sample_weight=w)[0]

        try:
            value = float(self.optimizer.minimize(objective, model.params, self.grads).fun)
            for cb in self._before_update:
                if step % cb.interval == 0:
                    cb.on_before_update(self, step, value)
        except DivergenceError:
            self._failed_batch = (step, Xf, y, w)  # the sentinel replays the whole set
            raise
        for c in self.constraints:
            c.apply(model)
        accumulate(s.sums, loss, model.forward(Xf, training=False), y, w)
        mass = len(Xf) if w is None else float(w.sum())
        s.sums["loss"], s.sums["n"] = value * mass, mass
        s.step, s.batch_in_epoch = step + 1, 1
        s.history.loss.append(value)
        s.history.lr.append(None)
        logs = {"loss": value, "lr": None, "batch_size": len(Xf)}
        for cb in self._batch_end:
            if step % cb.interval == 0:
                cb.on_batch_end(self, step, logs)

    def _epoch_logs(self, y: np.ndarray, validation: tuple[Any, ...] | None) -> dict[str, Any]:
        s = self.state
        lr = s.history.lr[-1] if s.history.lr else None
        logs: dict[str, Any] = {"epoch": s.epoch, "step": s.step, "lr": lr}
        logs.update(summarize(s.sums, self.loss.task, int(np.prod(y.shape[1:], dtype=np.int64))))
        if validation is not None:
            logs.update(self._evaluate(*validation, prefix="val_"))
        return logs

    # -- inference -----------------------------------------------------------------------------
    def _inference_batch_size(self, batch_size: int | None) -> int:
        if batch_size is None:
            return max(self.state.batch_size, 1024)
        return check_positive_int("batch_size", batch_size)

    def _blas(self, rows: int) -> AbstractContextManager[None]:
        """BLAS threads for products of ``rows`` rows (``threads``, else the policy)."""
        return limit_blas(blas_threads(self.model, rows, self.threads))

    def _evaluate(
        self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, *, prefix: str = "",
        batch_size: int | None = None,
    ) -> dict[str, float]:
        return evaluate(  # callers validated X: no scan per batch
            self.model, self.loss, X, y, regularizer=self.regularizer, prefix=prefix,
            batch_size=self._inference_batch_size(batch_size), check=False, sample_weight=w,
        )

    def evaluate(
        self, X: Any, y: Any, *, sample_weight: Any = None, batch_size: int | None = None
    ) -> dict[str, float]:
        """Loss (data + regularisation) and accuracy or regression error on (X, y), in
        inference mode, in batches (:func:`~neuronlab.train.evaluation.evaluate`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Taken as :meth:`fit` takes it.
        y : array-like
            Labels or targets, as for :meth:`fit`.
        sample_weight : array-like of shape (n_samples,) or None
            Row weights (finite, >= 0): the results are weighted means.
        batch_size : int or None
            Rows per forward pass; None uses the fit's batch size, at least 1024.

        Returns
        -------
        dict
            ``{"loss": ..., "acc": ...}`` (classification) or ``{"loss": ..., "error": ...}``
            (regression).
        """
        X, y = self._check_data("X", "y", X, y)
        w = None if sample_weight is None else self._check_weight("sample_weight", y, sample_weight)
        with self._blas(min(self._inference_batch_size(batch_size), X.shape[0])):
            return self._evaluate(X, y, w, batch_size=batch_size)

    def predict(self, X: Any, *, batch_size: int | None = None) -> np.ndarray:
        """``loss.predict`` of the scores for raw X (class labels, 0/1 attributes or regression
        values): ``model.preprocessor`` is applied when set (as for a loaded model), in
        inference mode, in batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features.
        batch_size : int or None
            Rows per forward pass; None uses the fit's batch size, at least 1024.

        Returns
        -------
        ndarray of shape (n_samples, ...)
        """
        from neuronlab import prediction

        rows = self._inference_batch_size(batch_size)
        with self._blas(rows):
            return prediction.predict(self.model, X, loss=self.loss, batch_size=rows)

    def predict_proba(self, X: Any, *, batch_size: int | None = None) -> np.ndarray:
        """Probabilities for raw X (the loss's ``predict_proba``: softmax or sigmoid), through
        ``model.preprocessor`` when set, in inference mode, in batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features.
        batch_size : int or None
            Rows per forward pass; None uses the fit's batch size, at least 1024.

        Returns
        -------
        ndarray
            Shape (n_samples, n_classes) for softmax; (n_samples,) or
            (n_samples, n_attributes) for sigmoid.

        Raises
        ------
        NotImplementedError
            For a loss without probabilities (hinge, regression).
        """
        from neuronlab import prediction

        rows = self._inference_batch_size(batch_size)
        with self._blas(rows):
            return prediction.predict_proba(self.model, X, loss=self.loss, batch_size=rows)

    def _check_data(self, xname: str, yname: str, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        return check_data(self.model, self.loss.task, xname, yname, X, y)

    def _check_weight(self, name: str, y: np.ndarray, w: Any) -> np.ndarray:
        """Weights of evaluation rows (``w_val``, ``sample_weight``), checked once per call."""
        return check_weights(w, y.shape[0], name)
