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
import logging
import math
import multiprocessing
import os
import re
import shlex
import signal
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import connection
from pathlib import Path
from typing import Any, Self

import numpy as np

from neuronlab import plots
from neuronlab.io import atomic_write_bytes
from neuronlab.train.loggers import read_metrics

__all__ = ["PENDING_FILE", "REPORT_TIMEOUT_S", "SECTION_IDS", "ReportWriter", "default_workers",
           "image_shape_for", "pending_report", "write_in_background", "write_report"]

logger = logging.getLogger(__name__)

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
    plots are drawn about a quarter faster, pixel for pixel the same. Constrained layout
    runs once instead of twice when its first pass leaves every axis with the ticks it
    measured (see :func:`_one_pass_layout`). The figures are opaque, so the PNGs are RGB (a
    tenth smaller than savefig's RGBA); Pillow writes no Software tag, so the bytes do not
    depend on the matplotlib version.
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
        _one_pass_layout(fig)
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


_ONE_PASS: Any = None  # the layout engine class, made on first use (it subclasses matplotlib's)


def _one_pass_layout(fig: Any) -> None:
    """Give ``fig`` a constrained layout that stops after its first pass when that pass
    changed no axis's ticks.

    Matplotlib's constrained layout always makes two passes: the first sizes the margins from
    the tick labels of the axes where they stand, the second again after moving them, because
    moving an axes can change its ticks and so its labels' extents. When the first pass left
    every axis with the tick locations it measured, the second measures the same labels and
    moves the axes by a fraction of a pixel at most (a panel figure's axes 0.4 px wider; a
    curve's not at all); it is skipped (a report's nine to twelve figures: a fifth of their
    drawing time). Otherwise the second pass runs as matplotlib's does. A figure whose
    engine is not the stock constrained one, or a matplotlib whose layout internals differ,
    keeps matplotlib's own layout.
    """
    global _ONE_PASS
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    engine = fig.get_layout_engine()
    if type(engine) is not ConstrainedLayoutEngine or getattr(engine, "_compress", False):
        return
    if _ONE_PASS is None:
        try:
            from matplotlib import _constrained_layout as cl

            steps = (cl.make_layoutgrids, cl.make_layout_margins, cl.make_margin_suptitles,
                     cl.match_submerged_margins, cl.check_no_collapsed_axes, cl.reposition_axes,
                     cl.reset_margins)
        except (ImportError, AttributeError):  # another matplotlib: its own two passes
            _ONE_PASS = ConstrainedLayoutEngine
        else:
            _ONE_PASS = _make_one_pass_engine(ConstrainedLayoutEngine, cl, steps)
    if _ONE_PASS is not ConstrainedLayoutEngine:
        fig.set_layout_engine(_ONE_PASS(**engine.get()))


def _make_one_pass_engine(base: Any, cl: Any, steps: tuple[Any, ...]) -> Any:
    """The engine class of :func:`_one_pass_layout`: matplotlib's ``do_constrained_layout``
    (3.8 to 3.11), whose loop ends early when the ticks stayed where they were."""

    def ticks(fig: Any) -> list[Any]:
        return [(tuple(axis.get_majorticklocs()), tuple(axis.get_minorticklocs()))
                for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)]

    class OnePassConstrained(base):  # type: ignore[misc, valid-type]
        def execute(self, fig: Any) -> Any:
            try:
                return self._layout(fig)
            except (TypeError, AttributeError):  # another signature: matplotlib's own
                return super().execute(fig)

        def _layout(self, fig: Any) -> Any:
            width, height = fig.get_size_inches()
            p = self._params
            w_pad, h_pad = p["w_pad"] / width, p["h_pad"] / height
            renderer = fig._get_renderer()
            grids = cl.make_layoutgrids(fig, None, rect=p["rect"])
            if not grids["hasgrids"]:
                return super().execute(fig)
            for _ in range(2):
                measured = ticks(fig)
                cl.make_layout_margins(grids, fig, renderer, h_pad=h_pad, w_pad=w_pad,
                                       hspace=p["hspace"], wspace=p["wspace"])
                cl.make_margin_suptitles(grids, fig, renderer, h_pad=h_pad, w_pad=w_pad)
                cl.match_submerged_margins(grids, fig)
                grids[fig].update_variables()
                if not cl.check_no_collapsed_axes(grids, fig):  # matplotlib warns; we leave it
                    return super().execute(fig)
                cl.reposition_axes(grids, fig, renderer, h_pad=h_pad, w_pad=w_pad,
                                   hspace=p["hspace"], wspace=p["wspace"])
                cl.reset_margins(grids, fig)
                if ticks(fig) == measured:
                    break
            return grids

    return OnePassConstrained


@dataclass
class _Figure:
    """One picture of the report: ``make()`` builds the figure; :meth:`html` draws it."""

    make: Callable[[], Any]
    alt: str
    failed: str = "this plot failed"
    cost: float = 1.0  # a rough drawing time, to hand out the slow ones first

    def html(self, png: _Pngs) -> str:
        try:
            return _img(png(self.make()), self.alt)
        except Exception as e:  # noqa: BLE001  one failing plot must not take the report down
            return _note(f"{self.failed}: {type(e).__name__}: {e}")


_FIGURE_MARK = "\x00figure {}\x00"  # where a figure's <img> goes in a section's HTML


# -- drawing the figures in processes ---------------------------------------------------------
def default_workers() -> int:
    """How many processes draw a report's figures by default: one per core this process may
    use, at most 4, and 1 where processes cannot be forked (a report's figures are drawn by
    forked copies of the process that read the run)."""
    if "fork" not in multiprocessing.get_all_start_methods() or not sys.platform.startswith("linux"):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cores))


_WARM: _Pngs | None = None  # the drawing state :func:`_warm_up` leaves to forked processes


def _warm_up() -> None:
    """Import what drawing a report needs and draw a first figure the size of the page's
    curves: matplotlib and Pillow, the plot modules, the fonts, the math-text grammar, and
    that canvas's renderer with the extents of the labels most curves have (steps, powers of
    ten). A process that forks its drawing processes after this hands all of it to them."""
    global _WARM
    if _WARM is not None:
        return
    _WARM = _Pngs()
    import matplotlib.figure
    from matplotlib.ticker import MaxNLocator
    from PIL import PngImagePlugin  # noqa: F401

    try:
        import threadpoolctl  # noqa: F401  (the drawing processes limit BLAS with it)
    except ImportError:
        pass

    from neuronlab.babysit import (  # noqa: F401
        gradient_noise,
        lr_find,
        sharpness,
        spectrum,
    )

    fig = matplotlib.figure.Figure(figsize=_WIDE, layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 500, 1000], [1e-4, 2e-2, 3.0], "o-", label="train (epoch mean)")
    ax.set_yscale("log")
    ax.set_title("Loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(loc="best", fontsize="small")
    _WARM(fig)
    fig = matplotlib.figure.Figure(figsize=(2.6, 2.1), layout="constrained")
    ax = fig.add_subplot()
    ax.stairs([1, 2], [0.0, 0.5, 1.0], fill=True)
    ax.set_title("0: Linear", fontsize="small")
    ax.tick_params(labelsize="x-small")
    ax.xaxis.set_major_locator(MaxNLocator(4))
    _Pngs()(fig)


def _draw_all(figures: list[_Figure], workers: int) -> list[str]:
    """Each figure's HTML (its ``<img>``, or a note that it failed), drawn here or, with
    ``workers`` > 1, by that many forked processes, the slow figures first."""
    if workers > 1 and len(figures) > 1 and default_workers() > 1:
        try:
            return _draw_forked(figures, min(workers, len(figures)))
        except OSError as e:  # no process could be started (memory, a process limit)
            logger.warning("drawing the report's figures in this process: %s", e)
    png = _Pngs()
    return [f.html(png) for f in figures]


def _no_fork_warning() -> Any:
    """Python 3.12+ warns when a process with threads forks (a lock another thread holds
    stays locked in the child). The threads here are BLAS's own, which fork safely (OpenBLAS
    parks them at fork), and the children only draw and write to their pipe."""
    import warnings

    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.filterwarnings("ignore", message=r".*fork\(\)", category=DeprecationWarning)
    return ctx


def _draw_forked(figures: list[_Figure], workers: int) -> list[str]:
    """Fork ``workers`` drawing processes and hand them the figures one at a time, each to
    the first that is free. A drawing process that dies (killed, out of memory) loses only
    its figure in hand, and a figure that failed there is tried once more: both are drawn
    here at the end. The processes end with this one."""
    _warm_up()  # once here, not once per process
    ctx = multiprocessing.get_context("fork")
    todo = sorted(range(len(figures)), key=lambda i: -figures[i].cost)
    out: dict[int, str] = {}
    procs: dict[Any, tuple[Any, int | None]] = {}  # connection -> (process, figure in hand)
    try:
        for _ in range(workers):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_draw_served, args=(figures, theirs, os.getpid()),
                               name="neuronlab-report", daemon=True)
            quiet = _no_fork_warning()
            try:
                proc.start()
            finally:
                quiet.__exit__(None, None, None)
            theirs.close()
            procs[mine] = (proc, None)
        for conn in list(procs):
            _hand_out(conn, procs, todo)
        while any(i is not None for _, i in procs.values()):
            for conn in connection.wait([c for c, (_, i) in procs.items() if i is not None]):
                proc, i = procs[conn]
                try:
                    out[i] = conn.recv()
                except (EOFError, OSError):  # it died with figure i in hand
                    logger.warning("a report drawing process ended early (exit code %s)",
                                   proc.exitcode)
                    del procs[conn]
                    conn.close()
                    continue
                _hand_out(conn, procs, todo)
    finally:
        for conn, (proc, _) in procs.items():
            try:
                conn.send(None)
            except OSError:
                pass
            conn.close()
        for proc, _ in procs.values():
            proc.join(5.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
    # a figure lost with its process, or that failed there, is drawn again here: a failure
    # of that process's state (fork, memory) must not cost the page a picture
    png = _Pngs()
    for i in range(len(figures)):
        if i not in out or out[i].startswith(_NOTE):
            if i in out:
                logger.warning("a report figure failed in a drawing process (%s); drawing it "
                               "again in this one", out[i])
            out[i] = figures[i].html(png)
    return [out[i] for i in range(len(figures))]


def _hand_out(conn: Any, procs: dict[Any, tuple[Any, int | None]], todo: list[int]) -> None:
    proc, _ = procs[conn]
    i = todo.pop(0) if todo else None
    procs[conn] = (proc, i)
    if i is not None:
        conn.send(i)


def _draw_served(figures: list[_Figure], conn: Any, parent: int) -> None:
    """A drawing process: figure numbers in, their HTML out, until None or the end of the
    pipe. Forked, so it has the figures (and the warm matplotlib) of its parent."""
    from neuronlab._children import die_with_parent

    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:  # the processes draw side by side: the histograms' products (500 rows) on one thread
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
    except ImportError:
        pass
    png = _WARM if _WARM is not None else _Pngs()  # this process's own copy of the warm canvases
    while True:
        try:
            i = conn.recv()
        except (EOFError, OSError):
            return
        if i is None:
            return
        try:
            conn.send(figures[i].html(png))
        except OSError:  # the parent is gone
            return


# -- the report drawn in the background -----------------------------------------------------
# A default `neuronlab train` returns before its report is drawn (issue 14: the report was
# half of a default run's time, and drawing the same pictures faster cannot make it a
# quarter). The process that draws it is the one exception to "worker processes die with
# their parent" (DESIGN.md), on purpose: it is a bounded job, one report, that ends by itself
# when the report is written, when writing it fails, or at its time limit (REPORT_TIMEOUT_S,
# SIGALRM, whose handler exits); the processes that draw its figures die with it. No other
# process of neuronlab outlives its parent.
PENDING_FILE = "report.pending"
"""``RUN_DIR/report.pending``: while it exists, ``report.html`` is not the run's report but a
placeholder that says why. JSON: ``pid`` and ``started`` (Unix time) of the process drawing
it, its ``timeout_s``, and ``failed`` (why) once that process gave up. A report written to
``RUN_DIR/report.html`` (:func:`write_report`, ``neuronlab report RUN_DIR``) removes it."""

REPORT_TIMEOUT_S = 600.0
"""How long a background report may take before its process gives up (a default ``train``'s
takes about a second; a large network's weight spectra some seconds)."""


def pending_report(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What :data:`PENDING_FILE` of ``run_dir`` says, or None when there is none (then
    ``report.html``, if there is one, is the run's report).

    Parameters
    ----------
    run_dir : path
        A run folder.

    Returns
    -------
    dict or None
    """
    try:
        doc = json.loads((Path(run_dir) / PENDING_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        return {"failed": f"{PENDING_FILE} could not be read: {e}"}
    return doc if isinstance(doc, dict) else {"failed": f"{PENDING_FILE} holds no JSON object"}


def write_in_background(run_dir: str | os.PathLike[str], *, sample_size: int = 500,
                        workers: int | None = None,
                        timeout: float = REPORT_TIMEOUT_S) -> int | None:
    """Start a process that writes ``RUN_DIR/report.html`` on its own, after this process has
    ended if need be, and return its pid once the folder says the report is pending
    (:data:`PENDING_FILE` and a placeholder page; see :func:`pending_report`).

    The process is forked from this one through a short-lived middle process, so it is
    nobody's child to wait for, and calls ``setsid``; it does not end with this process. It
    ends when the report is written, when writing it fails, or after ``timeout`` seconds,
    the folder then saying why.

    Parameters
    ----------
    run_dir : path
        A folder written by ``neuronlab train``.
    sample_size : int
        As for :func:`write_report`.
    workers : int, optional
        Processes that draw the figures (:func:`write_report`); default
        :func:`default_workers`.
    timeout : float
        Seconds after which the process gives up.

    Returns
    -------
    int or None
        Its pid; None where no process could be started (not Linux, fork failed): then
        nothing was written.
    """
    if "fork" not in multiprocessing.get_all_start_methods() or not sys.platform.startswith("linux"):
        return None
    run_dir = Path(os.path.abspath(run_dir))
    workers = default_workers() if workers is None else max(1, int(workers))
    for stream in (sys.stdout, sys.stderr):  # what the children would otherwise write again
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # None when the command has no stdout
            pass
    ready, done = os.pipe()
    quiet = _no_fork_warning()
    try:
        middle = os.fork()
    except OSError as e:
        logger.warning("no background report process (%s)", e)
        os.close(ready)
        os.close(done)
        return None
    finally:
        quiet.__exit__(None, None, None)
    if middle == 0:  # forks the report's process and ends at once: it is nobody's child
        code = 1
        try:
            os.close(ready)
            if os.fork() == 0:
                _finish_detached(run_dir, sample_size, workers, timeout, done)
            code = 0
        finally:
            os._exit(code)
    os.close(done)
    os.waitpid(middle, 0)
    with os.fdopen(ready, "rb") as f:
        said = f.read()  # its pid once the folder says so; nothing if it failed before
    return int(said) if said else None


def _finish_detached(run_dir: Path, sample_size: int, workers: int, timeout: float,
                     done: int) -> None:
    """The background report's process: detach, say so in the folder (then write its pid to
    ``done``), write the report, end. It ends however the report goes: written, failed, or
    not done after ``timeout`` seconds (SIGALRM: its handler ends the process at once, an
    exception could be swallowed where it lands); a failure leaves the marker and a page that
    says why. A process whose marker was replaced meanwhile (the run resumed, a newer
    process drawing its report) or removed (``neuronlab report``) leaves the folder as it is."""
    os.setsid()  # no terminal: its closing (SIGHUP) and Ctrl-C are the command's, not ours
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the command's output ends with it (whoever reads it sees its end)
        os.dup2(null, fd)
    marker = {"pid": os.getpid(), "started": time.time(), "timeout_s": timeout}
    with _folder_lock(run_dir):
        _write_pending(run_dir, marker)
    os.write(done, str(os.getpid()).encode())
    os.close(done)

    drawn = run_dir / f".report.{os.getpid()}.html"

    def give_up(signum: int, frame: Any) -> None:
        try:
            _failed(run_dir, marker, f"the report was not done after {timeout:g} s")
            # its page, and the temporary file of a write the alarm cut short
            for path in (drawn, *run_dir.glob(f".{drawn.name}.*.tmp")):
                path.unlink(missing_ok=True)
        finally:
            os._exit(1)  # the processes drawing its figures end with it (PR_SET_PDEATHSIG)

    signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    # drawn beside the page, then put in its place only while the folder still waits for
    # this process: a run resumed meanwhile has a newer marker (its own report comes later),
    # and `neuronlab report` removes it after writing the same report
    try:
        write_report(run_dir, path=drawn, sample_size=sample_size, workers=workers)
        signal.setitimer(signal.ITIMER_REAL, 0)
        with _folder_lock(run_dir):
            if _ours(run_dir, marker):
                os.replace(drawn, run_dir / "report.html")
                (run_dir / PENDING_FILE).unlink(missing_ok=True)
    except Exception as e:
        _failed(run_dir, marker, f"{type(e).__name__}: {e}")
        raise
    finally:
        drawn.unlink(missing_ok=True)


def _ours(run_dir: Path, marker: dict[str, Any]) -> bool:
    """Whether ``run_dir``'s pending marker is still ``marker`` (this process's)."""
    now = pending_report(run_dir)
    return now is not None and (now.get("pid"), now.get("started")) == (
        marker["pid"], marker["started"])


def _failed(run_dir: Path, marker: dict[str, Any], why: str) -> None:
    with _folder_lock(run_dir):
        if _ours(run_dir, marker):  # not written meanwhile, nor handed to a newer process
            _write_pending(run_dir, {**marker, "failed": why})


@contextmanager
def _folder_lock(run_dir: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the run folder itself (no file of its own): the marker's
    writers and removers check and change it one at a time (a background process swapping
    its page in, a newer one starting, ``write_report``)."""
    import fcntl

    fd = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the folder's descriptor releases the lock


def _write_pending(run_dir: Path, marker: dict[str, Any]) -> None:
    """The marker, then the placeholder page: while the marker exists, ``report.html`` is
    not the report."""
    atomic_write_bytes(run_dir / PENDING_FILE, (json.dumps(marker) + "\n").encode("utf-8"))
    name = html.escape(run_dir.name)
    command = f"<code>neuronlab report {html.escape(shlex.quote(str(run_dir)))}</code>"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(marker["started"]))
    if "failed" in marker:
        refresh, title = "", "The report could not be drawn"
        body = (f"<p>The process that drew it in the background ({marker['pid']}, started "
                f"{started}) gave up: {html.escape(marker['failed'])}.</p>"
                f"<p>Run {command} to write it.</p>")
    else:
        refresh, title = '<meta http-equiv="refresh" content="2">', "The report is being drawn"
        body = (f"<p>Process {marker['pid']} has been drawing it in the background since "
                f"{started}. This page reloads itself and becomes the report when it is done, "
                "usually within seconds.</p><p>If this page does not change within a minute, "
                f"that process has ended without finishing (killed, or the machine restarted): "
                f"run {command} to write the report.</p>")
    doc = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{refresh}<title>'
           f"neuronlab report: {name} (pending)</title><style>{_CSS}</style></head><body><header>"
           f"<h1>neuronlab run report</h1><p>{name}</p></header><main><section id=\"pending\">"
           f"<h2>{title}</h2>{body}</section></main></body></html>\n")
    atomic_write_bytes(run_dir / "report.html", doc.encode("utf-8"))


class ReportWriter:
    """Writes run reports from a process started ahead of time, so that a report costs its
    caller little more than drawing its figures on every core.

    ``neuronlab train`` starts one before it trains: while training runs (on one core for the
    networks it trains by default), the writer's process imports matplotlib, loads the fonts
    and draws a first small figure on another core, so that when training ends the report's
    figures are drawn at once by ``workers`` forked copies of that warm process (matplotlib's
    import and warm-up are a fifth of a report's time, its figures most of the rest). The
    process is a fork of this one started at construction; it ends with this process
    (``PR_SET_PDEATHSIG`` on Linux), when :meth:`close` is called, or when this side of its
    pipe closes. Where processes cannot be forked, or if the process is gone, :meth:`write`
    writes the report here, with the same page.

    Parameters
    ----------
    workers : int, optional
        Processes that draw a report's figures (:func:`write_report`); default
        :func:`default_workers`.
    """

    def __init__(self, *, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else max(1, int(workers))
        self._pid: int | None = None
        self._conn: Any = None
        if "fork" not in multiprocessing.get_all_start_methods() or not sys.platform.startswith("linux"):
            return
        # os.fork, not multiprocessing: the writer forks the processes that draw, which a
        # daemonic multiprocessing process may not, and a non-daemonic one would be joined at
        # this process's exit while it waits on its pipe
        mine, theirs = multiprocessing.Pipe()
        parent = os.getpid()
        for stream in (sys.stdout, sys.stderr):  # what the child would otherwise write twice
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):  # None without a stdout
                pass
        quiet = _no_fork_warning()
        try:
            pid = os.fork()
        except OSError as e:  # memory, a process limit: the report is written here
            logger.warning("no report process (%s): the report will be written in this one", e)
            mine.close()
            theirs.close()
            return
        finally:
            quiet.__exit__(None, None, None)
        if pid == 0:  # the writer's process: it never returns from here
            code = 1
            try:
                mine.close()
                _serve_reports(theirs, parent, self.workers)
                code = 0
            finally:
                os._exit(code)
        theirs.close()
        self._pid, self._conn = pid, mine

    def write(self, run_dir: str | os.PathLike[str], *, path: str | os.PathLike[str] | None = None,
              sample_size: int = 500) -> Path:
        """:func:`write_report` of ``run_dir`` (same arguments), in the writer's process.

        Returns
        -------
        pathlib.Path
        """
        if self._conn is not None:
            try:
                self._conn.send((os.fspath(run_dir), None if path is None else os.fspath(path),
                                 sample_size))
                ok, value = self._conn.recv()
            except (EOFError, OSError):
                logger.warning("the report process ended early: writing the report in this one")
                self.close()
            else:
                if ok:
                    return Path(value)
                # the same failure, raised here with its own type and traceback
                logger.debug("the report process failed: %s", value)
        return write_report(run_dir, path=path, sample_size=sample_size, workers=self.workers)

    def close(self) -> None:
        """End the writer's process (waiting for a report it is writing)."""
        conn, pid, self._conn, self._pid = self._conn, self._pid, None, None
        if conn is not None:
            try:
                conn.send(None)
            except OSError:
                pass
            conn.close()
        if pid is not None:
            for k in range(100):  # it ends at once when told, or at the end of its pipe
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    return
                if done:
                    return
                time.sleep(0.01 if k < 50 else 0.1)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve_reports(conn: Any, parent: int, workers: int) -> None:
    """The writer's process: warm up, then ``(run_dir, path, sample_size)`` in, ``(True,
    path)`` or ``(False, error)`` out, until None or the end of the pipe."""
    from neuronlab._children import die_with_parent

    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        _warm_up()
    except Exception as e:  # noqa: BLE001  the report itself will say what is wrong
        logger.debug("report warm-up failed: %s", e)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        run_dir, path, sample_size = job
        try:
            reply = (True, str(write_report(run_dir, path=path, sample_size=sample_size,
                                            workers=workers)))
        except Exception as e:  # noqa: BLE001  raised again by the caller, in its process
            reply = (False, f"{type(e).__name__}: {e}")
        try:
            conn.send(reply)
        except OSError:  # the parent is gone
            return


def _img(png: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


_NOTE = '<p class="note">'  # how a note (a figure's failure among them) begins


def _note(text: str) -> str:
    return f"{_NOTE}{html.escape(text)}</p>"


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
    workers: int = 1,
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
    workers : int
        Processes that draw the figures: 1 draws them in this process; more (Linux) forks
        that many copies of this process once the run is read, each drawing the next figure
        not yet drawn (a report's figures are most of its time; :func:`default_workers`
        gives one per core). They end with this process. The page is the same either way.

    Returns
    -------
    pathlib.Path
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    pending = pending_report(run_dir)  # what this report answers (see the end)
    model, model_note = _load_model(run_dir)
    config, config_note = _load_config(run_dir, model)
    metrics_file = run_dir / "metrics.jsonl"
    records = plots.as_records(read_metrics(metrics_file) if metrics_file.is_file() else [])

    sections: list[tuple[str, str, str]] = []

    def add(sid: str, title: str, content: str) -> None:
        sections.append((sid, title, content))

    figures: list[_Figure] = []  # drawn once the page is planned, maybe in other processes

    def figure(sid: str, title: str, make: Any, *, explain: str = "", cost: float = 1.0) -> None:
        content = _FIGURE_MARK.format(len(figures))
        figures.append(_Figure(make, title, cost=cost))
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
    _verification_section(run_dir, add, figures)
    figure("loss", "Loss", lambda: plots.plot_loss(records, log_scale=_spans_decades(records.loss)),
           cost=2.0)
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
            cost=1.7,
        )
        figure(
            "gradients",
            "Gradient histograms",
            lambda: plots.plot_gradient_histograms(model, loss, Xp, ys),
            explain="The gradient reaching each layer's output on the same examples (gradient flow).",
            cost=3.0,
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

    drawn = _draw_all(figures, workers)
    sections = [(sid, t, _fill(c, drawn)) for sid, t, c in sections]
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
    if out.resolve() == (run_dir / "report.html").resolve():  # the run's own: no longer pending,
        with _folder_lock(run_dir):  # unless a newer process (a resumed run's) took it over
            if pending_report(run_dir) == pending:
                (run_dir / PENDING_FILE).unlink(missing_ok=True)
    return out


def _fill(content: str, drawn: list[str]) -> str:
    """A section's HTML with its figures' marks replaced by what drawing them gave."""
    return re.sub("\x00figure (\\d+)\x00", lambda m: drawn[int(m.group(1))], content)


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


def _verification_section(run_dir: Path, add: Any, figures: list[_Figure]) -> None:
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
    # the ranking is worth having without the picture: a failing plot leaves a note
    items += _FIGURE_MARK.format(len(figures))
    figures.append(_Figure(lambda: plot_verification(ranked), "replays",
                           failed="the replay plot failed", cost=2.0))
    add("verification", title, items)


def _instrument_sections(records: plots.RunRecords, model: Any, add: Any, figure: Any) -> None:
    """Gradient noise scale and SNR, sharpness against its stability bound, weight spectra."""
    kinds = {str(r.get("kind")) for r in records.monitor}
    if "noise" in kinds:
        from neuronlab.babysit.gradient_noise import plot_noise_scale

        batch = records.info.get("batch_size")
        figure("noise-scale", "Gradient noise scale", lambda: plot_noise_scale(
            records.monitor, batch_size=batch if isinstance(batch, int) else None), cost=2.8,
            explain=(
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

        figure("spectrum", "Weight spectra", lambda: plot_spectrum(model), cost=2.8, explain=(
            "The eigenvalues of WᵀW of each weight matrix (squared singular values) on log-log "
            "axes, with the power-law fit of the tail where the layer is big enough (α between "
            "2 and 6: well-trained layers; the spectra of a random matrix have no heavy tail)."))
    else:
        add("spectrum", "Weight spectra", _note("needs the model file"))


def _spans_decades(loss: np.ndarray) -> bool:
    """Log scale when the finite positive losses span more than two decades."""
    v = loss[np.isfinite(loss) & (loss > 0)]
    return v.size > 1 and float(v.max()) > 100.0 * float(v.min())
