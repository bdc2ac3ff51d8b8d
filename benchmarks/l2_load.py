"""L2 under load: digits with and without an L2 penalty while other processes keep every core
busy.

Usage::

    python benchmarks/l2_load.py                # 30 epochs, 7 reps, beside 2 busy processes
    python benchmarks/l2_load.py --quick        # 5 epochs, 3 reps
    python benchmarks/l2_load.py --busy 0       # the same on the machine as it is
    python benchmarks/l2_load.py --what cli     # `neuronlab train --l2 1e-4` against --l2 0
    PYTHONPATH=/tmp/old/src python benchmarks/l2_load.py   # another checkout's neuronlab

``--what estimator`` (the default): ``NeuralNetClassifier(hidden_layer_sizes=(256,),
epochs=30)`` (64-256-10, Adam, batch 32, float64) fits digits with ``alpha=1e-4`` and with
``alpha=0``. ``--what cli``: ``neuronlab train`` (64-256-10, Adam, batch 32, float32, with
its checkpoints and logs; no report) with ``--l2 1e-4`` and ``--l2 0``, in this process. The
two runs are interleaved (each repetition runs both, in rotating order) while ``--busy``
processes of ``while True: pass`` run beside them (started before the first run, stopped
after the last). Printed: the median wall time of each, and of the CPU time this process
used (less sensitive to who else runs), and the ratios with / without L2; the target is L2 ≤
1.2× the time without. Speed is reported, never asserted. ``--no-policy`` turns off the
Trainer's BLAS thread policy (``neuronlab.threads``) to see the regulariser's share alone.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported by tests

from load import busy
from machine import blas_threads
from timing import interleave

__all__ = ["main", "measure"]


def _say(msg: str) -> None:
    print(msg, flush=True)


def _estimator(epochs: int) -> dict[str, Callable[[], int]]:
    import neuronlab as nl
    from neuronlab.sklearn import NeuralNetClassifier

    X, y = nl.data.digits()

    def fit(alpha: float) -> Callable[[], int]:
        def run() -> int:
            NeuralNetClassifier(hidden_layer_sizes=(256,), epochs=epochs, alpha=alpha,
                                random_state=0).fit(X, y)
            return len(y) * epochs

        return run

    return {"l2": fit(1e-4), "no l2": fit(0.0)}


def _cli(epochs: int, runs_dir: Path) -> dict[str, Callable[[], int]]:
    from neuronlab.cli import cli

    count = iter(range(10**6))

    def train(l2: str) -> Callable[[], int]:
        def run() -> int:
            args = ["train", "--l2", l2, "--epochs", str(epochs), "--no-report",
                    "--no-progress", "--runs-dir", str(runs_dir), "--name", f"r{next(count)}"]
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                cli.main(args=args, prog_name="neuronlab", standalone_mode=False)
            return epochs

        return run

    return {"l2": train("1e-4"), "no l2": train("0")}


def measure(*, what: str = "estimator", epochs: int, reps: int, n_busy: int,
            policy: bool = True) -> dict[str, dict[str, list[float]]]:
    """Seconds per run, ``{"wall": {"l2": [...], "no l2": [...]}, "cpu": {...}}``, one per
    repetition; ``cpu`` is this process's CPU time (all its threads)."""
    if not policy:
        try:
            from neuronlab import threads
        except ImportError:  # a checkout from before the policy: nothing to turn off
            pass
        else:
            threads.SMALL_GEMM_FLOPS = 0  # no product is small: BLAS keeps its threads
    cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = _estimator(epochs) if what == "estimator" else _cli(epochs, Path(tmp))

        def timed(name: str, fn: Callable[[], int]) -> Callable[[], int]:
            def run() -> int:
                t = time.process_time()
                n = fn()
                cpu.setdefault(name, []).append(time.process_time() - t)
                return n

            return run

        with busy(n_busy):
            samples = interleave({k: timed(k, f) for k, f in runs.items()}, reps=reps, warmup=1)
    return {"wall": {name: s.seconds for name, s in samples.items()},
            "cpu": {name: c[1:] for name, c in cpu.items()}}  # without the warm-up run


def medians(times: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """The median of each run's seconds in :func:`measure`'s result, by kind and run."""
    return {kind: {name: statistics.median(s) for name, s in runs.items()}
            for kind, runs in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--what", choices=["estimator", "cli"], default="estimator")
    parser.add_argument("--quick", action="store_true", help="5 epochs, 3 reps")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (30)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (7)")
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the runs")
    parser.add_argument("--no-policy", action="store_true",
                        help="keep BLAS's threads for every product (no thread policy)")
    args = parser.parse_args(argv)
    epochs = args.epochs or (5 if args.quick else 30)
    reps = args.reps or (3 if args.quick else 7)
    import neuronlab
    from neuronlab import engine

    _say(f"neuronlab from {Path(neuronlab.__file__).parent}, {engine.describe()}, "
         f"BLAS {blas_threads()} threads, {os.cpu_count()} cores, "
         f"load average {os.getloadavg()}")
    run = ("NeuralNetClassifier((256,)), alpha 1e-4 vs 0" if args.what == "estimator"
           else "neuronlab train, --l2 1e-4 vs --l2 0")
    _say(f"digits, {run}, {epochs} epochs, {reps} interleaved reps, {args.busy} busy processes"
         f"{', thread policy off' if args.no_policy else ''}")
    times = measure(what=args.what, epochs=epochs, reps=reps, n_busy=args.busy,
                    policy=not args.no_policy)
    for kind, runs in times.items():
        med = medians(times)[kind]
        for name, s in runs.items():
            _say(f"  {kind:<5}{name:<7}{med[name]:7.2f} s median  "
                 f"({', '.join(f'{t:.2f}' for t in s)})")
        _say(f"  {kind}: L2 / no L2 = {med['l2'] / med['no l2']:.2f}×")
    _say(f"  load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
