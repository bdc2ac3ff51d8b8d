"""Search strategies: which point of the space the next trial tries.

Every strategy drives an Optuna sampler through ask/tell, so all trials of all strategies live
in one Optuna study (resumable from its journal). :meth:`Strategy.plan` gives the
distributions (and the training budget) of the next trial from the trials so far:

- :class:`Grid`: every combination, numeric ranges at ``points`` values (Optuna's GridSampler).
- :class:`Random`: independent uniform draws, log-uniform for scale parameters.
- :class:`TPE`: Optuna's Tree-structured Parzen Estimator (Bayesian), with the constant-liar
  heuristic so that parallel workers do not all try the same promising point.
- :class:`CoarseToFine`: the notes' recipe. Random search in stages; stage ``s`` trains with a
  fraction ``budgets[s]`` of the epochs ("a few epochs first"), then every numeric range is
  narrowed to the span of the stage's best trials (plus a margin) and every categorical to the
  choices those trials used, and the next stage searches there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuronlab._validation import check_number, check_positive_int
from neuronlab.search.space import Choice, Param, Space

__all__ = ["STRATEGIES", "TPE", "CoarseToFine", "Grid", "Plan", "Random", "Strategy", "get_strategy"]


@dataclass(frozen=True)
class Plan:
    """What the next trial samples from: ``space`` and its Optuna ``distributions``, the
    fraction ``budget`` of the full training it gets, its ``stage`` (0 unless staged) and
    ``fixed`` values chosen by the strategy itself (enqueued into the study before the ask)."""

    space: Space
    distributions: dict[str, Any]
    budget: float = 1.0
    stage: int = 0
    fixed: dict[str, Any] = field(default_factory=dict)


class Strategy:
    """Base class. Subclasses give an Optuna sampler and may override :meth:`plan`."""

    name = "strategy"

    def sampler(self, space: Space, seed: int) -> Any:  # pragma: no cover - overridden
        """The Optuna sampler this strategy asks with (every subclass defines it).

        Parameters
        ----------
        space : Space
            The search space.
        seed : int
            Seeds the sampler.

        Returns
        -------
        optuna.samplers.BaseSampler
        """
        raise NotImplementedError

    def total_trials(self, space: Space, n_trials: int) -> int:
        """How many trials the search runs when asked for ``n_trials`` (all of them, in the
        base class).

        Parameters
        ----------
        space : Space
            The search space.
        n_trials : int
            The trials asked for.

        Returns
        -------
        int
        """
        return n_trials

    def plan(self, space: Space, trials: Sequence[Any], n_trials: int, *,
             maximize: bool = True) -> Plan | None:
        """The next trial's plan given the study's ``trials``, or None when it must wait for
        running trials to finish. The base class samples the whole space at full budget.

        Parameters
        ----------
        space : Space
            The search space.
        trials : sequence of optuna.trial.FrozenTrial
            The study's trials so far, running ones included.
        n_trials : int
            The trials the search runs in all.

        maximize : bool, default True
            Whether the study maximises its objective (False: it minimises, and the best
            trials are those with the lowest values).

        Returns
        -------
        Plan or None
        """
        return Plan(space, space.distributions())


class Random(Strategy):
    """Independent random draws (log-uniform for ``loguniform`` / ``logint`` parameters)."""

    name = "random"

    def sampler(self, space: Space, seed: int) -> Any:
        """The Optuna sampler this strategy asks with: Optuna's RandomSampler.

        Parameters
        ----------
        space : Space
            The search space (unused).
        seed : int
            Seeds the sampler.

        Returns
        -------
        optuna.samplers.BaseSampler
        """
        import optuna

        return optuna.samplers.RandomSampler(seed=seed)


class TPE(Strategy):
    """Optuna's TPE sampler; the first ``n_startup_trials`` trials are random.

    Parameters
    ----------
    n_startup_trials : int > 0, default 10
        Random trials before TPE models the results.
    """

    name = "tpe"

    def __init__(self, *, n_startup_trials: int = 10) -> None:
        self.n_startup_trials = check_positive_int("n_startup_trials", n_startup_trials)

    def sampler(self, space: Space, seed: int) -> Any:
        """The Optuna sampler this strategy asks with: Optuna's TPESampler with the constant-liar heuristic.

        Parameters
        ----------
        space : Space
            The search space (unused).
        seed : int
            Seeds the sampler.

        Returns
        -------
        optuna.samplers.BaseSampler
        """
        import optuna

        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials, constant_liar=True)


class Grid(Strategy):
    """Every combination; numeric ranges are cut into ``points`` values (log-spaced on log
    scales). The number of trials is capped at the size of the grid.

    Parameters
    ----------
    points : int > 0, default 3
        Values per numeric range.
    """

    name = "grid"

    def __init__(self, *, points: int = 3) -> None:
        self.points = check_positive_int("points", points)

    def _space(self, space: Space) -> Space:
        return Space({k: Choice(tuple(v)) for k, v in space.grid(self.points).items()})

    def size(self, space: Space) -> int:
        """The number of points of the grid: the product of each parameter's grid length.

        Parameters
        ----------
        space : Space
            The search space.

        Returns
        -------
        int
        """
        return math.prod(len(v) for v in space.grid(self.points).values())

    def total_trials(self, space: Space, n_trials: int) -> int:
        """``n_trials``, capped at the size of the grid.

        Parameters
        ----------
        space : Space
            The search space.
        n_trials : int
            The trials asked for.

        Returns
        -------
        int
        """
        return min(n_trials, self.size(space))

    def sampler(self, space: Space, seed: int) -> Any:
        """The Optuna sampler this strategy asks with: Optuna's GridSampler over the grid points.

        Parameters
        ----------
        space : Space
            The search space.
        seed : int
            Seeds the sampler.

        Returns
        -------
        optuna.samplers.BaseSampler
        """
        import optuna

        class _GridSampler(optuna.samplers.GridSampler):
            # Optuna's grid sampler calls study.stop() after the last grid point, which only
            # works inside study.optimize; with ask/tell the trial count is capped instead.
            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                pass

        return _GridSampler(space.grid(self.points), seed=seed)

    def plan(self, space: Space, trials: Sequence[Any], n_trials: int, *,
             maximize: bool = True) -> Plan | None:
        """Every trial samples the grid: each parameter becomes a choice of its grid values.

        Parameters
        ----------
        space : Space
            The search space.
        trials : sequence of optuna.trial.FrozenTrial
            The study's trials so far, running ones included.
        n_trials : int
            The trials the search runs in all.

        maximize : bool, default True
            Whether the study maximises its objective (False: it minimises, and the best
            trials are those with the lowest values).

        Returns
        -------
        Plan
        """
        g = self._space(space)
        return Plan(g, g.distributions())


class CoarseToFine(Strategy):
    """Random search in ``stages`` stages, each narrowed around the previous stage's best.

    Parameters
    ----------
    stages : int > 0
    keep : float in (0, 1]
        Fraction of a stage's completed trials (at least one) whose values span the next
        stage's ranges.
    margin : float >= 0
        Each narrowed range is widened by ``margin`` times the current range's width on both
        sides (in log10 space for log scales), then clipped to the current range: the best
        point may sit on the edge of the span and the next stage should see past it.
    budgets : sequence of float in (0, 1], optional
        Training budget per stage (fraction of the epochs); default halves per earlier stage
        (..., 0.25, 0.5, 1.0).
    """

    name = "coarse-to-fine"

    def __init__(
        self, *, stages: int = 3, keep: float = 0.25, margin: float = 0.1, budgets: Sequence[float] | None = None
    ) -> None:
        self.stages = check_positive_int("stages", stages)
        self.keep = check_number("keep", keep, low=0, high=1, low_inclusive=False)
        self.margin = check_number("margin", margin, low=0)
        if budgets is None:
            budgets = [0.5 ** (self.stages - 1 - s) for s in range(self.stages)]
        budgets = [check_number(f"budgets[{i}]", b, low=0, high=1, low_inclusive=False) for i, b in enumerate(budgets)]
        if len(budgets) != self.stages:
            raise ValueError(f"budgets must have one value per stage ({self.stages}), got {budgets!r}")
        self.budgets = tuple(budgets)

    def sampler(self, space: Space, seed: int) -> Any:
        """The Optuna sampler this strategy asks with: Optuna's RandomSampler (``seed`` also seeds the draws of narrowed categoricals).

        Parameters
        ----------
        space : Space
            The search space (unused).
        seed : int
            Seeds the sampler.

        Returns
        -------
        optuna.samplers.BaseSampler
        """
        import optuna

        self._seed = seed
        return optuna.samplers.RandomSampler(seed=seed)

    def quotas(self, n_trials: int) -> list[int]:
        """Trials per stage: equal shares, the remainder to the last stages.

        Parameters
        ----------
        n_trials : int
            The trials of the whole search.

        Returns
        -------
        list of int
            One count per stage, summing to ``n_trials``.

        Examples
        --------
        >>> CoarseToFine(stages=3).quotas(10)
        [3, 3, 4]
        """
        base, extra = divmod(n_trials, self.stages)
        return [base + (1 if s >= self.stages - extra else 0) for s in range(self.stages)]

    def stage_spaces(self, space: Space, trials: Sequence[Any], upto: int, *,
                     maximize: bool = True) -> list[Space]:
        """The spaces of stages 0..upto, each narrowed from the finished trials of the last.

        Parameters
        ----------
        space : Space
            The full search space (stage 0's).
        trials : sequence of optuna.trial.FrozenTrial
            The study's trials; each one's stage is its ``user_attrs["stage"]``.
        upto : int
            The last stage wanted.
        maximize : bool, default True
            Whether the study maximises its objective (False: it minimises, and the best
            trials are those with the lowest values).

        Returns
        -------
        list of Space
            ``upto + 1`` spaces.
        """
        spaces = [space]
        for s in range(upto):
            spaces.append(self.narrow(spaces[-1], [t for t in trials if _stage(t) == s],
                                      maximize=maximize))
        return spaces

    def narrow(self, space: Space, trials: Sequence[Any], *, maximize: bool = True) -> Space:
        """Narrow ``space`` around the best ``keep`` fraction of ``trials`` (complete, finite).

        "Best" is the highest objective value (the lowest with ``maximize=False``). Numeric
        ranges shrink to the span of those trials' values plus ``margin``; categoricals keep
        the choices those trials used.

        Parameters
        ----------
        space : Space
            The space the trials searched.
        trials : sequence of optuna.trial.FrozenTrial
            One stage's trials.
        maximize : bool, default True
            Whether the study maximises its objective (False: it minimises, and the best
            trials are those with the lowest values).

        Returns
        -------
        Space
            ``space`` itself when no trial completed with a finite value.
        """
        done = [t for t in trials if _complete(t)]
        if not done:  # every trial failed: nothing to narrow around
            return space
        done.sort(key=lambda t: t.value, reverse=maximize)  # the best first
        top = done[: max(1, math.ceil(self.keep * len(done)))]
        out: dict[str, Param] = {}
        for key, p in space.items():
            values = [t.params[key] for t in top if key in t.params]
            if not values:
                out[key] = p
            elif isinstance(p, Choice):
                out[key] = Choice(tuple(c for c in p.choices if c in values))
            else:
                out[key] = self._narrow_range(p, values)
        return Space(out)

    def _narrow_range(self, p: Any, values: list[float]) -> Param:
        f = math.log10 if p.log else float
        inv = (lambda v: 10.0**v) if p.log else float
        lo, hi = f(p.low), f(p.high)
        pad = self.margin * (hi - lo)
        new_lo = max(lo, f(min(values)) - pad)
        new_hi = min(hi, f(max(values)) + pad)
        # clip back to the exact old bounds: 10**log10(x) may differ from x in the last bit
        return p.narrowed(max(p.low, inv(new_lo)), min(p.high, inv(new_hi)))

    def plan(self, space: Space, trials: Sequence[Any], n_trials: int, *,
             maximize: bool = True) -> Plan | None:
        """The plan of the first stage whose quota is not used up: that stage's narrowed space
        and budget.

        Parameters
        ----------
        space : Space
            The search space.
        trials : sequence of optuna.trial.FrozenTrial
            The study's trials so far, running ones included.
        n_trials : int
            The trials the search runs in all.

        maximize : bool, default True
            Whether the study maximises its objective (False: it minimises, and the best
            trials are those with the lowest values).

        Returns
        -------
        Plan or None
            None while a trial of an earlier stage is still running (its result decides the
            ranges).
        """
        quotas = self.quotas(n_trials)
        asked = [sum(1 for t in trials if _stage(t) == s and _counts(t)) for s in range(self.stages)]
        stage = next((s for s in range(self.stages) if asked[s] < quotas[s]), self.stages - 1)
        if stage > 0 and any(_running(t) and _stage(t) < stage for t in trials):
            return None  # the previous stage is not finished: its results decide the ranges
        sp = self.stage_spaces(space, trials, stage, maximize=maximize)[-1]
        dists, fixed = sp.distributions(), {}
        # Optuna refuses a categorical whose choices change within a study, so a narrowed
        # categorical keeps its full distribution and the value is drawn here, from the
        # choices that survived, seeded by the search seed and the trial count.
        rng = np.random.default_rng([getattr(self, "_seed", 0), len(trials)])
        for key, p in space.items():
            if isinstance(p, Choice) and sp[key] != p:
                dists[key] = p.to_optuna()
                choices = sp[key].choices
                fixed[key] = choices[int(rng.integers(len(choices)))]
        return Plan(sp, dists, budget=self.budgets[stage], stage=stage, fixed=fixed)


def _stage(t: Any) -> int:
    return int(t.user_attrs.get("stage", 0))


def _state(t: Any) -> str:
    return t.state.name


def _running(t: Any) -> bool:
    return _state(t) == "RUNNING"


def _counts(t: Any) -> bool:
    """A trial that uses up a slot: running, complete, pruned or failed by itself (not one
    interrupted with the process that ran the search)."""
    return _state(t) != "FAIL" or not t.user_attrs.get("interrupted", False)


def _complete(t: Any) -> bool:
    return _state(t) == "COMPLETE" and t.value is not None and math.isfinite(t.value)


STRATEGIES: dict[str, type[Strategy]] = {
    "grid": Grid,
    "random": Random,
    "tpe": TPE,
    "coarse-to-fine": CoarseToFine,
}


def get_strategy(name: str | Strategy, **kwargs: Any) -> Strategy:
    """A strategy by name (``grid``, ``random``, ``tpe``, ``coarse-to-fine``) or as given.

    Parameters
    ----------
    name : str or Strategy
        A name (case-insensitive; ``_`` reads as ``-``), or a Strategy, returned as it is.
    **kwargs
        The strategy's constructor options (``points=...``, ``stages=...``); only with a
        name.

    Returns
    -------
    Strategy

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the choices).
    TypeError
        If options are given with a Strategy, or an option is not one the strategy takes.

    Examples
    --------
    >>> get_strategy("coarse_to_fine", stages=2).budgets
    (0.5, 1.0)
    """
    if isinstance(name, Strategy):
        if kwargs:
            raise TypeError("options are only accepted with a strategy name")
        return name
    key = str(name).strip().lower().replace("_", "-")
    if key not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
    return STRATEGIES[key](**kwargs)
