"""The compiled training engine: whole segments of steps in machine code, no Python between.

A step of a small network (64-128-10 at batch 32) is a few µs of arithmetic wrapped in
~40 NumPy calls of overhead each; the peer to beat, JAX with the epoch compiled into one
``lax.scan``, has none. The :class:`Engine` runs the :class:`~neuronlab.train.Trainer`'s
minibatch steps for a network it supports as compiled *segments*
(:mod:`neuronlab.engine.loop`): batch gather, forward, loss, backward, penalty, clipping and
update, with BLAS for the products, coming back to Python only at the steps where a callback
needs one (:meth:`~neuronlab.train.base.Callback.next_step`: the Monitor every 100 steps, a
checkpoint every N, the log's step lines) and at the end of the epoch.

It runs when numba is installed (the ``fast`` extra), ``NEURONLAB_ENGINE`` is not ``0`` and
``Trainer(engine=...)`` allows it, for:

* a packed :class:`~neuronlab.layers.Sequential` (as ``mlp`` builds) of
  :class:`~neuronlab.layers.Linear` layers, the elementwise activations (ReLU, leaky ReLU,
  ELU, tanh, sigmoid), :class:`~neuronlab.layers.BatchNorm`,
  :class:`~neuronlab.layers.LayerNorm`,
  :class:`~neuronlab.layers.Dropout` and :class:`~neuronlab.layers.GaussianNoise` (their
  masks and noise drawn from their own generators exactly as their ``forward`` draws them),
  float32 or float64;
* softmax cross-entropy or mean squared error, with or without sample and class weights;
* SGD, momentum, Nesterov, Adagrad, RMSprop and Adam (with clipping and weight decay);
* no regulariser, or the L1/L2/elastic-net penalties; no constraints;
* training data held in memory in the model's dtype.

Anything else trains on the NumPy path (the layers' own ``forward``/``backward``, which the
engine is tested against), and :func:`plan` says why in a log line. The engine computes the
same formulas in the same dtype, but not in the same order everywhere (BLAS calls of another
shape, sums per row): float64 runs agree with the NumPy path to about 1e-12 after 100 steps,
float32 runs to float32 rounding, which training does not amplify beyond about 1e-4 relative
in 100 steps (measured in ``tests/train/test_engine.py``). An engine run is deterministic: a
run resumed from a checkpoint is bit-identical to the uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np

__all__ = ["ENABLED", "Engine", "available", "describe", "plan"]

log = logging.getLogger(__name__)

#: Set ``NEURONLAB_ENGINE=0`` (or this to False) to train on the NumPy path only.
ENABLED = os.environ.get("NEURONLAB_ENGINE", "1").strip().lower() not in ("0", "false", "no", "off")
_numba: Any = None  # the module once imported; False when it is not installed


def available() -> bool:
    """True when numba can be imported (whether or not ``ENABLED``).

    Returns
    -------
    bool
    """
    global _numba
    if _numba is None:
        try:
            import numba
        except ImportError:
            _numba = False
        else:
            _numba = numba
    return _numba is not False


def describe() -> str:
    """What trains a supported network, in a few words (``neuronlab --version``).

    Returns
    -------
    str
    """
    if not ENABLED:
        return "NumPy code (compiled engine off: NEURONLAB_ENGINE=0)"
    if not available():
        return "NumPy code (numba not installed: pip install 'neuronlab[fast]' for the compiled engine)"
    return f"compiled engine (numba {_numba.__version__})"

#: A step no callback will ever ask for.
NEVER = 1 << 62
#: The largest cast copy of the training data the engine makes (data of another dtype).
PRECAST_BYTES = 1 << 30
#: Dropout masks drawn for one segment, at most (elements of all its Dropout layers).
MASK_ELEMENTS = 1 << 23


def _offset(base: np.ndarray, a: np.ndarray) -> int:
    return (a.ctypes.data - base.ctypes.data) // base.itemsize


def _block(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The flat array that ``arrays`` tile in order, start to end, as contiguous views (a
    packed Sequential's parameters or gradients); None if they do not."""
    base = arrays[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    address, step, offset = base.ctypes.data, base.itemsize, 0
    for a in arrays:
        if (a.base is not base or a.dtype != base.dtype or not a.flags.c_contiguous
                or a.ctypes.data != address + offset * step):
            return None
        offset += a.size
    return base if offset == base.size else None


def _pack_state(opt: Any, params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
                flat_w: np.ndarray) -> list[np.ndarray]:
    """The optimizer's slots as flat blocks laid out like the parameters: each parameter's
    ``opt.state`` entry becomes a view of them (values kept, zeros for a new one), so
    ``state_dict`` and the NumPy rule see what the compiled rule writes. Once per fit."""
    for name, w in params.items():
        if opt.state.get(name) is None or name not in opt._scratch:
            opt._init_state(name, w, grads[name])
    blocks = [np.empty_like(flat_w) for _ in opt.slots]
    start = 0
    for name, w in params.items():
        stop = start + w.size
        for block, slot in zip(blocks, opt.slots):
            block[start:stop] = opt.state[name][slot].reshape(-1)
            opt.state[name][slot] = block[start:stop].reshape(w.shape)
        start = stop
    return blocks


def _pack_buffers(norms: list[Any], dtype: Any) -> np.ndarray:
    """The BatchNorm layers' running means and variances in one block (each layer's
    ``buffers`` entries become views of it, values kept): what the loop updates."""
    block = np.empty(max(1, sum(2 * layer.n_features for layer in norms)), dtype)
    start = 0
    for layer in norms:
        for name in ("running_mean", "running_var"):
            n = layer.n_features
            block[start:start + n] = layer.buffers[name]
            layer.buffers[name] = block[start:start + n]
            start += n
    return block


def plan(trainer: Any, X: Any, y: np.ndarray, w: np.ndarray | None) -> Engine | str:
    """The engine for ``trainer``'s model, loss, optimizer and data, or why there is none.

    Parameters
    ----------
    trainer : Trainer
        Between its data checks and its first epoch (its ``grads`` gathered).
    X, y : ndarray
        The checked training data.
    w : ndarray or None
        The rows' weights.

    Returns
    -------
    Engine or str
        The engine, or a sentence saying what keeps the run on the NumPy path.
    """
    from neuronlab.engine import build
    from neuronlab.layers.linear import Linear
    from neuronlab.layers.noise import Dropout, GaussianNoise
    from neuronlab.layers.normalization import BatchNorm, LayerNorm
    from neuronlab.layers.sequential import Sequential
    from neuronlab.regularizers import Regularizer

    if not ENABLED:
        return "the compiled engine is off (NEURONLAB_ENGINE=0)"
    if not available():
        return "numba is not installed (pip install 'neuronlab[fast]')"
    build._load_tables()
    model, opt = trainer.model, trainer.optimizer
    if trainer.full_batch:
        return "full-batch L-BFGS runs its own line search"
    if not isinstance(model, Sequential) or type(model) is not Sequential:
        return f"the model is a {type(model).__name__}, not a Sequential"
    if type(trainer.loss) not in build.LOSSES:
        return f"the loss {type(trainer.loss).__name__} has no compiled kernel"
    kinds = {cls.kernel: i for i, cls in enumerate(build.RULES)}
    if not opt.elementwise or opt.kernel not in kinds:
        return f"the optimizer {type(opt).__name__} has no compiled kernel"
    reg = trainer.regularizer
    if reg is not None and not isinstance(reg, Regularizer):
        return f"the regulariser {type(reg).__name__} is not one of neuronlab's penalties"
    if trainer.constraints:
        return "constraints (max-norm) run on the NumPy path"
    dtype = model.dtype
    if dtype not in (np.float32, np.float64):
        return "the parameters do not share one float dtype"
    if type(X) is not np.ndarray or X.ndim != 2:
        return "the training data is memory-mapped (its batches are read without mapping pages)"
    if X.dtype != dtype or not X.flags.c_contiguous:
        # the NumPy path casts each batch; casting every row once gives the same numbers
        if X.shape[0] * X.shape[1] * np.dtype(dtype).itemsize > PRECAST_BYTES:
            return (f"the training data is not {np.dtype(dtype).name} and a cast copy would "
                    f"take more than {PRECAST_BYTES >> 20} MiB")
        X = np.ascontiguousarray(X, dtype=dtype)
    params, grads = model.params, trainer.grads
    flat_w, flat_g = _block(list(params.values())), _block(list(grads.values()))
    if flat_w is None or flat_g is None:
        return "the parameters are not packed in one block (Sequential.pack)"
    rows, alpha, widths = [], [], []
    dropouts: list[tuple[int, Any]] = []
    norms: list[Any] = []
    weight_keys = set(model.weight_keys)
    wranges = []
    seen_linear = seen_params = False
    width = X.shape[1]
    for i, layer in enumerate(model.layers):
        cls = type(layer)
        if cls is Linear:
            W, b = layer.params["W"], layer.params.get("b")
            if W.shape[0] != width:
                return f"layer {i} (Linear) does not take {width} inputs"
            n = W.shape[1]
            rows.append([0, n, _offset(flat_w, W), -1 if b is None else _offset(flat_w, b),
                         width, 0, int(seen_params), 0])
            if f"{i}.W" in weight_keys:
                a = _offset(flat_w, W)
                wranges.append((a, a + W.size))
            seen_linear = seen_params = True
        elif cls in build.ACTIVATIONS:
            n = width
            rows.append([1, n, build.ACTIVATIONS.index(cls), -1, width, 0, 0, 0])
        elif cls is Dropout or cls is GaussianNoise:
            n = width
            # else forward is the identity and draws nothing
            drawn = (layer.rate if cls is Dropout else layer.std) > 0.0 and not layer.noise_off
            if drawn and any(layer.rng is other.rng for _, other in dropouts):
                return f"layer {i} ({cls.__name__}) shares its generator with another layer"
            if drawn:
                dropouts.append((i, layer))
            rows.append([(2 if cls is Dropout else 5) if drawn else 3, n, 0, -1, width, 0, 0, 0])
        elif cls is BatchNorm:
            n = width
            gamma, beta = layer.params["gamma"], layer.params["beta"]
            if layer.n_features != width or _offset(flat_w, beta) != _offset(flat_w, gamma) + n:
                return f"layer {i} (BatchNorm) does not normalise {width} packed features"
            if any(b.dtype != dtype for b in layer.buffers.values()):
                return f"layer {i} (BatchNorm) keeps its running averages in another dtype"
            at = sum(2 * other.n_features for other in norms)  # where _pack_buffers puts it
            rows.append([4, n, _offset(flat_w, gamma), at, width, 0, 0, 0])
            norms.append(layer)
            seen_params = True
        elif cls is LayerNorm:
            n = width
            gamma, beta = layer.params["gamma"], layer.params["beta"]
            if layer.n_features != width or _offset(flat_w, beta) != _offset(flat_w, gamma) + n:
                return f"layer {i} (LayerNorm) does not normalise {width} packed features"
            rows.append([6, n, _offset(flat_w, gamma), -1, width, 0, 0, 0])
            seen_params = True
        else:
            return f"layer {i} ({cls.__name__}) has no compiled kernel"
        if cls is BatchNorm:
            alpha.append((layer.momentum, 1.0 - layer.momentum, layer.eps))
        elif cls is LayerNorm:
            alpha.append((0.0, 0.0, layer.eps))
        else:
            arg = getattr(layer, "kernel_arg", None)
            alpha.append((0.0 if arg is None else float(getattr(layer, arg)), 0.0, 0.0))
        widths.append(n)
        width = n
    if not seen_linear:
        return "the network has no Linear layer"
    if set(weight_keys) - {f"{i}.W" for i, L in enumerate(model.layers) if type(L) is Linear}:
        return "weights other than Linear's are regularised"
    flat = (flat_w, flat_g, *_pack_state(opt, params, grads, flat_w))
    task = trainer.loss.task
    n_out = widths[-1]
    if task == "regression":
        yf = np.ascontiguousarray(y.reshape(y.shape[0], -1), dtype=np.float64)
        if yf.shape[1] != n_out:
            return "the targets do not match the network's outputs"
        yi = np.zeros(1, np.int64)
    else:
        if y.ndim != 1:
            return "the labels are not one class per row"
        yi = np.ascontiguousarray(y, dtype=np.int64)
        yf = np.zeros((1, 1), np.float64)
    engine = Engine(trainer, X, yi, yf, w, np.asarray(rows, np.int64),
                    np.asarray(alpha, dtype), widths, flat, kinds[opt.kernel],
                    np.asarray(wranges, np.int64).reshape(-1, 2),
                    build.LOSSES.index(type(trainer.loss)))
    engine.dropouts = dropouts
    engine.bufs = _pack_buffers(norms, dtype)
    return engine


class Engine:
    """Compiled minibatch steps for one ``fit`` (built by :func:`plan`).

    Parameters
    ----------
    trainer : Trainer
    X : ndarray
        The training rows, in the model's dtype, C-contiguous.
    yi, yf : ndarray
        Labels (int64) or targets (float64, 2-D); the other a placeholder.
    sw : ndarray or None
        The rows' weights (float64), or None for an unweighted fit.
    layers, alpha : ndarray
        The network's table (:mod:`neuronlab.engine.loop`) and each layer's ``a``.
    widths : list of int
        Each layer's output width.
    flat : tuple of ndarray
        ``(w, g, *slots)``: the optimizer's flat blocks.
    rule, loss_code : int
        Codes of the update rule and the loss.
    wranges : ndarray of shape (n, 2)
        ``[start, stop)`` of each weight array in the flat block.
    """

    def __init__(self, trainer: Any, X: np.ndarray, yi: np.ndarray, yf: np.ndarray,
                 sw: np.ndarray | None, layers: np.ndarray, alpha: np.ndarray, widths: list[int], flat: tuple[Any, ...],
                 rule: int, wranges: np.ndarray, loss_code: int) -> None:
        from neuronlab.engine import build

        self.trainer, self.X, self.yi, self.yf = trainer, X, yi, yf
        self.weighted = sw is not None
        self.sw = np.ones(X.shape[0]) if sw is None else np.ascontiguousarray(sw, np.float64)
        self.layers, self.alpha, self.rule, self.wranges = layers, alpha, rule, wranges
        self.loss_code = loss_code
        self.w, self.g = flat[0], flat[1]
        empty = np.zeros(0, flat[0].dtype)
        self.s0 = flat[2] if len(flat) > 2 else empty
        self.s1 = flat[3] if len(flat) > 3 else empty
        dtype = flat[0].dtype
        bs = min(trainer.state.batch_size, X.shape[0])
        offset = 0
        for i, n in enumerate(widths):
            layers[i, 5] = offset
            offset += bs * n
            if layers[i, 0] == 4:  # BatchNorm: its x̂ rows and 1/std per feature
                layers[i, 6], layers[i, 7] = offset, offset + bs * n
                offset += bs * n + n
            elif layers[i, 0] == 6:  # LayerNorm: its x̂ rows and 1/std per row
                layers[i, 6], layers[i, 7] = offset, offset + bs * n
                offset += bs * n + bs
        self.ws = np.empty(max(offset, 1), dtype)
        self.xb = np.empty((bs, X.shape[1]), dtype)
        self.idx = np.empty(bs, np.int64)
        self.wb = np.empty(bs, np.float64)
        widest = max([X.shape[1], *widths])
        self.d0, self.d1 = np.empty(bs * widest, dtype), np.empty(bs * widest, dtype)
        reg = trainer.regularizer
        self.l1 = float(reg._l1) if reg is not None else 0.0
        self.l2 = float(reg._l2) if reg is not None else 0.0
        opt = trainer.optimizer
        self.clip_value = float(opt.clip_value or 0.0)
        self.clip_norm = float(opt.clip_norm or 0.0)
        self.check_grads = any(cb.checks_finite for cb in trainer.callbacks)
        self.n_scalars = 8  # columns of a step's rule scalars (Adam takes 6)
        self.code = build.compiled()
        self.hooks = [cb for cb in trainer.callbacks
                      if cb in trainer._before_update or cb in trainer._batch_end]
        #: ``(index, layer)`` of the Dropout layers that draw masks (set by :func:`plan`)
        self.dropouts: list[tuple[int, Any]] = []
        #: the BatchNorm layers' running averages, one block (set by :func:`plan`)
        self.bufs = np.zeros(1, dtype)
        self.no_masks = np.zeros(0, dtype)

    # -- one epoch ---------------------------------------------------------------------------
    def train_epoch(self) -> None:
        """The rest of the current epoch, as :meth:`Trainer._train_epoch` runs it: compiled
        segments up to each step where a callback needs control, whose hooks then run as on
        the NumPy path. A step whose scores (or, with a :class:`NonFiniteGuard`, loss or
        gradients) are not finite is run again on the NumPy path, which raises its
        DivergenceError."""
        tr = self.trainer
        s = tr.state
        while s.batch_in_epoch < s.n_batches and not s.stop_training:
            step, b = s.step, s.batch_in_epoch
            due = max(min((cb.next_step(step) for cb in self.hooks), default=NEVER), step)
            at_hook = due - step < s.n_batches - b
            last = b + (due - step) + 1 if at_hook else s.n_batches
            if self.dropouts:  # the segment's masks are drawn up front: about 32 MiB at most
                cap = max(1, MASK_ELEMENTS // (s.batch_size * sum(
                    int(self.layers[i, 1]) for i, _ in self.dropouts)))
                if last - b > cap:
                    last, at_hook = b + cap, False
            before = [cb for cb in tr._before_update if due % cb.interval == 0] if at_hook else []
            if not self._segment(b, last, stop_last=bool(before)):
                assert tr.train_data is not None
                tr._train_epoch(*tr.train_data, tr.sample_weight, stop=s.batch_in_epoch + 1)
                continue
            if at_hook:
                self._hook_step(due, last - 1, before)

    def _segment(self, b0: int, b1: int, *, stop_last: bool) -> bool:
        tr, s, opt = self.trainer, self.trainer.state, self.trainer.optimizer
        n, step0 = b1 - b0, s.step
        sched, scale = tr.schedule, s.lr_scale
        if sched is None:
            lrs = [opt.lr * scale] * n
        else:
            lrs = [sched(step0 + k) * scale for k in range(n)]
        if not all(0.0 <= lr < math.inf for lr in lrs):
            return False  # the NumPy path's optimizer names the bad lr
        sc, decay = self._scalars(lrs)
        sums = s.sums
        stat_key = "sq" if self.trainer.loss.task == "regression" else "correct"
        acc = np.array([sums["loss"], sums["n"], sums[stat_key]], np.float64)
        values = np.empty(n)
        t0 = opt.t
        rows = [min(s.batch_size, s.n_samples - b * s.batch_size) for b in range(b0, b1)]
        masks, states = self._draw_masks(sum(rows))
        status = self.code.steps(
            self.X, self.yi, self.yf, self.sw, s.order, s.batch_size, b0, b1, self.layers,
            self.alpha, self.w, self.g, self.s0, self.s1, self.ws, self.xb, self.idx, self.wb,
            self.d0, self.d1,
            self.loss_code, self.wranges, self.l1, self.l2, self.clip_value, self.clip_norm,
            self.check_grads, self.rule, sc, decay, values, acc, stop_last, masks, self.bufs)
        done = n if status < 0 else status
        if status >= 0 and states:  # the masks of the steps not taken go back: the NumPy
            for (_, layer), state in zip(self.dropouts, states):  # replay draws its own
                layer.rng.bit_generator.state = state
            self._draw_masks(sum(rows[:done]))
        updated = done - 1 if (status < 0 and stop_last) else done
        opt.t = t0 + updated
        sums["loss"] = float(acc[0])
        if self.weighted:  # weighted sums are floats, unweighted ones count rows
            sums["n"], sums[stat_key] = float(acc[1]), float(acc[2])
        else:
            sums["n"] = int(acc[1])
            sums[stat_key] = float(acc[2]) if stat_key == "sq" else int(acc[2])
        history = s.history
        history.loss.extend(values[:updated].tolist())
        history.lr.extend(lrs[:updated])
        s.step, s.batch_in_epoch = step0 + updated, b0 + updated
        self._pending = (float(values[done - 1]), lrs[done - 1]) if stop_last and status < 0 else None
        return status < 0

    def _draw_masks(self, total_rows: int) -> tuple[np.ndarray, list[Any]]:
        """Every Dropout layer's masks (uniforms in the dtype from its own generator,
        1/(1 − rate) where ≥ rate, else 0) and every GaussianNoise layer's noise (std·ε) for
        ``total_rows`` rows, drawn as their ``forward`` draws them: one block per layer, its
        start written into the layer's table row. Also the generators' states before."""
        if not self.dropouts:
            return self.no_masks, []
        dtype = self.w.dtype
        sizes = [total_rows * int(self.layers[i, 1]) for i, _ in self.dropouts]
        masks = np.empty(sum(sizes), dtype)
        states, start = [], 0
        for (i, layer), size in zip(self.dropouts, sizes):
            states.append(layer.rng.bit_generator.state)
            block = masks[start:start + size]
            if self.layers[i, 0] == 2:  # Dropout: 1/(1 − rate) where the uniform ≥ rate
                layer.rng.random(size, dtype=dtype, out=block)
                np.greater_equal(block, layer.rate, out=block)
                block *= 1.0 / (1.0 - layer.rate)
            else:  # GaussianNoise: std·ε
                layer.rng.standard_normal(size, dtype=dtype, out=block)
                block *= dtype.type(layer.std)
            self.layers[i, 2] = start
            start += size
        return masks, states

    def _scalars(self, lrs: list[float]) -> tuple[np.ndarray, np.ndarray]:
        """Each step's rule scalars (as the optimizer's ``_kernel_scalars`` gives them for its
        step count and lr, in the parameters' dtype) and weight-decay factor."""
        opt, n = self.trainer.optimizer, len(lrs)
        dtype = self.w.dtype.type
        sc = np.zeros((n, self.n_scalars), self.w.dtype)
        decay = np.ones(n)
        t0, wd = opt.t, opt.weight_decay
        rows: dict[float, list[Any]] = {}
        for k, lr in enumerate(lrs):
            row = None if opt.kernel_scalars_use_t else rows.get(lr)
            if row is None:
                opt.t = t0 + k + 1
                row = rows[lr] = [dtype(v) for v in opt._kernel_scalars(float(lr))]
            sc[k, :len(row)] = row
            if wd > 0.0 and lr > 0.0:
                decay[k] = 1.0 - float(lr) * wd
        opt.t = t0
        return sc, decay

    def _hook_step(self, step: int, b: int, before: list[Any]) -> None:
        """Step ``step`` (batch ``b``), the last of a segment, with the callbacks due there,
        called as the NumPy loop calls them."""
        tr, s, opt = self.trainer, self.trainer.state, self.trainer.optimizer
        m = min(s.batch_size, s.n_samples - b * s.batch_size)
        if self._pending is not None:  # stopped before the update: hooks, then the update
            value, lr = self._pending
            self._pending = None
            for cb in before:
                cb.on_before_update(tr, step, value)
            sc, decay = self._scalars([lr])
            opt.t += 1
            self.code.finish_step(self.w, self.g, self.s0, self.s1, self.rule, sc[0],
                                  self.wranges, decay[0], self.clip_value, self.clip_norm)
            s.step, s.batch_in_epoch = step + 1, b + 1
            s.history.loss.append(value)
            s.history.lr.append(lr)
        else:
            value, lr = s.history.loss[-1], s.history.lr[-1]
        if tr._batch_end:
            logs = {"loss": value, "lr": lr, "batch_size": m}
            for cb in tr._batch_end:
                if step % cb.interval == 0:
                    cb.on_batch_end(tr, step, logs)
