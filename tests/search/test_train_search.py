"""Trials that train real run configs (tiny: digits, one hidden layer of 16, 2 epochs), the
`neuronlab search` and `neuronlab ensemble` commands, and the slow digits acceptance run."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from neuronlab.config import RunConfig, load_config
from neuronlab.io import load
from neuronlab.search import Space, TrainObjective, apply_params, run_search

BASE = RunConfig().with_overrides({"model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 64}})


def test_apply_params_maps_names_onto_the_run_config():
    cfg = apply_params(BASE, {"lr": 0.01, "l2": 1e-4, "activation": "tanh", "width": 32, "depth": 2,
                              "optim.decay_rate": 0.5, "batchnorm": True})
    assert cfg.optim.lr == 0.01 and cfg.regularization.l2 == 1e-4 and cfg.model.activation == "tanh"
    assert cfg.model.hidden == [32, 32] and cfg.optim.decay_rate == 0.5 and cfg.model.batchnorm
    assert apply_params(BASE, {"depth": 3}).model.hidden == [16, 16, 16]  # width from the base
    with pytest.raises(ValueError, match="'learning_rate' is not a run setting"):
        apply_params(BASE, {"learning_rate": 0.1})


def test_bad_choice_fails_before_any_trial(tmp_path):
    with pytest.raises(ValueError, match="relux"):
        run_search(TrainObjective(BASE), {"activation": "choice(relu, relux)"}, n_trials=2, workers=0,
                   directory=tmp_path)
    assert not (tmp_path / "trials").exists()


def test_lr_auto_is_refused_before_any_trial(tmp_path):
    """train's lr = "auto" (a range test) has no per-trial equivalent: a clear error pointing to
    a searched range, from the base config or from a choice, before any trial runs."""
    auto = BASE.with_overrides({"optim": {"lr": "auto"}})
    with pytest.raises(ValueError, match=r"optim\.lr = 'auto' .* not available in a search.*loguniform"):
        run_search(TrainObjective(auto), {"l2": "loguniform(1e-6, 1e-3)"}, n_trials=2, workers=0,
                   directory=tmp_path)
    with pytest.raises(ValueError, match=r"search space 'lr': .* not available in a search.*loguniform"):
        run_search(TrainObjective(BASE), {"lr": "choice(auto, 0.01)"}, n_trials=2, workers=0,
                   directory=tmp_path)
    assert not (tmp_path / "trials").exists()


def test_lr_auto_in_the_base_is_fine_when_the_space_sets_lr():
    auto = BASE.with_overrides({"optim": {"lr": "auto"}})
    objective = TrainObjective(auto)
    objective.check_space(Space({"lr": "loguniform(1e-3, 1e-2)", "l2": "loguniform(1e-6, 1e-3)"}))
    objective.warm_up()  # a worker's warm-up builds the base with a number for the rate
    assert apply_params(auto, {"lr": 0.01, "l2": 1e-4}).optim.lr == 0.01


def test_cli_search_lr_auto_is_a_one_line_error(tmp_path, capsys):
    from neuronlab.cli import main

    space = tmp_path / "space.toml"
    space.write_text('[space]\nl2 = "loguniform(1e-6, 1e-3)"\n\n[optim]\nlr = "auto"\n')
    with pytest.raises(SystemExit) as e:
        main(["search", "--space", str(space), "--trials", "1", "--workers", "0", "--no-plots",
              "--out", str(tmp_path / "s")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error: optim.lr = 'auto'" in err and 'lr = "loguniform(1e-4, 1e-2)"' in err


def test_training_trials_write_configs_models_and_plots(tmp_path):
    space = Space({"lr": "loguniform(1e-3, 1e-2)", "l2": "loguniform(1e-6, 1e-3)"})
    r = run_search(TrainObjective(BASE), space, n_trials=3, workers=0, directory=tmp_path, pruner=None)
    assert r.count("COMPLETE") == 3
    t = r.records[1]
    folder = tmp_path / "trials" / "0001"
    cfg = load_config(folder / "config.toml")
    assert cfg.optim.lr == pytest.approx(t["params"]["lr"]) and cfg.train.epochs == 2
    epochs = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [0, 1]
    assert t["intermediate"] == {"0": epochs[0]["val_acc"], "1": epochs[1]["val_acc"]}
    assert t["value"] == pytest.approx(epochs[-1]["val_acc"])  # the last epoch's model is kept
    model = load(folder / "model.safetensors")
    assert model.preprocessor is not None and model.metadata["model_seed"] == 0 + 1 + 1
    best = load_config(tmp_path / "best.toml")
    assert best.optim.lr == pytest.approx(r.best["params"]["lr"])
    for name in ("lr_reg", "history", "importance"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 0


def test_budget_scales_epochs_and_diverging_training_is_failed(tmp_path):
    from neuronlab.search.strategies import CoarseToFine

    base = BASE.with_overrides({"train": {"epochs": 4}, "optim": {"optimizer": "sgd"}})
    space = {"lr": "loguniform(1e4, 1e6)"}  # SGD at lr 1e4+ diverges within the first epoch
    r = run_search(TrainObjective(base), space, strategy=CoarseToFine(stages=2), n_trials=2, workers=0,
                   pruner=None, directory=tmp_path)
    assert [t["state"] for t in r.records] == ["FAIL", "FAIL"]
    assert all(t["diverged"] and "diverged" in t["error"] for t in r.records)
    ok = run_search(TrainObjective(BASE.with_overrides({"train": {"epochs": 4}})), {"lr": "loguniform(1e-3, 2e-3)"},
                    strategy=CoarseToFine(stages=2), n_trials=2, workers=0, pruner=None)
    assert [t["epochs"] for t in ok.records] == [2, 4]  # budgets 0.5 and 1.0 of 4 epochs


def test_regression_trials_report_and_prune_in_the_direction_of_the_study(tmp_path):
    """A regression search maximises -MSE, and its epochs are reported as -MSE too. Two learning
    rates with known outcomes (vary_seed=False: every trial of one rate trains identically):
    0.01 learns, 1e-7 stays at its initial error. The median pruner stops only 1e-7 trials, each
    worse at its last epoch than every completed 0.01 trial, and trials.csv holds -MSE for
    pruned and completed trials alike. (Reported as +MSE, the 0.01 trials after a completed 1e-7
    one were the ones pruned.)"""
    import csv

    import optuna

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    y = (X @ np.array([0.5, -1.0, 0.25, 0.75], dtype=np.float32) + 0.1 * rng.normal(size=400)).astype(np.float32)
    np.savez(tmp_path / "reg.npz", X=X, y=y)
    base = RunConfig().with_overrides({"data": {"source": str(tmp_path / "reg.npz")},
                                       "model": {"loss": "mse", "hidden": [16]}, "train": {"epochs": 4}})
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    r = run_search(TrainObjective(base, vary_seed=False), {"lr": "choice(0.01, 1e-7)"}, n_trials=8, workers=0,
                   seed=0, pruner=pruner, directory=tmp_path / "s", plots=False)
    good = [t for t in r.records if t["params"]["lr"] == 0.01]
    pruned = [t for t in r.records if t["state"] == "PRUNED"]
    assert good and pruned and all(t["state"] == "COMPLETE" for t in good)
    for t in pruned:
        step, value = max(t["intermediate"].items(), key=lambda kv: int(kv[0]))
        assert t["params"]["lr"] == 1e-7 and t["value"] == value
        assert all(value < g["intermediate"][step] for g in good)
    for t in r.records:  # -MSE everywhere: the epochs' values and the trial's value
        assert all(v < 0 for v in t["intermediate"].values())
        if t["state"] == "COMPLETE":
            metrics = (tmp_path / "s" / "trials" / f"{t['number']:04d}" / "metrics.jsonl").read_text()
            assert t["value"] == pytest.approx(-json.loads(metrics.splitlines()[-1])["val_error"])
    with open(tmp_path / "s" / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(row["value"]) for row in rows] == pytest.approx([t["value"] for t in r.records])
    assert {row["state"] for row in rows} == {"COMPLETE", "PRUNED"}


def _cli(args):
    from neuronlab.cli import cli

    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_cli_search_and_ensemble(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text('[space]\nlr = "loguniform(1e-3, 1e-2)"\nactivation = "choice(relu, tanh)"\n\n'
                     "[model]\nhidden = [16]\n\n[train]\nepochs = 2\nbatch_size = 64\n")
    out = tmp_path / "s"
    res = _cli(["search", "--space", str(space), "--trials", "4", "--workers", "0", "--out", str(out),
                "--pruner", "none", "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "4 trials: 4 complete, 0 pruned, 0 fail" in res.output
    assert (out / "best.toml").exists() and (out / "model.safetensors").exists()
    assert load_config(out / "best.toml").data.val_size == 0.2  # a search validates on 20%
    res = _cli(["ensemble", str(out), "--top-k", "3"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("ensemble of 3")
    accs = [float(line.split("test accuracy ")[1].split()[0]) for line in lines]
    assert all(0.5 < a <= 1.0 for a in accs)


def test_cli_search_bad_space_is_a_one_line_error(tmp_path):
    from neuronlab.cli import main

    space = tmp_path / "space.toml"
    space.write_text('[space]\nlr = "loguniform(1e-3 1e-2)"\n')
    with pytest.raises(SystemExit) as e:
        main(["search", "--space", str(space), "--trials", "1", "--out", str(tmp_path / "s")])
    assert e.value.code == 2


@pytest.fixture(scope="module")
def digits_search(tmp_path_factory):
    """The issue's acceptance run: `neuronlab search --strategy random --trials 30 --workers 2`
    on digits, then the top-5 ensemble and the single best model on the held-out test split."""
    from neuronlab.ensemble import Ensemble
    from neuronlab.runs import split_data

    out = tmp_path_factory.mktemp("search") / "s"
    res = _cli(["search", "--strategy", "random", "--trials", "30", "--workers", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    best = json.loads((out / "best.json").read_text())
    ens = Ensemble.from_search(out, top_k=5)
    _, _, (X_te, y_te) = split_data(RunConfig.from_dict(ens.models[0].metadata["config"]))
    single_acc = Ensemble([load(out / "model.safetensors")]).score(X_te, y_te)
    return best["value"], ens.score(X_te, y_te), single_acc


@pytest.mark.slow
def test_digits_random_search_acceptance(digits_search):
    """>= 98% validation accuracy; the top-5 ensemble reaches >= 98.5% test accuracy."""
    best_val, acc, _ = digits_search
    assert best_val >= 0.98
    assert np.isfinite(acc) and acc >= 0.985


@pytest.mark.slow
def test_digits_top5_ensemble_beats_the_single_best(digits_search):
    """Measured: 99.11% vs 98.44% at sampler seed 0; over seeds 0-8 the ensemble won 7 times
    and tied once (DEFAULT_BASE in cli/search.py says which defaults make that so)."""
    _, acc, single_acc = digits_search
    assert acc > single_acc


def test_in_memory_arrays_without_a_test_split(tmp_path):
    """The Python API searches arrays the caller holds (lists work too) with data.test_size=0:
    the trials split them into train and validation only, with the base's seed."""
    from neuronlab.data import digits

    X, y = digits()
    base = BASE.with_overrides({"data": {"test_size": 0.0, "val_size": 0.2}})
    objective = TrainObjective(base, data=(X[:600].tolist(), y[:600].tolist()))
    r = run_search(objective, {"lr": "loguniform(1e-3, 1e-2)"}, n_trials=2, workers=0,
                   directory=tmp_path, pruner=None)
    assert r.count("COMPLETE") == 2 and all(0.5 < t["value"] <= 1 for t in r.records)
    cfg = load_config(tmp_path / "trials" / "0000" / "config.toml")
    assert cfg.data.source == "<arrays>" and cfg.data.test_size == 0.0
    model = load(tmp_path / "trials" / "0000" / "model.safetensors")
    assert model.metadata["val"]["acc"] == pytest.approx(r.records[0]["value"])
    with pytest.raises(ValueError, match="999"):  # checked once, before any trial
        TrainObjective(base, data=(X[:600], np.where(np.arange(600) == 5, 999, y[:600])))


def test_trials_use_the_runs_early_stopping_and_class_weight(tmp_path):
    """A trial trains as `neuronlab train` would with the same config: early stopping keeps
    the best epoch, class weights weigh the rows."""
    base = BASE.with_overrides({"train": {"epochs": 30, "early_stopping": 1,
                                          "class_weight": "balanced"},
                                "optim": {"lr": 0.05}})
    r = run_search(TrainObjective(base), {"l2": "loguniform(1e-6, 1e-5)"}, n_trials=1, workers=0,
                   directory=tmp_path, pruner=None)
    lines = (tmp_path / "trials" / "0000" / "metrics.jsonl").read_text().splitlines()
    assert r.count("COMPLETE") == 1 and len(lines) < 30  # stopped early
    assert load_config(tmp_path / "trials" / "0000" / "config.toml").train.class_weight == "balanced"
