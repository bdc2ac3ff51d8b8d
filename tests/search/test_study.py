"""The search loop: the search directory, resuming from the journal, failed and pruned
trials, and a worker process killed mid-trial."""

import json
import math
import os

import pytest
from collections import Counter

from _objectives import Counting, KillBeside, KillOnce, SignalParent, curve, diverging, quadratic

from neuronlab.search import SearchInterrupted, run_search
from neuronlab.search.study import JOURNAL_NAME

SPACE = {"lr": "loguniform(1e-5, 1e-1)", "y": "uniform(0, 1)"}


def test_search_directory_contents(tmp_path):
    out = tmp_path / "s"
    r = run_search(quadratic, SPACE, n_trials=5, workers=0, directory=out, pruner=None, plots=True)
    assert (out / "study.journal").stat().st_size > 0
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000", "0001", "0002", "0003", "0004"]
    status = json.loads((out / "trials" / "0003" / "status.json").read_text())
    assert status["state"] == "COMPLETE"
    assert status["value"] == pytest.approx(quadratic(status["params"], None))
    lines = (out / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 5
    csv = (out / "trials.csv").read_text().splitlines()
    assert csv[0].split(",")[:3] == ["number", "state", "value"] and len(csv) == 6
    best = json.loads((out / "best.json").read_text())
    assert best["value"] == max(t["value"] for t in r.records)
    assert (out / "plots" / "lr_reg.png").exists() is False  # no regularisation parameter here
    assert (out / "plots" / "history.png").stat().st_size > 0
    assert (out / "plots" / "importance.png").stat().st_size > 0


def test_resume_from_journal_keeps_trials_and_runs_only_the_rest(tmp_path):
    out, calls = tmp_path / "s", tmp_path / "calls"
    calls.mkdir()
    first = run_search(Counting(str(calls)), SPACE, n_trials=4, workers=0, directory=out, pruner=None, plots=False)
    again = run_search(Counting(str(calls)), SPACE, n_trials=7, workers=0, directory=out, pruner=None, plots=False)
    assert len(list(calls.iterdir())) == 7  # 4 + 3: nothing ran twice
    assert [t["number"] for t in again.records] == list(range(7))
    assert [t["value"] for t in again.records[:4]] == [t["value"] for t in first.records]
    # the same command once more is a no-op
    run_search(Counting(str(calls)), SPACE, n_trials=7, workers=0, directory=out, pruner=None, plots=False)
    assert len(list(calls.iterdir())) == 7


def _params(result) -> list[tuple]:
    return [tuple(sorted(t["params"].items())) for t in result.records]


def test_resumed_study_draws_new_parameters(tmp_path):
    """A rerun seeds its sampler from (seed, trials already there): with the first run's seed
    alone it would propose the first run's parameters again."""
    out = tmp_path / "s"
    run_search(quadratic, SPACE, n_trials=3, workers=0, directory=out, pruner=None, plots=False)
    again = run_search(quadratic, SPACE, n_trials=6, workers=0, directory=out, pruner=None, plots=False)
    assert len(set(_params(again))) == 6


def test_two_machines_share_one_rdb_study(tmp_path):
    """--storage: two searches with their own directories (as on two machines) fill one study
    in an SQLAlchemy database; the second runs only what is left, with new parameters, and
    both see every trial."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    a = run_search(quadratic, SPACE, n_trials=3, workers=0, directory=tmp_path / "a", storage=url,
                   pruner=None, plots=False)
    b = run_search(quadratic, SPACE, n_trials=5, workers=2, directory=tmp_path / "b", storage=url,
                   pruner=None, plots=False)
    assert [t["number"] for t in b.records] == list(range(5)) and b.count("COMPLETE") == 5
    assert _params(b)[:3] == _params(a) and len(set(_params(b))) == 5
    assert sorted(p.name for p in (tmp_path / "b" / "trials").iterdir()) == ["0003", "0004"]
    assert not any((tmp_path / d / JOURNAL_NAME).exists() for d in ("a", "b"))  # the RDB holds the study


def test_resume_refuses_a_different_space(tmp_path):
    run_search(quadratic, SPACE, n_trials=1, workers=0, directory=tmp_path, pruner=None, plots=False)
    with pytest.raises(ValueError, match="different search"):
        run_search(quadratic, {**SPACE, "y": "uniform(0, 2)"}, n_trials=2, workers=0, directory=tmp_path)


def test_interrupted_trials_are_rerun_on_resume(tmp_path):
    """A search process that dies leaves RUNNING trials in the journal: the next run fails
    them as interrupted and runs their slots again."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    run_search(quadratic, SPACE, n_trials=2, workers=0, directory=tmp_path, pruner=None, plots=False)
    study = optuna.load_study(study_name="neuronlab",
                              storage=JournalStorage(JournalFileBackend(str(tmp_path / "study.journal"))))
    ghost = study.ask()
    import socket

    ghost.set_user_attr("owner", f"{socket.gethostname()}:999999999")  # no such process
    r = run_search(quadratic, SPACE, n_trials=3, workers=0, directory=tmp_path, pruner=None, plots=False)
    states = [t["state"] for t in r.records]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert r.records[2]["interrupted"] is True
    # a search killed between asking for a trial and recording its owner leaves it ownerless
    study.ask()
    r = run_search(quadratic, SPACE, n_trials=4, workers=0, directory=tmp_path, pruner=None, plots=False)
    assert [t["state"] for t in r.records] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "FAIL",
                                               "COMPLETE"]
    assert r.records[4]["interrupted"] is True


def test_a_trial_told_but_not_recorded_gets_its_record_on_resume(tmp_path):
    """A search killed between telling the study a trial's outcome and writing its record
    (status.json, its trials.jsonl line) leaves the worker's files in the trial's folder: the
    next run writes the record. A finished trial with no folder here (another directory's,
    sharing an RDB study) gets none."""
    import socket

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    run_search(quadratic, SPACE, n_trials=2, workers=0, directory=tmp_path, pruner=None, plots=False)
    study = optuna.load_study(study_name="neuronlab",
                              storage=JournalStorage(JournalFileBackend(str(tmp_path / "study.journal"))))
    for with_files in (True, False):
        ghost = study.ask({"lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
                           "y": optuna.distributions.FloatDistribution(0, 1)})
        ghost.set_user_attr("owner", f"{socket.gethostname()}:999999999")  # no such process
        if with_files:
            (tmp_path / "trials" / f"{ghost.number:04d}").mkdir()
            (tmp_path / "trials" / f"{ghost.number:04d}" / "config.toml").write_text("")
        study.tell(ghost, -1.0)
    r = run_search(quadratic, SPACE, n_trials=4, workers=0, directory=tmp_path, pruner=None, plots=False)
    assert [t["state"] for t in r.records] == ["COMPLETE"] * 4
    status = json.loads((tmp_path / "trials" / "0002" / "status.json").read_text())
    assert status["state"] == "COMPLETE" and status["value"] == -1.0
    assert not (tmp_path / "trials" / "0003").exists()
    lines = [json.loads(line)["number"] for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert sorted(lines) == [0, 1, 2]


def test_diverging_trials_are_failed_and_the_search_goes_on(tmp_path):
    r = run_search(diverging, SPACE, n_trials=12, workers=0, directory=tmp_path, pruner=None, plots=False, seed=3)
    failed = [t for t in r.records if t["state"] == "FAIL"]
    assert failed and all(t["params"]["lr"] > 1e-2 for t in failed)
    assert all("diverged" in t["error"] and t["diverged"] for t in failed)
    assert r.count("COMPLETE") == 12 - len(failed)
    assert r.best["params"]["lr"] <= 1e-2
    status = json.loads((tmp_path / "trials" / f"{failed[0]['number']:04d}" / "status.json").read_text())
    assert status["state"] == "FAIL" and "DivergenceError" in status["error"]


def test_pruner_stops_bad_trials_from_their_epoch_values():
    import optuna

    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    r = run_search(curve, SPACE, n_trials=30, workers=0, pruner=pruner, seed=0)
    pruned = [t for t in r.records if t["state"] == "PRUNED"]
    complete = [t for t in r.records if t["state"] == "COMPLETE"]
    assert pruned and complete
    for t in pruned:  # stopped early: fewer than the 6 epoch values, the last one below the median
        assert len(t["intermediate"]) < 6
    assert all(len(t["intermediate"]) == 6 for t in complete)
    assert r.study.trials[pruned[0]["number"]].intermediate_values  # reported into the study


def test_stateful_pruner_is_refused():
    import optuna

    with pytest.raises(ValueError, match="HyperbandPruner"):
        run_search(quadratic, SPACE, n_trials=1, workers=0, pruner=optuna.pruners.HyperbandPruner())


def test_killed_worker_process_is_retried_and_nothing_is_lost(tmp_path):
    """Trial 3's worker process SIGKILLs itself mid-trial: a new process replaces it, trial 3
    runs again, and every trial ends complete with its own value."""
    r = run_search(KillOnce(str(tmp_path), 3), SPACE, n_trials=8, workers=2, directory=tmp_path / "s",
                   pruner=None, plots=False)
    assert (tmp_path / "killed-3").exists()
    assert [t["state"] for t in r.records] == ["COMPLETE"] * 8
    assert r.records[3]["retries"] == 1
    for t in r.records:
        assert t["value"] == pytest.approx(quadratic(t["params"], None))
    assert len((tmp_path / "s" / "trials.jsonl").read_text().splitlines()) == 8


def test_killed_worker_loses_only_its_own_trial(tmp_path):
    """Trial 0's worker is SIGKILLed while trial 1 runs on the other worker: trial 0 runs again,
    trial 1 runs once (it answers only after trial 0's rerun started) and is told once."""
    r = run_search(KillBeside(str(tmp_path), 0), SPACE, n_trials=3, workers=2, directory=tmp_path / "s",
                   pruner=None, plots=False)
    assert Counter(p.name.split("-")[1] for p in tmp_path.glob("call-*")) == {"0": 2, "1": 1, "2": 1}
    assert [t["state"] for t in r.records] == ["COMPLETE"] * 3
    assert r.records[0]["retries"] == 1 and "retries" not in r.records[1]
    lines = (tmp_path / "s" / "trials.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["number"] for line in lines) == [0, 1, 2]


def test_killed_worker_without_retries_fails_only_that_slot(tmp_path):
    r = run_search(KillOnce(str(tmp_path), 2), SPACE, n_trials=5, workers=1, retries=0, pruner=None)
    assert [t["state"] for t in r.records] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert r.records[2]["worker_lost"] is True
    assert math.isfinite(r.best["value"])


def test_sigterm_stops_the_search_between_steps_and_kills_its_workers(tmp_path):
    """Trial 2 sends SIGTERM to the search: trials 0 and 1 stay complete, trial 2 is recorded as
    interrupted (rerun on resume), its worker is killed and the default handler is back."""
    import signal

    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("SIGTERM has a handler in this process")
    with pytest.raises(SearchInterrupted) as e:
        run_search(SignalParent(str(tmp_path), 2, signal.SIGTERM), SPACE, n_trials=5, workers=1,
                   directory=tmp_path / "s", pruner=None, plots=False)
    assert e.value.signum == signal.SIGTERM and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with pytest.raises(ProcessLookupError):
        os.kill(int((tmp_path / "pid").read_text()), 0)
    r = run_search(quadratic, SPACE, n_trials=5, workers=0, directory=tmp_path / "s", pruner=None, plots=False)
    assert [t["state"] for t in r.records] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert r.records[2]["interrupted"] is True


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_trials": 0}, "n_trials"), ({"direction": "up"}, "direction"), ({"retries": -1}, "retries"),
    ({"workers": -1}, "workers"), ({"pruner": "hyperband"}, "pruner"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        run_search(quadratic, SPACE, **{"workers": 0, **kwargs})
