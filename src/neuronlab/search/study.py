"""The search loop: the parent owns the Optuna study and hands trials to an executor.

``run_search`` asks the study for a trial (through the strategy's plan and sampler), submits
it to a worker, and tells the study the outcome as soon as it comes back, then writes the
trial's folder. Completed trials are therefore in the study's storage (a journal file inside
the search directory, or an RDB) before anything else happens, and a rerun of the same
search resumes where it stopped. A worker that dies takes only its own trial with it: the
trial is resubmitted (``retries`` times) and then recorded as failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuronlab._validation import check_positive_int
from neuronlab.search.executor import TrialOutcome, TrialTask, open_executor, run_trial
from neuronlab.search.interrupt import SearchInterrupted, deferred_stop
from neuronlab.search.output import (
    plot_process,
    trial_dir,
    trial_record,
    write_outputs,
    write_trial,
    write_trial_files,
)
from neuronlab.search.space import Space
from neuronlab.search.strategies import CoarseToFine, Strategy, get_strategy

__all__ = ["SearchResult", "make_pruner", "run_search"]

logger = logging.getLogger(__name__)
JOURNAL_NAME = "study.journal"
_STATEFUL_PRUNERS = ("SuccessiveHalvingPruner", "HyperbandPruner", "WilcoxonPruner")


@dataclass
class SearchResult:
    """What a search leaves behind.

    Attributes
    ----------
    study : optuna.Study
    directory : Path or None
    records : list of dict
        One per trial in the study (``number``, ``state``, ``value``, ``params``, ``stage``,
        ``budget``, ``error``, ...), in trial order.
    best : dict or None
        The record of the best completed trial.
    stages : list of Space
        Coarse-to-fine: the space each stage searched (one entry for other strategies).
    """

    study: Any
    directory: Path | None
    records: list[dict[str, Any]]
    best: dict[str, Any] | None
    stages: list[Space] = field(default_factory=list)

    def count(self, state: str) -> int:
        """How many trials ended in ``state``.

        Parameters
        ----------
        state : str
            An Optuna trial state name: ``"COMPLETE"``, ``"PRUNED"``, ``"FAIL"``,
            ``"RUNNING"``...

        Returns
        -------
        int
        """
        return sum(1 for r in self.records if r["state"] == state)


def make_pruner(pruner: Any) -> Any:
    """``"median"`` (Optuna's MedianPruner, 5 startup trials, 2 warm-up epochs), ``"none"`` /
    None, or an Optuna pruner that only reads the study (median, percentile, threshold,
    patient). Rung-based pruners write to the study and cannot judge a trial in a worker.

    Parameters
    ----------
    pruner : str, optuna.pruners.BasePruner or None
        ``"median"``, ``"none"`` (case-insensitive), None, or a pruner object.

    Returns
    -------
    optuna.pruners.BasePruner or None

    Raises
    ------
    ValueError
        For another name, or a pruner that keeps state in the study (Hyperband,
        successive halving).
    TypeError
        For anything that is not a name, None or an Optuna pruner.
    """
    if pruner is None or (isinstance(pruner, str) and pruner.lower() == "none"):
        return None
    import optuna

    if isinstance(pruner, str):
        if pruner.lower() == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
        raise ValueError(f"unknown pruner {pruner!r}; choose 'median' or 'none' (or pass an Optuna pruner)")
    if not isinstance(pruner, optuna.pruners.BasePruner):
        raise TypeError(f"pruner must be 'median', 'none' or an Optuna pruner, got {pruner!r}")
    if type(pruner).__name__ in _STATEFUL_PRUNERS:
        raise ValueError(f"{type(pruner).__name__} keeps state in the study; use MedianPruner, "
                         "PercentilePruner, ThresholdPruner or PatientPruner")
    return pruner


def _storage(directory: Path | None, storage: str | None) -> Any:
    if storage is not None:
        return storage  # an RDB URL: Optuna opens it
    if directory is None:
        return None  # in memory
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = str(directory / JOURNAL_NAME)
    try:
        import fcntl  # noqa: F401
    except ImportError:  # Windows: Optuna's own lock file
        return JournalStorage(JournalFileBackend(path))
    return JournalStorage(_journal_file(JournalFileBackend)(path, lock_obj=_FlockLock(path + ".flock")))


# Optuna's journal operations (optuna.storages.journal._storage.JournalOperation) that are
# written without an fsync of their own: a trial's parameters, user attributes and
# intermediate values (about 40 a trial, most of a search's writes).
_UNSYNCED_OPS = frozenset({5, 7, 8})  # SET_TRIAL_PARAM, SET_TRIAL_INTERMEDIATE_VALUE, SET_TRIAL_USER_ATTR


def _journal_file(base: Any) -> Any:
    """Optuna's journal file backend, with one fsync per trial event instead of one per write.

    Optuna syncs the file to the disk after every write, 1-2 ms each here: 40 epoch values
    and eight attributes per trial made about 1200 fsyncs in a 30-trial search, 1.7 s of the
    parent's time between a trial's end and its worker's next trial. Here the writes of
    :data:`_UNSYNCED_OPS` go to the file (the kernel: a search killed at any moment loses
    nothing, and other processes read them at once) without an fsync; the next write that
    creates a trial or tells its state syncs the file, and with it every write before it. So
    a trial the study has as finished is on the disk with all its values, as before; an
    operating-system crash can lose only the values of trials still running, which the next
    run fails and runs again (no owner recorded). A backend without the attributes read here
    (another Optuna) syncs every write.
    """

    class SyncedOnEvents(base):  # type: ignore[misc, valid-type]
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            lock, file_path = getattr(self, "_lock", None), getattr(self, "_file_path", None)
            if lock is None or file_path is None or not all(
                    log.get("op_code") in _UNSYNCED_OPS for log in logs):
                return super().append_logs(logs)
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            lock.acquire()
            try:
                with open(file_path, "ab") as f:
                    f.write(text.encode("utf-8"))
            finally:
                lock.release()
            return None

    return SyncedOnEvents


class _FlockLock:
    """The journal's write lock as flock(2) on a side file. The kernel drops it when its
    process dies, so a search killed while writing leaves no stale lock (Optuna's lock file
    would stall the next run for 30 s, then be broken by force)."""

    def __init__(self, path: str) -> None:
        self.path, self.fd = path, -1

    def acquire(self) -> bool:
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return True

    def release(self) -> None:
        os.close(self.fd)  # closing the file releases the lock


def _check_same_search(directory: Path, spec: dict[str, Any]) -> None:
    path = directory / "search.json"
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        for key in ("space", "direction", "base"):
            if old.get(key) != spec.get(key):
                raise ValueError(f"{directory} holds a different search ({key} differs); "
                                 "resume it with the same settings or choose another directory")
    else:
        path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fail_stale(study: Any) -> None:
    """Fail the running trials left by a search process of this host that no longer exists
    (killed), and those with no owner (a search killed between creating a trial and recording
    its owner, which takes separate journal writes): their slots are run again."""
    host = socket.gethostname()

    def dead_here(t: Any) -> bool:
        if "owner" not in t.user_attrs:  # killed between ask() and recording its owner
            return True
        h, _, pid = str(t.user_attrs["owner"]).rpartition(":")
        return h == host and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid))

    _fail_interrupted(study, dead_here)


def _write_missing_records(directory: Path, study: Any) -> None:
    """Write status.json and the trials.jsonl line of the trials the study has as finished
    whose folder here has the worker's files but no record: a search of this host, no longer
    running, was killed between telling the study and writing the record. (Interrupted
    trials have no record and run again; the trials of another directory sharing an RDB
    study have no folder here.)"""
    from optuna.trial import TrialState

    host = socket.gethostname()
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    for t in study.get_trials(deepcopy=False, states=finished):
        folder = trial_dir(directory, t.number)
        h, _, pid = str(t.user_attrs.get("owner", "")).rpartition(":")
        if (not folder.is_dir() or (folder / "status.json").exists() or t.user_attrs.get("interrupted")
                or h != host or not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid))):
            continue
        logger.warning("trial %d was told but its record not written: written now", t.number)
        write_trial(directory, trial_record(t))


def _fail_interrupted(study: Any, which: Callable[[Any], bool]) -> None:
    """Fail the running trials for which ``which(trial)`` holds, marked ``interrupted``: they
    do not use up a slot of the search (strategies._counts)."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if which(t):
            logger.warning("trial %d was interrupted: failed, its slot runs again", t.number)
            study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            study.tell(t.number, state=TrialState.FAIL)


def run_search(
    objective: Callable[[dict[str, Any], Any], float],
    space: Space | dict[str, Any],
    *,
    strategy: str | Strategy = "random",
    n_trials: int = 20,
    directory: str | os.PathLike[str] | None = None,
    storage: str | None = None,
    study_name: str = "neuronlab",
    workers: int = 1,
    dask: str | None = None,
    pruner: Any = "median",
    seed: int = 0,
    direction: str = "maximize",
    retries: int = 1,
    threads: int | None = 1,
    plots: bool = True,
    base: dict[str, Any] | None = None,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Search ``space`` for the parameters that maximise ``objective(params, trial)`` (or
    minimise it, with ``direction="minimize"``).

    Parameters
    ----------
    objective : callable (params: dict, trial: TrialContext) -> float
        Picklable (a module-level function or an instance such as
        :class:`~neuronlab.search.objective.TrainObjective`) when trials run in processes.
        May call ``trial.report(value, step)`` and stop when ``trial.should_prune()``.
    space : Space or dict of name -> "loguniform(a, b)" ...
    strategy : "grid", "random", "tpe", "coarse-to-fine" or a Strategy
    n_trials : int
        Trials in the study in total (a resumed study counts those it has; a grid is capped
        at its size).
    directory : path, optional
        Search directory: the study journal, ``trials/NNNN/`` folders, ``trials.jsonl``,
        ``trials.csv``, the best trial's files and plots. None keeps everything in memory.
    storage : str, optional
        An Optuna RDB URL (``postgresql://...``, ``sqlite:///...``) instead of the journal.
    study_name : str, default "neuronlab"
        The Optuna study's name in the storage: a study of that name is continued
        (``load_if_exists``), so searches sharing one RDB need different names.
    workers : int
        Local worker processes (0: in this process), or trials in flight on a Dask cluster.
    dask : str, optional
        Dask scheduler address; trials run through ``Client(dask).get_executor()``.
    pruner : "median", "none" or an Optuna pruner
    seed : int
        Seeds the sampler.
    direction : "maximize" or "minimize"
    retries : int >= 0
        Resubmissions of a trial whose worker died before answering.
    threads : int or None
        BLAS threads per trial.
    plots : bool
        Write the plots into ``directory`` (needs matplotlib).
    base : dict, optional
        JSON description of the fixed settings, stored in ``search.json`` so that a rerun
        with different settings is refused instead of mixing two searches.
    on_trial : callable(record), optional
        Called in this process after each finished trial is stored.

    Returns
    -------
    SearchResult

    Raises
    ------
    SearchInterrupted
        (a ``KeyboardInterrupt``) on Ctrl-C or SIGTERM, whose default handlers are replaced
        while trials run (in the main thread): the search stops between two steps, records its
        trials in flight as interrupted (the next run reruns them) and kills its local workers.
    """
    space = space if isinstance(space, Space) else Space(space)
    strat = get_strategy(strategy)
    n_trials = check_positive_int("n_trials", n_trials)
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    # The local workers start first: their start-up (a fresh interpreter, the training stack,
    # the objective's data) runs while this process imports Optuna and opens the study.
    # The plots' process starts next: it imports matplotlib and the rest while the trials
    # run, so the plots are drawn at once at the end.
    with open_executor(workers, dask=dask, threads=threads,
                       warm=getattr(objective, "warm_up", None)) as pool, \
            (plot_process() if plots and directory is not None else contextlib.nullcontext()) as plotter:
        import optuna

        pruner_obj = make_pruner(pruner)
        if hasattr(objective, "check_space"):
            objective.check_space(space)
        out = Path(directory) if directory is not None else None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            _check_same_search(out, {"space": space.to_dict(), "direction": direction, "base": base})
        total = strat.total_trials(space, n_trials)

        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = optuna.create_study(
                study_name=study_name, storage=_storage(out, storage), sampler=strat.sampler(space, seed),
                direction=direction, load_if_exists=True,
            )
            _fail_stale(study)
            if out is not None:
                _write_missing_records(out, study)
            existing = len(study.get_trials(deepcopy=False))
            if existing:
                # A resumed study, or one shared with another machine: a sampler seeded like
                # the first run's would draw the same parameters again. (seed, trials already
                # there) gives new draws, still reproducibly.
                study.sampler = strat.sampler(space, int(np.random.SeedSequence([seed, existing]).generate_state(1)[0]))
            owner = f"{socket.gethostname()}:{os.getpid()}"
            with deferred_stop() as stop:
                _loop(study, pool, objective, space, strat, total, pruner_obj, direction, retries, threads,
                      owner, out, on_trial, stop)
            records = [trial_record(t) for t in study.get_trials(deepcopy=False)]
            best = _best(records, direction)
            stages = (strat.stage_spaces(space, study.get_trials(deepcopy=False), strat.stages - 1,
                                         maximize=direction == "maximize")
                      if isinstance(strat, CoarseToFine) else [space])
            if out is not None:
                write_outputs(out, study, records, best, plots=plots, pool=plotter)
        finally:
            optuna.logging.set_verbosity(verbosity)
    return SearchResult(study, out, records, best, stages)


def _best(records: list[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    done = [r for r in records if r["state"] == "COMPLETE" and r["value"] is not None and math.isfinite(r["value"])]
    if not done:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    # ties (common: accuracy on a small validation set moves in steps of 1/n) go to the lower
    # validation loss when the objective reports one, then to the earlier trial
    return max(done, key=lambda r: (sign * r["value"], -r.get("val_loss", math.inf), -r["number"]))


def _loop(study: Any, pool: Any, objective: Any, space: Space, strat: Strategy, total: int, pruner: Any,
          direction: str, retries: int, threads: int | None, owner: str, out: Path | None,
          on_trial: Callable[[dict[str, Any]], None] | None, stop: list[int]) -> None:
    from optuna.trial import TrialState

    from neuronlab.search.strategies import _counts

    pending: dict[Any, tuple[Any, TrialTask, int]] = {}  # future -> (trial, task, attempts)
    asked: set[int] = set()
    try:
        while True:
            if stop:  # Ctrl-C or SIGTERM, acted on here: between trials, never inside a tell
                raise SearchInterrupted(stop[0])
            trials = study.get_trials(deepcopy=False)
            used = sum(1 for t in trials if _counts(t))
            while len(pending) < pool.capacity and used < total:
                plan = strat.plan(space, trials, total, maximize=direction == "maximize")
                if plan is None:
                    break
                if plan.fixed:
                    study.enqueue_trial(plan.fixed)
                trial = study.ask(plan.distributions)
                asked.add(trial.number)
                for k, v in (("stage", plan.stage), ("budget", plan.budget), ("owner", owner)):
                    trial.set_user_attr(k, v)
                reference = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                             if int(t.user_attrs.get("stage", 0)) == plan.stage] if pruner is not None else []
                task = TrialTask(objective, trial.number, dict(trial.params), plan.budget, plan.stage,
                                 pruner, reference, direction, threads)
                pending[pool.executor.submit(run_trial, task)] = (trial, task, 0)
                used += 1
                trials = study.get_trials(deepcopy=False)
            if not pending:
                if used >= total:
                    return
                time.sleep(0.5)  # another process holds the running trials of a shared study
                continue
            done, _ = wait(list(pending), timeout=0.5, return_when=FIRST_COMPLETED)  # 0.5: see stop
            for fut in done:
                trial, task, attempts = pending.pop(fut)
                exc = fut.exception()
                if exc is None:
                    _finish(study, trial, fut.result(), out, on_trial)
                    continue
                # Its worker died (killed, out of memory, lost with its machine): only this trial
                # is lost (WorkerPool, Dask's KilledWorker), the others in flight go on.
                if attempts < retries:
                    trial.set_user_attr("retries", attempts + 1)
                    pending[pool.executor.submit(run_trial, task)] = (trial, task, attempts + 1)
                else:
                    lost = TrialOutcome(task.number, "fail", None, {}, {"worker_lost": True}, {},
                                        f"worker lost: {type(exc).__name__}: {exc}", 0.0, "")
                    _finish(study, trial, lost, out, on_trial)
    finally:
        # interrupted or failed: the trials this search asked for and did not tell (in flight,
        # or answered but not told yet) are rerun on resume
        _fail_interrupted(study, lambda t: t.number in asked)


def _finish(study: Any, trial: Any, outcome: TrialOutcome, out: Path | None,
            on_trial: Callable[[dict[str, Any]], None] | None) -> None:
    """Write the worker's files, tell the study (the durable record), then write the trial's
    record (status.json, its trials.jsonl line). A search killed between the tell and the
    record gets the record written by the next run (:func:`_write_missing_records`)."""
    from optuna.trial import TrialState

    if out is not None:
        write_trial_files(out, trial.number, outcome.files)

    for step in sorted(outcome.intermediate):
        trial.report(outcome.intermediate[step], step)
    for k, v in outcome.attrs.items():
        if k != "traceback":
            trial.set_user_attr(k, v)
    trial.set_user_attr("duration", round(outcome.duration, 3))
    trial.set_user_attr("worker", outcome.worker)
    if outcome.error:
        trial.set_user_attr("error", outcome.error[:1000])
    if outcome.state == "complete":
        study.tell(trial, outcome.value)
    elif outcome.state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)
    record = trial_record(next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number))
    if out is not None:
        write_trial(out, record, outcome)
    if on_trial is not None:
        on_trial(record)
