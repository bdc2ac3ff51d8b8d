"""Running one trial in a worker process, and the executors that host those processes.

The parent process owns the Optuna study; a worker only receives a :class:`TrialTask`
(objective, parameters, budget, and for pruning a snapshot of the completed trials), runs it
through :func:`run_trial` and returns a :class:`TrialOutcome` (state, value, epoch metrics,
files). Nothing in a worker touches the study or the search directory, so a worker can be a
local process, a Dask worker on another machine, or be killed at any moment without losing
anything that was already told to the study.

Pruning happens in the worker: :meth:`TrialContext.should_prune` asks the study's Optuna pruner
(median, percentile, threshold, patient) about this trial's epoch values against the snapshot
of completed trials taken when the trial started, which is exactly what
``optuna.Trial.should_prune`` would compute, minus the trials that finished meanwhile.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from neuronlab._validation import check_positive_int
from neuronlab.search.workers import WorkerPool

__all__ = ["TrialContext", "TrialOutcome", "TrialPruned", "TrialTask", "open_executor", "run_trial"]

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


class TrialPruned(Exception):
    """Raised by an objective when :meth:`TrialContext.should_prune` says so (Optuna's own
    ``optuna.TrialPruned`` is accepted as well)."""


@dataclass
class TrialTask:
    """Everything a worker needs for one trial (picklable)."""

    objective: Callable[..., Any]
    number: int
    params: dict[str, Any]
    budget: float = 1.0
    stage: int = 0
    pruner: Any = None
    reference: list[Any] = field(default_factory=list)  # completed FrozenTrials, for the pruner
    direction: str = "maximize"
    threads: int | None = 1


@dataclass
class TrialOutcome:
    """What a worker sends back: ``state`` is "complete", "pruned" or "fail"."""

    number: int
    state: str
    value: float | None
    intermediate: dict[int, float]
    attrs: dict[str, Any]
    files: dict[str, bytes]
    error: str | None
    duration: float
    worker: str


class TrialContext:
    """The objective's view of its trial (second argument of ``objective(params, trial)``).

    Attributes
    ----------
    number : int
        The Optuna trial number.
    params : dict
    budget : float in (0, 1]
        Fraction of the full training this trial gets (coarse-to-fine's early stages use few
        epochs); objectives without a notion of budget ignore it.
    stage : int

    Parameters
    ----------
    task : TrialTask
        The trial as the search handed it to the worker.
    """

    def __init__(self, task: TrialTask) -> None:
        self.number, self.params = task.number, dict(task.params)
        self.budget, self.stage = task.budget, task.stage
        self.intermediate: dict[int, float] = {}
        self.attrs: dict[str, Any] = {}
        self.files: dict[str, bytes] = {}
        self._task = task
        self._study: Any = None

    def report(self, value: float, step: int) -> None:
        """Record the objective's intermediate ``value`` (e.g. validation accuracy) at ``step``
        (e.g. the epoch); the pruner judges the trial from these, in the study's direction, so
        ``value`` must have the sign of the objective's result (``-MSE`` if it returns ``-MSE``).
        A pruned trial's value is its last reported one.

        Parameters
        ----------
        value : float
            The intermediate value.
        step : int
            Where it was measured (a later report at the same step replaces it).
        """
        self.intermediate[int(step)] = float(value)

    def should_prune(self) -> bool:
        """True when the pruner would stop this trial now (never without a pruner)."""
        task = self._task
        if task.pruner is None or not self.intermediate:
            return False
        import optuna

        if self._study is None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self._study = optuna.create_study(direction=task.direction)
            self._study.add_trials(task.reference)
        frozen = optuna.trial.FrozenTrial(
            number=len(task.reference), trial_id=len(task.reference), state=optuna.trial.TrialState.RUNNING,
            value=None, datetime_start=None, datetime_complete=None, params={}, distributions={},
            user_attrs={}, system_attrs={}, intermediate_values=dict(self.intermediate),
        )
        return bool(task.pruner.prune(self._study, frozen))

    def set_attr(self, key: str, value: Any) -> None:
        """Attach a JSON-able result (stored as an Optuna user attribute).

        Parameters
        ----------
        key : str
            The attribute's name.
        value : any JSON-able value
            Its value.
        """
        self.attrs[key] = value

    def add_file(self, name: str, data: bytes) -> None:
        """A file for the trial's folder in the search directory (written by the parent).

        Parameters
        ----------
        name : str
            A plain file name (no ``/``, not starting with ``.``), e.g. ``"model.safetensors"``.
        data : bytes
            The file's contents.

        Raises
        ------
        ValueError
            If ``name`` is empty, has a ``/`` or starts with ``.``.
        """
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"a trial file name must be a plain file name, got {name!r}")
        self.files[name] = bytes(data)


def _pruned_types() -> tuple[type[BaseException], ...]:
    import sys

    optuna = sys.modules.get("optuna")
    return (TrialPruned, optuna.TrialPruned) if optuna is not None else (TrialPruned,)


def _limit_threads(threads: int | None) -> Any:
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def run_trial(task: TrialTask) -> TrialOutcome:
    """Run ``task.objective(params, context)`` and report what happened; never raises for a
    failing trial (a diverging or crashing objective is a failed trial, not a failed search).

    With ``task.threads`` set, BLAS is limited to that many threads for the trial (one per
    worker process by default: N workers on N cores, not N × N threads fighting).

    Parameters
    ----------
    task : TrialTask
        The objective, the trial's parameters, budget and stage, and what the pruner needs.

    Returns
    -------
    TrialOutcome
        ``state`` "complete" (with the objective's value), "pruned" (the last reported
        value) or "fail" (a non-finite value, a divergence or an exception, with the error).
    """
    from neuronlab.train.callbacks import DivergenceError

    ctx = TrialContext(task)
    t0 = time.perf_counter()
    state, value, error = "complete", None, None
    try:
        with _limit_threads(task.threads):
            result = task.objective(dict(task.params), ctx)
        value = float(result)
        if not math.isfinite(value):
            state, error = "fail", f"the objective returned {value}"
            ctx.attrs["diverged"] = True
    except _pruned_types():
        state = "pruned"
        value = ctx.intermediate[max(ctx.intermediate)] if ctx.intermediate else None
    except (DivergenceError, FloatingPointError) as e:
        state, error = "fail", f"{type(e).__name__}: {e}"
        ctx.attrs["diverged"] = True
    except Exception as e:  # noqa: BLE001 - a broken trial is recorded, the search goes on
        state, error = "fail", f"{type(e).__name__}: {e}"
        ctx.attrs["traceback"] = traceback.format_exc(limit=20)
    return TrialOutcome(
        number=task.number, state=state, value=value, intermediate=ctx.intermediate, attrs=ctx.attrs,
        files=ctx.files, error=error, duration=time.perf_counter() - t0,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )


# -- executors -----------------------------------------------------------------------------
class InlineExecutor(Executor):
    """Runs each task in the calling process at ``submit`` (``workers=0``: debugging, tests)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(e)
        return fut


def _pin_blas(threads: int) -> None:
    # Inherited by anything the worker starts; the running process is limited by threadpoolctl.
    for var in _BLAS_VARS:
        os.environ[var] = str(threads)


def _start_worker(threads: int, warm: Callable[[], Any] | None = None) -> None:
    """A local worker's start: pin BLAS, import what every trial uses (the training stack,
    threadpoolctl, Optuna's pruners) and run the objective's own ``warm_up`` (a
    :class:`~neuronlab.search.objective.TrainObjective` loads its data split and the compiled
    engine its trials run). The pool starts its workers with the search, so all of this runs
    while the parent opens the study, not in the first trial of each worker."""
    _pin_blas(threads)
    import importlib
    import logging

    for name in ("threadpoolctl", "optuna.pruners", "optuna.trial", "neuronlab.train",
                 "neuronlab.runs"):
        try:
            importlib.import_module(name)
        except ImportError:  # an optional piece: the trial that needs it says so
            pass
    if warm is not None:
        try:
            with _limit_threads(threads):
                warm()
        except Exception as e:  # noqa: BLE001 - the first trial meets the same problem and reports it
            logging.getLogger(__name__).debug("objective warm-up failed: %s", e)


class Pool:
    """Where trials run: local processes (:class:`~neuronlab.search.workers.WorkerPool`), this
    process, or a Dask cluster (whose scheduler reruns the tasks of a lost worker itself).

    Attributes
    ----------
    executor : concurrent.futures.Executor
    capacity : int
        How many trials to keep in flight.
    """

    def __init__(self, workers: int, dask: str | None, threads: int | None,
                 warm: Callable[[], Any] | None = None) -> None:
        self.client: Any = None
        if dask is not None:
            from distributed import Client

            self.client = Client(dask, set_as_default=False)
            self.executor: Executor = self.client.get_executor(pure=False)
            cluster = self.client.scheduler_info().get("workers", {})
            self.capacity = workers or max(1, sum(w.get("nthreads", 1) for w in cluster.values()))
        elif workers == 0:
            self.executor, self.capacity = InlineExecutor(), 1
        else:
            self.executor = WorkerPool(workers, initializer=_start_worker,
                                       initargs=(threads or 1, warm), eager=True)
            self.capacity = workers

    def close(self, *, interrupted: bool = False) -> None:
        """Wait for the trials in flight; ``interrupted``: kill the local workers instead (a
        Dask cluster's workers are not ours: only the futures are cancelled)."""
        if interrupted and isinstance(self.executor, WorkerPool):
            self.executor.terminate()
        else:
            self.executor.shutdown(wait=not interrupted)
        if self.client is not None:
            self.client.close()


@contextlib.contextmanager
def open_executor(workers: int = 1, *, dask: str | None = None, threads: int | None = 1,
                  warm: Callable[[], Any] | None = None) -> Iterator[Pool]:
    """A :class:`Pool` of ``workers`` local processes, or the Dask cluster at ``dask``.

    Parameters
    ----------
    workers : int >= 0
        Local worker processes (0: run trials in this process). With ``dask``: trials kept in
        flight (0: one per thread of the cluster).
    dask : str, optional
        Scheduler address, e.g. ``"tcp://127.0.0.1:8786"``.
    threads : int or None
        BLAS threads per trial (None: leave the default).
    warm : callable, optional
        Picklable; called once in each local worker process as it starts (the objective's
        ``warm_up``: what every trial reuses). The local processes start at once.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0, got {workers!r}")
    if threads is not None:
        check_positive_int("threads", threads)
    pool = Pool(workers, dask, threads, warm)
    try:
        yield pool
    except BaseException:  # Ctrl-C, SIGTERM (the CLI raises KeyboardInterrupt) or a failing search
        pool.close(interrupted=True)
        raise
    pool.close()
