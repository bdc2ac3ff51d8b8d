"""Strategies on synthetic objectives (no training): trials run in this process (workers=0)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from _objectives import OPT_LOG_LR, OPT_Y, quadratic

from neuronlab.search import CoarseToFine, Grid, Space, get_strategy, run_search

SPACE = {"lr": "loguniform(1e-5, 1e-1)", "y": "uniform(0, 1)", "c": "choice(a, b)"}


def test_grid_runs_every_combination_once():
    r = run_search(quadratic, SPACE, strategy=Grid(points=3), n_trials=100, workers=0, pruner=None)
    # 3 lr values x 3 y values x 2 choices; n_trials is capped at the grid size
    assert len(r.records) == 18
    combos = {(t["params"]["lr"], t["params"]["y"], t["params"]["c"]) for t in r.records}
    assert len(combos) == 18
    assert sorted({c[0] for c in combos}) == pytest.approx([1e-5, 1e-3, 1e-1])
    # the grid point nearest the optimum: log10 lr = -3 (|−3 + 2.5| = 0.5), y = 0.5 (0.2 away):
    # value -(0.25 + 0.04) = -0.29
    assert r.best["value"] == pytest.approx(-0.29)


def test_random_samples_log_scale_within_bounds():
    r = run_search(quadratic, SPACE, strategy="random", n_trials=200, workers=0, pruner=None, seed=1)
    lr = np.array([t["params"]["lr"] for t in r.records])
    assert lr.min() >= 1e-5 and lr.max() <= 1e-1
    # log-uniform: a quarter of the draws per decade-pair; uniform in lr would put ~90% above 1e-2
    frac_low = np.mean(lr < 1e-3)
    assert 0.4 < frac_low < 0.6
    assert {t["params"]["c"] for t in r.records} == {"a", "b"}


def test_tpe_beats_random_start():
    r = run_search(quadratic, SPACE, strategy="tpe", n_trials=40, workers=0, pruner=None, seed=0)
    values = [t["value"] for t in r.records]
    # after its 10 random start-up trials, TPE's picks are better on average than the start-up
    assert np.mean(values[20:]) > np.mean(values[:10])
    assert r.best["value"] > -0.05


def test_coarse_to_fine_narrows_toward_the_optimum():
    strat = CoarseToFine(stages=3, keep=0.25, margin=0.1)
    r = run_search(quadratic, SPACE, strategy=strat, n_trials=60, workers=0, pruner=None, seed=0)
    assert [sum(t["stage"] == s for t in r.records) for s in range(3)] == [20, 20, 20]
    assert [r.records[i]["budget"] for i in (0, 20, 40)] == [0.25, 0.5, 1.0]
    widths, dists = [], []
    for sp in r.stages:
        lo, hi = math.log10(sp["lr"].low), math.log10(sp["lr"].high)
        widths.append(hi - lo)
        dists.append(max(lo - OPT_LOG_LR, OPT_LOG_LR - hi, 0.0))
        assert sp["lr"].low >= 1e-5 and sp["lr"].high <= 1e-1
    assert widths[0] == pytest.approx(4.0)
    assert widths[1] < 0.6 * widths[0] and widths[2] < 0.6 * widths[1]
    assert dists[-1] < 0.2  # the last range reaches to within 0.2 decades of the optimum
    assert r.stages[-1]["y"].low - 0.1 < OPT_Y < r.stages[-1]["y"].high + 0.1
    # every trial of a stage was sampled inside that stage's range
    for t in r.records:
        sp = r.stages[t["stage"]]
        assert sp["lr"].low <= t["params"]["lr"] <= sp["lr"].high
    final = [t["value"] for t in r.records if t["stage"] == 2]
    coarse = [t["value"] for t in r.records if t["stage"] == 0]
    assert np.median(final) > np.median(coarse)


def test_coarse_to_fine_waits_for_the_previous_stage():
    strat = CoarseToFine(stages=2)
    space = Space(SPACE)
    state = SimpleNamespace(name="RUNNING")
    running = SimpleNamespace(state=state, user_attrs={"stage": 0}, params={}, value=None)
    # stage 0's quota (2 of 4) is used but one trial still runs: stage 1 cannot be planned yet
    done = SimpleNamespace(state=SimpleNamespace(name="COMPLETE"), user_attrs={"stage": 0},
                           params={"lr": 1e-3, "y": 0.2, "c": "a"}, value=-0.3)
    assert strat.plan(space, [done, running], 4) is None
    plan = strat.plan(space, [done, done], 4)
    assert plan.stage == 1 and plan.budget == 1.0
    # the only completed trial used c = "a": stage 1 fixes it (drawn by the strategy)
    assert plan.fixed == {"c": "a"}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"stages": 0}, "stages"), ({"keep": 0.0}, "keep"), ({"margin": -1}, "margin"),
    ({"stages": 2, "budgets": [0.5]}, "budgets"),
])
def test_coarse_to_fine_validates(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        CoarseToFine(**kwargs)


def test_unknown_strategy_lists_choices():
    with pytest.raises(ValueError, match="grid, random, tpe, coarse-to-fine"):
        get_strategy("bayes")


def test_coarse_to_fine_narrows_around_the_best_trials_in_the_study_direction():
    """A minimising study's best trials are its lowest values: the next stage's range is
    around them, not around the worst."""
    strat = CoarseToFine(stages=2, keep=0.25)
    space = Space({"lr": "loguniform(1e-5, 1)"})
    done = [SimpleNamespace(state=SimpleNamespace(name="COMPLETE"), user_attrs={"stage": 0},
                            params={"lr": lr}, value=value)
            for lr, value in ((1e-5, 0.1), (1e-4, 0.5), (1e-2, 0.9), (1.0, 2.0))]
    low = strat.narrow(space, done, maximize=False)["lr"]
    high = strat.narrow(space, done, maximize=True)["lr"]
    assert low.low <= 1e-5 <= low.high < 1e-2  # around the lowest value's lr
    assert high.low > 1e-2 and high.high >= 1.0  # around the highest value's lr

