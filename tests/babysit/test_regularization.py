"""The ``regularization_too_strong`` rule: the penalty is most of the objective while the
network underfits; on hand-built histories (every branch, malformed records) and on real runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _runs import train

import neuronlab as nl
from neuronlab.babysit import regularization as reg
from neuronlab.babysit.regularization import objective_records, regularization_rule
from neuronlab.babysit.runview import RunView
from neuronlab.train import History


def _history(objective: list[tuple[int, float, float]], acc: float | None = 0.5,
             extra: list[dict] | None = None) -> dict:
    """A history dict with ``(step, data_loss, penalty)`` objective records and one epoch."""
    monitor = [{"step": s, "kind": "objective", "layer": "", "type": "", "data_loss": d,
                "penalty": p} for s, d, p in objective]
    monitor += extra or []
    epoch = {"epoch": 0, "step": objective[-1][0] if objective else 0, "loss": 1.0}
    if acc is not None:
        epoch["acc"] = acc
    return {"loss": [1.0] * 10, "lr": [1e-3] * 10, "epochs": [epoch], "monitor": monitor,
            "info": {}}


STRONG = [(0, 2.3, 250.0), (100, 1.5, 120.0), (200, 1.4, 100.0), (300, 1.37, 95.0)]


def test_fires_with_the_numbers_when_the_penalty_dominates_and_the_net_underfits():
    f = regularization_rule(RunView(_history(STRONG, acc=0.85)))
    assert f is not None and f.rule == "regularization_too_strong" and f.severity == "warning"
    # the last three records (never step 0) are averaged
    data, penalty = (1.5 + 1.4 + 1.37) / 3, (120 + 100 + 95) / 3
    ev = f.evidence
    assert ev["data_loss"] == pytest.approx(data) and ev["penalty"] == pytest.approx(penalty)
    assert ev["penalty_share"] == pytest.approx(penalty / (data + penalty))
    assert ev["data_loss_start"] == 2.3 and ev["acc"] == 0.85 and ev["steps"] == [100, 300]
    assert "99% of the objective" in f.message and "85.0%" in f.message
    assert "lower the L2/L1 strength" in f.action


@pytest.mark.parametrize("acc, data_end, fires", [
    (0.85, 0.2, True),     # low accuracy alone is enough
    (0.97, 1.5, True),     # a data loss still 65% of its start alone is enough
    (0.97, 0.2, False),    # a dominant penalty on a network that fits well is not a problem
    (None, 1.5, True),     # regression: no accuracy, the data loss decides
    (None, 0.2, False),
])
def test_underfitting_is_low_accuracy_or_a_data_loss_that_has_not_fallen(acc, data_end, fires):
    h = _history([(0, 2.3, 250.0), (100, data_end, 100.0)], acc=acc)
    assert (regularization_rule(h) is not None) is fires


@pytest.mark.parametrize("acc, fires", [(0.99, False), (0.5, True), (None, False)])
def test_a_full_batch_run_is_judged_by_its_accuracy_alone(acc, fires):
    """L-BFGS's first objective record comes after its first epoch's minimize call: a data
    loss that has stayed there (97% of it) is a converged fit, not underfitting."""
    h = _history([(0, 0.0077, 0.4), (10, 0.0075, 0.4)], acc=acc)
    assert regularization_rule(h) is not None  # minibatch: the data loss has not fallen
    h["info"] = {"batch_size": None}  # what the Monitor records for L-BFGS
    for run in (h, RunView(h), History.from_dict(h)):
        assert (regularization_rule(run) is not None) is fires


def test_quiet_when_the_penalty_is_a_small_part_of_the_objective():
    share = reg.PENALTY_SHARE
    penalty = 1.5 * share / (1 - share) * 0.99  # just under the threshold
    assert regularization_rule(_history([(0, 2.3, 0.1), (100, 1.5, penalty)], acc=0.5)) is None
    assert regularization_rule(_history([(0, 2.3, 0.0), (100, 1.5, 0.0)], acc=0.5)) is None


def test_quiet_without_objective_records_or_with_only_one():
    assert regularization_rule(_history([], acc=0.5)) is None
    assert regularization_rule(_history([(0, 2.3, 250.0)], acc=0.5)) is None
    assert regularization_rule({"loss": [], "lr": [], "epochs": []}) is None


def test_malformed_records_are_skipped_not_trusted():
    bad = [{"step": 50, "kind": "objective", "layer": "", "type": "", "data_loss": None,
            "penalty": 5.0},
           {"step": 60, "kind": "objective", "layer": "", "type": "", "data_loss": math.nan,
            "penalty": 5.0},
           {"step": 70, "kind": "objective", "layer": "", "type": "", "data_loss": "1",
            "penalty": 5.0},
           {"step": True, "kind": "objective", "layer": "", "type": "", "data_loss": 1.0,
            "penalty": 5.0},
           {"step": 80, "kind": "objective", "layer": "", "type": "", "data_loss": -1.0,
            "penalty": 5.0},
           {"step": 90, "kind": "param", "layer": "0", "type": "Linear", "param": "0.W"},
           "not a record"]
    h = _history(STRONG, acc=0.85, extra=bad)
    assert [r["step"] for r in objective_records(h)] == [0, 100, 200, 300]
    assert regularization_rule(h).evidence["steps"] == [100, 300]


def test_reads_a_runview_a_history_and_its_dict_alike():
    d = _history(STRONG, acc=0.85)
    h = History.from_dict(d)
    found = [regularization_rule(x) for x in (d, h, RunView(d), RunView(h))]
    assert all(f is not None for f in found)
    assert all(f == found[0] for f in found)


def _l2_run(strength: float) -> nl.Trainer:
    model = nl.mlp(64, [64], 10, rng=0)
    return train(model, nl.Adam(lr=1e-3), epochs=4, regularizer=nl.L2(strength))


def test_a_real_run_with_a_huge_l2_fires_and_a_sane_one_does_not():
    strong = _l2_run(1.0)
    f = regularization_rule(RunView(strong.history))
    assert f is not None, objective_records(strong.history)[-3:]
    assert f.evidence["penalty_share"] > 0.9
    # the penalty the monitor recorded is the regulariser's: 0.5 * l2 * sum |W|^2 at that step
    recs = objective_records(strong.history)
    assert recs and all(r["penalty"] > 0 for r in recs)
    assert regularization_rule(RunView(_l2_run(1e-4).history)) is None


def test_thresholds_are_module_constants():
    assert 0 < reg.PENALTY_SHARE < 1 and 0 < reg.UNDERFIT_ACC < 1 and 0 < reg.DATA_LOSS_SHARE < 1
    assert isinstance(reg.TAIL, int) and reg.TAIL >= 1
    assert set(reg.__all__) >= {"regularization_rule", "objective_records", "PENALTY_SHARE"}
    assert np.isfinite(reg.DATA_LOSS_SHARE)
