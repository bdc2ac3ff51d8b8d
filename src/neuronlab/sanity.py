"""Sanity checks before a long run: the notes' list, each with PASS/FAIL, numbers and advice.

:func:`sanity_check` runs, on copies of the model (the caller's model and optimizer are never
changed):

1. ``initial_loss`` — the loss of the untrained model, regularisation off, against its
   expected value (``loss.expected_initial_loss(C)``: ln C for softmax, C − 1 for the
   multiclass hinge at small weights). Off by more than the ``initial_tolerance`` factor:
   a bug, or an initialisation that makes confident scores.
2. ``regularization`` — the objective rises with the L2 strength: 0 < s < 10·s.
3. ``overfit`` — with regularisation and dropout off, ``n_overfit`` examples are fitted to
   100% training accuracy (regression: the loss falls below 1% of its start) within
   ``max_steps`` full-batch steps. Failing means the model is too small, the optimizer or
   its learning rate is broken, or a backward pass is wrong.
4. ``gradcheck`` — :func:`neuronlab.gradcheck` of the whole model in float64 on a few
   examples. Entries whose finite difference straddles a ReLU-like kink are reported, not
   failed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuronlab._validation import as_rng, check_array, check_number, check_positive_int
from neuronlab.checks.gradcheck import gradcheck
from neuronlab.data.arrays import batch
from neuronlab.regularizers import L2
from neuronlab.train.step import loss_and_grads

__all__ = ["SanityReport", "SanityResult", "sanity_check"]

_LOSS_ROWS = 1024  # rows used for the loss checks: enough for a stable mean, still fast


@dataclass(frozen=True)
class SanityResult:
    """One check: ``status`` is "PASS", "FAIL" or "SKIP" (not applicable)."""

    name: str
    status: str
    summary: str
    values: dict[str, Any] = field(default_factory=dict)
    action: str = ""
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status != "FAIL"

    def __str__(self) -> str:
        text = f"{self.status:<4}  {self.name:<15} {self.summary}"
        if self.status == "FAIL" and self.action:
            text += f"\n      what to do: {self.action}"
        return text


@dataclass(frozen=True)
class SanityReport:
    """The results of :func:`sanity_check` in order; ``report["overfit"]`` picks one and
    ``str(report)`` is the text ``neuronlab check`` prints."""

    results: list[SanityResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def __getitem__(self, name: str) -> SanityResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no check {name!r}; checks are {[r.name for r in self.results]}")

    def __str__(self) -> str:
        failed = sum(not r.passed for r in self.results)
        head = "Sanity checks: all passed" if not failed else f"Sanity checks: {failed} failed"
        lines = [head, *(str(r) for r in self.results)]
        lines += [r.detail for r in self.results if r.status == "FAIL" and r.detail]
        return "\n".join(lines)


# -- helpers ----------------------------------------------------------------------------------
def _quiet_copy(model: Any) -> Any:
    """A deep copy with dropout/noise switched off (regularisation off for these checks)."""
    m = copy.deepcopy(model)
    for layer in getattr(m, "layers", ()):
        if getattr(layer, "stochastic", False) or hasattr(layer, "noise_off"):
            layer.noise_off = True
    return m


def _data_loss(model: Any, loss: Any, X: np.ndarray, y: np.ndarray) -> float:
    # training mode (batch norm uses batch statistics, as in the first training step), no noise
    with np.errstate(all="ignore"):
        return float(loss.forward(model.forward(X, training=True), y))


def _fresh_optimizer(optimizer: Any) -> Any:
    """A copy without accumulated state: from its config when it has one."""
    if hasattr(optimizer, "get_config") and hasattr(type(optimizer), "from_config"):
        try:
            return type(optimizer).from_config(optimizer.get_config())
        except (TypeError, ValueError):
            pass
    return copy.deepcopy(optimizer)


def _accuracy(loss: Any, scores: np.ndarray, y: np.ndarray) -> float:
    pred: np.ndarray = loss.predict(scores)
    return float(np.count_nonzero(pred == y.reshape(pred.shape))) / pred.size


# -- the four checks ----------------------------------------------------------------------------
def _check_initial(model: Any, loss: Any, X: np.ndarray, y: np.ndarray, tol: float) -> SanityResult:
    n_out = getattr(model, "n_out", None)
    expected = loss.expected_initial_loss(n_out) if n_out is not None and hasattr(
        loss, "expected_initial_loss") else None
    value = _data_loss(_quiet_copy(model), copy.deepcopy(loss), X, y)
    if expected is None or expected <= 0:
        return SanityResult("initial_loss", "SKIP",
                            f"{value:.4g} ({type(loss).__name__} has no expected initial value)",
                            {"initial_loss": value, "expected": None})
    factor = value / expected if math.isfinite(value) else math.inf
    ok = 1 / tol <= factor <= tol
    return SanityResult(
        "initial_loss", "PASS" if ok else "FAIL",
        f"{value:.4g} vs expected {expected:.4g} for {n_out} outputs ({factor:.2g}x; allowed "
        f"{1 / tol:.2g}x-{tol:.2g}x)",
        {"initial_loss": value, "expected": expected, "factor": factor},
        "" if ok else "the untrained model should make near-uniform guesses: check the weight "
        "initialisation scale (use he/glorot, or smaller weights in the last layer), the "
        "input preprocessing (standardise) and the loss")


def _check_regularization(model: Any, loss: Any, X: np.ndarray, y: np.ndarray,
                          strength: float) -> SanityResult:
    # the trainer's objective (the step function), at three strengths
    m, lossc = _quiet_copy(model), copy.deepcopy(loss)
    with np.errstate(all="ignore"):
        totals = [float(loss_and_grads(m, lossc, X, y, L2(s) if s else None)[0])
                  for s in (0.0, strength, 10 * strength)]
    ok = totals[0] < totals[1] < totals[2]
    return SanityResult(
        "regularization", "PASS" if ok else "FAIL",
        f"loss {totals[0]:.4g} -> {totals[1]:.4g} -> {totals[2]:.4g} with L2 strength "
        f"0, {strength:g}, {10 * strength:g}",
        {"strengths": [0.0, strength, 10 * strength], "losses": totals},
        "" if ok else "raising the regularisation strength must raise the loss: check that the "
        "layers list their weights in weight_names and that the regulariser reads them")


def _check_overfit(model: Any, loss: Any, X: np.ndarray, y: np.ndarray, optimizer: Any,
                   max_steps: int, target: float) -> SanityResult:
    m, lossc, opt = _quiet_copy(model), copy.deepcopy(loss), _fresh_optimizer(optimizer)
    params, grads = m.params, m.grads
    decay = getattr(m, "weight_keys", None)
    regression = lossc.task == "regression"
    first = last = math.nan
    acc, steps = 0.0, 0
    with np.errstate(all="ignore"):
        if getattr(opt, "full_batch", False):
            first = _data_loss(m, lossc, X, y)
            opt.minimize(lambda: loss_and_grads(m, lossc, X, y)[0], params, grads)
            steps = 1
        else:
            for steps in range(1, max_steps + 1):  # the trainer's step, without a regulariser
                value, scores = loss_and_grads(m, lossc, X, y, step=steps - 1)
                last = float(value)
                first = last if steps == 1 else first
                if not regression and _accuracy(lossc, scores, y) >= target:
                    steps -= 1  # this forward saw the weights after steps - 1 updates
                    break
                if regression and last <= 1e-2 * first:
                    steps -= 1
                    break
                opt.step(params, grads, decay_keys=decay)
        scores = m.forward(X, training=True)
        last = float(lossc.forward(scores, y))
    if regression:
        ok = math.isfinite(last) and last <= 1e-2 * first
        summary = f"loss {first:.4g} -> {last:.4g} on {len(X)} examples after {steps} steps"
    else:
        acc = _accuracy(lossc, scores, y)
        ok = acc >= target
        summary = (f"training accuracy {acc:.0%} (loss {first:.4g} -> {last:.4g}) on {len(X)} "
                   f"examples after {steps} steps" + ("" if ok else f" (limit {max_steps})"))
    return SanityResult(
        "overfit", "PASS" if ok else "FAIL", summary,
        {"n_examples": len(X), "steps": steps, "max_steps": max_steps, "accuracy": None if regression else acc,
         "loss_start": first, "loss_end": last, "optimizer": type(opt).__name__},
        "" if ok else "a network that cannot memorise a handful of examples will not learn: "
        "try a bigger model, check the optimizer and its learning rate, then the backward "
        "passes (see gradcheck)")


def _check_gradients(model: Any, loss: Any, X: np.ndarray, y: np.ndarray, seed: int) -> SanityResult:
    report = gradcheck(model, loss, X, y, seed=seed)
    bad = [r for r in report.rows if r.failed]
    kinks = f", {report.kinks} entries at a kink skipped" if report.kinks else ""
    summary = (f"max relative error {report.max_error:.1e} over {len(report.rows)} arrays on "
               f"{len(X)} examples{kinks}")
    if bad:
        summary += f"; wrong: {', '.join(r.name for r in bad)}"
    return SanityResult(
        "gradcheck", "FAIL" if bad else "PASS", summary,
        {"max_error": report.max_error, "kinks": report.kinks,
         "failed": [r.name for r in bad], "n_examples": len(X)},
        "; ".join(r.advice() for r in bad), detail=str(report) if bad else "")


# -- entry point ------------------------------------------------------------------------------
def sanity_check(
    model: Any,
    loss: Any,
    X: np.ndarray,
    y: Any,
    *,
    regularizer_strength: float = 1.0,
    n_overfit: int = 20,
    max_steps: int = 300,
    optimizer: Any = None,
    n_gradcheck: int = 4,
    initial_tolerance: float = 1.5,
    seed: int = 0,
) -> SanityReport:
    """Run the four sanity checks of the notes on copies of ``model``.

    Parameters
    ----------
    model : Sequential
        Untrained (the initial-loss check is about the initialisation). Not modified.
    loss : Loss
    X : ndarray (or np.memmap) of shape (n_samples, n_features)
        Only the random subsets the checks use are read (up to 1024 rows), and only those
        are scanned for NaN/Inf.
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    regularizer_strength : float > 0, default 1.0
        L2 strength s of the regularisation check (the objective at s and 10·s).
    n_overfit : int > 0, default 20
        Examples (a seeded random subset) to memorise.
    max_steps : int > 0, default 300
        Full-batch steps allowed for the overfit check.
    optimizer : Optimizer, optional
        Used (a fresh copy) for the overfit check; default ``Adam(lr=1e-2)``.
    n_gradcheck : int > 0, default 4
        Examples for the gradient check (few: fewer kinks to straddle).
    initial_tolerance : float > 1, default 1.5
        The initial loss passes within [expected / t, expected · t].
    seed : int, default 0
        Seeds the subsets and the gradient check.

    Returns
    -------
    SanityReport
        ``report.passed``, ``report["overfit"].values``, ``str(report)``.
    """
    X = check_array("X", X, finite=False)  # the rows the checks use are scanned below
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has shape {y.shape}")
    strength = check_number("regularizer_strength", regularizer_strength, low=0, low_inclusive=False)
    n_overfit = check_positive_int("n_overfit", n_overfit)
    max_steps = check_positive_int("max_steps", max_steps)
    n_gradcheck = check_positive_int("n_gradcheck", n_gradcheck)
    tol = check_number("initial_tolerance", initial_tolerance, low=1, low_inclusive=False)
    if optimizer is None:
        from neuronlab.optim import Adam

        optimizer = Adam(lr=1e-2)
    rng = as_rng(seed)
    n = X.shape[0]
    dtype = getattr(model, "dtype", None) or X.dtype

    def subset(k: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.sort(rng.choice(n, size=k, replace=False)) if k < n else np.arange(n)
        rows = batch(X, idx, dtype=dtype)  # a memmap's rows are read from its file
        if not np.isfinite(rows).all():
            raise ValueError("X contains NaN or Inf")
        return rows, y[idx]

    Xl, yl = subset(min(n, _LOSS_ROWS))
    Xo, yo = subset(min(n, n_overfit))
    Xg, yg = subset(min(n, n_gradcheck))
    return SanityReport([
        _check_initial(model, loss, Xl, yl, tol),
        _check_regularization(model, loss, Xl, yl, strength),
        _check_overfit(model, loss, Xo, yo, optimizer, max_steps, 1.0),
        _check_gradients(model, loss, Xg.astype(np.float64), yg, int(rng.integers(2**31))),
    ])
