"""Learning-rate schedules: pure functions of the global optimizer step.

A schedule is a frozen dataclass; ``schedule(step)`` returns the learning rate for the
optimizer step ``step`` (counting from 0), so resuming a run only needs the step counter.
Epoch-based rules are expressed in steps: the trainer converts "every k epochs" into
``every = k * steps_per_epoch``. Reducing the rate when validation stalls depends on
history, so it is the ``ReduceLROnPlateau`` callback, not a schedule.

``get_config()`` gives ``{"type": name, **fields}`` (a warm-up nests its inner schedule's
config under ``"schedule"``), the flat form a TOML table uses; :func:`schedule_from_config`
rebuilds it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from neuronlab._validation import check_number, check_positive_int
from neuronlab.registry import SCHEDULES

__all__ = [
    "Schedule",
    "Constant",
    "StepDecay",
    "Exponential",
    "InverseTime",
    "Cosine",
    "Warmup",
    "get_schedule",
    "schedule_from_config",
]


def _check_step(step: Any) -> None:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step must be an integer >= 0, got {step!r}")


def _set(obj: Any, name: str, value: Any) -> None:
    # frozen dataclasses store validated (normalised) values through object.__setattr__
    object.__setattr__(obj, name, value)


def _positive_lr(obj: Any, name: str = "lr") -> None:
    _set(obj, name, check_number(name, getattr(obj, name), low=0, low_inclusive=False))


@dataclass(frozen=True)
class Schedule:
    """Base class: ``__call__(step) -> lr`` and ``get_config()``."""

    registry_name: ClassVar[str] = ""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    @classmethod
    def from_epochs(cls, *, lr: float, steps_per_epoch: int, epochs: int, decay_factor: float,
                    decay_epochs: int, decay_rate: float) -> Schedule:
        """The schedule from a run's settings, which count in epochs (a run config's
        ``[optim]``); each schedule converts them to optimizer steps itself.

        Every schedule receives all of these keywords and reads the ones it uses.

        Parameters
        ----------
        lr : float
            Initial (or constant) learning rate.
        steps_per_epoch : int
            Optimizer steps in one epoch.
        epochs : int
            Epochs of the run.
        decay_factor : float
            Multiplier of a step decay.
        decay_epochs : int
            Period of a step decay, in epochs.
        decay_rate : float
            Decay rate k per epoch of an exponential or 1/t decay.

        Returns
        -------
        Schedule

        Raises
        ------
        ValueError
            In the base class and for schedules that cannot be built from a run config
            (``Warmup``); the message lists the ones that can.
        """
        base = Schedule.from_epochs.__func__  # type: ignore[attr-defined]
        raise ValueError(
            f"schedule {cls.registry_name!r} cannot be built from a run config; choose one of: "
            f"{', '.join(n for n, c in SCHEDULES.items() if c.from_epochs.__func__ is not base)}"
        )

    def get_config(self) -> dict[str, Any]:
        """``{"type": registered name, **constructor fields}`` (JSON/TOML-able)."""
        cfg: dict[str, Any] = {"type": type(self).registry_name}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            cfg[f.name] = value.get_config() if isinstance(value, Schedule) else value
        return cfg


@SCHEDULES.register("constant")
@dataclass(frozen=True)
class Constant(Schedule):
    """lr at every step.

    Parameters
    ----------
    lr : float
        The learning rate (> 0).
    """

    lr: float

    @classmethod
    def from_epochs(cls, *, lr: float, **_: Any) -> Constant:
        """The constant rate ``lr``.

        Parameters
        ----------
        lr : float
            The learning rate.
        **_
            The run's other settings, which this schedule does not use (ignored).

        Returns
        -------
        Constant
        """
        return cls(lr)

    def __post_init__(self) -> None:
        _positive_lr(self)

    def __call__(self, step: int) -> float:
        _check_step(step)
        return self.lr


@SCHEDULES.register("step")
@dataclass(frozen=True)
class StepDecay(Schedule):
    """Step decay: ``lr * factor ** floor(step / every)``.

    Parameters
    ----------
    lr : float
        Initial rate (> 0).
    factor : float
        Multiplier in (0, 1] applied every ``every`` steps (the notes: 0.5 every 5 epochs,
        or 0.1 every 20).
    every : int
        Period in optimizer steps (> 0).
    """

    lr: float
    factor: float = 0.5
    every: int = 1000

    @classmethod
    def from_epochs(cls, *, lr: float, steps_per_epoch: int, decay_factor: float,
                    decay_epochs: int, **_: Any) -> StepDecay:
        """``decay_factor`` every ``decay_epochs`` epochs.

        Parameters
        ----------
        lr : float
            Initial rate.
        steps_per_epoch : int
            Optimizer steps in one epoch.
        decay_factor : float
            The schedule's ``factor``.
        decay_epochs : int
            Period in epochs: ``every = decay_epochs * steps_per_epoch``.
        **_
            The run's other settings, which this schedule does not use (ignored).

        Returns
        -------
        StepDecay
        """
        return cls(lr, factor=decay_factor, every=decay_epochs * steps_per_epoch)

    def __post_init__(self) -> None:
        _positive_lr(self)
        factor = check_number("factor", self.factor, low=0, high=1, low_inclusive=False)
        _set(self, "factor", factor)
        _set(self, "every", check_positive_int("every", self.every))

    def __call__(self, step: int) -> float:
        _check_step(step)
        return float(self.lr * self.factor ** (step // self.every))


@dataclass(frozen=True)
class _Decay(Schedule):
    """A rate ``lr`` decayed at rate ``k`` per step (the notes' alpha_0 and k)."""

    lr: float
    k: float

    @classmethod
    def from_epochs(cls, *, lr: float, steps_per_epoch: int, decay_rate: float,
                    **_: Any) -> _Decay:
        """``decay_rate`` is k per epoch; the schedule counts steps: k / steps_per_epoch.

        Parameters
        ----------
        lr : float
            Initial rate.
        steps_per_epoch : int
            Optimizer steps in one epoch.
        decay_rate : float
            Decay rate k per epoch.
        **_
            The run's other settings, which this schedule does not use (ignored).

        Returns
        -------
        Exponential or InverseTime
            An instance of the class it is called on.
        """
        return cls(lr, k=decay_rate / steps_per_epoch)

    def __post_init__(self) -> None:
        _positive_lr(self)
        _set(self, "k", check_number("k", self.k, low=0))


@SCHEDULES.register("exponential")
@dataclass(frozen=True)
class Exponential(_Decay):
    """Exponential decay: ``lr * exp(-k * step)``.

    Parameters
    ----------
    lr : float
        Initial rate alpha_0 (> 0).
    k : float
        Decay rate per step (>= 0).
    """

    def __call__(self, step: int) -> float:
        _check_step(step)
        return float(self.lr * math.exp(-self.k * step))


@SCHEDULES.register("inverse_time")
@dataclass(frozen=True)
class InverseTime(_Decay):
    """1/t decay: ``lr / (1 + k * step)``.

    Parameters
    ----------
    lr : float
        Initial rate alpha_0 (> 0).
    k : float
        Decay rate per step (>= 0).
    """

    def __call__(self, step: int) -> float:
        _check_step(step)
        return float(self.lr / (1.0 + self.k * step))


@SCHEDULES.register("cosine")
@dataclass(frozen=True)
class Cosine(Schedule):
    """Cosine annealing from lr to min_lr over total_steps, then min_lr.

    ``min_lr + (lr - min_lr) * (1 + cos(pi * min(step, total_steps) / total_steps)) / 2``

    Parameters
    ----------
    lr : float
        Rate at step 0 (> 0).
    total_steps : int
        Length of the decay (> 0).
    min_lr : float
        Final rate, 0 <= min_lr <= lr.
    """

    lr: float
    total_steps: int
    min_lr: float = 0.0

    @classmethod
    def from_epochs(cls, *, lr: float, steps_per_epoch: int, epochs: int,
                    **_: Any) -> Cosine:
        """Anneals over the whole run: ``total_steps = epochs * steps_per_epoch``.

        Parameters
        ----------
        lr : float
            Rate at step 0.
        steps_per_epoch : int
            Optimizer steps in one epoch.
        epochs : int
            Epochs of the run.
        **_
            The run's other settings, which this schedule does not use (ignored).

        Returns
        -------
        Cosine
        """
        return cls(lr, total_steps=epochs * steps_per_epoch)

    def __post_init__(self) -> None:
        _positive_lr(self)
        _set(self, "total_steps", check_positive_int("total_steps", self.total_steps))
        _set(self, "min_lr", check_number("min_lr", self.min_lr, low=0, high=self.lr))

    def __call__(self, step: int) -> float:
        _check_step(step)
        frac = min(step, self.total_steps) / self.total_steps
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * frac))


@SCHEDULES.register("warmup")
@dataclass(frozen=True)
class Warmup(Schedule):
    """Linear warm-up into another schedule.

    With ``W = warmup_steps`` and ``base = schedule(0)``::

        step < W:   base * (step + 1) / W      (base/W at step 0, base at step W-1)
        step >= W:  schedule(step - W)         (the inner schedule starts its clock after warm-up)

    so the rate never is 0 and the inner schedule (e.g. a cosine's ``total_steps``) counts
    only the steps after the warm-up.

    Parameters
    ----------
    schedule : Schedule or dict
        The schedule to follow after warm-up; a dict is read by :func:`schedule_from_config`.
    warmup_steps : int
        Length of the warm-up (> 0).
    """

    schedule: Schedule
    warmup_steps: int

    def __post_init__(self) -> None:
        inner = self.schedule
        if isinstance(inner, Mapping):
            inner = schedule_from_config(inner)
        if not isinstance(inner, Schedule):
            raise TypeError(
                f"schedule must be a Schedule or a config dict, got {type(inner).__name__}"
            )
        _set(self, "schedule", inner)
        _set(self, "warmup_steps", check_positive_int("warmup_steps", self.warmup_steps))

    def __call__(self, step: int) -> float:
        _check_step(step)
        w = self.warmup_steps
        if step < w:
            return float(self.schedule(0) * (step + 1) / w)
        return self.schedule(step - w)


def get_schedule(name: str, **kwargs: Any) -> Schedule:
    """Build the schedule registered as ``name`` with ``kwargs``.

    Parameters
    ----------
    name : str
        "constant", "step", "exponential", "inverse_time", "cosine" or "warmup".
    **kwargs
        The schedule's fields (``lr=...``, ``total_steps=...``).

    Returns
    -------
    Schedule

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the choices) or a value is out of range.
    TypeError
        If a keyword is not one of the schedule's fields.

    Examples
    --------
    >>> s = get_schedule("step", lr=0.1, factor=0.5, every=10)
    >>> s(0), s(10), s(25)
    (0.1, 0.05, 0.025)
    """
    schedule: Schedule = SCHEDULES.create(name, **kwargs)
    return schedule


def schedule_from_config(cfg: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from ``{"type": name, **fields}`` (what ``get_config`` returns).

    Parameters
    ----------
    cfg : mapping
        ``"type"`` is the registry name; the other keys are the schedule's fields (a
        warm-up's ``"schedule"`` may itself be such a mapping).

    Returns
    -------
    Schedule

    Raises
    ------
    ValueError
        If ``cfg`` is not a mapping with a ``"type"`` key, the type is unknown, or a value
        is out of range.

    Examples
    --------
    >>> schedule_from_config({"type": "cosine", "lr": 0.1, "total_steps": 100})
    Cosine(lr=0.1, total_steps=100, min_lr=0.0)
    """
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise ValueError(f"schedule config must be a mapping with a 'type' key, got {cfg!r}")
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    return get_schedule(cfg["type"], **kwargs)
