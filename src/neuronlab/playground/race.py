"""Optimizers raced side by side: the same data, network and initial weights (the session's
seed), each trained with its own update rule and learning rate by its own
:class:`~neuronlab.train.Trainer` in its own thread.

A :class:`Race` builds every racer through :func:`~neuronlab.runs.build_run` (the mlp's
weights come from the seed, so all racers start from the same point, and the batches come
in the same order), runs them for a bounded number of epochs, and publishes after their
epochs (at most every ``publish_interval`` seconds each) one JSON-able state: each racer's
loss curve, metrics and a small decision-region image.

:func:`parse_race_request` validates the page's request: ``{"racers": [{"optimizer": name,
"lr": number}, ...], "epochs": n}`` with 2 to 6 distinct minibatch optimizers.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from neuronlab.playground.metrics import finite, metrics, softmax
from neuronlab.playground.render import grid, png_data_url, region_image
from neuronlab.playground.settings import (
    EXTENT,
    LIMITS,
    PlaygroundData,
    Settings,
    _choice,
    _int_in,
    _quote,
    _real,
    minibatch_optimizers,
    run_config,
)
from neuronlab.runs import build_run
from neuronlab.train import Callback, DivergenceError, NonFiniteGuard, Trainer

__all__ = ["DEFAULT_LRS", "MAX_RACERS", "Race", "parse_race_request"]

MAX_RACERS = 6
RACE_REGION = 32  # pixels per side of each racer's decision-region image
MAX_CURVE_POINTS = 400
#: A learning rate each rule trains the playground's networks well with (plain SGD needs a
#: larger step than Adam's normalised one): the page's starting values.
DEFAULT_LRS: dict[str, float] = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adam": 0.01,
                                 "adamw": 0.01, "rmsprop": 0.005, "adagrad": 0.1}


def parse_race_request(raw: Mapping[str, Any], max_epochs: int
                       ) -> tuple[list[tuple[str, float]], int]:
    """``([(optimizer, lr), ...], epochs)`` from the page's request; raises ValueError or
    TypeError naming the field."""
    unknown = sorted(set(raw) - {"racers", "epochs"})
    if unknown:
        raise ValueError(f"unknown field(s) {_quote(unknown)}; send racers and epochs")
    racers = raw.get("racers")
    if not isinstance(racers, (list, tuple)):
        raise TypeError(f"racers must be a list of {{optimizer, lr}}, got {_quote(racers)}")
    if not 2 <= len(racers) <= MAX_RACERS:
        raise ValueError(f"a race needs 2 to {MAX_RACERS} optimizers, got {len(racers)}")
    out: list[tuple[str, float]] = []
    for i, r in enumerate(racers):
        if not isinstance(r, Mapping) or set(r) - {"optimizer", "lr"} or "optimizer" not in r:
            raise ValueError(f"racers[{i}] must be {{optimizer, lr}}, got {_quote(r)}")
        name = _choice(f"racers[{i}].optimizer", r["optimizer"], minibatch_optimizers())
        if name in [n for n, _ in out]:
            raise ValueError(f"racers[{i}].optimizer: {name} is in the race twice")
        lr = _real(f"racers[{i}].lr", r.get("lr", DEFAULT_LRS.get(name, 0.01)), low=0,
                   high=LIMITS["max_lr"], low_inclusive=False)
        out.append((name, lr))
    epochs = _int_in("epochs", raw.get("epochs", 100), 1, max_epochs)
    return out, epochs


class _Stop(Exception):
    """Raised inside a racer's ``fit`` to end it (the race was stopped)."""


class _Racer:
    trainer: Trainer

    def __init__(self, optimizer: str, lr: float) -> None:
        self.optimizer, self.lr = optimizer, lr
        self.status = "running"
        self.error: str | None = None
        self.record: dict[str, Any] = {}


class _RacerGate(Callback):
    """A racer's hooks: stop when asked, hold the steps-per-second bound, publish."""

    def __init__(self, race: Race, racer: _Racer) -> None:
        self.race, self.racer = race, racer
        self._t0 = time.monotonic()
        self._steps = 0
        self._published_at = 0.0

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict[str, Any]) -> None:
        if self.race.stopped:
            raise _Stop
        self._steps += 1
        ahead = self._steps / self.race.max_steps_per_second - (time.monotonic() - self._t0)
        if ahead > 0:
            time.sleep(ahead)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        last = epoch + 1 >= trainer.epochs
        if last or time.monotonic() - self._published_at >= self.race.publish_interval:
            self._published_at = time.monotonic()
            self.race._publish(self.racer, "finished" if last else None)


class Race:
    """Several trainers on one session's data (see the module docstring).

    Parameters
    ----------
    settings : Settings
        The network, data and seed; each racer replaces ``optimizer`` and ``lr``.
    data : PlaygroundData
    racers : list of (optimizer, lr)
    epochs : int
    on_state : callable
        Called with the race's state after every publish (from the racers' threads).
    max_steps_per_second, publish_interval : float
        Per racer, as for a session.
    """

    def __init__(self, settings: Settings, data: PlaygroundData, racers: list[tuple[str, float]],
                 epochs: int, on_state: Callable[[Race, dict[str, Any]], None], *,
                 max_steps_per_second: float = 2000.0, publish_interval: float = 0.1) -> None:
        self.settings, self.data, self.epochs = settings, data, epochs
        self.on_state = on_state
        self.max_steps_per_second = max_steps_per_second
        self.publish_interval = publish_interval
        self.stopped = False
        self._lock = threading.Lock()
        self._grid = grid(EXTENT, RACE_REGION)
        self.racers: list[_Racer] = []
        for name, lr in racers:  # built before any thread starts: a refusal leaves nothing
            cfg = run_config(dataclasses.replace(settings, optimizer=name, lr=lr))
            parts = build_run(cfg, 2, data.n_classes, len(data.y_train))
            racer = _Racer(name, lr)
            racer.trainer = Trainer(**parts, callbacks=[NonFiniteGuard(), _RacerGate(self, racer)],
                                    monitor=False)
            racer.record = self._record(racer)
            self.racers.append(racer)
        self._threads = [threading.Thread(target=self._train, args=(r,), daemon=True,
                                          name=f"playground-race-{r.optimizer}")
                         for r in self.racers]

    def start(self) -> None:
        self.on_state(self, self.state())
        for t in self._threads:
            t.start()

    def stop(self, *, wait: bool = True) -> None:
        """End every racer (at its next step); with ``wait``, until their threads are done."""
        self.stopped = True
        if wait:
            for t in self._threads:
                if t.is_alive() and t is not threading.current_thread():
                    t.join(timeout=10)

    def _train(self, racer: _Racer) -> None:
        d, s = self.data, self.settings
        validation = (d.X_test, d.y_test) if len(d.y_test) else None
        try:
            racer.trainer.fit(d.X_train, d.y_train, validation=validation, epochs=self.epochs,
                              batch_size=min(s.batch_size, len(d.y_train)), seed=s.seed)
        except _Stop:
            racer.status = "stopped"
            return
        except DivergenceError as err:
            racer.error = str(err)
            self._publish(racer, "diverged")
        except Exception as err:  # noqa: BLE001  shown on the page, not lost with the thread
            racer.error = f"{type(err).__name__}: {err}"
            self._publish(racer, "error")

    def _publish(self, racer: _Racer, status: str | None) -> None:
        record = self._record(racer)
        with self._lock:
            if status is not None:
                racer.status = status
                record["status"] = status
            racer.record = record
            if not self.stopped:
                self.on_state(self, self.state())

    def _record(self, racer: _Racer) -> dict[str, Any]:
        """One racer's part of the state (computed in its own thread, on its own model)."""
        model, h, d = racer.trainer.model, racer.trainer.history, self.data
        with np.errstate(all="ignore"):
            train = metrics(model, d.X_train, d.y_train)
            region = png_data_url(region_image(
                softmax(model.forward(self._grid, training=False)), RACE_REGION))
        stride = max(1, -(-len(h.epochs) // MAX_CURVE_POINTS))
        curve = h.epochs[::stride]
        return {"optimizer": racer.optimizer, "lr": racer.lr, "status": racer.status,
                "error": racer.error, "epoch": len(h.epochs), "train": train,
                "curve": {"epoch": [e["epoch"] + 1 for e in curve],
                          "loss": [finite(e.get("loss")) for e in curve],
                          "val_loss": [finite(e.get("val_loss")) for e in curve]},
                "region": region}

    def state(self) -> dict[str, Any]:
        """The race for the page: ``{"status", "epochs", "racers": [record, ...]}``."""
        records = [r.record for r in self.racers]
        running = any(r["status"] == "running" for r in records)
        status = "stopped" if self.stopped else ("running" if running else "finished")
        return {"status": status, "epochs": self.epochs, "racers": records}
