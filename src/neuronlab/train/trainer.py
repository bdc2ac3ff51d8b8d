"""The training loop: minibatch gradient descent with validation, callbacks and exact resume.

Read :meth:`Trainer.fit` and :meth:`Trainer._train_epoch` top to bottom: one shuffle per
epoch from an explicit seed; per batch zero_grad, forward, loss, backward, regulariser
gradient, optimizer step at ``lr = schedule(step) * lr_scale``, constraints, callbacks;
validation at the end of each epoch. Everything optional (early stopping, checkpoints,
logging, progress) is a :class:`~neuronlab.train.callbacks.Callback`.
"""

from __future__ import annotations

import functools
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from neuronlab._validation import check_positive_int
from neuronlab.data.arrays import batch
from neuronlab.layers.sequential import Sequential
from neuronlab.train.callbacks import Callback, DivergenceError
from neuronlab.train.checkpoint import load_checkpoint, restore_callbacks, restore_checkpoint
from neuronlab.train.history import History
from neuronlab.train.inputs import (
    check_components,
    check_data,
    check_finite_rows,
    inference_batches,
)

__all__ = ["Trainer"]


def _checked_forward(model: Any) -> Callable[..., np.ndarray]:
    """``model.forward`` for data that ``fit`` / ``evaluate`` validated once already: a
    Sequential then skips scanning every batch for NaN/Inf again (``check=False``)."""
    if isinstance(model, Sequential):
        return functools.partial(model.forward, check=False)
    return model.forward


def _overrides(cb: Callback, hook: str) -> bool:
    return getattr(type(cb), hook) is not getattr(Callback, hook)


def _raise_if_diverged(step: int, scores: np.ndarray) -> None:
    """Non-finite network outputs mean the weights have diverged: say so with the step."""
    bad = ~np.isfinite(scores)
    if bad.any():
        raise DivergenceError(step, "scores", float(scores[bad][0])) from None


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
        True adds a :class:`~neuronlab.monitor.Monitor` with its defaults (unless ``callbacks``
        holds one); a Monitor instance is used as given; False or None turns monitoring off.

    Attributes
    ----------
    history : History
    train_data : (X, y) or None
        The training arrays of the current ``fit`` (references, not copies).
    step : int
        Optimizer steps done (global, across epochs and resumes).
    epoch : int
        0-based index of the current (or last) epoch.
    lr_scale : float
        Multiplier on the schedule's lr; :class:`ReduceLROnPlateau` lowers it.
    stop_training : bool
        Set by a callback to end training after the current step.
    """

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
    ) -> None:
        constraints, callbacks = tuple(constraints), list(callbacks)
        check_components(model, loss, optimizer, schedule, regularizer, constraints, callbacks)
        from neuronlab.monitor import Monitor  # lazy: monitor.py imports train.callbacks

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
        self._reset_state()
        self.epochs = self.batch_size = self.n_samples = self.n_batches = 0
        self.has_validation = False
        self.train_data: tuple[np.ndarray, np.ndarray] | None = None
        self._width = 1  # values per sample that acc / error average over
        self._seed: int | None = 0
        self._shuffle_rng = np.random.default_rng(0)
        self.grads: dict[str, np.ndarray] = {}

    # -- learning rate ----------------------------------------------------------------------
    def base_lr(self, step: int) -> float:
        """The schedule's lr for ``step`` (or the optimizer's own lr), before ``lr_scale``."""
        return float(self.schedule(step)) if self.schedule is not None else float(self.optimizer.lr)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.n_batches

    @property
    def epoch_metric_names(self) -> list[str]:
        """Keys of the epoch logs this run produces (``"loss"``, ``"acc"``, ``"val_loss"``...)."""
        metric = "error" if self.loss.task == "regression" else "acc"
        names = ["loss", metric]
        return names + ["val_loss", f"val_{metric}"] if self.has_validation else names

    # -- fit ---------------------------------------------------------------------------------
    def fit(
        self,
        X: np.ndarray,
        y: Any,
        *,
        validation: tuple[np.ndarray, Any] | None = None,
        epochs: int = 10,
        batch_size: int = 128,
        seed: int = 0,
        resume: str | os.PathLike[str] | None = None,
    ) -> History:
        """Train for ``epochs`` epochs (in total, counting those of a resumed run).

        Each call starts a new run (fresh history, step 0, a new shuffle generator) from the
        model's current weights and the optimizer's current state; ``resume`` instead
        continues a checkpointed run exactly where it stopped.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), float32 or float64 (np.memmap works:
            each batch reads its rows in sorted order)
        y : ndarray of shape (n_samples,) integer labels, (n_samples, n_outputs) 0/1 for a
            multilabel loss, or float targets of shape (n_samples,) / (n_samples, n_outputs)
        validation : (X_val, y_val) or None
            Evaluated in inference mode at the end of every epoch.
        epochs, batch_size : int > 0
        seed : int
            Seeds the shuffling generator (np.random.default_rng(seed)).
        resume : path or None
            A checkpoint file, or a folder (its newest checkpoint), written by
            :class:`Checkpoint`: continue that run exactly.

        Returns
        -------
        History
        """
        self.epochs = check_positive_int("epochs", epochs)
        self.batch_size = check_positive_int("batch_size", batch_size)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an integer, got {type(seed).__name__}: {seed!r}")
        X, y = self._check_data("X", "y", X, y)
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise TypeError("validation must be a tuple (X_val, y_val)")
            validation = self._check_data("X_val", "y_val", *validation)
        self.has_validation = validation is not None
        self.train_data = (X, y)
        self.n_samples = X.shape[0]
        self.n_batches = 1 if self.full_batch else -(-self.n_samples // self.batch_size)
        self._seed = int(seed)
        self._shuffle_rng = np.random.default_rng(self._seed)
        self._reset_state()
        ckpt = None
        if resume is not None:
            ckpt = load_checkpoint(resume)
            restore_checkpoint(self, ckpt)
            self.resumed = True
        self.grads = self.model.grads  # the layers' own arrays, gathered once per fit
        # hooks in use, once: callbacks that do not override a hook cost nothing per step
        self._before_update = [cb for cb in self.callbacks if _overrides(cb, "on_before_update")]
        self._batch_end = [cb for cb in self.callbacks if _overrides(cb, "on_batch_end")]
        try:
            # Overflow on the way to a NaN is reported once, as a DivergenceError by
            # NonFiniteGuard (or a NaN in the history), not as RuntimeWarnings from every layer.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                self._run(X, y, validation, ckpt)
        except DivergenceError as err:  # recorded for diagnose(): the history ends here
            self.history.info.update(diverged_step=err.step, diverged_at=err.name)
            raise
        finally:
            for cb in self.callbacks:
                cb.close()
        return self.history

    def _run(self, X: np.ndarray, y: np.ndarray, validation: Any, ckpt: Any) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(self)
        if ckpt is not None:
            restore_callbacks(self, ckpt)
        first = self.epoch + 1 if self.epoch_done else self.epoch
        mid_epoch = ckpt is not None and not self.epoch_done  # continue the saved epoch
        for epoch in range(first, self.epochs):
            if self.stop_training and not mid_epoch:
                break
            if not mid_epoch:
                self._perm = (
                    None if self.full_batch else self._shuffle_rng.permutation(self.n_samples)
                )
                self.batch_in_epoch = 0
                self._sums = {"loss": 0.0, "n": 0, "correct": 0, "sq": 0.0}
            mid_epoch = False
            self.epoch, self.epoch_done = epoch, False
            for cb in self.callbacks:
                cb.on_epoch_begin(self, epoch)
            if (
                self.batch_in_epoch < self.n_batches and not self.stop_training
            ):  # resumed: maybe none left
                if self.full_batch:
                    self._train_full_batch(X, y)
                else:
                    self._train_epoch(X, y)
            logs = self._epoch_logs(validation)
            self.history.record_epoch(logs)
            self.epoch_done = True
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, logs)
        for cb in self.callbacks:
            cb.on_train_end(self)

    def _train_epoch(self, X: np.ndarray, y: np.ndarray) -> None:
        model, loss, opt, reg = self.model, self.loss, self.optimizer, self.regularizer
        params, grads, decay_keys = model.params, self.grads, model.weight_keys
        perm, bs, sums, task = self._perm, self.batch_size, self._sums, loss.task
        xbuf = np.empty((bs, *X.shape[1:]), dtype=model.dtype)  # reused by every batch
        forward = _checked_forward(model)  # X was validated once, in fit
        # backward follows at once: a Sequential's Linear layers write their next gradient
        # instead of adding it to zeros, so their fill is skipped
        lazy = isinstance(model, Sequential)
        zero_grad = functools.partial(model.zero_grad, lazy=True) if lazy else model.zero_grad
        for b in range(self.batch_in_epoch, self.n_batches):
            if self.stop_training:  # checked first, so a resumed run stops where the original did
                break
            # sorted rows: sequential reads from a memmap; the order inside a batch is irrelevant
            idx = np.sort(perm[b * bs : (b + 1) * bs])
            m = idx.shape[0]
            xb = batch(X, idx, out=xbuf)  # contiguous rows in the model's dtype, no allocation
            yb = y[idx]
            zero_grad()
            scores = forward(xb, training=True)
            step = self.step
            try:
                value = loss.forward(scores, yb)
            except ValueError:
                _raise_if_diverged(step, scores)  # overflowed scores are divergence, not bad input
                raise
            self._accumulate(scores, yb, sums, task)
            model.backward(loss.backward(), input_grad=False)
            if reg is not None:
                value += reg.loss(model)
                reg.add_grad(model)
            lr = (self.schedule(step) if self.schedule is not None else opt.lr) * self.lr_scale
            for cb in self._before_update:
                cb.on_before_update(self, step, value)
            opt.step(params, grads, lr=lr, decay_keys=decay_keys)
            for c in self.constraints:
                c.apply(model)
            self.step, self.batch_in_epoch = step + 1, b + 1
            self.history.loss.append(value)
            self.history.lr.append(lr)
            sums["loss"] += value * m
            sums["n"] += m
            if self._batch_end:
                logs = {"loss": value, "lr": lr, "batch_size": m}
                for cb in self._batch_end:
                    cb.on_batch_end(self, step, logs)

    def _train_full_batch(self, X: np.ndarray, y: np.ndarray) -> None:
        """One L-BFGS ``minimize`` over the whole training set; counts as one step.
        Callbacks' ``on_before_update`` see its final loss and gradients (the line search
        owns the intermediate updates)."""
        model, loss, reg = self.model, self.loss, self.regularizer
        Xf = np.asarray(X, dtype=model.dtype)

        def fun() -> float:
            value = loss.forward(model.forward(Xf, training=True), y)
            model.backward(loss.backward(), input_grad=False)
            if reg is not None:
                value += reg.loss(model)
                reg.add_grad(model)
            return value

        result = self.optimizer.minimize(fun, model.params, self.grads)
        value = float(result.fun)
        for cb in self._before_update:
            cb.on_before_update(self, self.step, value)
        for c in self.constraints:
            c.apply(model)
        scores = model.forward(Xf, training=False)
        self._sums = {"loss": 0.0, "n": 0, "correct": 0, "sq": 0.0}
        self._accumulate(scores, y, self._sums, loss.task)
        self._sums["loss"], self._sums["n"] = value * len(Xf), len(Xf)
        step = self.step
        self.step, self.batch_in_epoch = step + 1, 1
        self.history.loss.append(value)
        self.history.lr.append(None)
        logs = {"loss": value, "lr": None, "batch_size": len(Xf)}
        for cb in self._batch_end:
            cb.on_batch_end(self, step, logs)

    # -- metrics -------------------------------------------------------------------------------
    def _accumulate(
        self, scores: np.ndarray, y: np.ndarray, sums: dict[str, Any], task: str
    ) -> None:
        if task == "regression":
            d = scores - y.reshape(scores.shape)
            sums["sq"] += float(np.dot(d.reshape(-1), d.reshape(-1)))
        else:
            pred = self.loss.predict(scores)
            sums["correct"] += int(np.count_nonzero(pred == y.reshape(pred.shape)))

    def _summary(self, sums: dict[str, Any], prefix: str) -> dict[str, float]:
        n, width = sums["n"], self._width
        out = {f"{prefix}loss": sums["loss"] / n}
        if self.loss.task == "regression":
            out[f"{prefix}error"] = sums["sq"] / (n * width)  # mean squared error per target value
        else:
            out[f"{prefix}acc"] = sums["correct"] / (n * width)
        return out

    def _epoch_logs(self, validation: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
        lr = self.history.lr[-1] if self.history.lr else None
        logs: dict[str, Any] = {"epoch": self.epoch, "step": self.step, "lr": lr}
        logs.update(self._summary(self._sums, ""))
        if validation is not None:
            logs.update(self._evaluate(*validation, prefix="val_"))
        return logs

    # -- inference -----------------------------------------------------------------------------
    def _batches(self, X: np.ndarray, batch_size: int | None) -> Any:
        bs = (
            max(self.batch_size, 1024)
            if batch_size is None
            else check_positive_int("batch_size", batch_size)
        )
        return inference_batches(X, bs, self.model.dtype)

    def _evaluate(
        self, X: np.ndarray, y: np.ndarray, *, prefix: str = "", batch_size: int | None = None
    ) -> dict[str, float]:
        sums = {"loss": 0.0, "n": 0, "correct": 0, "sq": 0.0}
        forward = _checked_forward(self.model)  # callers validated X
        for s, xb in self._batches(X, batch_size):
            yb = y[s : s + xb.shape[0]]
            scores = forward(xb, training=False)
            self._accumulate(scores, yb, sums, self.loss.task)
            sums["loss"] += self.loss.forward(scores, yb) * xb.shape[0]
            sums["n"] += xb.shape[0]
        if self.regularizer is not None:
            sums["loss"] += self.regularizer.loss(self.model) * sums["n"]
        return self._summary(sums, prefix)

    def evaluate(self, X: np.ndarray, y: Any, *, batch_size: int | None = None) -> dict[str, float]:
        """Loss (data + regularisation) and accuracy or regression error on (X, y), in
        inference mode, in batches. Returns ``{"loss": ..., "acc": ...}`` or ``{"loss", "error"}``."""
        X, y = self._check_data("X", "y", X, y)
        return self._evaluate(X, y, batch_size=batch_size)

    def predict(self, X: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """``loss.predict`` of the scores for X (class labels, 0/1 attributes or regression
        values), computed in inference mode in batches. Returns shape (n_samples, ...)."""
        X = check_finite_rows("X", X)  # the batches need no scan of their own
        n_in = getattr(self.model, "n_in", None)
        if n_in is not None and X[0].size != n_in:
            raise ValueError(
                f"x has {X[0].size} features per sample, but the model expects {n_in}"
            )
        forward = _checked_forward(self.model)
        parts = [
            self.loss.predict(forward(xb, training=False)) for _, xb in self._batches(X, batch_size)
        ]
        return np.concatenate(parts, axis=0)

    def _check_data(self, xname: str, yname: str, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y, self._width = check_data(self.model, self.loss.task, xname, yname, X, y)
        return X, y

    # -- state for checkpoints -----------------------------------------------------------------
    def _reset_state(self) -> None:
        self.history = History()
        self.step = self.epoch = self.batch_in_epoch = 0
        self.epoch_done = self.stop_training = self.resumed = False
        self.lr_scale = 1.0
        self._perm = None
        self._sums = {"loss": 0.0, "n": 0, "correct": 0, "sq": 0.0}
