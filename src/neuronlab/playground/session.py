"""One playground session: a network training in a background thread with the library's
own :class:`~neuronlab.train.Trainer`, paused and stepped from the page, publishing a JSON
state (metrics, curves, pictures, babysitting, a race of optimizers) that the server
streams to its tab.

How the thread is driven. The thread runs one ``Trainer.fit`` for up to ``max_epochs``
epochs; a callback (:class:`_Gate`) waits at every epoch start until the page has pressed
play or step, sleeps after batches to hold the steps-per-second bound, publishes a snapshot
at epoch ends (at most every ``publish_interval`` seconds while running), and raises
:class:`_Stopped` to end ``fit`` when the session is reset or closed. A diverging network
raises :class:`~neuronlab.train.DivergenceError` (the trainer's own check, plus
:class:`~neuronlab.train.NonFiniteGuard`): the session shows it as the diagnosis.

Requests that use the model (tracing one example, exporting it) run where the thread leaves
it quiet, between two steps or while it waits (:mod:`.jobs`). A race of optimizers
(:mod:`.race`) trains copies of the network in threads of its own.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from neuronlab.babysit.monitor import Monitor
from neuronlab.playground.babysit import babysitting
from neuronlab.playground.export import FORMATS, model_bytes, snapshot_run
from neuronlab.playground.jobs import JobQueue
from neuronlab.playground.metrics import finite, metrics, softmax
from neuronlab.playground.race import Race
from neuronlab.playground.render import (
    grid,
    hidden_outputs,
    png_data_url,
    region_image,
    unit_images,
)
from neuronlab.playground.settings import (
    EXTENT,
    LIMITS,
    PlaygroundData,
    Settings,
    make_data,
    run_config,
)
from neuronlab.playground.trace import parse_trace_request, trace_example
from neuronlab.playground.upload import Upload
from neuronlab.runs import build_run
from neuronlab.train import Callback, DivergenceError, NonFiniteGuard, Trainer

__all__ = ["Session"]

REGION_SIZE = 64  # decision-region image, pixels per side
UNIT_SIZE = 24  # hidden-unit heatmaps, pixels per side
MAX_CURVE_POINTS = 400  # loss curves are thinned to this many epochs before sending
T = TypeVar("T")


@dataclass(frozen=True)
class _Run:
    """What one training thread trains: the settings, the data made from them (and from the
    upload, for ``dataset="upload"``) and the trainer. A reset replaces it as a whole."""

    settings: Settings
    data: PlaygroundData
    trainer: Trainer
    upload: Upload | None


class _Stopped(Exception):
    """Raised inside ``fit`` to end a session's training (reset or close)."""


class _Gate(Callback):
    """The session's hooks into the trainer's loop (see the module docstring)."""

    order = 100  # after the Monitor, so a published snapshot includes this step's records

    def __init__(self, session: Session, jobs: JobQueue) -> None:
        self.s, self.jobs = session, jobs
        self._t0 = time.monotonic()
        self._steps = 0

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        self.s._wait_for_go(trainer, self.jobs)
        self._t0, self._steps = time.monotonic(), 0

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict[str, Any]) -> None:
        self.jobs.run_pending()  # between two steps the model is quiet: serve requests
        if self.s._stop:
            raise _Stopped
        self._steps += 1
        # hold the bound: n steps may not finish before n / max_steps_per_second seconds
        ahead = self._steps / self.s.max_steps_per_second - (time.monotonic() - self._t0)
        if ahead > 0:
            time.sleep(ahead)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        s = self.s
        last = epoch + 1 >= trainer.epochs
        if not s._running or last or time.monotonic() - s._published_at >= s.publish_interval:
            s._publish(trainer, status="finished" if last else None)


class Session:
    """A network, its data and its training thread; see the module docstring.

    Parameters
    ----------
    settings : Settings
    max_epochs : int
        Training ends ("finished") after this many epochs; a race runs at most this many.
    max_steps_per_second : float
        Optimizer steps per second this session (and each racer) may take at most.
    publish_interval : float
        Seconds between published states while training runs.
    """

    def __init__(self, settings: Settings, *, max_epochs: int = 2000,
                 max_steps_per_second: float = 2000.0, publish_interval: float = 0.1) -> None:
        self.id = secrets.token_urlsafe(12)
        self.max_epochs = max_epochs
        self.max_steps_per_second = max_steps_per_second
        self.publish_interval = publish_interval
        self._cond = threading.Condition()
        self._resetting = threading.Lock()  # one reset at a time (two tabs, two requests)
        self._thread: threading.Thread | None = None
        self._jobs = JobQueue(self._cond)
        self._stop = False
        self._running = False
        self._budget = 0  # epochs that "step" allows while paused
        self._published_at = 0.0
        self._published_status: str | None = None  # the status in the latest published state
        self._main_state: dict[str, Any] = {}
        self._race: Race | None = None
        self._race_state: dict[str, Any] | None = None
        self.version = 0
        self.state: str = "{}"  # the latest JSON state
        self.status = "paused"
        self.closed = False
        self.upload: Upload | None = None
        self._grid = grid(EXTENT, REGION_SIZE)
        self._unit_grid = grid(EXTENT, UNIT_SIZE)
        self.reset(settings)

    # -- what the page reads -----------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self._run.settings

    @property
    def data(self) -> PlaygroundData:
        return self._run.data

    @property
    def trainer(self) -> Trainer:
        return self._run.trainer

    # -- controls (called from the server's event loop) --------------------------------------
    def play(self) -> None:
        with self._cond:
            if self.status in ("paused", "running"):
                self._running = True
                self.status = "running"
                self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._running = False
            if self.status == "running":
                self.status = "paused"
            self._cond.notify_all()

    def step(self) -> None:
        """Train one more epoch, then pause."""
        with self._cond:
            self._running = False
            if self.status in ("paused", "running"):
                self.status = "paused"
                self._budget += 1
                self._cond.notify_all()

    def reset(self, settings: Settings | None = None, *, upload: Upload | None = None) -> None:
        """Stop training, rebuild data and network from ``settings`` (or the current ones),
        publish the untrained state and wait, paused, for play or step. The settings are
        checked as a run config, and the data made, before the old run stops, so a refused
        value leaves the session as it was. (The old run stops before the network is built:
        building while its thread still runs let a page's quick edits race it.) ``upload``
        replaces the session's uploaded points (used when ``settings.dataset`` is
        "upload"). A race ends: it ran the old network."""
        with self._resetting:
            settings = settings if settings is not None else self.settings
            upload = upload if upload is not None else self.upload
            cfg = run_config(settings)  # raises for a refused value, before anything changes
            data = make_data(settings, upload)
            self._halt()
            self._end_race(clear=True)
            parts = build_run(cfg, 2, data.n_classes, len(data.y_train))
            jobs = JobQueue(self._cond)
            trainer = Trainer(**parts, callbacks=[NonFiniteGuard(), Monitor(every=10),
                                                  _Gate(self, jobs)])
            run = jobs.target = _Run(settings, data, trainer, upload)
            # settings, data and trainer change together: a reader never sees one without the others
            self._run, self._jobs, self.upload = run, jobs, upload
            self.error: str | None = None
            self._stop, self._running, self._budget = False, False, 0
            self.status = "paused"
            self._publish(run.trainer)
            self._thread = threading.Thread(target=self._train, args=(run, jobs),
                                            name=f"playground-{self.id}", daemon=True)
            self._thread.start()

    def close(self, *, wait: bool = True) -> None:
        """Stop training for good (the tab went away). With ``wait=False`` return at once:
        the thread ends by itself at its next batch (the event loop must not block)."""
        self.closed = True
        race = self._race
        if race is not None:
            race.stop(wait=wait)
        self._halt(wait=wait)

    def _halt(self, *, wait: bool = True) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
            self._thread = None

    # -- requests that use the model ---------------------------------------------------------
    def on_model(self, fn: Callable[[_Run], T]) -> T:
        """``fn(run)`` where the training thread leaves the model quiet (:mod:`.jobs`)."""
        return self._jobs.call(fn)

    def trace(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """One example forward and backward (:func:`~.trace.trace_example`): ``raw`` is the
        page's ``{"point": [x, y, label]}`` or ``{"index": i}`` (a training example).
        Raises ValueError or TypeError for a bad request."""

        def job(run: _Run) -> dict[str, Any]:
            d, trainer = run.data, run.trainer
            x, y, label, index = parse_trace_request(raw, d.n_classes, len(d.y_train))
            if index is not None:
                x, y = (float(v) for v in d.X_train[index])
                label = int(d.y_train[index])
            point = np.array([[x, y]], dtype=trainer.model.dtype)
            out = trace_example(trainer.model, trainer.loss, point, label)
            out.update(input=[x, y], label=label, index=index, step=trainer.step,
                       epoch=len(trainer.history.epochs), n_train=len(d.y_train))
            return out

        return self.on_model(job)

    def export(self, fmt: str) -> bytes:
        """The trained network as a file: "safetensors" (``nl.save``) or "onnx"
        (``nl.export_onnx`` with probabilities). For uploaded points the file carries the
        upload's rescaling, so it takes the CSV's coordinates."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")

        model, meta = self.on_model(lambda run: snapshot_run(
            run.trainer, run.settings, run.data.n_classes, run.upload))
        return model_bytes(model, fmt, meta)

    # -- races -----------------------------------------------------------------------------
    def start_race(self, racers: list[tuple[str, float]], epochs: int) -> dict[str, Any]:
        """Pause training and race ``racers`` ((optimizer, lr) pairs) for ``epochs`` epochs
        on this session's data and network (a race already running ends first). Raises
        ValueError when a racer cannot be built."""
        with self._resetting:
            run = self._run
            race = Race(run.settings, run.data, racers, min(epochs, self.max_epochs),
                        self._publish_race, max_steps_per_second=self.max_steps_per_second,
                        publish_interval=self.publish_interval)
            self.pause()
            self._end_race(clear=True)
            self._race = race
            race.start()
            return race.state()

    def stop_race(self) -> dict[str, Any] | None:
        """End the race; its last state stays on the page. None when there was none."""
        with self._resetting:
            return self._end_race(clear=False)

    def _end_race(self, *, clear: bool) -> dict[str, Any] | None:
        race = self._race
        if race is None:
            return None
        race.stop()
        state = race.state()
        with self._cond:
            self._race = None
            self._race_state = None if clear else state
            self._dump()
        return state

    def _publish_race(self, race: Race, state: dict[str, Any]) -> None:
        with self._cond:
            if race is self._race:  # a stopped race's last racer must not come back
                self._race_state = state
                self._dump()

    # -- the training thread ---------------------------------------------------------------
    def _wait_for_go(self, trainer: Trainer, jobs: JobQueue) -> None:
        with self._cond:
            idle = not (self._stop or self._running or self._budget > 0)
            stale = idle and self._published_status != self.status
        if stale:  # a pause that came while the last state was being drawn: show it, then wait
            self._publish(trainer)
        while True:
            jobs.run_pending()
            with self._cond:
                if self._stop:
                    raise _Stopped
                if self._running or self._budget > 0:
                    if not self._running:
                        self._budget -= 1
                    return
                if not jobs.pending:
                    self._cond.wait()

    def _train(self, run: _Run, jobs: JobQueue) -> None:
        d, s, trainer = run.data, run.settings, run.trainer
        validation = (d.X_test, d.y_test) if len(d.y_test) else None
        try:
            trainer.fit(d.X_train, d.y_train, validation=validation, epochs=self.max_epochs,
                        batch_size=min(s.batch_size, len(d.y_train)), seed=s.seed)
        except _Stopped:
            return
        except DivergenceError as err:
            self._fail(trainer, "diverged", str(err))
        except Exception as err:  # noqa: BLE001  a bug must reach the page, not kill the thread silently
            self._fail(trainer, "error", f"{type(err).__name__}: {err}")
        finally:
            jobs.close()  # later requests use the model themselves: nothing trains it now

    def _fail(self, trainer: Trainer, status: str, message: str) -> None:
        self.error = message
        try:
            self._publish(trainer, status=status)
        except Exception as err:  # noqa: BLE001  drawing failed too: show the status and why
            with self._cond:
                self.status, self._running = status, False
                self.error = f"{message}; then drawing the state failed: {type(err).__name__}: {err}"
                self._main_state = {**self._main_state, "status": status, "error": self.error}
                self._published_status = status
                self._dump()

    # -- state -----------------------------------------------------------------------------
    def _publish(self, trainer: Trainer, *, status: str | None = None) -> None:
        with self._cond:
            if status is not None:
                self.status = status
                self._running = False
        state = self.snapshot(trainer)
        with self._cond:
            self._main_state = state
            self._published_status = state["status"]
            self._published_at = time.monotonic()
            self._dump()

    def _dump(self) -> None:
        """The JSON state from the latest snapshot and race state (the caller holds _cond)."""
        self.version += 1
        self.state = json.dumps({**self._main_state, "race": self._race_state,
                                 "version": self.version}, allow_nan=False)

    def snapshot(self, trainer: Trainer) -> dict[str, Any]:
        """The state the page draws: a JSON-able dict (see ``docs`` in the README)."""
        model, d, h, run = trainer.model, self.data, trainer.history, self._run
        with np.errstate(all="ignore"):
            train = metrics(model, d.X_train, d.y_train)
            test = metrics(model, d.X_test, d.y_test) if len(d.y_test) else None
            proba = softmax(model.forward(self._grid, training=False))
            region = png_data_url(region_image(proba, REGION_SIZE))
            units = [unit_images(a, UNIT_SIZE) for a in hidden_outputs(model, self._unit_grid)]
        epochs = h.epochs
        stride = max(1, -(-len(epochs) // MAX_CURVE_POINTS))
        curve = epochs[::stride]
        return {
            "session": self.id, "status": self.status, "error": self.error,
            "epoch": len(epochs), "step": trainer.step, "max_epochs": self.max_epochs,
            "train": train, "test": test,
            "curves": {"epoch": [e["epoch"] + 1 for e in curve],
                       "loss": [finite(e.get("loss")) for e in curve],
                       "val_loss": [finite(e.get("val_loss")) for e in curve]},
            "region": region, "extent": EXTENT, "units": units,
            "points": {"train": _points(d.X_train, d.y_train), "test": _points(d.X_test, d.y_test)},
            "n_classes": d.n_classes,
            "babysitting": babysitting(h, self.error, started=trainer.step > 0),
            "settings": self.settings.to_dict(), "limits": LIMITS,
            "upload": run.upload.summary() if run.upload is not None else None,
        }


def _points(X: np.ndarray, y: np.ndarray) -> list[list[float]]:
    return [[round(float(a), 4), round(float(b), 4), int(c)] for (a, b), c in zip(X, y)]
