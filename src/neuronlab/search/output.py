"""The search directory: one folder per trial, tables of all trials, the best trial, plots.

::

    SEARCH_DIR/
      search.json          the space and fixed settings (a rerun must match them)
      study.journal        Optuna's journal: the durable record; rerunning resumes from it
      study.journal.flock  its write lock (flock: released by the kernel if the search is killed)
      trials/0007/         config.toml, metrics.jsonl, model.safetensors (from the worker),
                           status.json (state, value, params, epoch values, error)
      trials.jsonl         one line per finished trial, appended as trials finish
      trials.csv           every trial of the study, rewritten at the end
      best.json            the best trial's record; best.toml and model.safetensors: its files
      plots/               lr_reg.png, history.png, importance.png, intermediate.png
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neuronlab.io import atomic_write_bytes

__all__ = [
    "draw_plots",
    "plot_process",
    "read_records",
    "save_plots",
    "trial_dir",
    "trial_record",
    "warm_plots",
    "write_outputs",
    "write_trial",
    "write_trial_files",
]

_HIDDEN_ATTRS = ("owner", "traceback")


def trial_dir(directory: str | os.PathLike[str], number: int) -> Path:
    return Path(directory) / "trials" / f"{number:04d}"


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def trial_record(t: Any) -> dict[str, Any]:
    """A JSON-able summary of an Optuna FrozenTrial."""
    attrs = {k: v for k, v in t.user_attrs.items() if k not in _HIDDEN_ATTRS}
    return {
        "number": t.number,
        "state": t.state.name,
        "value": _jsonable(t.value),
        "params": dict(t.params),
        "stage": int(attrs.pop("stage", 0)),
        "budget": float(attrs.pop("budget", 1.0)),
        "intermediate": {str(k): _jsonable(v) for k, v in sorted(t.intermediate_values.items())},
        **attrs,
    }


def write_trial_files(directory: Path, number: int, files: dict[str, bytes]) -> None:
    """Trial ``number``'s folder with the files its worker made (config.toml, metrics.jsonl,
    the model), written before the study is told the trial's outcome: a folder without
    status.json is not a trial record yet (:func:`read_records` skips it)."""
    folder = trial_dir(directory, number)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        atomic_write_bytes(folder / name, data)


def write_trial(directory: Path, record: dict[str, Any], outcome: Any = None) -> None:
    """The trial's record: its status.json and its line in trials.jsonl (the worker's files
    are written first, by :func:`write_trial_files`; ``outcome`` adds its traceback)."""
    folder = trial_dir(directory, record["number"])
    folder.mkdir(parents=True, exist_ok=True)
    status = dict(record)
    attrs = getattr(outcome, "attrs", {})
    if "traceback" in attrs:
        status["traceback"] = attrs["traceback"]
    atomic_write_bytes(folder / "status.json", (json.dumps(status, indent=2) + "\n").encode())
    with open(directory / "trials.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def read_records(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The trials of a search directory, from the trials' status.json files.

    Parameters
    ----------
    directory : str or os.PathLike
        A search directory (with a ``trials/`` folder).

    Returns
    -------
    list of dict
        One record per trial folder with a ``status.json``, in folder-name order.

    Raises
    ------
    FileNotFoundError
        If ``directory`` has no ``trials/`` folder.
    """
    folder = Path(directory) / "trials"
    if not folder.is_dir():
        raise FileNotFoundError(f"{directory} is not a search directory (no trials/ folder)")
    records = []
    for status in sorted(folder.glob("*/status.json")):
        records.append(json.loads(status.read_text(encoding="utf-8")))
    return records


def _csv(records: list[dict[str, Any]]) -> str:
    names: list[str] = []
    for r in records:
        names += [k for k in r["params"] if k not in names]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["number", "state", "value", "stage", "budget", "duration", *names, "error"])
    for r in records:
        w.writerow([r["number"], r["state"], "" if r["value"] is None else r["value"], r["stage"], r["budget"],
                    r.get("duration", ""), *(r["params"].get(n, "") for n in names), r.get("error", "")])
    return buf.getvalue()


def write_outputs(directory: Path, study: Any, records: list[dict[str, Any]], best: dict[str, Any] | None,
                  *, plots: bool = True, pool: Any = None) -> None:
    """trials.csv, best.json with the best trial's files, and the plots (drawn by the local
    worker processes of ``pool`` when it has them; see :func:`save_plots`)."""
    atomic_write_bytes(directory / "trials.csv", _csv(records).encode())
    if best is not None:
        atomic_write_bytes(directory / "best.json", (json.dumps(best, indent=2) + "\n").encode())
        src = trial_dir(directory, best["number"])
        for name, target in (("config.toml", "best.toml"), ("model.safetensors", "model.safetensors")):
            if (src / name).is_file():
                atomic_write_bytes(directory / target, (src / name).read_bytes())
    if plots:
        save_plots(directory / "plots", study, records, pool=pool)


#: The search's plots, in the order they are drawn: Optuna's (the last three) switch
#: matplotlib to its ggplot style for the rest of the process, so lr_reg comes first.
PLOTS: tuple[str, ...] = ("lr_reg", "history", "importance", "intermediate")


def save_plots(folder: Path, study: Any, records: list[dict[str, Any]], *, pool: Any = None
               ) -> dict[str, str]:
    """Write the search plots; returns ``{name: path or "skipped: reason"}``.

    With ``pool`` (the :func:`plot_process` of the search, an Executor) its process draws
    them, from a copy of the study's trials, and this process writes the files; otherwise
    they are drawn here.
    """
    folder.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    direction = study.direction.name.lower()
    drawn: dict[str, bytes | str] | None = None
    if pool is not None:
        try:
            drawn = pool.submit(draw_plots, PLOTS, trials, direction, records).result()
        except Exception:  # noqa: BLE001 - its process was lost: drawn here instead
            drawn = None
    if drawn is None:
        drawn = draw_plots(PLOTS, trials, direction, records)
    done: dict[str, str] = {}
    for name in PLOTS:
        png = drawn[name]
        if isinstance(png, bytes):
            atomic_write_bytes(folder / f"{name}.png", png)
            done[name] = str(folder / f"{name}.png")
        else:
            done[name] = png
    return done


@contextlib.contextmanager
def plot_process() -> Iterator[Any]:
    """A process that gets ready to draw a search's plots while its trials run: it imports
    matplotlib, Optuna's plots and the importance evaluator (scikit-learn) and draws a first
    small figure, 2 s of CPU that the plots at the end of a search used to wait for on one
    core, then draws what :func:`save_plots` hands it. Its warm-up shares the cores with the
    trials' workers (at a lower priority it was still warming up when the trials ended, on a
    busy machine for seconds). A :class:`~neuronlab.search.workers.WorkerPool` of one: it
    ends with its parent."""
    from neuronlab.search.workers import WorkerPool

    pool = WorkerPool(1, initializer=_start_plotter, eager=True)
    try:
        yield pool
    except BaseException:
        pool.terminate()
        raise
    pool.shutdown()


def _start_plotter() -> None:
    try:
        warm_plots()
    except Exception:  # noqa: BLE001, S110 - drawing the plots meets the same problem and says so
        pass


def warm_plots() -> None:
    """Import what :func:`draw_plots` needs (matplotlib, Optuna's matplotlib plots, the
    importance evaluator and scikit-learn under it) and draw a first small figure (fonts)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        import optuna.importance
        import optuna.visualization.matplotlib
        from matplotlib.figure import Figure

        import neuronlab.search.plots  # noqa: F401

    fig = Figure(figsize=(2.0, 1.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([1, 2], [0.5, 1.0], "o-", label="value")
    ax.set_yscale("log")
    ax.set_title("warm-up")
    ax.legend()
    _png(fig)


def draw_plots(names: tuple[str, ...], trials: list[Any], direction: str,
               records: list[dict[str, Any]]) -> dict[str, bytes | str]:
    """The PNG bytes of the plots ``names`` (``"lr_reg"``, ``"history"``, ``"importance"``,
    ``"intermediate"``) of a search whose trials are ``trials`` (Optuna FrozenTrials), or
    ``"skipped: reason"``. Runs in any process: the trials go into an in-memory study."""
    import optuna

    from neuronlab.search.plots import plot_lr_reg

    out: dict[str, bytes | str] = {}
    if "lr_reg" in names:  # first: before Optuna's plots set their style
        try:
            fig = plot_lr_reg(records)
        except ValueError as e:  # no lr / regularisation parameter in this space
            out["lr_reg"] = f"skipped: {e}"
        else:
            out["lr_reg"] = _png(fig)
    rest = [n for n in names if n != "lr_reg"]
    if rest:
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = optuna.create_study(direction=direction)
            study.add_trials(trials)
        finally:
            optuna.logging.set_verbosity(verbosity)
        out.update(_optuna_plots(study, rest))
    return out


def _png(fig: Any, dpi: int = 100) -> bytes:
    """The figure as PNG at ``dpi``: what ``savefig(dpi=dpi)`` gives, pixel for pixel, drawn
    once (savefig draws a figure with a layout engine twice: once to lay it out, once to
    render; ``canvas.draw()`` does both in one pass)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    old_dpi = fig.dpi
    fig.set_dpi(dpi)
    try:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        pixels = np.asarray(canvas.buffer_rgba())
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="png", dpi=(dpi, dpi))
    finally:
        fig.set_dpi(old_dpi)
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)
    return buf.getvalue()


def _optuna_plots(study: Any, names: list[str]) -> dict[str, bytes | str]:
    import optuna
    import optuna.visualization.matplotlib as ovm

    plots = {"history": (ovm.plot_optimization_history, 1),
             "importance": (ovm.plot_param_importances, 2),
             "intermediate": (ovm.plot_intermediate_values, 1)}
    out: dict[str, bytes | str] = {}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    for name in names:
        fn, need = plots[name]
        if len(complete) < need:
            out[name] = f"skipped: needs {need} completed trials"
            continue
        with warnings.catch_warnings():
            # Optuna marks its matplotlib backend experimental; that notice is not a problem here.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                ax = fn(study)
            except (ValueError, RuntimeError) as e:  # e.g. importance with one distinct value
                out[name] = f"skipped: {e}"
                continue
        out[name] = _png(ax.figure if hasattr(ax, "figure") else ax.flat[0].figure)
    return out
