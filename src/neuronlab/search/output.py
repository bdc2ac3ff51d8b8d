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

import csv
import io
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from neuronlab.io import atomic_write_bytes

__all__ = ["read_records", "trial_dir", "trial_record", "write_outputs", "write_trial"]

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


def write_trial(directory: Path, record: dict[str, Any], outcome: Any) -> None:
    """The trial's folder (worker files and status.json) and its line in trials.jsonl."""
    folder = trial_dir(directory, record["number"])
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in outcome.files.items():
        atomic_write_bytes(folder / name, data)
    status = dict(record)
    if "traceback" in outcome.attrs:
        status["traceback"] = outcome.attrs["traceback"]
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
                  *, plots: bool = True) -> None:
    """trials.csv, best.json with the best trial's files, and the plots."""
    atomic_write_bytes(directory / "trials.csv", _csv(records).encode())
    if best is not None:
        atomic_write_bytes(directory / "best.json", (json.dumps(best, indent=2) + "\n").encode())
        src = trial_dir(directory, best["number"])
        for name, target in (("config.toml", "best.toml"), ("model.safetensors", "model.safetensors")):
            if (src / name).is_file():
                atomic_write_bytes(directory / target, (src / name).read_bytes())
    if plots:
        save_plots(directory / "plots", study, records)


def save_plots(folder: Path, study: Any, records: list[dict[str, Any]]) -> dict[str, str]:
    """Write the search plots; returns ``{name: path or "skipped: reason"}``."""
    from neuronlab.search.plots import plot_lr_reg

    folder.mkdir(parents=True, exist_ok=True)
    done: dict[str, str] = {}
    try:
        fig = plot_lr_reg(records)
    except ValueError as e:  # no lr / regularisation parameter in this space
        done["lr_reg"] = f"skipped: {e}"
    else:
        fig.savefig(folder / "lr_reg.png", dpi=100)
        done["lr_reg"] = str(folder / "lr_reg.png")
    done.update(_optuna_plots(folder, study))
    return done


def _optuna_plots(folder: Path, study: Any) -> dict[str, str]:
    import optuna
    import optuna.visualization.matplotlib as ovm

    out: dict[str, str] = {}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    for name, fn, need in (("history", ovm.plot_optimization_history, 1),
                           ("importance", ovm.plot_param_importances, 2),
                           ("intermediate", ovm.plot_intermediate_values, 1)):
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
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.savefig(folder / f"{name}.png", dpi=100)
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close(fig)
        out[name] = str(folder / f"{name}.png")
    return out
