"""One self-contained HTML report of a run directory.

``write_report(run_dir)`` reads what ``neuronlab train`` wrote (``config.toml``,
``metrics.jsonl``, ``model.safetensors``) and writes ``report.html`` beside them: the config,
the model summary, the final metrics, the diagnosis and every plot that applies, each in a
``<section id="...">`` with a stable id (see :data:`SECTION_IDS`). Pictures are PNGs embedded
as base64 ``data:`` URLs and the style sheet is inline, so the file has no external resource
and can be mailed or archived as it is. Missing pieces (no model file, no monitor records, a
data file that moved) leave a note in their section instead of failing the report.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from neuronlab import plots
from neuronlab.io import atomic_write_bytes
from neuronlab.train.loggers import read_metrics

__all__ = ["SECTION_IDS", "image_shape_for", "write_report"]

SECTION_IDS: tuple[str, ...] = (
    "config",
    "summary",
    "metrics",
    "baselines",
    "diagnosis",
    "verification",
    "loss",
    "accuracy",
    "learning-rate",
    "lr-find",
    "update-ratio",
    "gradient-norms",
    "dead-units",
    "activations",
    "gradients",
    "noise-scale",
    "sharpness",
    "spectrum",
    "weights",
    "decision-regions",
)
"""Every section a report can have, in page order. ``weights`` appears only for image data
and ``decision-regions`` only for 2-D data; every other section is always present, with a
note when it has nothing to show (``lr-find`` draws the range test of ``train --lr auto``;
``verification`` the replays of ``neuronlab diagnose --verify`` and "what to try next", ordered
by their measured effect; ``sharpness`` needs ``--sharpness-every``)."""

_DPI = 90  # 576×360 pixels for a 6.4×4 in figure: crisp in a 1100 px wide page
_WIDE = (11.0, 3.8)  # single-plot figures span the page: 990×342 pixels
_IMAGE_SHAPES = {"digits": (8, 8)}  # data-set name -> shape of one flattened row
_CIFAR_SHAPE = (3, 32, 32)  # CIFAR-10 python batches: channel-major rows (R plane, G, B)

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#243447;color:#fff;padding:1.2em 2em}header h1{margin:0;font-size:1.5em}
header p{margin:.3em 0 0;opacity:.8}nav{padding:.6em 2em;background:#e9edf2;font-size:.9em}
nav a{margin-right:1em;color:#243447}main{padding:0 2em 2em;max-width:1100px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;margin:1.2em 0;padding:.6em 1.2em 1em}
h2{font-size:1.15em;border-bottom:1px solid #eee;padding-bottom:.3em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #dde2e8;padding:.25em .6em;text-align:left}
th{background:#f2f4f7}pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}
img{max-width:100%;height:auto}.note{color:#666;font-style:italic}
.finding{border-left:4px solid #d9822b;padding:.2em .8em;margin:.6em 0;background:#fff8f0}
.finding.error{border-color:#c0392b;background:#fdf1f0}.finding.info{border-color:#2c6fbb;background:#f1f6fc}
.finding.ok{border-color:#2e8540;background:#f3faf4}.finding h3{margin:.2em 0;font-size:1em}
details{margin:.3em 0}summary{cursor:pointer;color:#444}
"""


# -- reading a run directory -------------------------------------------------------------------------
def image_shape_for(config: dict[str, Any], n_in: int | None) -> tuple[int, ...] | None:
    """Shape of one input row as an image, or None when the inputs are not images.

    Decided from the config: ``data.image_shape`` when given, else the data set (``digits``:
    8×8, ``cifar10:DIR``: 3×32×32 channel-major); the shape must also match the model's input
    width (PCA to k components makes inputs that are no longer pixels).
    """
    data = config.get("data", {}) if isinstance(config, dict) else {}
    source = str(data.get("source", ""))
    shape = data.get("image_shape")
    if shape is None:
        shape = _CIFAR_SHAPE if source.startswith("cifar10:") else _IMAGE_SHAPES.get(source)
    if shape is None or n_in is None or math.prod(shape) != n_in:
        return None
    return tuple(int(s) for s in shape)


def _load_config(run_dir: Path, model: Any) -> tuple[dict[str, Any], str | None]:
    p = run_dir / "config.toml"
    if p.is_file():
        try:
            with p.open("rb") as f:
                return tomllib.load(f), None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            return {}, f"config.toml could not be read: {e}"
    saved = getattr(model, "metadata", {}).get("config") if model is not None else None
    if isinstance(saved, dict):
        return saved, "no config.toml: the config saved in the model file is shown"
    return {}, "no config.toml in the run directory"


def _load_model(run_dir: Path) -> tuple[Any, str | None]:
    p = run_dir / "model.safetensors"
    if not p.is_file():
        return None, "no model.safetensors in the run directory (training did not finish?)"
    from neuronlab.io import load

    try:
        return load(p), None
    except (OSError, ValueError) as e:
        return None, f"model.safetensors could not be loaded: {e}"


def _load_training_data(config: dict[str, Any], sample_size: int) -> tuple[np.ndarray, ...]:
    """``(X_sample, y_sample, X, y)``: ``sample_size`` random rows of the run's training split
    (rebuilt from its config exactly as ``train`` split it), and the whole split when it is
    2-D data (for the decision regions; else None). Only the sampled rows are read, so a
    memory-mapped data file stays on disk."""
    from neuronlab.config import RunConfig
    from neuronlab.data.arrays import batch
    from neuronlab.runs import split_rows

    s = split_rows(RunConfig.from_dict(config, source="config.toml"))
    train = s.parts.train
    pick = train[np.sort(np.random.default_rng(0).permutation(train.size)[:sample_size])]
    sample = batch(s.X, pick, dtype=s.X.dtype), s.y[pick]
    if s.X.ndim == 2 and s.X.shape[1] == 2:
        return (*sample, np.asarray(s.X[train]), s.y[train])
    return (*sample, None, None)


# -- HTML pieces ---------------------------------------------------------------------------------
class _Pngs:
    """Draws the report's figures as base64 PNGs at :data:`_DPI`, each drawn once.

    ``savefig`` draws a figure twice when it has a layout engine (once to lay it out, once
    to render); ``canvas.draw()`` lays out and renders in one pass, with the same pixels.
    Figures of one size share an Agg canvas, so they share its renderer and what it caches
    (text extents, parsed math text of the log-axis labels): the loss, accuracy and monitor
    plots are drawn about a quarter faster, pixel for pixel the same. The figures are opaque,
    so the PNGs are RGB (a tenth smaller than savefig's RGBA); Pillow writes no Software
    tag, so the bytes do not depend on the matplotlib version.
    """

    def __init__(self) -> None:
        self._canvases: dict[tuple[float, float], Any] = {}

    def __call__(self, fig: Any) -> str:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from PIL import Image

        fig.set_dpi(_DPI)
        if len(fig.axes) == 1:  # a curve: the page's full width (panels keep their own size)
            fig.set_size_inches(_WIDE)
        elif len({round(a.get_position().x0, 2) for a in fig.axes}) == 1:  # stacked curves
            fig.set_size_inches(_WIDE[0], fig.get_figheight())
        size = (float(fig.get_figwidth()), float(fig.get_figheight()))
        canvas = self._canvases.get(size)
        if canvas is None:
            canvas = self._canvases[size] = FigureCanvasAgg(fig)
        else:  # the shared canvas draws this figure now (both attributes are public API)
            fig.set_canvas(canvas)
            canvas.figure = fig
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        pixels = np.ascontiguousarray(rgba[..., :3]) if rgba[..., 3].min() == 255 else rgba
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="png", dpi=(_DPI, _DPI))
        return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(png: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "—" if not math.isfinite(v) else f"{v:.4g}"
    if v is None:
        return "—"
    return html.escape(str(v))


def _table(rows: list[tuple[Any, ...]], head: tuple[str, ...] | None = None) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head) if head else ""
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{f'<tr>{h}</tr>' if h else ''}{body}</table>"


def _config_html(config: dict[str, Any]) -> str:
    rows = []
    for section, body in config.items():
        if isinstance(body, dict):
            rows += [
                (f"{section}.{k}", json.dumps(v) if isinstance(v, list) else v)
                for k, v in body.items()
            ]
        else:
            rows.append((section, body))
    return _table(rows, ("key", "value")) if rows else ""


def _metrics_html(records: plots.RunRecords, model: Any) -> str:
    parts = []
    if records.epochs:
        last = records.epochs[-1]
        keys = [
            k
            for k in ("loss", "acc", "error", "val_loss", "val_acc", "val_error", "lr")
            if k in last
        ]
        parts.append(
            f"<p>After epoch {last.get('epoch', len(records.epochs) - 1) + 1} "
            f"({last.get('step', '?')} steps):</p>"
        )
        parts.append(_table([tuple(last.get(k) for k in keys)], tuple(keys)))
        if any(e.get("val_loss") is not None for e in records.epochs):
            best = min(
                (e for e in records.epochs if e.get("val_loss") is not None),
                key=lambda e: e["val_loss"],
            )
            parts.append(
                f"<p>Best validation loss {_fmt(best['val_loss'])} after epoch {best['epoch'] + 1}.</p>"
            )
    test = getattr(model, "metadata", {}).get("test") if model is not None else None
    if isinstance(test, dict) and test:
        parts.append("<p>Held-out test set:</p>" + _table([tuple(test.values())], tuple(test)))
    return "".join(parts) or _note("no epoch finished in this run")


def _finding_html(f: Any) -> str:
    """One :class:`neuronlab.babysit.diagnose.Finding` (rule, severity, message, evidence, action)."""
    d = f.to_dict() if hasattr(f, "to_dict") else dict(f)
    severity = str(d.get("severity") or "warning")
    title = str(d.get("rule") or "finding").replace("_", " ")
    parts = [f"<p>{html.escape(str(d.get('message') or ''))}</p>"]
    evidence = d.get("evidence")
    if isinstance(evidence, dict) and evidence:
        rows = [
            (k, json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in evidence.items()
        ]
        parts.append("<details><summary>Evidence</summary>" + _table(rows) + "</details>")
    if d.get("action"):
        parts.append(f"<p><b>Try:</b> {html.escape(str(d['action']))}</p>")
    return (
        f'<div class="finding {html.escape(severity)}"><h3>{html.escape(title)} '
        f"<small>({html.escape(severity)})</small></h3>{''.join(parts)}</div>"
    )


def _diagnosis_html(records: plots.RunRecords, model: Any) -> str:
    try:
        from neuronlab.babysit.diagnose import diagnose
    except ImportError:
        return _note("diagnosis is not available in this installation")
    findings = diagnose(records.to_history(), model=model)
    if not findings:
        return '<div class="finding ok"><h3>No problem found</h3><p>Every rule passed.</p></div>'
    return "".join(_finding_html(f) for f in findings)


# -- the report ------------------------------------------------------------------------------------
def write_report(
    run_dir: str | os.PathLike[str],
    *,
    path: str | os.PathLike[str] | None = None,
    sample_size: int = 500,
) -> Path:
    """Write ``report.html`` for a run directory and return its path.

    Parameters
    ----------
    run_dir : path
        A folder written by ``neuronlab train``.
    path : path, optional
        Where to write (default ``RUN_DIR/report.html``); written atomically.
    sample_size : int
        Training rows forwarded for the activation and gradient histograms.

    Returns
    -------
    pathlib.Path
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    model, model_note = _load_model(run_dir)
    config, config_note = _load_config(run_dir, model)
    metrics_file = run_dir / "metrics.jsonl"
    records = plots.as_records(read_metrics(metrics_file) if metrics_file.is_file() else [])

    sections: list[tuple[str, str, str]] = []

    def add(sid: str, title: str, content: str) -> None:
        sections.append((sid, title, content))

    png = _Pngs()

    def figure(sid: str, title: str, make: Any, *, explain: str = "") -> None:
        try:
            content = _img(png(make()), title)
        except Exception as e:  # noqa: BLE001  one failing plot must not take the report down
            content = _note(f"this plot failed: {type(e).__name__}: {e}")
        add(sid, title, (f"<p>{html.escape(explain)}</p>" if explain else "") + content)

    add(
        "config",
        "Configuration",
        (_note(config_note) if config_note else "") + _config_html(config),
    )
    add(
        "summary",
        "Model",
        _note(model_note) if model is None else f"<pre>{html.escape(str(model.summary()))}</pre>",
    )
    add("metrics", "Final metrics", _metrics_html(records, model))
    try:
        diagnosis = _diagnosis_html(records, model)
    except Exception as e:  # noqa: BLE001  the rest of the report is still worth having
        diagnosis = _note(f"the diagnosis failed: {type(e).__name__}: {e}")
    add("baselines", "Baselines", _baselines_html(model, records))
    add("diagnosis", "Diagnosis", diagnosis)
    _verification_section(run_dir, add, figure)
    figure("loss", "Loss", lambda: plots.plot_loss(records, log_scale=_spans_decades(records.loss)))
    figure("accuracy", "Accuracy", lambda: plots.plot_accuracy(records))
    figure("learning-rate", "Learning rate", lambda: plots.plot_learning_rate(records))
    _lr_find_section(run_dir, add, figure)
    figure(
        "update-ratio",
        "Update / weight ratio",
        lambda: plots.plot_update_ratios(records),
        explain="‖Δw‖/‖w‖ per step; the notes' rule of thumb is about 1e-3 (dashed).",
    )
    figure("gradient-norms", "Gradient norms", lambda: plots.plot_gradient_norms(records))
    figure("dead-units", "Dead and saturated units", lambda: plots.plot_dead_units(records))

    data_note, Xs, ys, X, y = None, None, None, None, None
    if model is not None and config:
        try:
            Xs, ys, X, y = _load_training_data(config, sample_size)
        except Exception as e:  # noqa: BLE001  data file moved, CIFAR not on this machine...
            data_note = f"the training data could not be loaded ({type(e).__name__}: {e})"
    else:
        data_note = "needs the model and the config"
    if Xs is not None:
        pre = getattr(model, "preprocessor", None)
        Xp = np.ascontiguousarray(pre.transform(Xs) if pre is not None else Xs, dtype=model.dtype)
        from neuronlab.registry import LOSSES

        loss = LOSSES.create(str(config.get("model", {}).get("loss", "softmax_cross_entropy")))
        figure(
            "activations",
            "Activation histograms",
            lambda: plots.plot_activation_histograms(model, Xp),
            explain=f"Each layer's output on {len(Xp)} training examples, inference mode.",
        )
        figure(
            "gradients",
            "Gradient histograms",
            lambda: plots.plot_gradient_histograms(model, loss, Xp, ys),
            explain="The gradient reaching each layer's output on the same examples (gradient flow).",
        )
    else:
        add("activations", "Activation histograms", _note(data_note or ""))
        add("gradients", "Gradient histograms", _note(data_note or ""))
    _instrument_sections(records, model, add, figure)
    if model is not None:
        shape = image_shape_for(config, model.n_in)
        if shape is not None:
            figure("weights", "First-layer weights", lambda: plots.plot_weight_grid(model, shape))
        if X is not None and X.ndim == 2 and X.shape[1] == 2 and model.n_in == 2:
            figure(
                "decision-regions",
                "Decision regions",
                lambda: plots.plot_decision_regions(model, X, y),
            )

    name = html.escape(run_dir.resolve().name)
    nav = "".join(f'<a href="#{sid}">{html.escape(t)}</a>' for sid, t, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{html.escape(t)}</h2>{c}</section>' for sid, t, c in sections
    )
    doc = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>neuronlab report: {name}'
        f"</title><style>{_CSS}</style></head><body><header><h1>neuronlab run report</h1>"
        f"<p>{name}</p></header><nav>{nav}</nav><main>{body}</main></body></html>\n"
    )
    out = Path(path) if path is not None else run_dir / "report.html"
    atomic_write_bytes(out, doc.encode("utf-8"))
    return out


def _lr_find_section(run_dir: Path, add: Any, figure: Any) -> None:
    """The "lr-find" section: the range test of ``train --lr auto`` (``lr_find.json``), or a
    note that the rate was given."""
    title, path = "Learning-rate range test", run_dir / "lr_find.json"
    if not path.is_file():
        add("lr-find", title, _note("the learning rate was given, not found (train --lr auto "
                                    "runs a range test first and keeps it here)"))
        return
    from neuronlab.babysit.lr_find import LRFindResult

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        result = LRFindResult.from_dict(doc)
        lr, (lo, hi) = float(doc.get("lr", result.suggestion)), result.spread
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as e:
        add("lr-find", title, _note(f"lr_find.json could not be read: {e}"))
        return
    figure("lr-find", title, result.plot, explain=(
        f"train --lr auto trained with lr {lr:.3g}: the {result.rule} rule, from "
        f"{lo:.3g} to {hi:.3g} over {len(result.seeds)} sweeps of the training split."))


def _baselines_html(model: Any, records: plots.RunRecords) -> str:
    """What a majority-class (or mean) predictor and a linear model score on the same rows
    as the network (``neuronlab train`` saves them in the model file's metadata)."""
    saved = getattr(model, "metadata", {}).get("baselines") if model is not None else None
    if not isinstance(saved, dict):
        return _note("no baselines in the model file (neuronlab train computes them)")
    from neuronlab.babysit.baselines import Baselines

    try:
        base = Baselines(**saved)
        scores = model.metadata.get(base.part)
        words = base.compare(scores) if isinstance(scores, dict) else base.summary()
    except (TypeError, ValueError, KeyError) as e:
        return _note(f"the saved baselines could not be read: {e}")
    return f"<p>{html.escape(words[0].upper() + words[1:])}.</p><p>{html.escape(base.summary())}</p>"


def _verification_section(run_dir: Path, add: Any, figure: Any) -> None:
    """The replays of ``neuronlab diagnose --verify`` (``verify.json``): "what to try next",
    the changes that helped first, by how much they lowered the loss, then a plot of both arms
    of every replay."""
    title = "What to try next (verified)"
    if not (run_dir / "verify.json").is_file():
        add("verification", title, _note(
            "no replays yet: `neuronlab diagnose RUN_DIR --verify` replays each proposed change "
            "against the original setting and says which helped"))
        return
    from neuronlab.babysit.verify import load_verifications, plot_verification

    try:
        found = load_verifications(run_dir)
    except (OSError, ValueError) as e:
        add("verification", title, _note(f"verify.json could not be read: {e}"))
        return
    if not found:
        add("verification", title, _note("verify.json holds no replay (no finding proposed a change)"))
        return
    ranked = sorted(found, key=lambda v: (not v.helped, -(v.improvement or 0.0)))
    items = "".join(
        f'<div class="finding {"ok" if v.helped else "info"}"><h3>{i}. {html.escape(v.change)} '
        f'({html.escape(v.rule)})</h3><p>{html.escape(v.summary())}</p></div>'
        for i, v in enumerate(ranked, 1))
    try:
        items += _img(_Pngs()(plot_verification(ranked)), "replays")
    except Exception as e:  # noqa: BLE001  the ranking is worth having without the picture
        items += _note(f"the replay plot failed: {type(e).__name__}: {e}")
    add("verification", title, items)


def _instrument_sections(records: plots.RunRecords, model: Any, add: Any, figure: Any) -> None:
    """Gradient noise scale and SNR, sharpness against its stability bound, weight spectra."""
    kinds = {str(r.get("kind")) for r in records.monitor}
    if "noise" in kinds:
        from neuronlab.babysit.gradient_noise import plot_noise_scale

        batch = records.info.get("batch_size")
        figure("noise-scale", "Gradient noise scale", lambda: plot_noise_scale(
            records.monitor, batch_size=batch if isinstance(batch, int) else None), explain=(
            "B_simple = tr(Σ)/|G|² from per-sample gradients of the monitor's sample: the batch "
            "size beyond which a bigger batch hardly shortens training (McCandlish et al. 2018); "
            "below, each layer's gradient signal-to-noise ratio."))
    else:
        add("noise-scale", "Gradient noise scale", _note("not measured (Monitor(noise_every=None))"))
    if "sharpness" in kinds:
        from neuronlab.babysit.sharpness import plot_sharpness

        figure("sharpness", "Sharpness against the stability bound",
               lambda: plot_sharpness(records.monitor), explain=(
                   "The top eigenvalue of the loss's Hessian (preconditioned for adaptive "
                   "optimizers) against the bound above which a step overshoots (2/lr for SGD)."))
    else:
        add("sharpness", "Sharpness against the stability bound", _note(
            "not measured: neuronlab train --sharpness-every N estimates it every N steps"))
    if model is not None and getattr(model, "weight_keys", None):
        from neuronlab.babysit.spectrum import plot_spectrum

        figure("spectrum", "Weight spectra", lambda: plot_spectrum(model), explain=(
            "The eigenvalues of WᵀW of each weight matrix (squared singular values) on log-log "
            "axes, with the power-law fit of the tail where the layer is big enough (α between "
            "2 and 6: well-trained layers; the spectra of a random matrix have no heavy tail)."))
    else:
        add("spectrum", "Weight spectra", _note("needs the model file"))


def _spans_decades(loss: np.ndarray) -> bool:
    """Log scale when the finite positive losses span more than two decades."""
    v = loss[np.isfinite(loss) & (loss > 0)]
    return v.size > 1 and float(v.max()) > 100.0 * float(v.min())
