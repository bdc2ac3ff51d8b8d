"""neuronlab against PyTorch CPU, scikit-learn and JAX, in one process, interleaved.

Usage::

    python benchmarks/bench.py            # the full run (several minutes), writes RESULTS.md
    python benchmarks/bench.py --quick    # a minute or two: a smoke run with small sizes

``make bench`` builds ``.venv-bench`` (the project with its ``fast`` and ``search`` extras,
torch==2.13.0 CPU, scikit-learn, and CPU JAX: jax/jaxlib 0.10.2 with optax 0.2.8) and runs
this. What it measures, section by section:

* ``ceiling``: the GEMM-only loop of each network (``ceiling.py``): the best ``np.matmul``
  time of every product of one training step (and of inference), summed; measured at the
  start and the end of the run, the faster kept.
* ``train``: one epoch of training per timed unit, on the same random data, network, batch
  size, optimizer (momentum SGD lr 0.01 mu 0.9, Adam lr 1e-3) and initial weights:
  neuronlab's ``Trainer`` (monitors on, and off), a plain PyTorch loop, scikit-learn's
  ``MLPClassifier.partial_fit``, and two JAX loops (``jax_contenders.py``): a jitted step
  called from Python, and the whole epoch as one jitted ``lax.scan`` that gathers its batches
  inside. Each is printed beside the GEMM-only loop. Not timed, once per section: the JAX scan
  loop and neuronlab train one epoch of 1024 rows from the same weights in the same order and
  their weights must agree (else the benchmark says loudly that they did not do the same work).
* ``infer``: labelling an array in batches of 1024.
* ``digits``: wall time to 97% test accuracy on digits.
* ``memmap``: peak RSS of training from a memory-mapped ``.npy`` (``memory.py``).
* ``l2``: L2 under load (``l2_load.py``): ``NeuralNetClassifier(hidden_layer_sizes=(256,))``
  on digits with ``alpha=1e-4`` and ``alpha=0``, interleaved, while two busy processes run
  (started and stopped here); the target is L2 at most 1.2× the time without.
* ``e2e``: the command line end to end (``e2e.py``): ``import neuronlab`` and ``neuronlab
  --help`` in fresh processes, a default ``neuronlab train`` (its report drawn in the
  background), with ``--wait-report`` and with ``--no-report`` (the report's share of each),
  ``neuronlab search`` in trials per minute.

Every throughput is the median over interleaved repetitions (each repetition runs every
contender once, in rotating order, after one warm-up round that also pays JAX's
compilation), printed as a ratio to PyTorch, scikit-learn, the JAX scan loop and the
GEMM-only loop. Speed is reported, never asserted. A peer that is not installed (``jax``) is
left out with a line saying so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported by tests

import contenders as C
import jax_contenders as J
from ceiling import Ceiling, best_ceiling, gemm_ceiling, gemm_loop_epoch
from e2e import measure_e2e
from machine import blas_threads, describe_machine
from memory import measure_memmap
from report import Row, write_results
from timing import interleave

__all__ = ["FULL", "QUICK", "Config", "main", "run_benchmark"]

LARGE = (3072, 512, 512, 10)
SMALL = (64, 128, 10)


@dataclass(frozen=True)
class Config:
    """Sizes of one benchmark run. ``peers`` picks the contenders besides neuronlab (torch,
    sklearn, jax). The training row counts are whole numbers of batches (the JAX loops train
    full batches only, so every contender does the same steps)."""

    reps: int = 9
    large_rows: int = 16384
    small_rows: int = 20000
    large_infer_rows: int = 20480
    small_infer_rows: int = 200000
    digits_seeds: int = 5
    digits_max_epochs: int = 60
    target: float = 0.97
    memmap_gib: float | None = 2.0
    ceiling_tries: int = 9
    peers: tuple[str, ...] = ("torch", "sklearn", "jax")  # jax: left out if not importable
    sections: tuple[str, ...] = ("ceiling", "train", "infer", "digits", "memmap", "l2", "e2e")
    optimizers: tuple[str, ...] = ("momentum", "adam")
    sizes: dict[str, tuple[int, ...]] = field(
        default_factory=lambda: {"large": LARGE, "small": SMALL})
    batch: dict[str, int] = field(default_factory=lambda: {"large": 256, "small": 32})
    check_rows: int = J.CHECK_ROWS  # the JAX-vs-neuronlab weight check's epoch
    e2e_reps: int = 7  # fresh processes per start-up command
    e2e_train_reps: int = 3
    e2e_search_reps: int = 2
    e2e_search_trials: int = 30
    l2_epochs: int = 30  # L2 under load: the estimator's fits, with and without alpha
    l2_reps: int = 7
    l2_busy: int = 2  # busy processes beside them


FULL = Config()
QUICK = Config(reps=3, large_rows=2048, small_rows=4096, large_infer_rows=4096,
               small_infer_rows=40000, digits_seeds=1, digits_max_epochs=40, memmap_gib=0.25,
               ceiling_tries=3, e2e_train_reps=1, e2e_search_reps=1, l2_epochs=5, l2_reps=3)


#: The contender that runs a step's GEMMs and nothing else, in one compiled loop.
GEMM_LOOP = "GEMMs alone, compiled loop"


def _say(msg: str) -> None:
    print(msg, flush=True)


def _rows(section: str, samples: dict[str, Any], ceiling: float | None) -> list[Row]:
    rows = [Row(section, name, s.median, s.spread, ceiling) for name, s in samples.items()]
    for r in rows:
        _say(f"  {r.contender:<28}{r.rate:>12,.0f} samples/s  (±{r.spread:.0%})")
    return rows


def _train_section(cfg: Config, size: str, ceil: Ceiling | None) -> list[Row]:
    sizes, batch = cfg.sizes[size], cfg.batch[size]
    n = cfg.large_rows if size == "large" else cfg.small_rows
    X, y = C.random_data(n, sizes[0], sizes[-1], seed=1)
    jax_data = J.device_data(X, y) if "jax" in cfg.peers else None  # on the device once
    rows = []
    for opt_name in cfg.optimizers:
        opt = C.OPTIMIZERS[opt_name]
        runs: dict[str, Callable[[], int]] = {
            "neuronlab": C.neuronlab_epoch(X, y, sizes, batch, opt),
            "neuronlab (monitors off)": C.neuronlab_epoch(X, y, sizes, batch, opt, monitor=False),
        }
        if "torch" in cfg.peers:
            runs["pytorch"] = C.torch_epoch(X, y, sizes, batch, opt)
        if "sklearn" in cfg.peers:
            runs["scikit-learn"] = C.sklearn_epoch(X, y, sizes, batch, opt)
        if "jax" in cfg.peers:
            runs[J.PER_STEP] = J.jax_epoch(X, y, sizes, batch, opt, scan=False, data=jax_data)
            runs[J.SCAN] = J.jax_epoch(X, y, sizes, batch, opt, scan=True, data=jax_data)
        gemms = gemm_loop_epoch(sizes, batch, n)  # the floor of a compiled step's time
        if gemms is not None:
            runs[GEMM_LOOP] = gemms
        section = f"train {size} {opt_name}"
        _say(f"{section}: {'-'.join(map(str, sizes))} batch {batch}, {n} rows, {cfg.reps} reps")
        section_rows = _rows(section, interleave(runs, reps=cfg.reps),
                             ceil.train_rate if ceil else None)
        if ceil:
            _say(f"  {'GEMM-only loop':<28}{ceil.train_rate:>12,.0f} samples/s  (the step's "
                 "np.matmul products alone, best times summed; start of the run)")
        share = C.monitor_share(X, y, sizes, batch, opt)
        _say(f"  monitor's own time: {share:.1%} of training (timed inside its hooks, every "
             "instrument at its default rate, a run of >= 1000 steps)")
        for r in section_rows:
            if r.contender == "neuronlab":
                r.monitor_share = share
        if "jax" in cfg.peers:
            check = J.agreement(X, y, sizes, batch, opt, rows=cfg.check_rows)
            for r in section_rows:
                if r.contender == J.SCAN:
                    r.agreement = check
            _say_agreement(check)
        rows += section_rows
    return rows


def _say_agreement(a: J.Agreement) -> None:
    what = (f"weight check: JAX scan and neuronlab, one epoch of {a.rows} rows ({a.steps} steps) "
            f"from the same weights in the same order: median |Δw|/|update| = {a.update:.1e} "
            f"(tolerance {a.tolerance:g}), ‖Δw‖/‖w‖ = {a.weights:.1e}")
    if a.ok:
        _say(f"  {what}: the same work")
        return
    bar = "!" * 100
    _say(f"{bar}\n  {what}\n  THE WEIGHTS DISAGREE: JAX and neuronlab did NOT do the same work; "
         f"their ratio in this section means nothing\n{bar}")


def _infer_section(cfg: Config, size: str, ceil: Ceiling | None) -> list[Row]:
    sizes = cfg.sizes[size]
    n = cfg.large_infer_rows if size == "large" else cfg.small_infer_rows
    X, y = C.random_data(n, sizes[0], sizes[-1], seed=2)
    runs: dict[str, Callable[[], int]] = {"neuronlab": C.neuronlab_predict(X, sizes)}
    if "torch" in cfg.peers:
        runs["pytorch"] = C.torch_predict(X, sizes)
    if "sklearn" in cfg.peers:
        runs["scikit-learn"] = C.sklearn_predict(X, y, sizes)
    section = f"infer {size}"
    _say(f"{section}: {'-'.join(map(str, sizes))}, {n} rows, batches of 1024, {cfg.reps} reps")
    return _rows(section, interleave(runs, reps=cfg.reps), ceil.infer_rate if ceil else None)


def _digits_section(cfg: Config) -> list[Row]:
    import neuronlab as nl

    X, y = nl.data.digits()
    split = nl.data.split_indices(y, val_size=0.0, test_size=0.2, seed=0)
    data = (X[split.train], y[split.train], X[split.test], y[split.test])
    sizes, batch, opt = SMALL, cfg.batch["small"], C.OPTIMIZERS["adam"]
    fns = {"neuronlab": C.neuronlab_to_target}
    if "torch" in cfg.peers:
        fns["pytorch"] = C.torch_to_target
    if "sklearn" in cfg.peers:
        fns["scikit-learn"] = C.sklearn_to_target
    _say(f"digits: {'-'.join(map(str, sizes))} batch {batch} Adam lr {opt.lr}, "
         f"time to {cfg.target:.0%} test accuracy, {cfg.digits_seeds} seeds")
    results: dict[str, list[Any]] = {name: [] for name in fns}
    for seed in range(cfg.digits_seeds):  # interleaved: each seed runs every contender
        for name, fn in fns.items():
            results[name].append(fn(data, sizes, batch, opt, target=cfg.target,
                                    max_epochs=cfg.digits_max_epochs, seed=seed))
    rows = []
    for name, rs in results.items():
        secs = statistics.median(r.seconds for r in rs)
        epochs = statistics.median(r.epochs for r in rs)
        reached = sum(r.reached for r in rs)
        # the rate of a time-to-target row is 1/seconds, so ratios read "times faster"
        row = Row("digits to 97%", name, 1.0 / secs, 0.0, None,
                  note=f"{secs:.2f} s, {epochs:g} epochs, reached {reached}/{len(rs)}")
        _say(f"  {name:<28}{secs:>8.2f} s   median epochs {epochs:g}, reached {reached}/{len(rs)}")
        rows.append(row)
    return rows


def measure_l2(cfg: Config) -> dict[str, Any]:
    """The L2-under-load row (:func:`l2_load.measure`): median wall and CPU seconds of the
    estimator's fit with ``alpha=1e-4`` ("l2") and ``alpha=0`` ("no l2"), interleaved, while
    ``cfg.l2_busy`` busy processes run (started and stopped by the measurement)."""
    import l2_load

    times = l2_load.measure(what="estimator", epochs=cfg.l2_epochs, reps=cfg.l2_reps,
                            n_busy=cfg.l2_busy)
    out: dict[str, Any] = {"epochs": cfg.l2_epochs, "reps": cfg.l2_reps, "busy": cfg.l2_busy,
                           **l2_load.medians(times)}
    for kind in times:
        _say(f"  {kind:<5}alpha 1e-4 {out[kind]['l2']:.2f} s, alpha 0 {out[kind]['no l2']:.2f} s "
             f"(median): {out[kind]['l2'] / out[kind]['no l2']:.2f}×")
    return out


def run_benchmark(cfg: Config, *, out: Path | None = None, notes: str = "") -> dict[str, Any]:
    """Run the sections of ``cfg``; print as it goes; write ``out`` (markdown, with ``notes``
    appended) if given. Returns ``{"machine", "ceilings", "rows", "memmap", "l2", "e2e",
    "config"}``."""
    if "jax" in cfg.peers and (why := J.available()) is not None:
        _say(f"jax is not importable ({why}): the JAX contenders are left out")
        cfg = replace(cfg, peers=tuple(p for p in cfg.peers if p != "jax"))
    if "torch" in cfg.peers:
        import torch

        threads = blas_threads() or os.cpu_count() or 1
        torch.set_num_threads(threads)  # the same threads as NumPy's BLAS
    machine = describe_machine()
    if "jax" in cfg.peers:
        machine["jax"] = J.jax_version()
    _say(f"{machine['cpu']}, {machine['cores']} cores, {machine['blas']} "
         f"({machine['blas_threads']} threads), load {machine['load_average']}"
         + (f", jax {machine['jax']}" if "jax" in cfg.peers else ""))
    ceilings: dict[str, Ceiling] = {}
    if "ceiling" in cfg.sections:
        for size in ("large", "small"):
            c = gemm_ceiling(cfg.sizes[size], cfg.batch[size], tries=cfg.ceiling_tries)
            ceilings[size] = c
            _say(f"GEMM-only loop {size}: train {c.train_rate:,.0f} samples/s "
                 f"({c.train_gflops:.0f} GFLOP/s), inference {c.infer_rate:,.0f} samples/s, "
                 f"fastest GEMM {c.peak_gflops:.0f} GFLOP/s")
    rows: list[Row] = []
    for size in ("large", "small"):
        if "train" in cfg.sections:
            rows += _train_section(cfg, size, ceilings.get(size))
    for size in ("large", "small"):
        if "infer" in cfg.sections:
            rows += _infer_section(cfg, size, ceilings.get(size))
    if "digits" in cfg.sections:
        rows += _digits_section(cfg)
    memmap = None
    if "memmap" in cfg.sections and cfg.memmap_gib:
        _say(f"memmap: training {'-'.join(map(str, LARGE))} from a {cfg.memmap_gib:g} GiB .npy")
        memmap = measure_memmap(cfg.memmap_gib)
        memmap["gib"] = cfg.memmap_gib
        _say(f"  peak RSS {memmap['peak_rss_mib']:.0f} MiB (baseline "
             f"{memmap['baseline_rss_mib']:.0f} MiB), {memmap['rows']} rows in "
             f"{memmap['seconds']:.1f} s")
    l2 = None
    if "l2" in cfg.sections:
        _say(f"L2 under load: digits, NeuralNetClassifier((256,)), alpha 1e-4 and 0, "
             f"{cfg.l2_epochs} epochs, {cfg.l2_reps} reps, {cfg.l2_busy} busy processes")
        l2 = measure_l2(cfg)
    e2e = None
    if "e2e" in cfg.sections:
        _say(f"end to end: fresh processes of {sys.executable}")
        e2e = measure_e2e(reps=cfg.e2e_reps, train_reps=cfg.e2e_train_reps,
                          search_reps=cfg.e2e_search_reps, search_trials=cfg.e2e_search_trials,
                          say=_say)
    if ceilings:  # measured again at the end: the best of the two is the machine's ceiling
        for size, first in ceilings.items():
            ceilings[size] = best_ceiling(first, gemm_ceiling(
                cfg.sizes[size], cfg.batch[size], tries=cfg.ceiling_tries))
        for r in rows:
            kind, size = r.section.split()[:2]
            if size in ceilings and kind in ("train", "infer"):
                c = ceilings[size]
                r.ceiling = c.train_rate if kind == "train" else c.infer_rate
        for size, c in ceilings.items():
            _say(f"GEMM-only loop {size} (best of start and end): train "
                 f"{c.train_rate:,.0f} samples/s, inference {c.infer_rate:,.0f} samples/s")
    machine["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = {"machine": machine, "ceilings": ceilings, "rows": rows, "memmap": memmap,
              "l2": l2, "e2e": e2e, "config": cfg}
    if out is not None:
        write_results(out, result, notes=notes)
        _say(f"wrote {out}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a minute or two")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown file to write (default benchmarks/RESULTS.md; a --quick "
                             "run writes only when given one)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--notes", type=Path, default=Path(__file__).parent / "NOTES.md",
                        help="markdown whose text goes under 'Notes' in the results "
                             "(default benchmarks/NOTES.md: the analysis of the targets)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per section")
    parser.add_argument("--sections", default=None,
                        help="comma-separated subset of ceiling,train,infer,digits,memmap,l2,e2e")
    parser.add_argument("--peers", default=None,
                        help="comma-separated subset of torch,sklearn,jax (none: neuronlab alone)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.reps is not None:
        cfg = replace(cfg, reps=args.reps)
    if args.sections:
        cfg = replace(cfg, sections=tuple(s.strip() for s in args.sections.split(",")))
    if args.peers is not None:
        cfg = replace(cfg, peers=tuple(p.strip() for p in args.peers.split(",") if p.strip()
                                       and p.strip() != "none"))
    np.seterr(over="ignore")  # random-label training may overflow a score: speed, not accuracy
    notes = args.notes.read_text() if args.notes and args.notes.exists() else ""
    out = args.out
    if out is None and not args.quick:
        out = Path(__file__).parent / "RESULTS.md"
    run_benchmark(cfg, out=None if args.no_write else out, notes=notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
