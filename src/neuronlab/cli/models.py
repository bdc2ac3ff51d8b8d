"""``neuronlab evaluate``, ``summary`` and ``export``: commands on a saved model or run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from neuronlab.cli.app import _format_metrics, cli
from neuronlab.config import RunConfig
from neuronlab.runs import is_file_source, load_source, split_rows
from neuronlab.train.evaluation import evaluate as evaluate_model

__all__ = ["evaluate", "export", "summary"]


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
    # Rows are read a batch at a time: a memory-mapped file is never gathered whole.
    rows = None
    if split == "all" or (data is not None and is_file_source(source)):
        (X, y), test = load_source(source)
        what = f"{source} ({len(y)} samples)"
        if test is not None:  # cifar10: train and test batches together
            X, y = np.concatenate([X, test[0]]), np.concatenate([y, test[1]])
    else:
        s = split_rows(cfg)
        if s.test is not None:
            X, y = s.test
        else:
            X, y, rows = s.X, s.y, s.parts.test
            if rows.size == 0:
                raise click.UsageError(
                    f"the test split is empty: the run was trained with data.test_size = "
                    f"{cfg.data.test_size}; score it on other data with --data FILE, or on "
                    "every sample with --split all")
        what = f"{source} test split ({len(y) if rows is None else len(rows)} samples)"
    loss = LOSSES.create(model.metadata.get("loss", cfg.model.loss))
    scores = evaluate_model(model, loss, X, y, rows=rows, preprocessor=model.preprocessor)
    click.echo(_format_metrics(scores, what))


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
@click.option("--probabilities", is_flag=True,
              help="ONNX: add a 'probabilities' output (softmax or sigmoid, from the saved loss).")
def export(model_path: str, fmt: str, output: str | None, probabilities: bool) -> None:
    """Write MODEL as ONNX (inference graph) or .npz (arrays, readable without pickle)."""
    from neuronlab.io import export_onnx, save_npz

    if probabilities and fmt != "onnx":
        raise click.BadParameter("only with --format onnx", param_hint="'--probabilities'")
    model, path = _load_model(model_path)
    out = Path(output) if output else path.with_suffix(f".{fmt}")
    if out.resolve() == path.resolve():
        raise click.BadParameter(f"the output {out} would overwrite the model", param_hint="'-o'")
    if fmt == "onnx":
        export_onnx(model, out, probabilities=probabilities)
    else:
        save_npz(model, out, metadata=model.metadata)
    click.echo(f"wrote {out}")
