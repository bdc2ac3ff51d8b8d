"""JAX contenders: the training loop as a JAX user would write it, two ways.

* ``jax jit per step``: one ``jax.jit``-compiled train step (gather the batch's rows, forward,
  ``value_and_grad``, optax update), called from a Python loop over the epoch's batches.
* ``jax jit whole epoch (scan)``: the whole epoch as one compiled function, a ``jax.lax.scan``
  over the batches. The epoch's order is drawn in NumPy and passed in; the rows of each batch
  are gathered inside the compiled loop (``dynamic_slice`` of the order, then ``X[idx]``).

Both do the work neuronlab's contender does, on the same terms: the same network (ReLU
hidden layers, raw scores out, softmax cross-entropy averaged over the batch), the same
initial weights (copied from the neuronlab model that ``contenders._nl_trainer`` builds with
the same seed), float32, the same data (``X`` and ``y`` are put on the device once, as jax
arrays) and the same batches: each call draws its order as neuronlab's ``Trainer.fit(...,
seed=k)`` does (``np.random.default_rng(k).permutation(n)``, k = 1, 2, ... one per call, as
``contenders.neuronlab_epoch`` counts) and sorts the indices inside each batch, as neuronlab
does (a batch's mean does not depend on its order; sorting keeps the sums in the same order).

The optimizers are optax's, with neuronlab's hyperparameters. ``optax.sgd(lr, momentum=mu)``
keeps ``t := mu*t + g`` and steps ``w := w - lr*t``; with ``v = -lr*t`` that is neuronlab's
``v := mu*v - lr*g; w := w + v`` exactly (at a constant lr), only rounded differently.
``optax.adam`` is neuronlab's Adam (b1 0.9, b2 0.999, eps 1e-8 outside the square root, bias
correction with t = 1 on the first step). :func:`agreement` measures how close the two end.

Every epoch has only full batches: the row count must be a multiple of the batch size (the
benchmark's sizes are), so neuronlab's last partial batch never arises and every contender
does the same steps. JAX is imported inside the functions: the rest of the benchmark runs
without it. The JAX timing blocks on the weights at the end of every epoch
(``block_until_ready``); the compilation happens in the first call, which ``interleave``'s
warm-up run takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

import contenders as C
import numpy as np

__all__ = ["CHECK_ROWS", "PER_STEP", "SCAN", "Agreement", "agreement", "available", "compare",
           "device_data", "initial_params", "jax_epoch", "jax_version", "order"]

PER_STEP = "jax jit per step"
SCAN = "jax jit whole epoch (scan)"


def available() -> str | None:
    """None if JAX (and optax) import, else why not, in a few words."""
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError as err:
        return f"{type(err).__name__}: {err}"
    return None


def jax_version() -> str:
    import jax

    return f"{jax.__version__} ({jax.default_backend()}, {jax.device_count()} device)"


def initial_params(sizes: Sequence[int], opt: C.OptSpec, *,
                   seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Copies of the (W, b) of every Linear layer of the model that neuronlab's contender
    starts from (same builder, same seed). W is (n_in, n_out): the forward pass is x @ W + b."""
    params = C._nl_trainer(sizes, opt, monitor=False, seed=seed).model.params
    layers: dict[str, dict[str, np.ndarray]] = {}
    for key, value in params.items():
        layer, name = key.rsplit(".", 1)
        layers.setdefault(layer, {})[name] = value
    out = [(p["W"].copy(), p["b"].copy()) for p in layers.values()]
    assert [w.shape for w, _ in out] == list(pairwise(sizes)), "not an MLP of sizes"
    return out


def order(n: int, batch: int, seed: int) -> np.ndarray:
    """The epoch's order as neuronlab's ``Trainer.fit(seed=seed)`` draws it (``begin_epoch``:
    ``np.random.default_rng(seed).permutation(n)``) with each batch's indices sorted (as the
    trainer gathers them), int32, shape (n,)."""
    if n % batch:
        raise ValueError(f"{n} rows are not a whole number of batches of {batch}: the JAX "
                         "contenders train full batches only (choose a multiple)")
    perm = np.random.default_rng(seed).permutation(n).reshape(-1, batch)
    perm.sort(axis=1)
    return perm.reshape(-1).astype(np.int32)


def device_data(X: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    """X (float32) and y (int32) as jax arrays on the default device, made once and shared by
    the contenders of one network."""
    import jax

    Xd = jax.device_put(np.asarray(X, dtype=np.float32))
    yd = jax.device_put(np.asarray(y, dtype=np.int32))
    return jax.block_until_ready((Xd, yd))


def _transform(opt: C.OptSpec) -> Any:
    import optax

    if opt.name == "momentum":
        return optax.sgd(opt.lr, momentum=opt.momentum, nesterov=False)
    return optax.adam(opt.lr, b1=0.9, b2=0.999, eps=1e-8)  # neuronlab's Adam defaults


@cache
def _compiled(opt: C.OptSpec, batch: int) -> tuple[Any, Any, Any]:
    """(optax transform, jitted step, jitted epoch) for one optimizer and batch size; jax.jit
    caches their compilations per shape, so the timed contenders and :func:`agreement` share
    them."""
    import jax
    import jax.numpy as jnp
    import optax

    tx = _transform(opt)

    def loss_fn(params: Any, xb: Any, yb: Any) -> Any:
        h = xb
        for W, b in params[:-1]:
            h = jax.nn.relu(h @ W + b)
        W, b = params[-1]
        return optax.softmax_cross_entropy_with_integer_labels(h @ W + b, yb).mean()

    def update(params: Any, state: Any, xb: Any, yb: Any) -> tuple[Any, Any, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    def step(params: Any, state: Any, X: Any, y: Any, idx: Any) -> tuple[Any, Any, Any]:
        return update(params, state, X[idx], y[idx])

    def epoch(params: Any, state: Any, X: Any, y: Any, order: Any) -> tuple[Any, Any, Any]:
        def body(carry: Any, b: Any) -> tuple[Any, Any]:
            params, state = carry
            idx = jax.lax.dynamic_slice(order, (b * batch,), (batch,))
            params, state, loss = update(params, state, X[idx], y[idx])
            return (params, state), loss

        (params, state), losses = jax.lax.scan(
            body, (params, state), jnp.arange(order.shape[0] // batch))
        return params, state, losses

    # the weights and the optimizer's state are donated: updated in place, as neuronlab does
    return (tx, jax.jit(step, donate_argnums=(0, 1)), jax.jit(epoch, donate_argnums=(0, 1)))


def jax_epoch(X: np.ndarray, y: np.ndarray, sizes: Sequence[int], batch: int, opt: C.OptSpec,
              *, scan: bool, seed: int = 0, data: tuple[Any, Any] | None = None,
              init: list[tuple[np.ndarray, np.ndarray]] | None = None) -> Callable[[], int]:
    """One shuffled epoch per call (the model keeps learning across calls), per step from a
    Python loop or (``scan``) as one compiled function. ``data``: X and y from
    :func:`device_data` (else made here); ``init``: the starting weights (else
    :func:`initial_params` of ``sizes`` and ``seed``). The callable's ``train(order)`` runs
    one epoch in a given order (int32, batches of consecutive entries); ``weights()`` returns
    the current weights as NumPy arrays."""
    import jax

    n = X.shape[0]
    order(n, batch, 0)  # a partial last batch is refused here, not in the first timed call
    Xd, yd = data if data is not None else device_data(X, y)
    tx, step, epoch = _compiled(opt, batch)
    params = jax.device_put([tuple(p) for p in (init or initial_params(sizes, opt, seed=seed))])
    st = {"params": params, "state": tx.init(params)}
    count = [0]

    def train(order_: np.ndarray) -> None:
        params, state = st["params"], st["state"]
        if scan:
            params, state, _ = epoch(params, state, Xd, yd, order_)
        else:
            for idx in order_.reshape(-1, batch):
                params, state, _ = step(params, state, Xd, yd, idx)
        st["params"], st["state"] = jax.block_until_ready((params, state))

    def run() -> int:
        count[0] += 1  # as neuronlab_epoch: fit(..., seed=1), fit(..., seed=2), ...
        train(order(n, batch, count[0]))
        return n

    def weights() -> list[np.ndarray]:
        return [np.array(a) for layer in st["params"] for a in layer]  # copies: donated next

    run.train = train  # type: ignore[attr-defined]
    run.weights = weights  # type: ignore[attr-defined]
    return run


@dataclass(frozen=True)
class Agreement:
    """How far apart neuronlab's and the JAX scan contender's weights end after one epoch
    (``steps`` batches, ``rows`` rows) from the same start in the same order.

    ``update``, the test: the median over the parameters that moved of |w_nl - w_jax| /
    |w_nl - w_start|, the difference beside what the epoch changed (a few weights that
    rounding sent another way do not move a median). ``weights``, for the record:
    ||w_nl - w_jax|| / ||w_nl||, all parameters as one vector."""

    weights: float
    update: float
    rows: int
    steps: int
    tolerance: float = 1e-2  # on ``update``

    @property
    def ok(self) -> bool:
        return self.update <= self.tolerance


# The check trains 1024 rows: 4 batches of the large network, 32 of the small one. Measured
# on this machine (model seeds 0-3, orders of seeds 1, 2, 3, 1234), the same work gives
# ``update`` 0 - 8e-6 and ``weights`` 1e-9 - 2e-4; 10% more lr in JAX gives ``update`` 0.1 and
# another order 0.5-0.8, so the tolerance 1e-2 sits a decade from both. ``weights`` would not
# tell them apart: 10% more lr moves the large network's weights by 1e-4 with momentum in 4
# steps, while with Adam float32 rounding alone can reach 2e-4 (Adam's first step moves each
# weight by about ±lr, whatever the size of its gradient, so a gradient of order eps moves by
# a rounding-dependent amount; that shifts a pre-activation across a ReLU's kink in the next
# step, and a row's whole backward changes). Over a whole 64-batch epoch of the large network
# with Adam that drift reaches 1-3% (``update`` 0.1) between any two float32 implementations,
# neuronlab, JAX and a plain NumPy loop, each as far from a float64 reference: so the check
# takes the first 1024 rows, not the section's whole epoch.
CHECK_ROWS = 1024


def compare(ours: Sequence[np.ndarray], theirs: Sequence[np.ndarray],
            start: Sequence[np.ndarray]) -> tuple[float, float]:
    """(``weights``, ``update``) of :class:`Agreement` for two lists of arrays that both
    started from ``start``."""
    a, b, w0 = (np.concatenate([x.ravel() for x in xs]).astype(np.float64)
                for xs in (ours, theirs, start))
    diff, moved = np.abs(a - b), np.abs(a - w0)
    keep = moved > 0
    update = float(np.median(diff[keep] / moved[keep])) if keep.any() else float("inf")
    return float(np.linalg.norm(a - b) / np.linalg.norm(a)), update


def agreement(X: np.ndarray, y: np.ndarray, sizes: Sequence[int], batch: int, opt: C.OptSpec,
              *, rows: int = CHECK_ROWS, seed: int = 0, order_seed: int = 1234) -> Agreement:
    """Train one epoch of the first ``rows`` rows of (X, y) (whole batches) with neuronlab's
    ``Trainer.fit(epochs=1, seed=order_seed)`` and with the JAX scan contender, from the same
    initial weights in the order that fit draws; compare the weights. Not timed."""
    rows = max(batch, min(rows, X.shape[0]) // batch * batch)
    X, y = X[:rows], y[:rows]
    trainer = C._nl_trainer(sizes, opt, monitor=False, seed=seed)
    start = [a.copy() for a in trainer.model.params.values()]
    run = jax_epoch(X, y, sizes, batch, opt, scan=True, init=initial_params(sizes, opt, seed=seed))
    run.train(order(rows, batch, order_seed))  # type: ignore[attr-defined]
    trainer.fit(X, y, epochs=1, batch_size=batch, seed=order_seed)
    weights, update = compare(list(trainer.model.params.values()),
                              run.weights(), start)  # type: ignore[attr-defined]
    return Agreement(weights, update, rows, rows // batch)
