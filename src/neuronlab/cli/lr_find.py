"""``neuronlab lr-find``: a learning-rate range test of the run ``train`` would make.

It builds the run exactly as ``train`` does (:func:`~neuronlab.runs.prepare_run`: the data
split and preprocessed, the network initialised from the config's seed) and sweeps the
training split with :func:`neuronlab.babysit.lr_find.lr_find`, with the run's batch size,
regulariser, max-norm constraint and class weights (:func:`neuronlab.cli.train.sweep_run`,
which ``train --lr auto`` runs too). It creates no run folder: it prints the suggestions and
writes the plot.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import click

from neuronlab.cli.app import cli
from neuronlab.cli.train import _check_found, _train_options, buildable, resolve_config, sweep_run

__all__ = ["lr_find_command"]


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


@cli.command("lr-find")
@_train_options
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False),
    help="TOML run config; options override it.",
)
@click.option("--steps", type=click.IntRange(min=5, max=100_000), default=100, show_default=True,
              help="Steps of each sweep (one sweep per seed, three seeds).")
@click.option("--start-lr", type=click.FloatRange(min=0, min_open=True), default=1e-7,
              show_default=True, help="The first learning rate.")
@click.option("--end-lr", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="The last learning rate (the sweep stops once the loss "
              "blows up).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="lr_find.png",
              show_default=True, help="Where to write the plot (PNG).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result (suggestions and curves) as JSON instead of the table.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar [on when stderr is a terminal].")
def lr_find_command(config_file: str | None, steps: int, start_lr: float, end_lr: float,
                    output: str, as_json: bool, progress: bool | None, **options: Any) -> None:
    """Find a learning rate: a range test (Smith) of the run `train` would make.

    From the run's initial weights, three sweeps (one per seed) raise the learning rate
    geometrically from --start-lr to --end-lr over --steps minibatch steps of the training
    split and record the loss. Prints what three rules read from the curves, each the median
    over the seeds with its spread, and the recommended rate (valley); writes the plot. Takes
    the options of `train`; no run folder is made."""
    from neuronlab.io import atomic_write_bytes
    from neuronlab.runs import prepare_run

    if end_lr <= start_lr:
        raise click.BadParameter(f"must be > --start-lr ({start_lr:g}), got {end_lr:g}",
                                 param_hint="'--end-lr'")
    folder = Path(output).parent
    if not folder.is_dir():  # before the sweep, not after it
        raise click.BadParameter(f"the folder {str(folder)!r} does not exist",
                                 param_hint="'--output'")
    cfg = resolve_config(config_file, options)
    run = prepare_run(buildable(cfg))
    try:
        result = sweep_run(run, cfg, steps=steps, start_lr=start_lr, end_lr=end_lr,
                           progress=progress)
    finally:
        run.close()
    png = _png(result.plot())
    atomic_write_bytes(Path(output), png)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        click.echo(result.summary())
        lr = float(result.suggestion)
        click.echo(f"suggested lr: {lr:.3g}" if math.isfinite(lr) else
                   "suggested lr: none (no sweep had a finite loss)")
    click.echo(f"plot: {output}", err=True)
    _check_found(result)
