"""Diagnoses that test themselves: replay a short window with and without the proposed change.

A finding says what to try; :func:`verify` tries it. For every finding of a run whose rule
proposes a change (the table :data:`CHANGES`), it trains the same network twice for a few
steps from the same place, once with the run's own setting (the *original* arm) and once with
the change applied to a copy of the run's config (the *changed* arm), and compares the data
loss the two reach on the validation split. The answer is a :class:`Verification`: the
numbers, both curves and whether the change helped.

================================  =========================================  ================
rule                              change(s) replayed                         start
================================  =========================================  ================
``lr_too_high``                   lr ÷ 10                                    last good
                                                                             checkpoint
``lr_too_low``                    lr × 10; lr × 100                          last checkpoint
``regularization_too_strong``     L2 and L1 strength ÷ 100                   last checkpoint
``overfitting``                   L2 × 10 (1e-3 when it is 0); dropout 0.5   last checkpoint
``dead_relu``                     LeakyReLU in place of ReLU; lr ÷ 10        last checkpoint
``saturation``,                   the initialisation the activation wants:   scratch
``activations_exploding``,        glorot for tanh/sigmoid (unless it is
``activations_collapsing``,       glorot or lecun already), he for the ReLU
``vanishing_gradients``,          family and maxout
``exploding_gradients``
``underfitting``                  hidden widths × 2                          scratch
================================  =========================================  ================

A change that does not apply to the run (lr for L-BFGS, LeakyReLU in a tanh net, an init the
network already has) is not replayed. Other rules (``initial_loss``) propose nothing to replay.

How a replay runs. The data is loaded, split and preprocessed once from the run's
``config.toml`` (:func:`neuronlab.runs.prepare_data`), so both arms see the same rows. Each
arm's components come from :func:`neuronlab.runs.build_run` with its config. A replay from a
checkpoint resumes it exactly (weights, optimizer state, training state: the step, the
shuffle generator, so both arms see the same next batches the run itself saw); when the
change alters the architecture (LeakyReLU, dropout) the checkpoint is restored into the run's
own network and its arrays and optimizer state are moved onto the changed one, through a
private checkpoint in a temporary folder. A replay from *scratch* builds both networks from
the run's seed, as ``neuronlab train`` did, and shuffles with ``seed``. Each arm then trains
``steps`` optimizer steps with the :class:`~neuronlab.train.Trainer` (no monitor, no
checkpoints, nothing logged), stopped at the first non-finite loss or gradient
(:class:`~neuronlab.train.NonFiniteGuard`): that arm *diverged*.

The metric is the data loss (not the objective: a smaller penalty must not look like a better
fit) on the validation split, measured with :func:`neuronlab.train.evaluation.evaluate` in
inference mode every ``steps / 20`` steps; a run without a validation split is scored on
:data:`EVAL_ROWS` training rows drawn with ``seed``. The change *helped* when the changed arm
did not diverge and either its loss is lower by at least :data:`HELP_MARGIN` (relative) both
at the end and on average over the last quarter of the replay (a change that wins by noise,
or only at the last point, does not count), or the original diverged and the changed arm
ended no worse than it started (surviving from a checkpoint that is already lost is not
help).

:func:`verify` writes ``verify.json`` into the run folder (atomically) and nothing else: the
checkpoints, metrics and model stay byte for byte as they were. :func:`load_verifications`
reads it back (bounded and validated), and :func:`plot_verification` draws the curves.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuronlab.errors import NeuronlabError
from neuronlab.train.base import Callback

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from neuronlab.config import RunConfig
    from neuronlab.runs import RunData
    from neuronlab.train.checkpoint import LoadedCheckpoint
    from neuronlab.train.history import History

__all__ = [
    "CHANGES",
    "CURVE_POINTS",
    "EVAL_ROWS",
    "HELP_MARGIN",
    "VERIFY_FILE",
    "Change",
    "Verification",
    "VerifyFileError",
    "check_run_dir",
    "load_history",
    "load_verifications",
    "plot_verification",
    "verify",
]

logger = logging.getLogger(__name__)

VERIFY_FILE = "verify.json"
FORMAT = "neuronlab.verify"
VERSION = 1
#: Relative improvement of the validation loss a change must reach to count as help, at the
#: end of the replay and on average over its last quarter. Both arms see the same batches
#: from the same state, so what is left is the change itself; 5% keeps changes that barely
#: move the loss (or move it by the ups and downs of a few batches) from being "confirmed".
HELP_MARGIN = 0.05
CURVE_POINTS = 20  # points of each curve (the metric every steps / 20 steps, and at 0)
EVAL_ROWS = 1000  # training rows scored when the run has no validation split
OVERFIT_L2 = 1e-3  # the L2 strength tried against overfitting when the run has none
DROPOUT = 0.5  # the dropout rate tried against overfitting
MAX_VERIFY_BYTES = 8 << 20  # a verify.json larger than this is refused unread
_MAX_TEXT = 2000  # characters of any string in verify.json
_MAX_POINTS = 10_000  # points of one curve in verify.json
_MAX_ENTRIES = 10_000  # verifications in verify.json


class VerifyFileError(NeuronlabError, ValueError):
    """A ``verify.json`` cannot be used: not a regular file, too large, not JSON, or not what
    :func:`verify` writes. The message names the file and the field."""


# -- the changes -------------------------------------------------------------------------------
Overrides = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Change:
    """One change a rule proposes.

    Attributes
    ----------
    start : {"last_good", "last", "scratch"}
        Where both arms start: the last good checkpoint (the latest one written before the run
        diverged whose weights are finite), the latest checkpoint, or step 0 with the
        network re-initialised from the run's seed.
    make : callable RunConfig -> (overrides, words) or None
        The config overrides ``{section: {key: value}}`` and their description
        (``"lr 0.03 → 0.003"``), or None when the change does not apply to this run.
    """

    start: str
    make: Callable[[RunConfig], tuple[Overrides, str] | None]


def _g(v: float) -> str:
    return f"{v:.3g}"


def _full_batch(cfg: RunConfig) -> bool:
    from neuronlab.registry import OPTIMIZERS

    return bool(getattr(OPTIMIZERS.get(cfg.optim.optimizer), "full_batch", False))


def _scale_lr(factor: float) -> Callable[[RunConfig], tuple[Overrides, str] | None]:
    def make(cfg: RunConfig) -> tuple[Overrides, str] | None:
        old = cfg.optim.lr
        if _full_batch(cfg) or isinstance(old, str):  # L-BFGS picks its own steps; "auto"
            return None
        lr = old * factor
        return {"optim": {"lr": lr}}, f"lr {_g(old)} → {_g(lr)}"
    return make


def _weaker_penalty(cfg: RunConfig) -> tuple[Overrides, str] | None:
    r = cfg.regularization
    body = {k: getattr(r, k) / 100 for k in ("l2", "l1") if getattr(r, k) > 0}
    if not body:
        return None
    words = ", ".join(f"{k} {_g(getattr(r, k))} → {_g(v)}" for k, v in body.items())
    return {"regularization": body}, words


def _more_l2(cfg: RunConfig) -> tuple[Overrides, str] | None:
    l2 = cfg.regularization.l2
    new = l2 * 10 if l2 > 0 else OVERFIT_L2
    return {"regularization": {"l2": new}}, f"l2 {_g(l2)} → {_g(new)}"


def _dropout(cfg: RunConfig) -> tuple[Overrides, str] | None:
    rate = cfg.model.dropout
    if rate >= DROPOUT or not cfg.model.hidden:
        return None
    return {"model": {"dropout": DROPOUT}}, f"dropout {_g(rate)} → {_g(DROPOUT)}"


def _leaky(cfg: RunConfig) -> tuple[Overrides, str] | None:
    if cfg.model.activation != "relu":
        return None
    return {"model": {"activation": "leaky_relu"}}, "activation relu → leaky_relu"


#: The initialisation each activation wants: variance 2/n for the ReLU family, Glorot's
#: 2/(n_in + n_out) for the squashing ones (LeCun's 1/n is as good: it is kept).
_INIT_FOR = {"relu": ("he",), "leaky_relu": ("he",), "prelu": ("he",), "elu": ("he",),
             "maxout": ("he",), "tanh": ("glorot", "lecun"), "sigmoid": ("glorot", "lecun")}


def _init_for_activation(cfg: RunConfig) -> tuple[Overrides, str] | None:
    wanted = _INIT_FOR.get(cfg.model.activation)
    if wanted is None or cfg.model.init in wanted or not cfg.model.hidden:
        return None
    return ({"model": {"init": wanted[0]}},
            f"init {cfg.model.init} → {wanted[0]} (for {cfg.model.activation})")


def _wider(cfg: RunConfig) -> tuple[Overrides, str] | None:
    hidden = cfg.model.hidden
    if not hidden:
        return None
    wide = [2 * h for h in hidden]
    return ({"model": {"hidden": wide}},
            f"hidden {','.join(map(str, hidden))} → {','.join(map(str, wide))}")


_INIT = (Change("scratch", _init_for_activation),)
CHANGES: dict[str, tuple[Change, ...]] = {
    "lr_too_high": (Change("last_good", _scale_lr(0.1)),),
    # the rule fires at ratios 100x below the target: a 10x step may not be enough
    "lr_too_low": (Change("last", _scale_lr(10.0)), Change("last", _scale_lr(100.0))),
    "regularization_too_strong": (Change("last", _weaker_penalty),),
    "overfitting": (Change("last", _more_l2), Change("last", _dropout)),
    "dead_relu": (Change("last", _leaky), Change("last", _scale_lr(0.1))),
    "saturation": _INIT,
    "activations_exploding": _INIT,
    "activations_collapsing": _INIT,
    "vanishing_gradients": _INIT,
    "exploding_gradients": _INIT,
    "underfitting": (Change("scratch", _wider),),
}
"""Each rule's proposed changes, replayed as alternatives (see the module docstring)."""


# -- the result --------------------------------------------------------------------------------
Curve = tuple[tuple[int, float | None], ...]


@dataclass(frozen=True)
class Verification:
    """One replayed change and what it did.

    Attributes
    ----------
    rule : str
        The finding's rule (``"lr_too_high"``...).
    change : str
        The change in words: ``"lr 0.03 → 0.003"``.
    start : str
        ``"checkpoint step N"`` or ``"scratch"``.
    steps : int
        Optimizer steps each arm was to train.
    metric : str
        What was compared: ``"validation loss"`` (the data loss on the validation split) or
        ``"training-sample loss"`` (on :data:`EVAL_ROWS` training rows).
    original, changed : float or None
        Each arm's metric at the end (None when that arm diverged or its loss is not finite).
    improvement : float or None
        ``(original - changed) / original``: 0.82 means 82% lower with the change; None when
        either value is missing.
    helped : bool
        The change improved the metric by at least :data:`HELP_MARGIN` (at the end and over
        the last quarter of the replay), or the original diverged and the changed arm did
        not, ending no worse than it started.
    original_diverged, changed_diverged : bool
        The arm stopped at a non-finite loss or gradient, or ended with a non-finite metric.
    curves : dict
        ``{"original": ((step, value), ...), "changed": (...)}``, steps counted from the
        start of the replay, values None where not finite.
    start_step : int
        The run's optimizer step where the replay started (0 from scratch).
    """

    rule: str
    change: str
    start: str
    steps: int
    metric: str
    original: float | None
    changed: float | None
    improvement: float | None
    helped: bool
    original_diverged: bool = False
    changed_diverged: bool = False
    curves: dict[str, Curve] = field(default_factory=dict)
    start_step: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (curves as lists of ``[step, value]``)."""
        return {"rule": self.rule, "change": self.change, "start": self.start,
                "start_step": self.start_step, "steps": self.steps, "metric": self.metric,
                "original": self.original, "changed": self.changed,
                "improvement": self.improvement, "helped": self.helped,
                "original_diverged": self.original_diverged,
                "changed_diverged": self.changed_diverged,
                "curves": {k: [[s, v] for s, v in c] for k, c in self.curves.items()}}

    def summary(self) -> str:
        """One line: ``"verified: lr 0.3 → 0.03 lowered the validation loss from 2.31 to 0.41
        in 100 steps from checkpoint step 120 (−82%)"``, or ``"not confirmed: ..."``."""
        where = "from scratch" if self.start == "scratch" else f"from {self.start}"
        head = "verified" if self.helped else "not confirmed"
        o, c = self.original, self.changed
        if o is None and c is None:
            return (f"{head}: {self.change} {where}: both settings diverged within "
                    f"{self.steps} steps")
        if c is None:
            return (f"{head}: {self.change} {where}: the change diverged within {self.steps} "
                    f"steps, the original setting reached a {self.metric} of {_g(o or 0.0)}")
        if o is None:
            start = next((v for _, v in self.curves.get("changed", ()) if v is not None), None)
            since = "" if start is None else f" (from {_g(start)})"
            return (f"{head}: {self.change} {where}: the original setting diverged within "
                    f"{self.steps} steps, the change reached a {self.metric} of {_g(c)}{since}")
        verb = "lowered" if c < o else ("raised" if c > o else "left")
        pct = "" if self.improvement is None else f" ({_percent(-self.improvement)})"
        margin = "" if self.helped else f", the margin is {HELP_MARGIN:.0%}"
        return (f"{head}: {self.change} {verb} the {self.metric} from {_g(o)} to {_g(c)} "
                f"in {self.steps} steps {where}{pct}{margin}")


def _percent(x: float) -> str:
    return f"{'−' if x < 0 else '+'}{abs(x):.0%}"


# -- reading a run folder ----------------------------------------------------------------------
def check_run_dir(run_dir: str | os.PathLike[str], *, checkpoints: bool = False) -> Path:
    """The run folder ``run_dir`` as a Path, after checking it is one.

    Parameters
    ----------
    run_dir : path
        A folder written by ``neuronlab train``.
    checkpoints : bool
        Also require at least one checkpoint in ``run_dir/checkpoints``.

    Raises
    ------
    FileNotFoundError
        No such folder, no ``config.toml`` or ``metrics.jsonl`` in it, or (with
        ``checkpoints``) no checkpoint.
    """
    from neuronlab.train.checkpoint import latest_checkpoint

    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"run directory not found: {path}")
    for name in ("config.toml", "metrics.jsonl"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not a run directory (no {name})")
    ckpt_dir = path / "checkpoints"
    if checkpoints and (not ckpt_dir.is_dir() or latest_checkpoint(ckpt_dir) is None):
        raise FileNotFoundError(
            f"{path} has no checkpoint to replay from (no {ckpt_dir.name}/*.safetensors)")
    return path


def load_history(run_dir: str | os.PathLike[str]) -> History:
    """The :class:`~neuronlab.train.History` of a run folder, rebuilt from its
    ``metrics.jsonl`` as the report rebuilds it (:func:`neuronlab.plots.as_records`: a resumed
    run's repeated steps count once), with the monitor records and ``history.info``.

    Parameters
    ----------
    run_dir : str or os.PathLike
        A run folder written by ``neuronlab train`` (it must hold ``config.toml`` and
        ``metrics.jsonl``).

    Returns
    -------
    History

    Raises
    ------
    FileNotFoundError
        If the folder, its ``config.toml`` or its ``metrics.jsonl`` is missing.
    """
    from neuronlab.plots import as_records
    from neuronlab.train.loggers import read_metrics

    return as_records(read_metrics(check_run_dir(run_dir) / "metrics.jsonl")).to_history()


def _checkpoints(run_dir: Path) -> list[tuple[int, str]]:
    """``(step, path)`` of every checkpoint of the run, oldest first (at equal steps the
    end-of-epoch one last, as :func:`~neuronlab.train.checkpoint.latest_checkpoint` orders)."""
    from neuronlab.train.checkpoint import CHECKPOINT_NAME

    folder = run_dir / "checkpoints"
    found = []
    if folder.is_dir():
        for name in os.listdir(folder):
            m = CHECKPOINT_NAME.match(name)
            if m and (folder / name).is_file():
                found.append((int(m.group(2)), m.group(1) is not None, str(folder / name)))
    return [(step, path) for step, _, path in sorted(found)]


def _good_checkpoints(ckpts: list[tuple[int, str]], history: History) -> list[tuple[int, str]]:
    """The checkpoints written before the run diverged, best first: by the validation loss
    (else the training objective) of the epoch each one ends when they all end an epoch,
    else by the mean objective of the 10 steps before each; latest first at equal values.
    Those whose value is not finite, or above :data:`_BROKEN_FACTOR` times the run's initial
    loss, are left out."""
    bad = _diverged_step(history)
    epochs = {int(e["epoch"]): e for e in history.epochs
              if isinstance(e.get("epoch"), numbers.Integral) and "step" in e}
    kept = [(step, p) for step, p in ckpts if bad is None or step <= bad]

    def epoch_value(step: int, p: str) -> Any:
        m = _EPOCH_OF.match(os.path.basename(p))
        e = epochs.get(int(m.group(1))) if m else None
        if e is None or e.get("step") != step:
            return None
        return e.get("val_loss", e.get("loss"))

    def steps_value(step: int, p: str) -> Any:
        recent = history.loss[max(0, step - 10):step]
        return sum(recent) / len(recent) if recent else None

    values = [epoch_value(step, p) for step, p in kept]
    if any(v is None for v in values):
        values = [steps_value(step, p) for step, p in kept]
    # finite is not enough: a checkpoint whose loss is already far above where the run began
    # (the initial loss, or ln C) was broken before it diverged, and a replay from it proves
    # nothing
    ceiling = _BROKEN_FACTOR * max(
        [v for v in (history.info.get("initial_loss"), history.info.get("expected_initial_loss"))
         if isinstance(v, (int, float)) and math.isfinite(v) and v > 0] or [math.inf])
    scored = [(float(v), -step, p) for (step, p), v in zip(kept, values)
              if isinstance(v, (int, float)) and math.isfinite(v) and v <= ceiling]
    return [(-neg, p) for _, neg, p in sorted(scored)]


#: A checkpoint whose loss is above this many times the run's initial loss is not "good".
_BROKEN_FACTOR = 10.0


_EPOCH_OF = re.compile(r"^epoch-(\d+)-")


def _diverged_step(history: History) -> int | None:
    step = history.info.get("diverged_step")
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        return int(step)
    bad = [i for i, v in enumerate(history.loss) if not math.isfinite(v)]
    return bad[0] if bad else None


# -- one arm -----------------------------------------------------------------------------------
class _Replay(Callback):
    """Scores the model at the replay's start and every ``every`` steps, and stops training
    after ``steps`` steps."""

    order = 50

    def __init__(self, steps: int, every: int, score: Callable[[Any], float | None]) -> None:
        self.steps, self.every, self.score = steps, every, score
        self.start = 0
        self.curve: list[tuple[int, float | None]] = []

    def on_train_begin(self, trainer: Any) -> None:
        self.start = trainer.step
        trainer.stop_training = False  # a run ended by early stopping saved the flag
        self.curve = [(0, self.score(trainer.model))]

    def on_batch_end(self, trainer: Any, step: int, logs: dict[str, Any]) -> None:
        k = trainer.step - self.start
        if k % self.every == 0 or k >= self.steps:
            self.curve.append((k, self.score(trainer.model)))
        if k >= self.steps:
            trainer.stop_training = True


@dataclass
class _Arm:
    curve: Curve
    diverged: bool

    @property
    def final(self) -> float | None:
        return None if self.diverged or not self.curve else self.curve[-1][1]


@dataclass
class _Start:
    """Where a replay starts: a checkpoint (loaded and verified) or scratch (None)."""

    checkpoint: LoadedCheckpoint | None = None

    @property
    def words(self) -> str:
        return "scratch" if self.checkpoint is None else f"checkpoint step {self.checkpoint.step}"

    @property
    def step(self) -> int:
        return 0 if self.checkpoint is None else self.checkpoint.step


class _Replayer:
    """The run's data, prepared once, and the arms replayed on it (each config and start
    replayed once: alternatives share their original arm)."""

    def __init__(self, cfg: RunConfig, data: RunData, steps: int, seed: int, tmp: Path) -> None:
        from neuronlab.registry import LOSSES

        self.cfg, self.data, self.steps, self.seed, self.tmp = cfg, data, steps, seed, tmp
        self.task = LOSSES.create(cfg.model.loss).task
        X, y = data.train
        self.n_train = int(X.shape[0])
        self.has_val = len(data.val[1]) > 0
        if self.has_val:
            self.eval_X, self.eval_y = data.val
            self.metric = "validation loss"
        else:
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.permutation(self.n_train)[:EVAL_ROWS])
            self.eval_X, self.eval_y = np.asarray(X[rows]), y[rows]
            self.metric = "training-sample loss"
        self._cache: dict[str, _Arm] = {}

    def components(self, cfg: RunConfig) -> dict[str, Any]:
        from neuronlab.runs import build_run

        # as prepare_run builds the run's components (float32 parameters)
        return build_run(cfg, int(np.prod(self.data.train[0].shape[1:])), self.data.n_outputs,
                         self.n_train)

    def score(self, loss: Any) -> Callable[[Any], float | None]:
        from neuronlab.train.evaluation import evaluate

        def measure(model: Any) -> float | None:
            with np.errstate(all="ignore"):
                try:
                    value = evaluate(model, loss, self.eval_X, self.eval_y, check=False)["loss"]
                except ValueError:  # the scores overflowed (the loss checks them): diverged
                    return None
            return float(value) if math.isfinite(value) else None
        return measure

    @staticmethod
    def key(cfg: RunConfig, start: _Start) -> str:
        """What identifies an arm: its config and where it starts."""
        return json.dumps([cfg.to_dict(), start.checkpoint.path if start.checkpoint else None],
                          sort_keys=True)

    def arm(self, cfg: RunConfig, start: _Start) -> tuple[_Arm, bool]:
        """The arm of ``cfg`` from ``start``, and whether it was replayed now (not cached)."""
        key = self.key(cfg, start)
        new = key not in self._cache
        if new:
            self._cache[key] = self._run(cfg, start)
        return self._cache[key], new

    def _run(self, cfg: RunConfig, start: _Start) -> _Arm:
        from neuronlab.train import DivergenceError, NonFiniteGuard, Trainer

        comps = self.components(cfg)
        t = cfg.train
        n_batches = 1 if _full_batch(cfg) else -(-self.n_train // min(t.batch_size, self.n_train))
        epochs = -(-self.steps // n_batches) + 1
        resume: str | None = None
        if start.checkpoint is not None:
            epochs += start.checkpoint.epochs_done + 1
            resume = self._resume_from(start.checkpoint, cfg, comps, epochs)
        every = max(1, self.steps // CURVE_POINTS)
        replay = _Replay(self.steps, every, self.score(comps["loss"]))
        trainer = Trainer(**comps, callbacks=[NonFiniteGuard(), replay], monitor=False)
        diverged = False
        try:
            trainer.fit(*self.data.train, validation=self.data.val if self.has_val else None,
                        epochs=epochs, batch_size=t.batch_size,
                        seed=t.seed if resume is not None else self.seed, resume=resume,
                        class_weight=None if t.class_weight == "none" else t.class_weight)
        except DivergenceError:
            diverged = True
        curve = tuple(replay.curve)
        diverged = diverged or not curve or curve[-1][1] is None
        return _Arm(curve, diverged)

    def _resume_from(self, ckpt: LoadedCheckpoint, cfg: RunConfig, comps: dict[str, Any],
                     epochs: int) -> str:
        """The checkpoint file to resume ``comps`` from: the run's own when the network is
        the checkpoint's, else a private copy carrying its state onto the changed network."""
        saved = ckpt.meta["model"]
        if json.loads(json.dumps(comps["model"].get_config())) == saved:
            return ckpt.path
        from neuronlab.train.checkpoint import save_checkpoint
        from neuronlab.train.evaluation import metric_names
        from neuronlab.train.state import TrainState

        own = self.components(self.cfg)  # the run's network: the checkpoint checks against it
        state = TrainState(n_samples=self.n_train, batch_size=self.cfg.train.batch_size,
                           epochs=epochs, seed=self.cfg.train.seed,
                           full_batch=_full_batch(self.cfg),
                           metrics=metric_names(self.task, self.has_val))
        ckpt.restore(own["model"], own["optimizer"], state)
        rename = _layer_map(own["model"], comps["model"])
        arrays = {**own["model"].params, **own["model"].buffers}
        comps["model"].set_arrays({rename(k): v for k, v in arrays.items()})
        opt = own["optimizer"].state_dict()
        opt["state"] = {rename(k): v for k, v in opt["state"].items()}
        comps["optimizer"].load_state_dict(opt)
        path = self.tmp / f"carried-{len(os.listdir(self.tmp))}.safetensors"
        save_checkpoint(path, model=comps["model"], optimizer=comps["optimizer"], state=state,
                        schedule=comps["schedule"])
        return str(path)


def _layer_map(old: Any, new: Any) -> Callable[[str], str]:
    """Renames ``"i.W"`` of ``old`` to the name of the same array in ``new``: the layers that
    hold arrays are paired in order, and must be of one type and shape."""
    def holders(model: Any) -> list[tuple[int, Any]]:
        return [(i, layer) for i, layer in enumerate(model.layers)
                if layer.params or getattr(layer, "buffers", {})]

    a, b = holders(old), holders(new)
    same = len(a) == len(b) and all(
        type(x) is type(y) and {k: v.shape for k, v in x.params.items()}
        == {k: v.shape for k, v in y.params.items()} for (_, x), (_, y) in zip(a, b))
    if not same:
        raise ValueError("the changed network does not hold the same arrays as the checkpoint's")
    index = {str(i): str(j) for (i, _), (j, _) in zip(a, b)}

    def rename(name: str) -> str:
        i, _, rest = name.partition(".")
        return f"{index[i]}.{rest}"
    return rename


# -- verify ------------------------------------------------------------------------------------
def _rule_of(finding: Any) -> str:
    if isinstance(finding, str):
        return finding
    if isinstance(finding, dict):
        return str(finding.get("rule", ""))
    return str(getattr(finding, "rule", ""))


def _verdict(rule: str, words: str, start: _Start, steps: int, metric: str, original: _Arm,
             changed: _Arm) -> Verification:
    o, c = original.final, changed.final
    improvement = (o - c) / o if o is not None and c is not None and o > 0 else None
    if c is None:
        helped = False
    elif o is None:  # the original diverged: the change must hold the run, not just survive
        first = changed.curve[0][1] if changed.curve else None
        helped = first is not None and c <= first
    else:
        tail = steps - steps // 4
        a = [v for s, v in original.curve if s >= tail and v is not None]
        b = [v for s, v in changed.curve if s >= tail and v is not None]
        mean_a, mean_b = (sum(a) / len(a), sum(b) / len(b)) if a and b else (o, c)
        helped = (improvement is not None and improvement >= HELP_MARGIN
                  and mean_a > 0 and (mean_a - mean_b) / mean_a >= HELP_MARGIN)
    return Verification(rule=rule, change=words, start=start.words, steps=steps, metric=metric,
                        original=o, changed=c, improvement=improvement, helped=helped,
                        original_diverged=original.diverged, changed_diverged=changed.diverged,
                        curves={"original": original.curve, "changed": changed.curve},
                        start_step=start.step)


def verify(
    run_dir: str | os.PathLike[str],
    findings: Iterable[Any] | None = None,
    *,
    steps: int = 100,
    seed: int = 0,
    progress: bool | None = False,
) -> list[Verification]:
    """Replay each finding's proposed change against the run's own setting.

    Parameters
    ----------
    run_dir : path
        A folder written by ``neuronlab train`` with at least one checkpoint.
    findings : iterable of Finding, optional
        What to verify (:class:`~neuronlab.babysit.findings.Finding` objects, their
        ``to_dict()`` or rule names); default: ``diagnose`` of the run's history, rebuilt from
        its ``metrics.jsonl`` (:func:`load_history`).
    steps : int > 0, default 100
        Optimizer steps of each arm.
    seed : int, default 0
        Seeds what the run does not fix: the batch order of replays from scratch, and the
        training rows scored when the run has no validation split.
    progress : bool or None, default False
        A tqdm bar over the replays on stderr (None: when stderr is a terminal).

    Returns
    -------
    list of Verification
        One per (finding, applicable change), in the order of the findings. Also written to
        ``run_dir/verify.json``, the only file this function writes.

    Raises
    ------
    FileNotFoundError
        ``run_dir`` is not a run folder, has no checkpoint, or its data file moved.
    CheckpointError
        The checkpoint to start from is corrupted or does not fit the run.
    """
    from neuronlab._validation import check_positive_int
    from neuronlab.config import load_config
    from neuronlab.runs import prepare_data
    from neuronlab.train.checkpoint import load_checkpoint

    steps = check_positive_int("steps", steps)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    path = check_run_dir(run_dir)
    cfg = load_config(path / "config.toml")
    history = load_history(path)
    if findings is None:
        from neuronlab.babysit.diagnose import diagnose

        findings = diagnose(history)
    rules = [r for r in dict.fromkeys(_rule_of(f) for f in findings) if r in CHANGES]
    ckpts = _checkpoints(path)
    loaded: dict[str, LoadedCheckpoint] = {}

    def checkpoint(p: str) -> LoadedCheckpoint:
        if p not in loaded:
            loaded[p] = load_checkpoint(p)
        return loaded[p]

    def start_of(kind: str) -> _Start:
        if kind == "scratch":
            return _Start()
        if kind == "last":
            return _Start(checkpoint(ckpts[-1][1])) if ckpts else _Start()
        for _, p in _good_checkpoints(ckpts, history):
            c = checkpoint(p)
            if all(np.isfinite(a).all() for a in c.model_arrays().values()):
                return _Start(c)
        logger.info("no good checkpoint: replaying from scratch")
        return _Start()  # a run that diverged in its first epoch: from its initial weights

    plan: list[tuple[str, str, _Start, RunConfig]] = []
    for rule in rules:
        for change in CHANGES[rule]:
            made = change.make(cfg)
            if made is None:
                continue
            overrides, words = made
            changed = cfg.with_overrides(overrides, source=f"the change of {rule}")
            plan.append((rule, words, start_of(change.start), changed))

    from tqdm.auto import tqdm

    results: list[Verification] = []
    with tempfile.TemporaryDirectory(prefix="neuronlab-verify-") as tmp:
        data = prepare_data(cfg, scratch_dir=tmp, test=False)
        try:
            replayer = _Replayer(cfg, data, steps, int(seed), Path(tmp))
            arms = {replayer.key(c, s) for _, _, s, changed in plan for c in (cfg, changed)}
            with tqdm(total=len(arms), desc="replays", unit="replay", file=sys.stderr,
                      disable=None if progress is None else not progress, leave=False) as bar:
                def run(c: RunConfig, s: _Start) -> _Arm:
                    arm, new = replayer.arm(c, s)
                    bar.update(int(new))
                    return arm

                for rule, words, start, changed in plan:
                    original = run(cfg, start)
                    new = run(changed, start)
                    results.append(_verdict(rule, words, start, steps, replayer.metric,
                                            original, new))
        finally:
            data.close()
    _write(path / VERIFY_FILE, results, steps, int(seed))
    return results


def _write(path: Path, results: Sequence[Verification], steps: int, seed: int) -> None:
    from neuronlab.io import atomic_write_bytes

    doc = {"format": FORMAT, "version": VERSION, "steps": steps, "seed": seed,
           "verifications": [v.to_dict() for v in results]}
    atomic_write_bytes(path, (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode())


# -- reading verify.json back ------------------------------------------------------------------
def load_verifications(path: str | os.PathLike[str]) -> list[Verification]:
    """The verifications saved in ``verify.json`` (or ``RUN_DIR/verify.json``).

    The file is read only if it is a regular file of at most :data:`MAX_VERIFY_BYTES`, parsed
    as JSON of bounded depth, and every field is checked (types, finite numbers, lengths), so
    a damaged or hostile file is an error, never a crash.

    Parameters
    ----------
    path : str or os.PathLike
        A ``verify.json`` file, or a run folder (its ``verify.json``).

    Returns
    -------
    list of Verification

    Raises
    ------
    FileNotFoundError
        No such file (the run was not verified).
    VerifyFileError
        The file is not what :func:`verify` writes; the message names the field.
    """
    from neuronlab.io.bounded import file_size, loads_json, open_regular, read_exact

    p = Path(path)
    if p.is_dir():
        p = p / VERIFY_FILE
    source = str(p)
    with open_regular(p, VerifyFileError, "verify file") as f:
        size = file_size(f)
        if size > MAX_VERIFY_BYTES:
            raise VerifyFileError(f"{source} is {size:,} bytes; a verify file is at most "
                                  f"{MAX_VERIFY_BYTES:,}")
        text = read_exact(f, size, source, VerifyFileError)
    doc = loads_json(text, source, "verify file", VerifyFileError)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise VerifyFileError(f"{source} is not a neuronlab verify file")
    if doc.get("version") != VERSION:
        raise VerifyFileError(f"{source} has version {doc.get('version')!r:.20}; this neuronlab "
                              f"reads version {VERSION}")
    entries = doc.get("verifications")
    if not isinstance(entries, list) or len(entries) > _MAX_ENTRIES:
        raise VerifyFileError(f"{source}: 'verifications' must be a list of at most "
                              f"{_MAX_ENTRIES:,} entries")
    return [_parse(e, f"{source}: verifications[{i}]") for i, e in enumerate(entries)]


_FIELDS = {"rule", "change", "start", "start_step", "steps", "metric", "original", "changed",
           "improvement", "helped", "original_diverged", "changed_diverged", "curves"}


def _parse(e: Any, where: str) -> Verification:
    if not isinstance(e, dict) or set(e) != _FIELDS:
        odd = sorted(set(e) ^ _FIELDS) if isinstance(e, dict) else type(e).__name__
        raise VerifyFileError(f"{where} is malformed (fields {odd!r:.100})")

    def text(k: str) -> str:
        v = e[k]
        if not isinstance(v, str) or len(v) > _MAX_TEXT:
            raise VerifyFileError(f"{where}.{k} must be a string of at most {_MAX_TEXT} characters")
        return v

    def count(k: str) -> int:
        v = e[k]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**53:
            raise VerifyFileError(f"{where}.{k} must be an integer >= 0, got {v!r:.40}")
        return v

    def flag(k: str) -> bool:
        v = e[k]
        if not isinstance(v, bool):
            raise VerifyFileError(f"{where}.{k} must be true or false, got {v!r:.40}")
        return v

    def number(v: Any, name: str) -> float | None:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise VerifyFileError(f"{where}.{name} must be a finite number or null, got {v!r:.40}")
        return float(v)

    curves = e["curves"]
    if not isinstance(curves, dict) or set(curves) != {"original", "changed"}:
        raise VerifyFileError(f"{where}.curves must have the keys 'original' and 'changed'")
    parsed: dict[str, Curve] = {}
    for arm, points in curves.items():
        if not isinstance(points, list) or len(points) > _MAX_POINTS:
            raise VerifyFileError(f"{where}.curves.{arm} must be a list of at most "
                                  f"{_MAX_POINTS:,} points")
        out = []
        for j, pt in enumerate(points):
            if (not isinstance(pt, list) or len(pt) != 2 or isinstance(pt[0], bool)
                    or not isinstance(pt[0], int) or not 0 <= pt[0] < 2**53):
                raise VerifyFileError(f"{where}.curves.{arm}[{j}] must be [step, value]")
            out.append((pt[0], number(pt[1], f"curves.{arm}[{j}]")))
        parsed[arm] = tuple(out)
    return Verification(
        rule=text("rule"), change=text("change"), start=text("start"), steps=count("steps"),
        metric=text("metric"), original=number(e["original"], "original"),
        changed=number(e["changed"], "changed"),
        improvement=number(e["improvement"], "improvement"), helped=flag("helped"),
        original_diverged=flag("original_diverged"), changed_diverged=flag("changed_diverged"),
        curves=parsed, start_step=count("start_step"))


# -- the plot ----------------------------------------------------------------------------------
def plot_verification(verifications: Sequence[Verification], *, ncols: int = 3) -> Figure:
    """One small panel per verification: the metric of both arms over the replay.

    Parameters
    ----------
    verifications : sequence of Verification
    ncols : int, default 3
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        The original arm in grey, the changed one in colour (a cross where an arm diverged);
        a log scale when a panel's values span more than two decades.
    """
    from matplotlib.figure import Figure

    n = max(1, len(verifications))
    cols = max(1, min(ncols, n))
    rows = -(-n // cols)
    fig = Figure(figsize=(3.2 * cols + 0.3, 2.5 * rows + 0.3), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(verifications):]:
        ax.set_axis_off()
    if not verifications:
        axes[0].text(0.5, 0.5, "nothing was replayed", ha="center", va="center",
                     transform=axes[0].transAxes, color="0.4")
        return fig
    for ax, v in zip(axes, verifications):
        values: list[float] = []
        for arm, colour, label in (("original", "0.55", "original"),
                                   ("changed", "C1" if v.helped else "C0", "changed")):
            pts = [(s, y) for s, y in v.curves.get(arm, ()) if y is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, color=colour, lw=1.4, label=label,
                        marker="o" if len(pts) <= 30 else None, ms=2.5)
                values += ys
                if getattr(v, f"{arm}_diverged"):
                    ax.plot(xs[-1], ys[-1], "x", color=colour, ms=7, mew=2)
        positive = [y for y in values if y > 0]
        if positive and max(positive) > 100 * min(positive):
            ax.set_yscale("log")
        verdict = "verified" if v.helped else "not confirmed"
        ax.set_title(f"{v.rule}: {v.change}\n{verdict}, from {v.start}", fontsize=7.5)
        ax.set_xlabel("steps", fontsize=7)
        ax.set_ylabel(v.metric, fontsize=7)
        ax.tick_params(labelsize=6.5)
        ax.legend(fontsize=6.5, frameon=False)
    return fig

