"""Per-layer training monitors: the numbers the notes teach us to watch while a net learns.

:class:`Monitor` is a :class:`~neuronlab.train.base.Callback` that the
:class:`~neuronlab.train.Trainer` adds by default (the trainer imports this module, so this
module does not import the trainer: its hooks type ``trainer`` as ``Any``). Every ``every``
optimizer steps (and at step 0) it measures, per layer:

* for each learnable array, its norm, its gradient's norm and the update/weight ratio
  ``‖Δw‖ / ‖w‖`` of that step (the notes: about 1e-3 is healthy);
* for each layer's output on a fixed data sample: mean and standard deviation, the fraction
  of dead ReLU units and the fraction of saturated sigmoid/tanh outputs;
* for batch norm, summaries of the running mean and variance.

How it measures (and why it changes nothing). The gradient norms are read in
``on_before_update``, when the gradients are complete (regularisation included) and before
the optimizer clips them; the parameters are copied into buffers allocated once (a packed
model's in one copy of its flat block). In ``on_batch_end`` the difference with the updated
parameters gives ``‖Δw‖`` (clipping, weight decay and constraints included: the real step).
Activations come from a separate forward pass, in inference mode, of a fixed sample of at
most ``sample_size`` training rows chosen once at ``on_train_begin`` with the monitor's own
generator: the same rows every time, so the numbers are comparable over time, and no dropout
mask or batch-norm running average is touched (at a step where the gradient noise is
measured too, its probe's forward of the same rows is described instead). The trainer's
random generators are never used, so a run is bit-identical with and without the monitor.

The cost, every ``every`` steps: one forward pass of the sample and a few passes over the
parameters; the products on the sample run on one BLAS thread (where the fit has a limit of
its own, e.g. ``Trainer(threads=4)``, that one holds). Beside the compiled engine (make
bench, runs of 1000-1875 steps at the defaults) that is ~2% of the 3072-512-512-10
network's training and 12-14% of the 64-128-10 one's at batch 32, whose ~25 µs steps make the
sample's forward, the noise probe and the spectra's eigensolver alone ~7%
(benchmarks/NOTES.md, 2026-12-03); the NumPy path's steps are ~3x slower.

Records (``trainer.history.monitor``, and ``{"event": "monitor", ...}`` lines in
``metrics.jsonl``) are flat JSON-able dicts. Every record has ``"step"`` (0-based optimizer
step whose update was measured), ``"kind"``, ``"layer"`` (index in the Sequential, as a str)
and ``"type"`` (the layer's class name):

``kind = "param"``, one per learnable array::

    {"step": 120, "kind": "param", "layer": "0", "type": "Linear", "param": "0.W",
     "role": "weight", "size": 6400, "weight_norm": 14.1, "grad_norm": 0.52,
     "update_norm": 0.013, "update_ratio": 0.00092}

``role`` is ``"weight"`` (regularised weights), ``"bias"`` or ``"other"`` (batch-norm gamma and
beta, PReLU slopes). ``weight_norm`` is the norm of the array after the update, ``grad_norm``
the norm of its gradient (before clipping), ``update_ratio = update_norm / norm before the
update`` (``None`` when that norm is 0). For full-batch L-BFGS one step is a whole
``minimize`` call: the update is measured over it and the gradient is the final one.

``kind = "layer"``, one per layer, describing its output on the sample::

    {"step": 120, "kind": "layer", "layer": "1", "type": "ReLU", "units": 100,
     "act_mean": 0.41, "act_std": 0.63, "dead_fraction": 0.02}

plus what the layer declares in ``Layer.statistics``: ``"role": "activation"`` for a
nonlinearity, ``dead_fraction`` (:mod:`~neuronlab.babysit.dead_units`: units whose output is 0
on every row of the sample), ``saturation`` (:mod:`~neuronlab.babysit.saturation`: the fraction
of outputs outside the layer's ``saturation_band``) and, for a layer with running averages
(BatchNorm), ``running_mean_mean``, ``running_mean_std``, ``running_var_mean``,
``running_var_min``, ``running_var_max``. Non-finite numbers are stored as ``None``.

``kind = "objective"``, one per measured step: the objective split into the data loss and the
regulariser's penalty (``layer`` and ``type`` are "")::

    {"step": 120, "kind": "objective", "layer": "", "type": "", "data_loss": 0.31,
     "penalty": 0.02}

At train begin the monitor also fills ``history.info``: ``"expected_initial_loss"``
(``loss.expected_initial_loss(n_outputs)``, or None), ``"initial_loss"`` (the data loss of the
first training batch, before any update: step 0's objective minus the regulariser's penalty;
filled at step 0), ``"n_outputs"``,
``"loss"`` (the loss's class name), ``"monitor_every"`` and ``"monitor_sample_size"``.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from neuronlab._validation import check_positive_int
from neuronlab.babysit.activations import mean_std
from neuronlab.babysit.dead_units import dead_fraction
from neuronlab.babysit.gradient_noise import NOISE_RECORD_KEYS, gradient_noise_of
from neuronlab.babysit.gradient_noise import records as noise_records
from neuronlab.babysit.probe import run_probe
from neuronlab.babysit.runview import number
from neuronlab.babysit.saturation import saturation
from neuronlab.babysit.sharpness import SHARPNESS_RECORD_KEYS, sharpness_record
from neuronlab.babysit.spectrum import SPECTRUM_RECORD_KEYS
from neuronlab.babysit.spectrum import records as spectrum_records
from neuronlab.babysit.update_ratio import update_ratio
from neuronlab.data.arrays import batch
from neuronlab.errors import CheckpointError
from neuronlab.threads import limit_blas
from neuronlab.train.base import Callback

__all__ = ["INFO_KEYS", "RECORD_KEYS", "SPECTRUM_GAP", "Monitor", "check_records"]


def _norm(a: np.ndarray) -> float:
    flat = a.reshape(-1)
    return math.sqrt(float(np.dot(flat, flat)))


def _block(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The 1-D array that ``arrays`` tile back to back, as C-contiguous views of one base (a
    packed Sequential's parameters, ``Sequential.pack``), or None: then one copy and one
    difference cover all the parameters instead of one per array."""
    base = arrays[0].base if arrays else None
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    start = (arrays[0].ctypes.data - base.ctypes.data) // base.itemsize
    address, stop = arrays[0].ctypes.data, start
    for a in arrays:
        if (a.base is not base or a.dtype != base.dtype or not a.flags.c_contiguous
                or a.ctypes.data != address):
            return None
        address += a.nbytes
        stop += a.size
    return base[start:stop] if 0 <= start and stop <= base.size else None


#: Weight spectra are at least this many monitor intervals apart (the last epoch's aside).
SPECTRUM_GAP = 5

#: The keys of the records this module writes (``kind`` "param" / "layer"), and of the run
#: facts it and the trainer put in ``history.info``: what a resumed history may hold.
RECORD_KEYS = {
    "param": {"step", "kind", "layer", "type", "param", "role", "size", "weight_norm",
              "grad_norm", "update_norm", "update_ratio"},
    "layer": {"step", "kind", "layer", "type", "units", "act_mean", "act_std", "role",
              "dead_fraction", "saturation", "running_mean_mean", "running_mean_std", "running_var_mean",
              "running_var_min", "running_var_max"},
    "objective": {"step", "kind", "layer", "type", "data_loss", "penalty"},
    "noise": set(NOISE_RECORD_KEYS),
    "sharpness": set(SHARPNESS_RECORD_KEYS),
    "spectrum": set(SPECTRUM_RECORD_KEYS),
}
INFO_KEYS = {"loss", "n_outputs", "batch_size", "expected_initial_loss", "initial_loss",
             "monitor_every", "monitor_sample_size", "diverged_step", "diverged_at",
             # where a divergence started (DivergenceError.info(), babysit/sentinel.py)
             "diverged_layer", "diverged_layer_type", "diverged_direction", "diverged_param",
             "diverged_origin", "diverged_context"}


def check_records(history: Any) -> None:
    """Refuse a restored history whose monitor records or info carry keys this monitor never
    writes (a tampered checkpoint): the report and the diagnosis would read them silently.

    Parameters
    ----------
    history : History
        The history a checkpoint restored.

    Raises
    ------
    CheckpointError
        If a record has an unknown kind, a key its kind never has, or lacks ``step``,
        ``layer`` or ``type``; or ``history.info`` has an unknown key.
    """
    for i, rec in enumerate(history.monitor):
        kind = rec.get("kind") if isinstance(rec, dict) else None
        allowed = RECORD_KEYS.get(kind) if isinstance(kind, str) else None
        if allowed is None or not set(rec) <= allowed or not {"step", "layer", "type"} <= set(rec):
            odd = sorted(set(rec) - allowed) if allowed and isinstance(rec, dict) else rec
            raise CheckpointError(f"the resumed history's monitor record {i} is malformed ({odd!r:.80})")
    odd = sorted(set(history.info) - INFO_KEYS)
    if odd:
        raise CheckpointError(f"the resumed history's info has unknown keys {odd!r:.80}")


class Monitor(Callback):
    """Sample per-layer statistics every ``every`` steps into ``trainer.history.monitor``.

    Parameters
    ----------
    every : int > 0, default 100
        Measure at steps 0, every, 2·every, ... . One measurement costs an inference pass over
        the sample (about sample_size / (every · batch_size) of the forward work between two
        measurements) and a few passes over the parameters (copy, norms, the difference):
        a few training steps' worth on the benchmark MLPs (beside the compiled engine, which
        leaves them cold in cache), so 100 keeps the monitor at ~2% of the large benchmark
        MLP's training and 12-14% of the small one's (``make bench`` reports it) and still gives
        a run of a few thousand steps dozens of points per curve.
    sample_size : int > 0, default 128
        Training rows (at most) forwarded to measure activations; chosen once, seeded.
        128 rows estimate a unit's mean to about a tenth of its spread; their forward is the
        work of 128 / batch_size training forwards.
    seed : int, default 0
        Seeds the choice of the sample (the monitor's own generator, never the trainer's).
    noise_every : int > 0 or None, default 1000
        Measure the gradient noise scale B_simple and each layer's gradient signal-to-noise
        ratio from the per-sample gradients of the sample (:mod:`~neuronlab.babysit.gradient_noise`,
        ``kind = "noise"`` records) at steps 0, noise_every, ... . One measurement is one
        inference forward and backward of the sample plus a product per layer, about ten
        training steps of batch 32 (~0.6 ms on 64-128-10): every 1000 steps keeps it near 2%
        of that network's training beside the compiled engine, and under 1% of the large
        benchmark MLP's (make bench). None turns it off.
    sharpness_every : int > 0 or None, default None
        Estimate the top eigenvalue of the (preconditioned) Hessian against the optimizer's
        edge-of-stability bound 2/lr or its equivalent (:mod:`~neuronlab.babysit.sharpness`,
        ``kind = "sharpness"`` records) after steps sharpness_every, 2·sharpness_every, ... .
        One estimate is ~15 Hessian-vector products in float64 on the sample, several
        hundred training steps' worth: off by default, a few points per run when on.
    spectrum : bool, default True
        After epochs 1, 2, 4, 8, ... that end at least :data:`SPECTRUM_GAP` · ``every`` steps
        after the previous spectrum (or the start), summarise the singular values of every
        weight matrix
        (:mod:`~neuronlab.babysit.spectrum`, ``kind = "spectrum"`` records: top singular
        value, stable rank, and the power-law exponent of the spectrum's tail where the layer
        is big enough to fit one).

    Attributes
    ----------
    sample : ndarray of shape (n_sample, n_features) or None
        The fixed rows, in the model's dtype.
    """

    order = -10  # before loggers (JSONLLogger writes the records made in the same step)

    def __init__(self, *, every: int = 100, sample_size: int = 128, seed: int = 0,
                 noise_every: int | None = 1000, sharpness_every: int | None = None,
                 spectrum: bool = True) -> None:
        self.every = check_positive_int("every", every)
        self.sample_size = check_positive_int("sample_size", sample_size)
        self.noise_every = None if noise_every is None else check_positive_int(
            "noise_every", noise_every)
        self.sharpness_every = None if sharpness_every is None else check_positive_int(
            "sharpness_every", sharpness_every)
        self.spectrum = bool(spectrum)
        # every sampled measurement falls on a multiple of the intervals' gcd: the trainer
        # calls the per-step hooks only there
        self.interval = math.gcd(self.every, self.noise_every or self.every,
                                 self.sharpness_every or self.every)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, got {type(seed).__name__}: {seed!r}")
        self.seed = int(seed)
        self.sample: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self._loss: Any = None  # the probes' copy of the trainer's loss (one per fit)
        self._before: list[np.ndarray] = []  # parameter copies, allocated once
        # a packed model's parameters and their copies as two flat blocks (else None)
        self._block: tuple[np.ndarray, np.ndarray] | None = None
        # at a due step: the norms before the update, and the gradients' (None until read)
        self._pending: tuple[list[float], list[float | None] | None] | None = None
        self._objective: dict[str, Any] | None = None
        self._spectrum_step = 0
        self._params: list[tuple[str, str, str, str, np.ndarray, np.ndarray]] = []

    # -- set-up ---------------------------------------------------------------------------------
    def on_train_begin(self, trainer: Any) -> None:
        """Index the model's parameters (name, layer, role), choose the fixed sample of training
        rows and record the run's facts in ``history.info`` (expected initial loss...).

        Parameters
        ----------
        trainer : Trainer
            The trainer that is about to train.

        Raises
        ------
        CheckpointError
            On a resumed run whose restored history has malformed records
            (:func:`check_records`).
        """
        if getattr(trainer, "resumed", False):
            check_records(trainer.history)
        model = trainer.model
        self._params = []
        layers = getattr(model, "layers", None)
        grads = model.grads
        for name, p in model.params.items():
            idx, _, short = name.partition(".")
            layer = layers[int(idx)] if layers is not None and idx.isdigit() else None
            role = "other"
            if layer is not None and short in layer.weight_names:
                role = "weight"
            elif layer is not None and short in layer.bias_names:
                role = "bias"
            kind = type(layer).__name__ if layer is not None else ""
            self._params.append((name, idx, kind, role, p, grads[name]))
        arrays = [p for *_, p, _ in self._params]
        block = _block(arrays)
        if block is None:
            self._block, self._before = None, [np.empty_like(p) for p in arrays]
        else:  # the copies are views of one block too: one copy, one difference per step
            buf = np.empty_like(block)
            self._block, self._before, start = (block, buf), [], 0
            for p in arrays:
                self._before.append(buf[start:start + p.size].reshape(p.shape))
                start += p.size
        self._pending = None
        self._loss = None
        # a resumed run goes on from its last spectrum, as the uninterrupted run would
        self._spectrum_step = max((int(r["step"]) for r in trainer.history.monitor
                                   if r.get("kind") == "spectrum"), default=0)
        self.sample, self._y = self._choose_sample(trainer)
        self._fill_info(trainer)

    def _choose_sample(self, trainer: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        data = getattr(trainer, "train_data", None)
        if data is None:
            return None, None
        X, y = data
        n = X.shape[0]
        rng = np.random.default_rng(self.seed)
        idx = np.arange(n) if n <= self.sample_size else np.sort(
            rng.choice(n, size=self.sample_size, replace=False))
        dtype = trainer.model.dtype or np.float64
        # batch(): rows of a memmap are read from its file without mapping its pages
        return batch(X, idx, dtype=dtype).reshape(len(idx), -1), np.asarray(y)[idx]

    def _fill_info(self, trainer: Any) -> None:
        info = trainer.history.info
        if "expected_initial_loss" in info:  # a resumed run keeps what its first start knew
            return
        loss, model = trainer.loss, trainer.model
        n_out = getattr(model, "n_out", None)
        expected = None
        if n_out is not None and hasattr(loss, "expected_initial_loss"):
            expected = loss.expected_initial_loss(n_out)
        info.update({"loss": type(loss).__name__, "n_outputs": n_out,
                     "expected_initial_loss": None if expected is None else float(expected),
                     "initial_loss": None, "monitor_every": self.every,
                     # the rows of a step (None: L-BFGS steps over the whole set)
                     "batch_size": None if trainer.full_batch else min(
                         trainer.batch_size, trainer.n_samples),
                     "monitor_sample_size": None if self.sample is None else len(self.sample)})

    # -- per step -------------------------------------------------------------------------------
    def _due(self, step: int) -> bool:
        return step % self.every == 0

    def _snapshot(self) -> tuple[list[float], None]:
        """Copy the parameters into the buffers; their norms (the gradients' come later)."""
        if self._block is not None:
            np.copyto(self._block[1], self._block[0])
        else:
            for before, (*_, p, _) in zip(self._before, self._params):
                np.copyto(before, p)
        return [_norm(before) for before in self._before], None

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        """For full-batch L-BFGS at a due step, copy the parameters so the epoch's update can be
        measured (minibatch runs do it in :meth:`on_before_update`).

        Parameters
        ----------
        trainer : Trainer
            The trainer running the epoch.
        epoch : int
            0-based index of the epoch.
        """
        # L-BFGS updates inside one minimize call per epoch: compare with the epoch's start
        if trainer.full_batch and self._due(trainer.step):
            with np.errstate(all="ignore"):
                self._pending = self._snapshot()

    def on_before_update(self, trainer: Any, step: int, loss: float) -> None:
        """At a due step: split the loss into data loss and penalty, record the initial loss at
        step 0, copy the parameters and measure the gradient norms.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the step.
        step : int
            0-based index of the step.
        loss : float
            The batch's loss (data loss plus regularisation).
        """
        if not self._due(step):
            return
        # the data loss is the objective minus the penalty (the loss itself is not called
        # again: no extra forward, nothing in the run changes)
        reg = trainer.regularizer
        penalty = float(reg.loss(trainer.model)) if reg is not None else 0.0
        self._objective = {"step": step, "kind": "objective", "layer": "", "type": "",
                           "data_loss": number(loss - penalty), "penalty": number(penalty)}
        info = trainer.history.info
        if step == 0 and not trainer.full_batch and info.get("initial_loss", 0) is None:
            info["initial_loss"] = self._objective["data_loss"]
        with np.errstate(all="ignore"):  # diverged parameters have an infinite norm, no warning
            if not trainer.full_batch:
                self._pending = self._snapshot()
            if self._pending is not None:
                self._pending = self._pending[0], [number(_norm(g)) for *_, g in self._params]

    def _measure_noise(self, trainer: Any, step: int) -> list[np.ndarray] | None:
        """The gradient noise at the weights after the step (the sample's per-sample
        gradients, inference mode). Weights that turned non-finite (a run without
        NonFiniteGuard) give no measurement instead of an error. Returns the layers' outputs
        of the probe's forward (what :meth:`layer_records` would compute at this step)."""
        if self.sample is None or self._y is None or self.sample.shape[0] < 2 \
                or getattr(trainer.model, "layers", None) is None:
            return None
        # probe()'s guarantees, with the loss copied once per fit: its buffers and cache are
        # the monitor's, the trainer's are not touched (the sample is in the model's dtype)
        if self._loss is None:
            self._loss = copy.deepcopy(trainer.loss)
        reg = None if trainer.regularizer is None else copy.deepcopy(trainer.regularizer)
        with np.errstate(all="ignore"):
            try:
                p = run_probe(trainer.model, self._loss, self.sample, self._y, reg,
                              capture=True)
                noise = gradient_noise_of(p, trainer.model)
            except ValueError:  # the loss refused non-finite scores, or no Linear layer
                return None
        trainer.history.monitor.extend(noise_records(noise, step))
        return p.outputs

    def _measure_sharpness(self, trainer: Any, step: int, lr: float | None) -> None:
        if self.sample is None or self._y is None or lr is None \
                or getattr(trainer.model, "layers", None) is None:
            return
        with np.errstate(all="ignore"):
            try:
                rec = sharpness_record(trainer.model, trainer.loss, trainer.optimizer, lr,
                                       self.sample, self._y, trainer.regularizer, step,
                                       seed=self.seed)
            except ValueError:  # the loss refused non-finite scores
                return
        trainer.history.monitor.append(rec)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        """After epochs 1, 2, 4, 8, ... and the last, append the weight spectra (when
        ``spectrum``).

        Parameters
        ----------
        trainer : Trainer
            The trainer running the epoch.
        epoch : int
            0-based index of the epoch.
        logs : dict
            The epoch's record (unused).
        """
        # the singular values of every weight matrix after epochs 1, 2, 4, 8, ... at least
        # SPECTRUM_GAP monitor intervals after the last (a few points of a run, when checkpoints
        # are written): one Gram product and a symmetric eigensolver per matrix, ~50 ms for
        # the 3072-512-512-10 network's three on one BLAS thread. Not "the last epoch": a run
        # resumed for more epochs must record what the longer run records (the report draws
        # the final model's spectra itself).
        n, step = epoch + 1, trainer.step - 1
        due = n & (n - 1) == 0 and step - self._spectrum_step >= SPECTRUM_GAP * self.every
        if self.spectrum and due:
            self._spectrum_step = step
            with np.errstate(all="ignore"), limit_blas(1):
                trainer.history.monitor.extend(spectrum_records(trainer.model, step))

    def on_batch_end(self, trainer: Any, step: int, logs: dict[str, Any]) -> None:
        """Measure the gradient noise and the sharpness when they are due, then, at a due step,
        append the objective, parameter (norms, update ratio) and layer records.

        Parameters
        ----------
        trainer : Trainer
            The trainer running the step.
        step : int
            0-based index of the step just done.
        logs : dict
            The batch's logs; ``"lr"`` is read for the sharpness bound.
        """
        noise = self.noise_every is not None and step % self.noise_every == 0
        sharp = self.sharpness_every is not None and step > 0 and step % self.sharpness_every == 0
        due = self._pending is not None and self._due(step)
        if not (noise or sharp or due):
            return
        # the products on the sample run on one BLAS thread: threads of the engine's BLAS and
        # of other work share the cores (benchmarks/NOTES.md, 2026-12-03)
        with limit_blas(1):
            # the layers' outputs on the sample, when the noise probe computed them
            outputs = self._measure_noise(trainer, step) if noise else None
            if sharp:
                self._measure_sharpness(trainer, step, logs.get("lr"))
            if due:
                self._record(trainer, step, outputs)

    def _record(self, trainer: Any, step: int, outputs: list[np.ndarray] | None) -> None:
        """Append the objective, parameter and layer records of the due step ``step``."""
        assert self._pending is not None
        (befores, grad_norms), self._pending = self._pending, None
        records = trainer.history.monitor
        if self._objective is not None and self._objective["step"] == step:
            records.append(self._objective)
        self._objective = None
        with np.errstate(all="ignore"):
            weights = [_norm(p) for *_, p, _ in self._params]
            if self._block is not None:  # the buffers now hold Δw
                np.subtract(*self._block, out=self._block[1])
            else:
                for delta, (*_, p, _) in zip(self._before, self._params):
                    np.subtract(p, delta, out=delta)
            updates = [number(_norm(delta)) for delta in self._before]
            for k, (name, idx, kind, role, p, _) in enumerate(self._params):
                records.append({"step": step, "kind": "param", "layer": idx, "type": kind,
                                "param": name, "role": role, "size": p.size,
                                "weight_norm": number(weights[k]),
                                "grad_norm": None if grad_norms is None else grad_norms[k],
                                "update_norm": updates[k],
                                "update_ratio": update_ratio(updates[k], befores[k])})
            records.extend(self.layer_records(trainer.model, step, outputs=outputs))

    # -- activations ----------------------------------------------------------------------------
    def layer_records(self, model: Any, step: int, *,
                      outputs: list[np.ndarray] | None = None) -> list[dict[str, Any]]:
        """Forward the sample through ``model`` in inference mode and describe every layer's
        output (the ``kind = "layer"`` records). Empty without a sample or a ``layers`` list.

        Parameters
        ----------
        model : Sequential
            The network (each layer's ``forward`` is called, which replaces its cache).
        step : int
            The step written into the records.
        outputs : list of ndarray, optional
            Every layer's output on the sample at the current weights, already computed (the
            gradient-noise probe's forward, :attr:`~neuronlab.babysit.probe.Probe.outputs`):
            described instead of forwarding the sample again.

        Returns
        -------
        list of dict
            One record per layer: its mean and spread, and the statistics the layer
            declares (dead fraction, saturation, batch-norm running statistics).
        """
        layers = getattr(model, "layers", None)
        if self.sample is None or layers is None:
            return []
        out = []
        x = self.sample
        with np.errstate(all="ignore"):
            for i, layer in enumerate(layers):
                x = layer.forward(x, training=False) if outputs is None else outputs[i]
                out.append(_describe(step, i, layer, x.reshape(x.shape[0], -1)))
        return out

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments.

        Returns
        -------
        dict
            ``every``, ``sample_size``, ``seed``, ``noise_every``, ``sharpness_every`` and
            ``spectrum``.
        """
        return {"every": self.every, "sample_size": self.sample_size, "seed": self.seed,
                "noise_every": self.noise_every, "sharpness_every": self.sharpness_every,
                "spectrum": self.spectrum}

    def __repr__(self) -> str:
        return "Monitor(" + ", ".join(f"{k}={v}" for k, v in self.get_config().items()) + ")"


def _describe(step: int, i: int, layer: Any, y: np.ndarray) -> dict[str, Any]:
    """The ``kind = "layer"`` record of one layer's output ``y`` of shape (n_sample, units):
    its mean and spread, and the statistics the layer declares (``Layer.statistics``)."""
    stats = layer.statistics
    mean, std = mean_std(y)
    rec: dict[str, Any] = {"step": step, "kind": "layer", "layer": str(i),
                           "type": type(layer).__name__, "units": int(y.shape[1]),
                           "act_mean": number(mean), "act_std": number(std)}
    if "activation" in stats:
        rec["role"] = "activation"
    if "dead" in stats:
        rec["dead_fraction"] = dead_fraction(y)
    if "saturation" in stats and layer.saturation_band is not None:
        rec["saturation"] = saturation(y, layer.saturation_band)
    buffers = getattr(layer, "buffers", {})
    if "running_mean" in buffers and "running_var" in buffers:
        rm, rv = buffers["running_mean"], buffers["running_var"]
        rec.update({"running_mean_mean": number(rm.mean()), "running_mean_std": number(rm.std()),
                    "running_var_mean": number(rv.mean()), "running_var_min": number(rv.min()),
                    "running_var_max": number(rv.max())})
    return rec
