"""The resolved configuration of one training run: defaults, TOML files, command-line overrides.

A run is described by five sections, each a small dataclass whose field defaults are the
defaults of ``neuronlab train``::

    [data]            source, test_size, val_size, preprocess, components, classes
    [model]           hidden, activation, init, dropout, batchnorm, loss
    [optim]           optimizer, lr, schedule, decay_factor, decay_epochs, decay_rate, clip_norm
    [regularization]  l2, l1, max_norm
    [train]           epochs, batch_size, seed

Precedence is defaults < config file < command line; the run directory keeps the resolved
result as ``config.toml`` so that ``--resume`` and ``evaluate`` rebuild the same run. A typo in
a file is an error that lists the valid keys (a silently ignored ``lrr = 0.1`` would train with
the default learning rate and nobody would notice). Names (activation, optimizer, ...) are
resolved later through the registries, whose errors list the choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from neuronlab._validation import check_number, check_positive_int

__all__ = [
    "AUTO_LR",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "RegularizationConfig",
    "RunConfig",
    "TrainConfig",
    "load_config",
    "save_config",
    "to_toml",
]


@dataclass
class DataConfig:
    """Where the data comes from and how it is split and transformed.

    ``source`` is a data-set name (digits, spiral, circles, moons, xor, blobs), a ``.npz`` /
    ``.npy`` path or ``cifar10:DIR``. ``test_size`` and ``val_size`` are the stratified
    held-out test and validation fractions of all samples (for ``cifar10:DIR``, whose test
    batch is the test set, ``val_size`` is a fraction of the training batches). ``components`` is PCA's k.
    """

    source: str = "digits"
    test_size: float = 0.25
    val_size: float = 0.1
    preprocess: str = "standardize"
    components: int | None = None
    classes: int | None = None

    def validate(self) -> None:
        if not self.source.strip():
            raise ValueError("data.source must not be empty")
        check_number("data.test_size", self.test_size, low=0, high=1, high_inclusive=False)
        check_number("data.val_size", self.val_size, low=0, high=1, high_inclusive=False)
        if self.test_size + self.val_size >= 1:
            raise ValueError(
                f"data.test_size + data.val_size must be < 1 (the rest trains), got "
                f"{self.test_size} + {self.val_size}"
            )
        if self.components is not None:
            _check_bounded_int("data.components", self.components, MAX_WIDTH)
        if self.classes is not None:
            _check_bounded_int("data.classes", self.classes, MAX_WIDTH)
            if self.classes < 2:
                raise ValueError(f"data.classes must be >= 2, got {self.classes}")


@dataclass
class ModelConfig:
    """The MLP: hidden widths, activation, initialisers (hidden layers, output layer),
    dropout rate, batch norm, loss."""

    hidden: list[int] = field(default_factory=lambda: [256])
    activation: str = "relu"
    init: str = "he"
    out_init: str = "normal"
    dropout: float = 0.0
    batchnorm: bool = False
    loss: str = "softmax"

    def validate(self) -> None:
        if len(self.hidden) > MAX_DEPTH:
            raise ValueError(f"model.hidden has {len(self.hidden)} layers; at most {MAX_DEPTH}")
        for i, width in enumerate(self.hidden):
            _check_bounded_int(f"model.hidden[{i}]", width, MAX_WIDTH)
        check_number("model.dropout", self.dropout, low=0, high=1, high_inclusive=False)


@dataclass
class OptimConfig:
    """Update rule and learning-rate schedule.

    Schedule options are in epochs and converted to optimizer steps by the CLI:
    ``step`` multiplies the rate by ``decay_factor`` every ``decay_epochs`` epochs;
    ``exponential`` is lr·e^(−k·epoch) and ``inverse_time`` lr / (1 + k·epoch) with
    k = ``decay_rate``; ``cosine`` anneals to 0 over the whole run.

    ``lr = "auto"`` (:data:`AUTO_LR`) asks ``neuronlab train`` to pick the rate with a
    learning-rate range test (:func:`neuronlab.babysit.lr_find.lr_find`) before training; the
    run folder's ``config.toml`` then holds the number it picked. ``neuronlab search`` has no
    range test per trial and refuses it: its space searches the rate instead.
    """

    optimizer: str = "adam"
    lr: float | Literal["auto"] = 1e-3
    schedule: str = "constant"
    decay_factor: float = 0.5
    decay_epochs: int = 10
    decay_rate: float = 0.1
    clip_norm: float | None = None

    def validate(self) -> None:
        if self.lr != AUTO_LR:
            check_number("optim.lr", self.lr, low=0, low_inclusive=False)
        check_number("optim.decay_factor", self.decay_factor, low=0, high=1, low_inclusive=False)
        _check_bounded_int("optim.decay_epochs", self.decay_epochs, MAX_EPOCHS)
        check_number("optim.decay_rate", self.decay_rate, low=0)
        if self.clip_norm is not None:
            check_number("optim.clip_norm", self.clip_norm, low=0, low_inclusive=False)


@dataclass
class RegularizationConfig:
    """Penalties on weights (never biases) and the max-norm constraint (``None``: off)."""

    l2: float = 0.0
    l1: float = 0.0
    max_norm: float | None = None

    def validate(self) -> None:
        check_number("regularization.l2", self.l2, low=0)
        check_number("regularization.l1", self.l1, low=0)
        if self.max_norm is not None:
            check_number("regularization.max_norm", self.max_norm, low=0, low_inclusive=False)


@dataclass
class TrainConfig:
    """Length of training, minibatch size, the one seed every random choice derives from,
    early stopping and class weights.

    ``early_stopping`` is the patience in epochs (None: train every epoch): training stops when
    ``monitor`` (an epoch metric: ``val_loss``, ``val_acc``, ``val_error``, ``loss``, ``acc``,
    ``error``) has not improved for that many epochs, and the saved model is the best epoch's.
    ``class_weight`` is ``"none"`` or ``"balanced"`` (each class weighted by
    n_samples / (n_classes * its count), scikit-learn's formula). ``sharpness_every`` (steps,
    None: off) has the Monitor estimate the top Hessian eigenvalue against the optimizer's
    stability bound (:mod:`neuronlab.babysit.sharpness`), a costly measurement.
    """

    epochs: int = 30
    batch_size: int = 32
    seed: int = 0
    early_stopping: int | None = None
    monitor: str = "val_loss"
    class_weight: str = "none"
    sharpness_every: int | None = None

    def validate(self) -> None:
        _check_bounded_int("train.epochs", self.epochs, MAX_EPOCHS)
        _check_bounded_int("train.batch_size", self.batch_size, MAX_BATCH)
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, numbers.Integral)
            or not 0 <= self.seed < 2**63
        ):
            raise ValueError(f"train.seed must be an integer in [0, 2**63), got {self.seed!r}")
        if self.early_stopping is not None:
            if isinstance(self.early_stopping, bool) or not 0 <= self.early_stopping <= MAX_EPOCHS:
                raise ValueError(
                    f"train.early_stopping (the patience in epochs) must be in [0, {MAX_EPOCHS:,}], "
                    f"got {self.early_stopping!r}"
                )
        if self.monitor not in MONITORS:
            raise ValueError(f"train.monitor must be one of {', '.join(MONITORS)}, got {self.monitor!r}")
        if self.class_weight not in ("none", "balanced"):
            raise ValueError(f"train.class_weight must be none or balanced, got {self.class_weight!r}")
        if self.sharpness_every is not None:
            _check_bounded_int("train.sharpness_every", self.sharpness_every, MAX_EPOCHS * MAX_BATCH)


#: ``optim.lr``'s one word: find the learning rate with a range test before training.
AUTO_LR = "auto"

#: Bounds checked before anything is allocated (a mistyped 100000000 must be a clear error,
#: not a MemoryError): widths and class counts, hidden layers, epochs, minibatch rows.
MAX_WIDTH = 1 << 20
MAX_DEPTH = 64
MAX_EPOCHS = 1_000_000
MAX_BATCH = 1 << 20


#: Epoch metrics early stopping can watch (acc for classification, error for regression).
MONITORS = ("val_loss", "val_acc", "val_error", "loss", "acc", "error")


def _check_bounded_int(name: str, value: Any, high: int) -> int:
    value = check_positive_int(name, value)
    if value > high:
        raise ValueError(f"{name} must be <= {high:,}, got {value:,}")
    return value


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "regularization": RegularizationConfig,
    "train": TrainConfig,
}


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(where: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the field type ``tp``; ints are accepted where floats are expected."""
    args = typing.get_args(tp)
    if type(None) in args:  # ``X | None``
        if value is None:
            return None
        tp = next(a for a in args if a is not type(None))
    words = [w for a in args if typing.get_origin(a) is Literal for w in typing.get_args(a)]
    if words:  # ``X | Literal["word"]``: the word, or an X
        if isinstance(value, str):
            if value in words:
                return value
            choices = " or ".join(repr(w) for w in words)
            raise TypeError(f"{where} must be a number, got {value!r} (or the word {choices})")
        tp = next(a for a in args if typing.get_origin(a) is not Literal)
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{where} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"{where} must be a string, got {value!r}")
        return value
    if typing.get_origin(tp) is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where} must be a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(f"{where}[{i}]", v, item) for i, v in enumerate(value)]
    raise TypeError(f"unsupported config type {tp!r} for {where}")  # pragma: no cover


@dataclass
class RunConfig:
    """Everything that defines a run; ``RunConfig()`` is the default run of ``neuronlab train``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "config") -> RunConfig:
        """Build and validate a config from nested dicts ``{section: {key: value}}``.

        Missing sections and keys take their defaults. An unknown section or key raises a
        ValueError naming ``source`` and listing the valid names.
        """
        if not isinstance(d, dict):
            raise TypeError(f"{source} must be a table of sections, got {type(d).__name__}")
        sections = {}
        for name, body in d.items():
            if name not in _SECTIONS:
                hint = _suggest(name, list(_SECTIONS))
                for sec, sec_cls in _SECTIONS.items():  # a key written outside its section
                    if name in _field_types(sec_cls):
                        hint = f" ({name!r} belongs in [{sec}])"
                raise ValueError(
                    f"unknown section {name!r} in {source}{hint}; "
                    f"valid sections: {', '.join(_SECTIONS)}"
                )
            if not isinstance(body, dict):
                raise TypeError(f"[{name}] in {source} must be a table, got {body!r}")
            sec_cls = _SECTIONS[name]
            types = _field_types(sec_cls)
            kwargs = {}
            for key, value in body.items():
                if key not in types:
                    raise ValueError(
                        f"unknown key {key!r} in [{name}] of {source}{_suggest(key, list(types))}; "
                        f"valid keys: {', '.join(types)}"
                    )
                kwargs[key] = _coerce(f"{name}.{key}", value, types[key])
            sections[name] = sec_cls(**kwargs)
        cfg = cls(**sections)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain dicts (lists copied), ``None`` kept for unset optional values."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in _SECTIONS}

    def validate(self) -> None:
        for name in _SECTIONS:
            getattr(self, name).validate()
        t = self.train
        if t.early_stopping is not None and t.monitor.startswith("val_") and self.data.val_size == 0:
            raise ValueError(
                f"train.monitor {t.monitor!r} needs a validation split: set data.val_size > 0 "
                "(or monitor a training metric)"
            )

    def with_overrides(
        self, overrides: dict[str, dict[str, Any]], *, source: str = "options"
    ) -> RunConfig:
        """Return a new config with ``{section: {key: value}}`` replacing this one's values."""
        merged = self.to_dict()
        for name, body in overrides.items():
            if name not in merged:
                raise ValueError(
                    f"unknown section {name!r} in {source}; valid sections: {', '.join(_SECTIONS)}"
                )
            merged[name].update(body)
        return RunConfig.from_dict(merged, source=source)

    def to_toml(self) -> str:
        return to_toml(self.to_dict())


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read a TOML config file; missing keys take their defaults.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ConfigError
        If the file cannot be read as TOML (see :func:`read_toml`).
    ValueError
        If the file holds an unknown section or key (the message lists the valid ones), or a
        value is out of range.
    TypeError
        If a value has the wrong type.
    """
    return RunConfig.from_dict(read_toml(path, "config file"), source=str(path))


def read_toml(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The tables of the TOML file ``path``; errors name ``what`` it is ("config file", ...).

    Only a regular file of at most 1 MiB, nested at most 32 deep, is read: see
    :func:`neuronlab.io.tomlfile.read_toml`. Raises FileNotFoundError or
    :class:`~neuronlab.errors.ConfigError` (a ValueError).
    """
    from neuronlab.io.tomlfile import read_toml as read_checked

    return read_checked(path, what)


def save_config(config: RunConfig, path: str | os.PathLike[str]) -> None:
    """Write ``config`` as TOML (values that are ``None`` are left out: TOML has no null)."""
    Path(path).write_text(config.to_toml(), encoding="utf-8")


def _toml_value(where: str, v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        if not math.isfinite(v):
            raise ValueError(f"{where} must be finite to be written as TOML, got {v!r}")
        return repr(float(v))  # Python's shortest round-trip repr is valid TOML (1e-05, 0.001)
    if isinstance(v, str):
        # A JSON string is a valid TOML basic string: the same escapes (\" \\ \n \uXXXX).
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(f"{where}[{i}]", x) for i, x in enumerate(v)) + "]"
    raise TypeError(f"{where} cannot be written as TOML: {type(v).__name__}")


def to_toml(d: dict[str, dict[str, Any]]) -> str:
    """Write nested ``{section: {key: value}}`` dicts of scalars and lists as TOML text.

    A deliberately tiny writer (no dependency) for the flat shape of run configs; ``None``
    values are omitted because TOML has no null and a missing key means "the default".
    """
    lines: list[str] = []
    for section, body in d.items():
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        for key, value in body.items():
            if value is not None:
                lines.append(f"{key} = {_toml_value(f'{section}.{key}', value)}")
    return "\n".join(lines) + "\n"
