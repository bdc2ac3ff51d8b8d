"""One playground session: a network training in a background thread with the library's
own :class:`~neuronlab.train.Trainer`, paused and stepped from the page, publishing a JSON
state (metrics, curves, pictures, babysitting) that the server streams to its tab.

How the thread is driven. The thread runs one ``Trainer.fit`` for up to ``max_epochs``
epochs; a callback (:class:`_Gate`) waits at every epoch start until the page has pressed
play or step, sleeps after batches to hold the steps-per-second bound, publishes a snapshot
at epoch ends (at most every ``publish_interval`` seconds while running), and raises
:class:`_Stopped` to end ``fit`` when the session is reset or closed. A diverging network
raises :class:`~neuronlab.train.DivergenceError` (the trainer's own check, plus
:class:`~neuronlab.train.NonFiniteGuard`): the session shows it as the diagnosis.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

import numpy as np

from neuronlab.babysit.monitor import Monitor
from neuronlab.playground.babysit import babysitting
from neuronlab.playground.render import grid, png_data_url, region_image, unit_images
from neuronlab.playground.settings import EXTENT, LIMITS, Settings, make_data, run_config
from neuronlab.runs import build_run
from neuronlab.train import Callback, DivergenceError, NonFiniteGuard, Trainer

__all__ = ["Session", "SessionLimitError", "SessionManager"]

REGION_SIZE = 64  # decision-region image, pixels per side
UNIT_SIZE = 24  # hidden-unit heatmaps, pixels per side
MAX_CURVE_POINTS = 400  # loss curves are thinned to this many epochs before sending


class SessionLimitError(RuntimeError):
    """The server already runs its maximum number of sessions."""


class _Stopped(Exception):
    """Raised inside ``fit`` to end a session's training (reset or close)."""


class _Gate(Callback):
    """The session's hooks into the trainer's loop (see the module docstring)."""

    order = 100  # after the Monitor, so a published snapshot includes this step's records

    def __init__(self, session: Session) -> None:
        self.s = session
        self._t0 = time.monotonic()
        self._steps = 0

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        self.s._wait_for_go()
        self._t0, self._steps = time.monotonic(), 0

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict[str, Any]) -> None:
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
        Training ends ("finished") after this many epochs.
    max_steps_per_second : float
        Optimizer steps per second this session may take at most.
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
        self._stop = False
        self._running = False
        self._budget = 0  # epochs that "step" allows while paused
        self._published_at = 0.0
        self._published_status: str | None = None  # the status in the latest published state
        self.version = 0
        self.state: str = "{}"  # the latest JSON state
        self.status = "paused"
        self.closed = False
        self._grid = grid(EXTENT, REGION_SIZE)
        self._unit_grid = grid(EXTENT, UNIT_SIZE)
        self.reset(settings)

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

    def reset(self, settings: Settings | None = None) -> None:
        """Stop training, rebuild data and network from ``settings`` (or the current ones),
        publish the untrained state and wait, paused, for play or step. The settings are
        checked as a run config before the old run stops, so a refused value leaves the
        session as it was. (The old run stops before anything new is built: building while
        its thread still runs let a page's quick edits race it.)"""
        with self._resetting:
            settings = settings if settings is not None else self.settings
            cfg = run_config(settings)  # raises for a refused value, before anything changes
            self._halt()
            data = make_data(settings)
            parts = build_run(cfg, 2, data.n_classes, len(data.y_train))
            trainer = Trainer(**parts, callbacks=[NonFiniteGuard(), Monitor(every=10), _Gate(self)])
            # settings, data and trainer change together: a reader never sees one without the others
            self.settings, self.data, self.trainer = settings, data, trainer
            self.error: str | None = None
            self._stop, self._running, self._budget = False, False, 0
            self.status = "paused"
            self._publish(self.trainer)
            self._thread = threading.Thread(target=self._train, name=f"playground-{self.id}",
                                            daemon=True)
            self._thread.start()

    def close(self, *, wait: bool = True) -> None:
        """Stop training for good (the tab went away). With ``wait=False`` return at once:
        the thread ends by itself at its next batch (the event loop must not block)."""
        self.closed = True
        self._halt(wait=wait)

    def _halt(self, *, wait: bool = True) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
            self._thread = None

    # -- the training thread ---------------------------------------------------------------
    def _wait_for_go(self) -> None:
        with self._cond:
            idle = not (self._stop or self._running or self._budget > 0)
            stale = idle and self._published_status != self.status
        if stale:  # a pause that came while the last state was being drawn: show it, then wait
            self._publish(self.trainer)
        with self._cond:
            while not (self._stop or self._running or self._budget > 0):
                self._cond.wait()
            if self._stop:
                raise _Stopped
            if not self._running:
                self._budget -= 1

    def _train(self) -> None:
        d, s = self.data, self.settings
        validation = (d.X_test, d.y_test) if len(d.y_test) else None
        try:
            self.trainer.fit(d.X_train, d.y_train, validation=validation,
                             epochs=self.max_epochs, batch_size=min(s.batch_size, len(d.y_train)),
                             seed=s.seed)
        except _Stopped:
            return
        except DivergenceError as err:
            self.error = str(err)
            self._publish(self.trainer, status="diverged")
        except Exception as err:  # noqa: BLE001  a bug must reach the page, not kill the thread silently
            self.error = f"{type(err).__name__}: {err}"
            self._publish(self.trainer, status="error")

    # -- state -----------------------------------------------------------------------------
    def _publish(self, trainer: Trainer, *, status: str | None = None) -> None:
        with self._cond:
            if status is not None:
                self.status = status
                self._running = False
        state = self.snapshot(trainer)
        with self._cond:
            self.version += 1
            state["version"] = self.version
            self._published_status = state["status"]
            self.state = json.dumps(state, allow_nan=False)
            self._published_at = time.monotonic()

    def snapshot(self, trainer: Trainer) -> dict[str, Any]:
        """The state the page draws: a JSON-able dict (see ``docs`` in the README)."""
        model, d, h = trainer.model, self.data, trainer.history
        with np.errstate(all="ignore"):
            train = _metrics(model, d.X_train, d.y_train)
            test = _metrics(model, d.X_test, d.y_test) if len(d.y_test) else None
            proba = _softmax(model.forward(self._grid, training=False))
            region = png_data_url(region_image(proba, REGION_SIZE))
            units = [unit_images(a, UNIT_SIZE) for a in _hidden_outputs(model, self._unit_grid)]
        epochs = h.epochs
        stride = max(1, -(-len(epochs) // MAX_CURVE_POINTS))
        curve = epochs[::stride]
        return {
            "session": self.id, "status": self.status, "error": self.error,
            "epoch": len(epochs), "step": trainer.step, "max_epochs": self.max_epochs,
            "train": train, "test": test,
            "curves": {"epoch": [e["epoch"] + 1 for e in curve],
                       "loss": [_finite(e.get("loss")) for e in curve],
                       "val_loss": [_finite(e.get("val_loss")) for e in curve]},
            "region": region, "extent": EXTENT, "units": units,
            "points": {"train": _points(d.X_train, d.y_train), "test": _points(d.X_test, d.y_test)},
            "n_classes": d.n_classes, "babysitting": babysitting(h, self.error),
            "settings": self.settings.to_dict(), "limits": LIMITS,
        }


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = scores.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return np.nan_to_num(z, nan=1.0 / z.shape[1])


def _metrics(model: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    """Loss and accuracy of the current weights in inference mode (the epoch logs average
    over an epoch of changing weights; the page shows where the network is now)."""
    scores = model.forward(X, training=False).astype(np.float64)
    proba = _softmax(scores)
    loss = -np.log(np.maximum(proba[np.arange(len(y)), y], 1e-300)).mean()
    acc = np.count_nonzero(scores.argmax(axis=1) == y) / len(y)
    return {"loss": _finite(loss), "acc": float(acc)}


def _hidden_outputs(model: Any, x: np.ndarray) -> list[np.ndarray]:
    """Each hidden layer's output at ``x``: the input of every width-fixed layer (Linear,
    Maxout) after the first, i.e. after its activation (and batch norm / dropout, which are
    the identity or fixed in inference mode)."""
    outs = []
    for i, layer in enumerate(model.layers):
        if i > 0 and getattr(layer, "n_in", None) is not None:
            outs.append(x)
        x = layer.forward(x, training=False)
    return outs


def _points(X: np.ndarray, y: np.ndarray) -> list[list[float]]:
    return [[round(float(a), 4), round(float(b), 4), int(c)] for (a, b), c in zip(X, y)]


class SessionManager:
    """The server's sessions, at most ``max_sessions`` at a time.

    A session with no tab listening to its event stream for ``idle_timeout`` seconds (one
    whose page never opened the stream, or crashed before it did) is closed by :meth:`reap`,
    which frees its slot; requests to its controls do not keep it alive. The server closes a
    session at once when its last listener goes away (:meth:`unlisten`).
    """

    def __init__(self, *, max_sessions: int = 8, idle_timeout: float = 8.0,
                 **session_kw: Any) -> None:
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.session_kw = session_kw
        self.sessions: dict[str, Session] = {}
        self._listeners: dict[str, int] = {}
        self._unheard_since: dict[str, float] = {}  # sid -> when it last had no listener
        self._building = 0  # slots taken by sessions being built
        self._lock = threading.Lock()

    def create(self, settings: Settings) -> Session:
        """Start a session; raises :class:`SessionLimitError` when all slots are taken."""
        self.reap()
        with self._lock:
            if len(self.sessions) + self._building >= self.max_sessions:
                raise SessionLimitError(
                    f"the server already runs {self.max_sessions} sessions (max_sessions); "
                    "close another tab, or try again in a few seconds")
            self._building += 1
        session = None
        try:  # built outside the lock: the event loop takes it to count listeners
            session = Session(settings, **self.session_kw)
        finally:
            with self._lock:
                self._building -= 1
                if session is not None:
                    self.sessions[session.id] = session
                    self._listeners[session.id] = 0
                    self._unheard_since[session.id] = time.monotonic()
        return session

    def get(self, sid: str) -> Session | None:
        return self.sessions.get(sid)

    def listen(self, sid: str) -> bool:
        """Count one more listener of ``sid``'s events; False if the session has ended."""
        with self._lock:
            if sid not in self.sessions:
                return False
            self._listeners[sid] += 1
            return True

    def unlisten(self, sid: str) -> int:
        """Count one listener less; returns how many are left (0 for an ended session)."""
        with self._lock:
            if sid not in self.sessions:
                return 0
            self._listeners[sid] -= 1
            if self._listeners[sid] <= 0:
                self._unheard_since[sid] = time.monotonic()
            return self._listeners[sid]

    def close(self, sid: str, *, wait: bool = True) -> None:
        with self._lock:
            s = self.sessions.pop(sid, None)
            self._listeners.pop(sid, None)
            self._unheard_since.pop(sid, None)
        if s is not None:
            s.close(wait=wait)

    def reap(self) -> None:
        """Close every session nobody has listened to for ``idle_timeout`` seconds."""
        now = time.monotonic()
        with self._lock:
            stale = [sid for sid in self.sessions if self._listeners[sid] <= 0
                     and now - self._unheard_since[sid] > self.idle_timeout]
        for sid in stale:
            self.close(sid)

    def close_all(self) -> None:
        for sid in list(self.sessions):
            self.close(sid)
