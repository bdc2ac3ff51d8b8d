"""The ``neuronlab`` command: ``train``, ``evaluate``, ``summary``, ``export``, ``report``.

The CLI only resolves a :class:`~neuronlab.config.RunConfig` (defaults < ``--config`` file <
options), builds the core objects from it and calls them. A user mistake (a bad option value,
an unknown name, a missing or unreadable file, a corrupted model or checkpoint, a typo in a
config file) prints one ``error: ...`` line to stderr and exits with status 2, never a
traceback; a diverging run exits with status 3 and keeps its last good checkpoint. Set
``NEURONLAB_DEBUG=1`` to get the traceback anyway.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from neuronlab.config import RunConfig, load_config, save_config
from neuronlab.runs import evaluate_arrays, is_file_source, load_source, prepare_run, split_data

__all__ = ["EXIT_DIVERGED", "EXIT_USAGE", "cli", "main"]

EXIT_USAGE = 2  # click's own code for usage errors; every user mistake uses it
EXIT_CHECK_FAILED = 1  # `neuronlab check`: a sanity check failed
EXIT_DIVERGED = 3


class _Diverged(click.ClickException):
    exit_code = EXIT_DIVERGED


# Exceptions that mean "the input is wrong", not "neuronlab is broken". ModelFileError,
# CheckpointError and tomllib's decode error are ValueErrors; a CIFAR-10 batch holding anything
# but arrays raises an UnpicklingError; OSError covers missing, unreadable and
# directory-instead-of-file paths; NotImplementedError an export the format cannot express;
# ImportError a missing optional dependency (onnx).
_USER_ERRORS = (
    ValueError,
    TypeError,
    OSError,
    pickle.UnpicklingError,
    NotImplementedError,
    ImportError,
)


# click >= 8.2 raises this for a bare `neuronlab`; it shows the help rather than an error line
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """A click group whose errors are one ``error: ...`` line and a meaningful exit code."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        from neuronlab.train import DivergenceError

        debug = bool(os.environ.get("NEURONLAB_DEBUG"))
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS_IS_HELP as e:
            e.show()
            sys.exit(EXIT_USAGE)
        except click.UsageError as e:
            cmd = e.ctx.command_path if e.ctx is not None else "neuronlab"
            _fail(f"{e.format_message()} (see '{cmd} --help')", EXIT_USAGE)
        except click.ClickException as e:
            _fail(e.format_message(), e.exit_code)
        except click.exceptions.Abort:
            _fail("aborted", 130)
        except DivergenceError as e:  # raised outside `train` (which adds the checkpoint note)
            if debug:
                raise
            _fail(str(e), EXIT_DIVERGED)
        except _USER_ERRORS as e:
            if debug:
                raise
            msg = str(e) or type(e).__name__
            if isinstance(e, ImportError):
                msg = f"{msg} (install the optional dependency, e.g. pip install 'neuronlab[onnx]')"
            _fail(msg, EXIT_USAGE)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neuronlab")
def cli() -> None:
    """neuronlab: train, check and export NumPy neural networks."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``neuronlab`` console script."""
    cli.main(args=argv, prog_name="neuronlab")


# -- train ---------------------------------------------------------------------------------
def _hidden(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    if value.strip().lower() in ("", "none"):
        return []
    try:
        return [int(w) for w in value.split(",")]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated widths like 128,64, got {value!r}"
        ) from None


# (option, "section.key", type, help): each sets one config value; None means "not given".
# Options that name a component get their choices from the registries (see _choices).
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--data", "data.source", str, "A data set, a .npz/.npy file or folder, or cifar10:DIR."),
    ("--test-size", "data.test_size", float, "Held-out stratified test fraction."),
    ("--val-size", "data.val_size", float, "Validation fraction of all samples."),
    ("--preprocess", "data.preprocess", str, "Fitted on the training split only."),
    ("--components", "data.components", int, "PCA components to keep."),
    ("--hidden", "model.hidden", "widths", "Hidden widths, e.g. 128,64 ('none': linear)."),
    ("--activation", "model.activation", str, "Hidden nonlinearity."),
    ("--init", "model.init", str, "Weight initialiser."),
    ("--dropout", "model.dropout", float, "Drop rate after each hidden layer."),
    ("--batchnorm/--no-batchnorm", "model.batchnorm", bool, "Batch norm before each activation."),
    ("--loss", "model.loss", str, "Data loss."),
    ("--optimizer", "optim.optimizer", str, "Update rule."),
    ("--lr", "optim.lr", float, "Learning rate."),
    ("--schedule", "optim.schedule", str, "Learning-rate schedule over the run."),
    ("--decay-factor", "optim.decay_factor", float, "step: multiply the lr by this ..."),
    ("--decay-epochs", "optim.decay_epochs", int, "... every this many epochs."),
    ("--decay-rate", "optim.decay_rate", float, "exponential / inverse_time: k per epoch."),
    ("--clip-norm", "optim.clip_norm", float, "Clip the global gradient norm to this."),
    ("--l2", "regularization.l2", float, "L2 strength (0.5*l2*|W|^2, weights only)."),
    ("--l1", "regularization.l1", float, "L1 strength (l1*|W|_1, weights only)."),
    ("--max-norm", "regularization.max_norm", float, "Max-norm c on each unit's weights."),
    ("--epochs", "train.epochs", int, "Epochs."),
    ("--batch-size", "train.batch_size", int, "Minibatch size."),
    ("--seed", "train.seed", int, "Seed of the split, the weights and the shuffling."),
]


def _choices(where: str) -> list[str]:
    """The names an option accepts, from the registries (so the help never goes stale)."""
    from neuronlab import registry as r
    from neuronlab.data import DATASETS
    from neuronlab.layers import ACTIVATIONS

    return {
        "data.source": DATASETS.names(),
        "data.preprocess": ["none", *r.PREPROCESSORS.names()],
        "model.activation": list(ACTIVATIONS),
        "model.init": r.INITIALIZERS.names(),
        "model.loss": r.LOSSES.names(),
        "optim.optimizer": r.OPTIMIZERS.names(),
        "optim.schedule": [n for n in r.SCHEDULES.names() if n != "warmup"],
    }.get(where, [])


def _param_name(flag: str) -> str:
    return flag.split("/")[0].lstrip("-").replace("-", "_")


def _train_options(f: Any) -> Any:
    """Add one click option per entry of ``_OPTIONS``, its help ending in the default."""
    defaults = RunConfig().to_dict()
    for flag, where, kind, text in reversed(_OPTIONS):
        section, key = where.split(".")
        default = defaults[section][key]
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        names = _choices(where)
        text = f"{text} One of: {', '.join(names)}." if names else text
        kw: dict[str, Any] = {"default": None, "help": f"{text} [{shown}]"}
        if kind == "widths":
            kw["callback"] = _hidden
        elif kind is not bool:
            kw["type"] = kind
        f = click.option(flag, _param_name(flag), **kw)(f)
    return f


def resolve_config(config_file: str | None, options: dict[str, Any]) -> RunConfig:
    """Defaults, then the file, then the options that were given."""
    cfg = load_config(config_file) if config_file else RunConfig()
    overrides: dict[str, dict[str, Any]] = {}
    where = {_param_name(flag): (flag, w.split(".")) for flag, w, _, _ in _OPTIONS}
    for name, value in options.items():
        if value is not None:
            section, key = where[name][1]
            overrides.setdefault(section, {})[key] = value
    try:
        return cfg.with_overrides(overrides, source="the command line")
    except (ValueError, TypeError) as e:
        for flag, w, _, _ in _OPTIONS:  # name the option the user typed
            if str(e).startswith(f"{w} ") or str(e).startswith(f"{w}["):
                raise click.BadParameter(str(e), param_hint=f"'{flag.split('/')[0]}'") from None
        raise


def _new_run_dir(runs_dir: str, name: str | None) -> Path:
    root = Path(runs_dir)
    if name is not None:
        if not name or "/" in name or name in (".", ".."):
            raise click.BadParameter(
                f"a run name must be a plain folder name, got {name!r}", param_hint="'--name'"
            )
        path = root / name
        if path.exists():
            raise click.UsageError(
                f"run directory {path} already exists; choose another --name "
                f"or continue it with --resume {path}"
            )
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, i = root / stamp, 2
    while path.exists():  # two runs started in the same second
        path, i = root / f"{stamp}-{i}", i + 1
    return path


@cli.command()
@_train_options
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML run config; options override it.",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False),
    help="Continue RUN_DIR from its latest checkpoint.",
)
@click.option("--name", help="Run folder name [a timestamp].")
@click.option("--runs-dir", default="runs", show_default=True, help="Where run folders go.")
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar [on when stderr is a terminal]."
)
@click.option(
    "--report/--no-report",
    default=True,
    show_default=True,
    help="Write RUN_DIR/report.html at the end.",
)
@click.option(
    "--tensorboard", is_flag=True, help="Also log to RUN_DIR/tensorboard/ (needs tensorboardX)."
)
def train(
    config_file: str | None,
    resume_dir: str | None,
    name: str | None,
    runs_dir: str,
    progress: bool | None,
    report: bool,
    tensorboard: bool,
    **options: Any,
) -> None:
    """Train an MLP and write runs/<name>/ (config.toml, metrics.jsonl, model.safetensors,
    checkpoints/). With no options: 64-256-10 ReLU on digits, He init, Adam, standardized."""
    from neuronlab.diagnose import diagnose, format_findings
    from neuronlab.io import save
    from neuronlab.train import (
        Checkpoint,
        DivergenceError,
        JSONLLogger,
        NonFiniteGuard,
        ProgressBar,
        Trainer,
    )
    from neuronlab.train.checkpoint import latest_checkpoint

    if resume_dir is not None:
        given = [
            f"--{k.replace('_', '-')}"
            for k, v in options.items()
            if v is not None and k != "epochs"
        ]
        if given or config_file or name:
            raise click.UsageError(
                "--resume continues a run with its saved config; only --epochs may "
                f"change (got {', '.join(given + ['--config'] * bool(config_file) + ['--name'] * bool(name))})"
            )
        run_dir = Path(resume_dir)
        if not (run_dir / "config.toml").is_file():
            raise FileNotFoundError(f"{run_dir} is not a run directory (no config.toml)")
        cfg = load_config(run_dir / "config.toml")
        if options["epochs"] is not None:
            cfg = cfg.with_overrides({"train": {"epochs": options["epochs"]}})
        if not (run_dir / "checkpoints").is_dir():
            raise FileNotFoundError(f"{run_dir} has no checkpoints/ folder to resume from")
    else:
        cfg = resolve_config(config_file, options)
        run_dir = _new_run_dir(runs_dir, name)

    run = prepare_run(cfg)  # before the folder exists: a bad name or file leaves no trace
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.toml")
    ckpt_dir = run_dir / "checkpoints"
    callbacks = [
        NonFiniteGuard(),
        JSONLLogger(run_dir / "metrics.jsonl"),
        Checkpoint(ckpt_dir),
        ProgressBar(disable=None if progress is None else not progress),
    ]
    if tensorboard:
        from neuronlab.tensorboard import TensorBoardLogger

        callbacks.append(TensorBoardLogger(run_dir / "tensorboard"))
    trainer = Trainer(**run.trainer_kwargs(), callbacks=callbacks)
    click.echo(f"run directory: {run_dir}", err=True)
    try:
        trainer.fit(
            *run.train,
            validation=run.val if len(run.val[1]) else None,
            epochs=cfg.train.epochs,
            batch_size=cfg.train.batch_size,
            seed=cfg.train.seed,
            resume=ckpt_dir if resume_dir else None,
        )
    except DivergenceError as e:
        click.echo(format_findings(diagnose(trainer.history)), err=True)
        last = latest_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
        kept = f"the last good checkpoint is kept: {last}" if last else "no checkpoint was written"
        raise _Diverged(f"{e}; {kept}") from None

    test = evaluate_arrays(run.model, run.loss, *run.test)
    run.model.preprocessor = run.preprocessor
    meta = {"loss": cfg.model.loss, "config": cfg.to_dict(), "test": test}
    save(run.model, run_dir / "model.safetensors", preprocessor=run.preprocessor, metadata=meta)
    click.echo(_format_metrics(test, f"test ({len(run.test[1])} samples)"))
    click.echo(format_findings(diagnose(trainer.history)))
    if report:
        from neuronlab.report import write_report

        click.echo(f"report: {write_report(run_dir)}", err=True)


@cli.command()
@_train_options
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False),
    help="TOML run config; options override it.",
)
@click.option(
    "--n-overfit", default=20, show_default=True, type=click.IntRange(min=1),
    help="Examples the overfit check must memorise.",
)
@click.option(
    "--max-steps", default=300, show_default=True, type=click.IntRange(min=1),
    help="Steps allowed for the overfit check.",
)
def check(config_file: str | None, n_overfit: int, max_steps: int, **options: Any) -> None:
    """Sanity checks of a run config before training it: initial loss, regularisation, overfit
    a tiny subset, gradient check. Takes the options of `train`; exits 1 if a check fails."""
    from neuronlab.sanity import sanity_check

    cfg = resolve_config(config_file, options)
    run = prepare_run(cfg)
    report = sanity_check(run.model, run.loss, *run.train, n_overfit=n_overfit,
                          max_steps=max_steps, optimizer=run.optimizer, seed=cfg.train.seed)
    click.echo(str(report))
    if not report.passed:
        sys.exit(EXIT_CHECK_FAILED)


@cli.command()
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(exists=True, file_okay=False))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Output file [RUN_DIR/report.html]."
)
def report(run_dir: str, output: str | None) -> None:
    """Write one self-contained HTML report of RUN_DIR: config, model, metrics, diagnosis, plots."""
    from neuronlab.report import write_report

    click.echo(write_report(run_dir, path=output))


# -- evaluate / summary / export -----------------------------------------------------------
def _format_metrics(m: dict[str, float], what: str) -> str:
    if "accuracy" in m:
        return f"{what}: accuracy {m['accuracy']:.4f} ({m['accuracy']:.2%}), loss {m['loss']:.4f}"
    return f"{what}: mean squared error {m['error']:.6g}, loss {m['loss']:.6g}"


def _load_model(path: str) -> tuple[Any, Path]:
    """Load a ``.safetensors`` / ``.npz`` model file, or a run directory's model."""
    from neuronlab.io import load, load_npz

    p = Path(path)
    if p.is_dir():
        p = p / "model.safetensors"
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    return (load_npz(p) if p.suffix.lower() == ".npz" else load(p)), p


@cli.command()
@click.argument("model_path", metavar="MODEL")
@click.option(
    "--data",
    help="Data to score: a data-set name (its test split), a .npz/.npy file "
    "(every row) or cifar10:DIR (its test batch) [the run's data].",
)
@click.option(
    "--split",
    type=click.Choice(["test", "all"]),
    default="test",
    show_default=True,
    help="For a named data set: its test split (as in training) or every sample.",
)
def evaluate(model_path: str, data: str | None, split: str) -> None:
    """Accuracy and loss of MODEL (a model file or a run directory)."""
    from neuronlab.registry import LOSSES

    model, _ = _load_model(model_path)
    saved = model.metadata.get("config")
    if not isinstance(saved, dict) and data is None:
        raise click.UsageError("this model file holds no run config: say which data with --data")
    cfg = RunConfig.from_dict(saved) if isinstance(saved, dict) else RunConfig()
    source = data if data is not None else cfg.data.source
    if data is not None and data != cfg.data.source:
        cfg = cfg.with_overrides({"data": {"source": data}})
    # An explicitly given file is scored whole; the run's own data by its test split.
    if split == "all" or (data is not None and is_file_source(source)):
        (X, y), test = load_source(source)
        what = f"{source} ({len(y)} samples)"
        if test is not None:  # cifar10: train and test batches together
            X, y = np.concatenate([X, test[0]]), np.concatenate([y, test[1]])
    else:
        _, _, (X, y) = split_data(cfg)
        what = f"{source} test split ({len(y)} samples)"
    if model.preprocessor is not None:
        X = model.preprocessor.transform(np.asarray(X))
    loss = LOSSES.create(model.metadata.get("loss", cfg.model.loss))
    click.echo(_format_metrics(evaluate_arrays(model, loss, X, y), what))


@cli.command()
@click.argument("model_path", metavar="MODEL")
def summary(model_path: str) -> None:
    """The per-layer table of MODEL: neurons, weights, biases, parameters."""
    model, path = _load_model(model_path)
    click.echo(f"{path}")
    click.echo(str(model.summary()))
    if model.preprocessor is not None:
        click.echo(f"preprocessor: {type(model.preprocessor).__name__}")


@cli.command()
@click.argument("model_path", metavar="MODEL")
@click.option(
    "--format", "fmt", type=click.Choice(["onnx", "npz"]), required=True, help="Output format."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Output file [MODEL with the new suffix].",
)
def export(model_path: str, fmt: str, output: str | None) -> None:
    """Write MODEL as ONNX (inference graph) or .npz (arrays, readable without pickle)."""
    from neuronlab.io import export_onnx, save_npz

    model, path = _load_model(model_path)
    out = Path(output) if output else path.with_suffix(f".{fmt}")
    if out.resolve() == path.resolve():
        raise click.BadParameter(f"the output {out} would overwrite the model", param_hint="'-o'")
    if fmt == "onnx":
        export_onnx(model, out)
    else:
        save_npz(model, out, metadata=model.metadata)
    click.echo(f"wrote {out}")


# `search` and `ensemble` live in their own module (the optional Optuna/Dask edge); importing
# it registers them on `cli`.
from neuronlab import cli_search as _cli_search  # noqa: E402,F401


# `playground` (the local web page) lives in neuronlab.playground; the web server is imported
# only when the command runs.
from neuronlab.playground.command import playground as _playground  # noqa: E402

cli.add_command(_playground)
