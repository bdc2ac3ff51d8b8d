"""``neuronlab train``, ``check`` and ``report``: runs from a resolved configuration."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from neuronlab.cli.app import EXIT_CHECK_FAILED, _Diverged, _format_metrics, cli
from neuronlab.config import AUTO_LR, MONITORS, OptimConfig, RunConfig, load_config
from neuronlab.runs import prepare_run
from neuronlab.train.evaluation import evaluate

__all__ = ["LR_FIND_FILE", "auto_lr", "buildable", "check", "report", "resolve_config",
           "sweep_run", "train", "write_sweep"]


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


class _LearningRate(click.ParamType):
    """``--lr``: a number, or ``auto`` (a range test picks it; range checks are the config's)."""

    name = "float|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        text = str(value).strip()
        if text.lower() == AUTO_LR:
            return AUTO_LR
        try:
            return float(text)
        except ValueError:
            self.fail(f"{value!r} is not a number or {AUTO_LR!r}", param, ctx)


# (option, "section.key", type, help): each sets one config value; None means "not given".
# Options that name a component get their choices from the registries (see _choices).
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--data", "data.source", str, "A data set, a .npz/.npy file or folder, or cifar10:DIR."),
    ("--test-size", "data.test_size", float, "Held-out stratified test fraction."),
    ("--val-size", "data.val_size", float, "Validation fraction of all samples."),
    ("--preprocess", "data.preprocess", str, "Fitted on the training split only."),
    ("--components", "data.components", int, "PCA components to keep."),
    ("--classes", "data.classes", int, "Number of classes, when some labels have no samples."),
    ("--hidden", "model.hidden", "widths", "Hidden widths, e.g. 128,64 ('none': linear)."),
    ("--activation", "model.activation", str, "Hidden nonlinearity."),
    ("--init", "model.init", str, "Weight initialiser of the hidden layers."),
    ("--out-init", "model.out_init", str, "Weight initialiser of the output layer."),
    ("--dropout", "model.dropout", float, "Drop rate after each hidden layer."),
    ("--batchnorm/--no-batchnorm", "model.batchnorm", bool, "Batch norm before each activation."),
    ("--loss", "model.loss", str, "Data loss."),
    ("--optimizer", "optim.optimizer", str, "Update rule."),
    ("--lr", "optim.lr", _LearningRate(),
     ("Learning rate, or auto: train runs a range test first and trains with the rate it "
      "suggests (see lr-find).")),
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
    ("--early-stopping", "train.early_stopping", int,
     "Stop after this many epochs without improvement of --monitor; save the best epoch's model."),
    ("--monitor", "train.monitor", str, "Epoch metric early stopping watches."),
    ("--class-weight", "train.class_weight", str,
     "balanced: weight classes by n_samples / (n_classes * count)."),
    ("--sharpness-every", "train.sharpness_every", int,
     "Estimate the loss's sharpness (top Hessian eigenvalue) against 2/lr every this many "
     "steps; each estimate costs hundreds of steps, so a few per run."),
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
        "model.out_init": r.INITIALIZERS.names(),
        "model.loss": r.LOSSES.names(),
        "optim.optimizer": r.OPTIMIZERS.names(),
        "optim.schedule": [n for n in r.SCHEDULES.names() if n != "warmup"],
        "train.monitor": list(MONITORS),
        "train.class_weight": ["none", "balanced"],
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


# -- train --lr auto: a learning-rate range test first (lr-find runs the same sweep) ----------
#: The sweep of ``train --lr auto``, in the run folder (the report draws it).
LR_FIND_FILE = "lr_find.json"


def buildable(cfg: RunConfig) -> RunConfig:
    """``cfg`` with ``lr = "auto"`` replaced by the default number, so that its components can
    be built (a sweep sets the rate of every step itself); any other config as it is."""
    if cfg.optim.lr != AUTO_LR:
        return cfg
    return cfg.with_overrides({"optim": {"lr": OptimConfig().lr}})


def sweep_run(run: Any, cfg: RunConfig, *, steps: int = 100, start_lr: float = 1e-7,
              end_lr: float = 10.0, progress: bool | None = None) -> Any:
    """The range test of a prepared run (:class:`~neuronlab.runs.PreparedRun`) on its training
    split: the run's batch size, regulariser, constraints and class weights, one sweep per
    seed ``cfg.train.seed + (0, 1, 2)``, a tqdm bar on stderr (``progress`` None: only on a
    terminal). The run's model and optimizer are left as they were. Returns the
    :class:`~neuronlab.babysit.lr_find.LRFindResult`."""
    from tqdm.auto import tqdm

    from neuronlab.babysit.lr_find import lr_find
    from neuronlab.train.weights import resolve_sample_weight

    if getattr(run.optimizer, "full_batch", False):
        raise click.UsageError(
            f"optimizer {cfg.optim.optimizer!r} is full batch (L-BFGS): its line search picks "
            "every step, so there is no learning rate to find")
    t = cfg.train
    X, y = run.train
    weights = resolve_sample_weight(
        y, None, None if t.class_weight == "none" else t.class_weight, run.loss.task)
    seeds = tuple(t.seed + i for i in range(3))
    disable = progress is False or (progress is None and not sys.stderr.isatty())
    with tqdm(total=steps * len(seeds), desc="lr-find", unit="step", file=sys.stderr,
              disable=disable, dynamic_ncols=True, mininterval=0.1) as bar:
        return lr_find(run.model, run.loss, run.optimizer, X, y, regularizer=run.regularizer,
                       constraints=run.constraints, start_lr=start_lr, end_lr=end_lr,
                       steps=steps, batch_size=t.batch_size, seeds=seeds,
                       sample_weight=weights, progress=bar.update)


def _check_found(result: Any) -> float:
    """The recommended rate, or exit 3 when no sweep had a single finite loss."""
    lr = float(result.suggestion)
    if not math.isfinite(lr):
        start = result.settings.get("start_lr")
        raise _Diverged(
            f"the range test found no learning rate: the loss was not finite even after one "
            f"step at lr {start:g} in every sweep; check the data and the initialisation")
    return lr


def auto_lr(cfg: RunConfig, run: Any, *, progress: bool | None = None
            ) -> tuple[RunConfig, Any, Any]:
    """Resolve ``lr = "auto"``: sweep the prepared ``run`` (built from :func:`buildable`),
    print the rate on stderr, and return ``(config, run, result)``: the config with that
    number (3 significant digits), the run's components rebuilt from it (the same initial
    weights: they come from the config's seed) and the sweep."""
    from neuronlab.runs import build_run

    result = sweep_run(run, cfg, progress=progress)
    lr = float(f"{_check_found(result):.3g}")
    lo, hi = result.spread
    click.echo(f"lr auto: {lr:g} ({result.rule} rule; {lo:.3g} to {hi:.3g} over "
               f"{len(result.seeds)} seeds)", err=True)
    cfg = cfg.with_overrides({"optim": {"lr": lr}}, source="the learning-rate range test")
    X_tr = run.train[0]
    parts = build_run(cfg, int(np.prod(X_tr.shape[1:])), run.n_outputs, X_tr.shape[0])
    return cfg, dataclasses.replace(run, config=cfg, **parts), result


def write_sweep(result: Any, lr: float, path: Path) -> None:
    """Write ``result`` (and the rate trained with) as JSON, atomically."""
    from neuronlab.io import atomic_write_bytes

    doc = {"lr": lr, **result.to_dict()}
    atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode("utf-8"))


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
    help="Continue RUN_DIR from its latest checkpoint (or from the start if it has none).",
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
    help="Write RUN_DIR/report.html at the end: by default in the background, after this "
    "command returns (RUN_DIR/report.pending exists until it is done).",
)
@click.option(
    "--wait-report", is_flag=True, help="Write the report before returning."
)
@click.option(
    "--tensorboard", is_flag=True, help="Also log to RUN_DIR/tensorboard/ (needs tensorboardX)."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="BLAS threads for training and the final scores [training: one when the network's "
    "products are too small to gain from more, else BLAS's own]. Not saved with the run (it "
    "belongs to the machine), so --resume takes it too.",
)
def train(
    config_file: str | None,
    resume_dir: str | None,
    name: str | None,
    runs_dir: str,
    progress: bool | None,
    report: bool,
    wait_report: bool,
    tensorboard: bool,
    threads: int | None,
    **options: Any,
) -> None:
    """Train an MLP and write runs/<name>/ (config.toml, metrics.jsonl, model.safetensors,
    checkpoints/). With no options: 64-256-10 ReLU on digits, He init, Adam, standardized.

    The report, runs/<name>/report.html, is drawn in the background once this command has
    returned, by a process that then ends (--wait-report: before it returns).

    The run folder is made only once the data and every option check out, and never shared:
    of two runs started with one --name, one runs and the other exits 2."""
    from neuronlab.run_folder import check_run_name, create_run_folder

    if resume_dir is not None:
        run_dir, cfg = _resume_target(resume_dir, config_file, name, options)
        scratch = run_dir.parent
    else:
        cfg, scratch = resolve_config(config_file, options), Path(runs_dir)
        if name is not None:  # an early answer; the folder is claimed atomically below
            _named(check_run_name, runs_dir, name)
    # The data and the components are built before the run folder exists: a bad file, label
    # or size leaves no trace. A large memory-mapped .npy is split into a temporary folder in
    # the runs folder (removed at the end), not into memory. With --lr auto a range test picks
    # the rate first, so the folder's config.toml holds the number trained with.
    run, found = prepare_run(buildable(cfg), scratch_dir=scratch), None
    try:
        _check_monitor(cfg, run.loss.task)
        if cfg.optim.lr == AUTO_LR:
            cfg, run, found = auto_lr(cfg, run, progress=progress)
        if resume_dir is None:
            run_dir, resume = _named(create_run_folder, runs_dir, name, cfg), None
        else:
            resume = _prepare_resume(run_dir, cfg)
        if found is not None:
            write_sweep(found, cfg.optim.lr, run_dir / LR_FIND_FILE)
        _train_prepared(run, cfg, run_dir, resume, progress, tensorboard,
                        None if not report else "wait" if wait_report else "background", threads)
    finally:
        run.close()


def _check_monitor(cfg: RunConfig, task: str) -> None:
    """Early stopping must watch a metric this run measures (before the folder exists)."""
    t = cfg.train
    metric = t.monitor.removeprefix("val_")
    if t.early_stopping is not None and metric != "loss" and (metric == "error") != (task == "regression"):
        fits = "error (mean squared error)" if task == "regression" else "acc (accuracy)"
        raise click.BadParameter(f"{t.monitor!r} is not measured for a {task} loss; use loss or {fits}",
                                 param_hint="'--monitor'")


def _named(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` with a taken or malformed run name reported against ``--name``."""
    from neuronlab.run_folder import RunExistsError

    try:
        return fn(*args)
    except RunExistsError as e:
        raise click.UsageError(str(e)) from None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--name'") from None


def _resume_target(resume_dir: str, config_file: str | None, name: str | None,
                   options: dict[str, Any]) -> tuple[Path, RunConfig]:
    """The run folder and its saved config, with a new --epochs if given: never fewer than
    the run has done, and not for a schedule that spans the run (cosine)."""
    from neuronlab.train.checkpoint import latest_checkpoint, load_checkpoint

    given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None and k != "epochs"]
    given += ["--config"] * bool(config_file) + ["--name"] * bool(name)
    if given:
        raise click.UsageError(
            "--resume continues a run with its saved config; only --epochs may change "
            f"(got {', '.join(given)})"
        )
    run_dir = Path(resume_dir)
    if not (run_dir / "config.toml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.toml)")
    cfg = load_config(run_dir / "config.toml")
    epochs = options["epochs"]
    if epochs is not None and epochs != cfg.train.epochs:
        ckpt_dir = run_dir / "checkpoints"
        last = latest_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
        done = 0 if last is None else load_checkpoint(last).epochs_done
        if epochs < done:
            raise click.BadParameter(
                f"the run has done {done} epochs; --epochs must be at least {done} "
                f"(it was {cfg.train.epochs})", param_hint="'--epochs'")
        if cfg.optim.schedule == "cosine":
            raise click.BadParameter(
                f"the cosine schedule spans the run's {cfg.train.epochs} epochs, so they "
                "cannot change on resume", param_hint="'--epochs'")
        cfg = cfg.with_overrides({"train": {"epochs": epochs}})
    return run_dir, cfg


def _prepare_resume(run_dir: Path, cfg: RunConfig) -> str | None:
    """Tidy a run folder for ``--resume`` once the run has been rebuilt: remove what killed
    writers left, save a new --epochs, and, for a run with no checkpoint yet, drop its partial
    metrics so that it restarts from step 0. Returns the latest checkpoint or None."""
    from neuronlab.io import atomic_write_bytes
    from neuronlab.run_folder import remove_orphan_temporaries
    from neuronlab.train.checkpoint import latest_checkpoint

    remove_orphan_temporaries(run_dir)
    if load_config(run_dir / "config.toml") != cfg:  # only --epochs can differ, checked above
        atomic_write_bytes(run_dir / "config.toml", cfg.to_toml().encode())
    ckpt_dir = run_dir / "checkpoints"
    last = latest_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
    if last is None:
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    return last


def _train_prepared(run: Any, cfg: Any, run_dir: Path, resume: str | None, progress: bool | None,
                    tensorboard: bool, report: str | None, threads: int | None = None) -> None:
    """Train the prepared run in its folder (from the checkpoint ``resume`` if not None), then
    write the model, print the test metrics and the diagnosis, and write the report.

    ``report="background"``: a process forked now writes it after this one returns
    (:func:`~neuronlab.report.write_in_background`; where none can be forked, it is written
    here). ``"wait"``: it is written before this returns, by a process started before
    training, which warms up while training runs (:class:`~neuronlab.report.ReportWriter`;
    not for the background report: on a busy machine its warm-up slows the training that the
    user waits for). None: no report."""
    if report == "wait":
        from neuronlab.report import ReportWriter

        with ReportWriter() as writer:
            _train_and_save(run, cfg, run_dir, resume, progress, tensorboard, threads)
            click.echo(f"report: {writer.write(run_dir)}", err=True)
        return
    _train_and_save(run, cfg, run_dir, resume, progress, tensorboard, threads)
    if report == "background":
        from neuronlab.report import default_workers, write_in_background, write_report

        pid = write_in_background(run_dir)
        if pid is None:
            click.echo(f"report: {write_report(run_dir, workers=default_workers())}", err=True)
        else:
            click.echo(f"report: {run_dir / 'report.html'} (being drawn in the background, "
                       f"pid {pid})", err=True)


def _train_and_save(run: Any, cfg: Any, run_dir: Path, resume: str | None, progress: bool | None,
                    tensorboard: bool, threads: int | None) -> None:
    """Train, write the model, print the test metrics and the diagnosis."""
    from neuronlab.babysit.baselines import baselines_for_run
    from neuronlab.babysit.diagnose import diagnose, format_findings
    from neuronlab.babysit.monitor import Monitor
    from neuronlab.io import save
    from neuronlab.threads import limit_blas
    from neuronlab.train import (
        Checkpoint,
        DivergenceError,
        EarlyStopping,
        JSONLLogger,
        NonFiniteGuard,
        ProgressBar,
        Trainer,
    )
    from neuronlab.train.checkpoint import latest_checkpoint

    ckpt_dir = run_dir / "checkpoints"
    t = cfg.train
    stopper = None if t.early_stopping is None else EarlyStopping(
        t.monitor, patience=t.early_stopping, restore_best=True)
    callbacks = [
        NonFiniteGuard(),
        JSONLLogger(run_dir / "metrics.jsonl"),
        Checkpoint(ckpt_dir),  # the last epoch's checkpoint keeps the last weights
        ProgressBar(disable=None if progress is None else not progress),
        *([stopper] if stopper else []),
    ]
    if tensorboard:
        from neuronlab.tensorboard import TensorBoardLogger

        callbacks.append(TensorBoardLogger(run_dir / "tensorboard"))
    trainer = Trainer(**run.trainer_kwargs(), callbacks=callbacks, threads=threads,
                      monitor=Monitor(sharpness_every=t.sharpness_every))
    click.echo(f"run directory: {run_dir}", err=True)
    try:
        trainer.fit(
            *run.train,
            validation=run.val if len(run.val[1]) else None,
            epochs=t.epochs,
            batch_size=t.batch_size,
            seed=t.seed,
            class_weight=None if t.class_weight == "none" else t.class_weight,
            resume=resume,
        )
    except DivergenceError as e:
        click.echo(format_findings(diagnose(trainer.history)), err=True)
        last = latest_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
        kept = f"the last good checkpoint is kept: {last}" if last else "no checkpoint was written"
        raise _Diverged(f"{e}; {kept}") from None

    # The saved model: the last epoch's, or with early stopping the best epoch's (restored).
    epoch = trainer.epoch if stopper is None or stopper.best_epoch is None else stopper.best_epoch
    with limit_blas(threads):
        scores = {part: evaluate(run.model, run.loss, *pair) if len(pair[1]) else None
                  for part, pair in (("train", run.train), ("val", run.val), ("test", run.test))}
        # what a trivial model and a linear one score on the same rows (the test part
        # when there is one: the numbers the summary prints); informative only, so a
        # failure there never costs the trained model
        try:
            base = baselines_for_run(run, part="test" if scores["test"] else None)
        except Exception as e:  # noqa: BLE001
            base, why = None, f"{type(e).__name__}: {e}"
    run.model.preprocessor = run.preprocessor
    meta = {"loss": cfg.model.loss, "config": cfg.to_dict(), "epoch": epoch, **scores,
            **({"baselines": base.to_dict()} if base is not None else {})}
    save(run.model, run_dir / "model.safetensors", preprocessor=run.preprocessor, metadata=meta)
    click.echo(_format_metrics(scores["test"], f"test ({len(run.test[1])} samples)")
               if scores["test"] else "test: no test split (data.test_size = 0)")
    if stopper is not None:
        click.echo(_early_stopping_line(stopper, t.epochs))
    click.echo(_summary_line(scores))
    click.echo(f"baselines: {base.compare(scores[base.part])}" if base is not None
               else f"baselines: not computed ({why})")
    click.echo(format_findings(diagnose(trainer.history)))


def _early_stopping_line(stopper: Any, epochs: int) -> str:
    """Where training stopped and which epoch the saved model is (1-based, as the bar shows)."""
    best = stopper.best_epoch
    if best is None:
        return f"early stopping: {stopper.monitor} was never finite; the model is the last epoch's"
    how = (f"no improvement of {stopper.monitor} for {stopper.patience} epochs, stopped after "
           f"epoch {stopper.stopped_epoch + 1} of {epochs}" if stopper.stopped_epoch is not None
           else f"ran all {epochs} epochs")
    return f"early stopping: {how}; the saved model is epoch {best + 1}'s ({stopper.monitor} {stopper.best:.4g})"


def _summary_line(scores: dict[str, Any]) -> str:
    """One line: the saved model's accuracy (or MSE) on each part of the data."""
    names = {"train": "train", "val": "validation", "test": "test"}
    key, what = ("acc", "accuracy") if any(s and "acc" in s for s in scores.values()) else (
        "error", "mean squared error")
    parts = [f"{names[p]} {s[key]:.4f}" for p, s in scores.items() if s is not None]
    return f"{what}: {', '.join(parts)}"


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
    a tiny subset, gradient check; then the data: the baselines to beat, held-out rows that
    repeat training rows, identical inputs with different labels. Takes the options of
    `train`; exits 1 if a check fails (warnings do not)."""
    from neuronlab.runs import split_rows
    from neuronlab.sanity import (
        SanityReport,
        baseline_result,
        conflicts_result,
        duplicates_result,
        sanity_check,
    )

    cfg = buildable(resolve_config(config_file, options))  # lr auto: the sanity checks need no rate
    seed = cfg.train.seed
    run = prepare_run(cfg, scratch_dir="runs")  # a large .npy is streamed as for train
    try:
        report = sanity_check(run.model, run.loss, *run.train, n_overfit=n_overfit,
                              max_steps=max_steps, optimizer=run.optimizer, seed=seed,
                              data_checks=False)
        # the baselines see the rows as the network does (preprocessed): scored on the test
        # part, else the validation part, else the training rows themselves
        held = next(((p, pair) for p, pair in (("test", run.test), ("val", run.val))
                     if pair is not None and len(pair[1])), ("train", (None, None)))
        results = [baseline_result(*run.train, *held[1], loss=run.loss, part=held[0], seed=seed)]
    finally:
        run.close()
    # duplicates and conflicts on the raw rows of the run's real split: preprocessing by
    # matrix products (PCA, ZCA) may tell identical rows apart in their last bits
    s = split_rows(cfg)
    test = (s.test[0], None) if s.test is not None else (s.X, s.parts.test)
    results += [duplicates_result(s.X, {"test": test, "val": (s.X, s.parts.val)}, rows=s.parts.train),
                conflicts_result(s.X, s.y, task=run.loss.task, rows=s.parts.train)]
    report = SanityReport([*report.results, *results])
    click.echo(str(report))
    if not report.passed:
        sys.exit(EXIT_CHECK_FAILED)


@cli.command()
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(exists=True, file_okay=False))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Output file [RUN_DIR/report.html]."
)
def report(run_dir: str, output: str | None) -> None:
    """Write one self-contained HTML report of RUN_DIR: config, model, metrics, diagnosis, plots.

    It replaces a report still being drawn in the background, or one whose drawing was
    killed or gave up (RUN_DIR/report.pending)."""
    from neuronlab.report import default_workers, write_report

    click.echo(write_report(run_dir, path=output, workers=default_workers()))


# -- evaluate / summary / export -----------------------------------------------------------
