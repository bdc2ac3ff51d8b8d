"""The training objective: one trial = one resolved run config trained with the library.

Search-space names map onto the run configuration of ``neuronlab train``
(:class:`~neuronlab.config.RunConfig`): short names (``lr``, ``l2``, ``activation``,
``optimizer``, ``width``, ``depth``, ...) or dotted ``section.key`` names
(``optim.decay_rate``). ``width`` and ``depth`` together give ``model.hidden = [width] * depth``.
The model, loss, optimizer and schedule come from the CLI's own builder
(:func:`neuronlab.runs.build_run`), so a trial's ``config.toml`` trains the same network with
``neuronlab train --config``.

The learning rate of a trial is a number: ``optim.lr = "auto"`` (the range test of
``neuronlab train --lr auto``) is refused before any trial runs; a search looks for the rate
itself, e.g. ``lr = "loguniform(1e-4, 1e-2)"`` in the space.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from neuronlab.config import AUTO_LR, OptimConfig, RunConfig
from neuronlab.search.space import Choice, Space
from neuronlab.train.callbacks import Callback

__all__ = ["PARAM_NAMES", "TrainObjective", "apply_params"]

# short search-space name -> (section, key) of the run config
PARAM_NAMES: dict[str, tuple[str, str]] = {
    "lr": ("optim", "lr"),
    "optimizer": ("optim", "optimizer"),
    "schedule": ("optim", "schedule"),
    "decay_rate": ("optim", "decay_rate"),
    "clip_norm": ("optim", "clip_norm"),
    "l2": ("regularization", "l2"),
    "l1": ("regularization", "l1"),
    "max_norm": ("regularization", "max_norm"),
    "activation": ("model", "activation"),
    "init": ("model", "init"),
    "out_init": ("model", "out_init"),
    "dropout": ("model", "dropout"),
    "batchnorm": ("model", "batchnorm"),
    "batch_size": ("train", "batch_size"),
    "epochs": ("train", "epochs"),
    "preprocess": ("data", "preprocess"),
}
_SHAPE_NAMES = ("width", "depth")
_LR_RANGE = 'lr = "loguniform(1e-4, 1e-2)"'  # the example a refused lr = "auto" points to


def _resolve(name: str) -> tuple[str, str] | None:
    if name in _SHAPE_NAMES:
        return None
    if name in PARAM_NAMES:
        return PARAM_NAMES[name]
    fields = RunConfig().to_dict()
    if "." in name:
        section, key = name.split(".", 1)
        if section in fields and key in fields[section]:
            return section, key
    raise ValueError(
        f"search space {name!r} is not a run setting; use one of "
        f"{', '.join([*PARAM_NAMES, *_SHAPE_NAMES])} or a dotted name like 'optim.decay_rate'"
    )


def apply_params(base: RunConfig, params: Mapping[str, Any]) -> RunConfig:
    """The run config of a trial: ``base`` with ``params`` (search-space names) applied.

    ``width`` and ``depth`` together set ``model.hidden`` to ``depth`` layers of ``width``
    units (one of them alone keeps the other from ``base``).

    Parameters
    ----------
    base : RunConfig
        The fixed settings shared by every trial.
    params : mapping
        The trial's values by search-space name: a name of :data:`PARAM_NAMES`,
        ``width``, ``depth``, or a dotted ``section.key`` of the run config.

    Returns
    -------
    RunConfig
        A new config (``base`` is not changed).

    Raises
    ------
    ValueError
        If a name is not a run setting, or a value is invalid for its setting, or the
        trial's learning rate would be ``"auto"`` (from ``params`` or from ``base``): the
        range test of ``neuronlab train --lr auto`` is not available in a search, whose
        space searches the rate instead (``lr = "loguniform(1e-4, 1e-2)"``).
    """
    overrides: dict[str, dict[str, Any]] = {}
    for name, value in params.items():
        target = _resolve(name)
        if target is not None:
            overrides.setdefault(target[0], {})[target[1]] = value
            if target == ("optim", "lr") and isinstance(value, str) and value.strip().lower() == AUTO_LR:
                raise ValueError(
                    f"search space {name!r}: lr = {AUTO_LR!r} (the range test of `neuronlab train "
                    f"--lr auto`) is not available in a search; search the rate instead, e.g. {_LR_RANGE}")
    if "width" in params or "depth" in params:
        hidden = overrides.get("model", {}).get("hidden", base.model.hidden)
        width = params.get("width", hidden[0] if hidden else 64)
        depth = params.get("depth", len(hidden))
        overrides.setdefault("model", {})["hidden"] = [int(width)] * int(depth)
    cfg = base.with_overrides(overrides, source="the search space")
    if cfg.optim.lr == AUTO_LR:  # from the base config: the space has no learning rate
        raise ValueError(
            f"optim.lr = {AUTO_LR!r} (the range test of `neuronlab train --lr auto`) is not "
            f"available in a search: add the rate to the search space, e.g. {_LR_RANGE}, or "
            "give optim.lr a number in the base config (e.g. the suggestion of `neuronlab lr-find`)")
    return cfg


def _numeric_lr(base: RunConfig) -> RunConfig:
    """``base`` with ``lr = "auto"`` replaced by the default number: a base whose rate every
    trial takes from the space, as the checks and the warm-up build it."""
    if base.optim.lr != AUTO_LR:
        return base
    return base.with_overrides({"optim": {"lr": OptimConfig().lr}})


_DATA_CACHE: OrderedDict[tuple[Any, ...], Any] = OrderedDict()


def _prepared_data(cfg: RunConfig, data: tuple[Any, Any] | None, data_key: str | None) -> Any:
    """The run's :class:`~neuronlab.runs.RunData` without its test rows (never read by a
    trial), cached per worker process: every trial of a search reuses the same split and
    preprocessor (fitted on the training rows)."""
    from neuronlab.runs import prepare_data

    d = cfg.data
    key = (data_key or d.source, d.test_size, d.val_size, d.preprocess, d.components, d.classes,
           cfg.model.loss, cfg.train.seed)
    if key in _DATA_CACHE:
        _DATA_CACHE.move_to_end(key)
        return _DATA_CACHE[key]
    out = prepare_data(cfg, data=data, test=False)
    if out.val[0].shape[0] == 0:
        raise ValueError("a search needs a validation split: set data.val_size > 0")
    _DATA_CACHE[key] = out
    while len(_DATA_CACHE) > 2:
        _DATA_CACHE.popitem(last=False)
    return out


class _Reporter(Callback):
    """Reports the trial's value after each epoch and stops a pruned one. The value has the
    sign of the objective's result (validation accuracy, or -MSE for regression), so the
    pruner ranks epochs the way the study ranks trials."""

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial, self.metric, self.epochs = trial, metric, []
        self.sign = -1.0 if metric == "val_error" else 1.0

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        from neuronlab.search.executor import TrialPruned

        self.epochs.append({k: v for k, v in logs.items() if isinstance(v, (int, float)) or v is None})
        self.trial.report(self.sign * float(logs[self.metric]), epoch)
        if self.trial.should_prune():
            raise TrialPruned(f"pruned at epoch {epoch}")


class TrainObjective:
    """``objective(params, trial) -> validation accuracy`` (``-MSE`` for a regression loss:
    higher is better either way) for a search over run configs.

    Parameters
    ----------
    base : RunConfig
        Everything the space does not set (data, epochs, seed, ...). Its ``optim.lr`` may be
        ``"auto"`` only when the space sets ``lr``: a search has no range test per trial.
    data : (X, y) or None
        In-memory arrays to search on instead of ``base.data.source`` (split, checked and
        preprocessed as ``base.data`` says; trials' ``config.toml`` then name the source
        ``"<arrays>"``).
    keep_best : bool
        Keep the weights of the epoch with the best validation accuracy (early stopping's
        restore-best with no early stop) instead of the last epoch's. Off by default: on a
        small validation set the first epoch to reach the top accuracy is often undertrained.
    vary_seed : bool
        Initialise and shuffle trial ``n`` with seed ``train.seed + 1 + n`` (the notes'
        "same model, different initialisations": independent members for an ensemble) while
        the data split keeps ``train.seed``, so every trial sees the same validation and test
        samples. The seed is stored as the trial's ``model_seed`` (its ``config.toml`` keeps
        ``train.seed``, the split's seed). False: every trial uses ``train.seed``.

    Notes
    -----
    A trial trains ``max(1, round(epochs * budget))`` epochs, reports ``val_acc`` (or
    ``-val_error``) after every epoch (pruning), and returns the files ``config.toml`` (the
    resolved run), ``metrics.jsonl`` (one line per epoch, as measured: ``val_error`` is the
    positive MSE) and ``model.safetensors`` (with its preprocessor).
    """

    def __init__(self, base: RunConfig | None = None, *, data: tuple[Any, Any] | None = None,
                 keep_best: bool = False, vary_seed: bool = True) -> None:
        base = RunConfig() if base is None else base
        if not isinstance(base, RunConfig):
            raise TypeError(f"base must be a RunConfig, got {type(base).__name__}")
        if base.data.val_size <= 0:
            raise ValueError(f"data.val_size must be > 0 for a search, got {base.data.val_size!r}")
        self.data, self.data_key = None, None
        if data is not None:
            from neuronlab.runs import split_rows

            split_rows(base, data=data)  # bad arrays or labels fail here, not in every trial
            self.data = (np.asarray(data[0]), np.asarray(data[1]))
            from neuronlab.io.files import content_digest

            self.data_key = content_digest({"X": self.data[0], "y": self.data[1]}, {})
            base = base.with_overrides({"data": {"source": "<arrays>"}})
        self.base, self.keep_best, self.vary_seed = base, bool(keep_best), bool(vary_seed)

    def warm_up(self) -> None:
        """Prepare, in a worker process before its first trial, what its trials reuse: the
        data split and its preprocessor (cached per process), the modules that build and
        train a run, and the compiled training engine for the base run's dtype, loss and
        optimizer (numba's import and the machine code from its cache, most of a second; a
        one-epoch fit of two batches loads exactly what the trials run, and compiles it if
        the cache is cold). A search's pool calls it as each worker starts."""
        import neuronlab.io  # noqa: F401  (each trial saves its model)
        from neuronlab.runs import build_run
        from neuronlab.train import Trainer

        base = _numeric_lr(self.base)  # lr = "auto" here: the space sets every trial's rate
        run = _prepared_data(base, self.data, self.data_key)
        X, y = run.train
        bs = base.train.batch_size
        n = min(len(y), 2 * bs)
        parts = build_run(base, int(np.prod(X.shape[1:])), run.n_outputs, X.shape[0])
        model = parts.pop("model")
        Trainer(model, **parts, monitor=False).fit(X[:n], y[:n], epochs=1, batch_size=bs,
                                                   seed=base.train.seed)

    def check_space(self, space: Space) -> None:
        """Fail before any trial runs if a name or a categorical value cannot make a run:
        each choice (and each numeric range's two bounds) is applied to the base config and
        built (unknown activation, optimizer, ... names raise here with the registry's list
        of choices).

        Parameters
        ----------
        space : Space
            The search space.

        Raises
        ------
        ValueError
            If a name is not a run setting or a value cannot make a run, or a trial's
            learning rate would be ``"auto"`` (see :func:`apply_params`).
        """
        from neuronlab.runs import build_run

        base = self.base
        if any(_resolve(n) == ("optim", "lr") for n in space):
            # the space sets every trial's rate: check the other values with a number there
            base = _numeric_lr(base)
        for name, p in space.items():
            _resolve(name)
            values = p.choices if isinstance(p, Choice) else (p.low, p.high)
            for v in values:
                cfg = apply_params(base, {name: v})
                build_run(cfg, 2, 2, 1)

    def __call__(self, params: dict[str, Any], trial: Any) -> float:
        from neuronlab.io import save
        from neuronlab.runs import build_run
        from neuronlab.train import EarlyStopping, NonFiniteGuard, Trainer

        cfg = apply_params(self.base, params)
        epochs = max(1, round(cfg.train.epochs * trial.budget))
        cfg = cfg.with_overrides({"train": {"epochs": epochs}})
        run = _prepared_data(cfg, self.data, self.data_key)  # the split always uses train.seed
        (X_tr, y_tr), (X_va, y_va), pre = run.train, run.val, run.preprocessor
        bs = cfg.train.batch_size
        seed = cfg.train.seed + 1 + trial.number if self.vary_seed else cfg.train.seed
        trial.set_attr("model_seed", seed)
        model_cfg = cfg.with_overrides({"train": {"seed": seed}})
        parts = build_run(model_cfg, int(np.prod(X_tr.shape[1:])), run.n_outputs, X_tr.shape[0])
        model = parts.pop("model")
        metric = "val_error" if parts["loss"].task == "regression" else "val_acc"
        reporter = _Reporter(trial, metric)
        callbacks = [NonFiniteGuard(), reporter]
        t = cfg.train
        if t.early_stopping is not None:  # as `neuronlab train` does: stop, keep the best epoch
            callbacks.append(EarlyStopping(t.monitor, patience=t.early_stopping, restore_best=True))
        elif self.keep_best:
            callbacks.append(EarlyStopping(metric, patience=epochs, restore_best=True))
        trainer = Trainer(model, **parts, callbacks=callbacks, monitor=False)
        trial.add_file("config.toml", cfg.to_toml().encode())
        trainer.fit(X_tr, y_tr, validation=(X_va, y_va), epochs=epochs, batch_size=bs, seed=seed,
                    class_weight=None if t.class_weight == "none" else t.class_weight)
        val = trainer.evaluate(X_va, y_va)
        lines = "".join(_json_line(e) for e in reporter.epochs)
        trial.add_file("metrics.jsonl", lines.encode())
        trial.set_attr("epochs", epochs)
        trial.set_attr("val_loss", float(val["loss"]))
        model.preprocessor = pre
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.safetensors")
            save(model, path, preprocessor=pre,
                 metadata={"loss": cfg.model.loss, "config": cfg.to_dict(), "val": val, "model_seed": seed})
            with open(path, "rb") as f:
                trial.add_file("model.safetensors", f.read())
        return reporter.sign * float(val["error" if metric == "val_error" else "acc"])


def _json_line(d: dict[str, Any]) -> str:
    import json

    return json.dumps(d, allow_nan=True) + "\n"
