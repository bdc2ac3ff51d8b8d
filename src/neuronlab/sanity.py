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

and, unless ``data_checks=False``, three checks of the data
(:mod:`neuronlab.babysit.baselines`):

5. ``baseline`` — informational: the numbers the *trained* network must beat, the constant
   baseline (majority class, or the training mean) and the linear baseline (a network with no
   hidden layer, or least squares), scored on ``X_test`` (else on the training rows). PASS,
   unless the data is degenerate (one class, constant targets): FAIL, nothing to learn.
6. ``duplicates`` — test rows that repeat training rows exactly. None: PASS. Some: WARN (real
   data holds natural duplicates, and the test score then partly measures memorisation).
   More than :data:`DUPLICATE_FAIL_FRACTION` of the test rows: FAIL (the split leaks: data
   duplicated or augmented before splitting). SKIP without ``X_test``.
7. ``conflicts`` — identical training inputs with different labels. None: PASS. Some: WARN
   (label noise or missing features; they cap the accuracy any model can reach, which the
   summary states, and may fail the overfit check). More than
   :data:`CONFLICT_FAIL_FRACTION` of the rows: FAIL. For regression identical inputs with
   different targets are noise, not an error: always PASS, with the floor they put on the
   mean squared error.

A result's ``status`` is "PASS", "WARN", "FAIL" or "SKIP"; ``report.passed`` means "no FAIL"
(warnings pass), and ``neuronlab check`` exits non-zero only on a failure.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuronlab._validation import as_rng, check_array, check_number, check_positive_int
from neuronlab.checks.gradcheck import gradcheck
from neuronlab.data.arrays import batch
from neuronlab.regularizers import L2
from neuronlab.train.step import loss_and_grads

__all__ = [
    "CONFLICT_FAIL_FRACTION",
    "DUPLICATE_FAIL_FRACTION",
    "SanityReport",
    "SanityResult",
    "baseline_result",
    "conflicts_result",
    "duplicates_result",
    "sanity_check",
]

_LOSS_ROWS = 1024  # rows used for the loss checks: enough for a stable mean, still fast
#: A held-out part with more than this share of its rows repeating training rows fails the
#: ``duplicates`` check (a leak, not natural duplicates); fewer is a warning.
DUPLICATE_FAIL_FRACTION = 0.1
#: More than this share of the training rows in groups of identical inputs with different
#: labels fails the ``conflicts`` check (classification); fewer is a warning.
CONFLICT_FAIL_FRACTION = 0.1


@dataclass(frozen=True)
class SanityResult:
    """One check of :func:`sanity_check`; ``str(result)`` is its line of the report.

    Attributes
    ----------
    name : str
        The check (``"initial_loss"``, ``"overfit"``, ``"duplicates"``...).
    status : {"PASS", "WARN", "FAIL", "SKIP"}
        "WARN" passed, with something to look at; "SKIP" not applicable.
    summary : str
        One line saying what was measured.
    values : dict
        The measured numbers (JSON-able).
    action : str
        What to do, printed after a FAIL or WARN (may be empty).
    detail : str
        A longer explanation printed at the end of the report for a FAIL (may be empty).
    """

    name: str
    status: str
    summary: str
    values: dict[str, Any] = field(default_factory=dict)
    action: str = ""
    detail: str = ""

    @property
    def passed(self) -> bool:
        """True unless the status is "FAIL" (a warning or a skip passes)."""
        return self.status != "FAIL"

    @property
    def warned(self) -> bool:
        """True for a "WARN" status."""
        return self.status == "WARN"

    def __str__(self) -> str:
        text = f"{self.status:<4}  {self.name:<15} {self.summary}"
        if self.status in ("FAIL", "WARN") and self.action:
            text += f"\n      what to do: {self.action}"
        return text


@dataclass(frozen=True)
class SanityReport:
    """The results of :func:`sanity_check` in order; ``report["overfit"]`` picks one (a
    KeyError naming the checks if there is none) and ``str(report)`` is the text
    ``neuronlab check`` prints.

    Attributes
    ----------
    results : list of SanityResult
        One per check, in the order they ran.
    """

    results: list[SanityResult]

    @property
    def passed(self) -> bool:
        """No check failed (warnings pass)."""
        return all(r.passed for r in self.results)

    @property
    def warnings(self) -> list[SanityResult]:
        """The results with a "WARN" status, in order."""
        return [r for r in self.results if r.warned]

    def __getitem__(self, name: str) -> SanityResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no check {name!r}; checks are {[r.name for r in self.results]}")

    def __str__(self) -> str:
        failed, warned = sum(not r.passed for r in self.results), len(self.warnings)
        head = "Sanity checks: all passed" if not failed else f"Sanity checks: {failed} failed"
        if warned:
            head += f", {warned} warning{'s' * (warned > 1)}"
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


# -- the data checks ---------------------------------------------------------------------------
_PART = {"train": "training", "val": "validation"}


def baseline_result(X: Any, y: Any, X_eval: Any = None, y_eval: Any = None, *, loss: Any,
                    part: str = "test", seed: int = 0) -> SanityResult:
    """The ``baseline`` result: :func:`~neuronlab.babysit.baselines.baselines` fitted on
    ``(X, y)`` and scored on ``(X_eval, y_eval)`` (default: on ``(X, y)`` itself, ``part``
    "train"), with the network's ``loss``. PASS (the numbers to beat) unless the data is
    degenerate (FAIL). ``values`` is ``Baselines.to_dict()``.

    Parameters
    ----------
    X, y : array-like
        The training rows (preprocessed, as the network sees them) and their labels.
    X_eval, y_eval : array-like, optional
        The rows to score on; give both or neither.
    loss : Loss
        The network's loss; its ``task`` is the baselines' task.
    part : str, default "test"
        Name of the scored part, used in the text ("train" when ``X_eval`` is None).
    seed : int, default 0
        Seeds the linear baseline's training.

    Returns
    -------
    SanityResult
        Named ``"baseline"``.

    Raises
    ------
    ValueError
        If only one of ``X_eval`` and ``y_eval`` is given.
    """
    from neuronlab.babysit.baselines import baselines

    if (X_eval is None) != (y_eval is None):
        raise ValueError("give both X_eval and y_eval, or neither")
    if X_eval is None:
        X_eval, y_eval, part = X, y, "train"
    b = baselines(X, y, X_eval, y_eval, task=loss.task, loss=loss, seed=seed, part=part)
    if b.degenerate:
        return SanityResult("baseline", "FAIL", b.degenerate, b.to_dict(),
                            "check the training split's labels (targets): a model cannot learn "
                            "from one class or a constant")
    return SanityResult("baseline", "PASS", f"to beat: {b.summary()}", b.to_dict())


def duplicates_result(X: Any, held_out: Mapping[str, tuple[Any, Any]], *,
                      rows: Any = None) -> SanityResult:
    """The ``duplicates`` result: rows of each held-out part that repeat a training row
    exactly (:func:`~neuronlab.babysit.baselines.duplicates_across`).

    Parameters
    ----------
    X : ndarray or np.memmap
        The training rows (with ``rows``: the data they are rows of).
    held_out : mapping name -> (X_part, rows_part)
        Each held-out part ("test", "val"), ``rows_part`` None for all of ``X_part``. Empty
        parts are left out; none left: SKIP.
    rows : array of int, optional
        The training rows of ``X``.

    Returns
    -------
    SanityResult
        Named ``"duplicates"``; ``values`` holds each part's report (``to_dict()``).

    Notes
    -----
    Row numbers in the summary are those of the arrays given. None found: PASS; some: WARN;
    more than :data:`DUPLICATE_FAIL_FRACTION` of a part: FAIL.
    """
    from neuronlab.babysit.baselines import duplicates_across

    parts = {k: v for k, v in held_out.items()
             if (v[0].shape[0] if v[1] is None else len(v[1])) > 0}
    if not parts:
        return SanityResult("duplicates", "SKIP", "no held-out rows given (X_test)")
    reports = {k: duplicates_across(X, Xp, rows_a=rows, rows_b=rp) for k, (Xp, rp) in parts.items()}
    n_train = next(iter(reports.values())).n_a
    values: dict[str, Any] = {k: r.to_dict() for k, r in reports.items()}
    names = {k: _PART.get(k, k) for k in reports}
    if not any(r.n_duplicates for r in reports.values()):
        what = " or ".join(f"{names[k]} row (of {r.n_b})" for k, r in reports.items())
        return SanityResult("duplicates", "PASS",
                            f"no {what} repeats one of the {n_train} training rows", values)
    counts = ", ".join(f"{r.n_duplicates} of {r.n_b} {names[k]} rows ({r.fraction:.1%})"
                       for k, r in reports.items())
    k, r = next((k, r) for k, r in reports.items() if r.n_duplicates)
    a, b = r.examples[0]
    fail = any(r.fraction > DUPLICATE_FAIL_FRACTION for r in reports.values())
    summary = (f"{counts} repeat training rows exactly (e.g. {names[k]} row {b} = training "
               f"row {a})")
    action = ("held-out rows that repeat training rows measure memorisation, not "
              "generalisation: remove them from the held-out parts (deduplicate the data "
              "before splitting)")
    if fail:
        action = (f"more than {DUPLICATE_FAIL_FRACTION:.0%} of a held-out part repeats training "
                  "rows: the split leaks (was the data duplicated or augmented before "
                  "splitting?); " + action)
    return SanityResult("duplicates", "FAIL" if fail else "WARN", summary, values, action)


def conflicts_result(X: Any, y: Any, *, task: str, rows: Any = None) -> SanityResult:
    """The ``conflicts`` result: groups of identical training inputs with different labels
    (:func:`~neuronlab.babysit.baselines.conflicting_labels`; ``rows`` selects the training
    rows of ``X`` and ``y``). Classification and multilabel: none PASS, some WARN, more than
    :data:`CONFLICT_FAIL_FRACTION` of the rows FAIL. Regression: PASS, stating the noise
    floor such groups put on the mean squared error.

    Parameters
    ----------
    X : ndarray or np.memmap of shape (n_samples, n_features, ...)
        Input rows.
    y : array of shape (n_samples,) or (n_samples, n_outputs)
        Class labels, 0/1 attributes or regression targets.
    task : {"classification", "multilabel", "regression"}
        The loss's task.
    rows : array of int, optional
        Examine only these rows (numbered as in ``X`` in the summary).

    Returns
    -------
    SanityResult
        Named ``"conflicts"``; ``values`` is the ``ConflictReport``'s ``to_dict()``.

    Raises
    ------
    ValueError
        If ``task`` is not one of the three.
    """
    from neuronlab.babysit.baselines import conflicting_labels

    c = conflicting_labels(X, y, task=task, rows=rows)
    values = c.to_dict()
    repeats = f"; {c.n_repeated} repeat an earlier row" if c.n_repeated else ""
    regression = task == "regression"
    if not c.n_groups:
        what = "targets" if regression else "labels"
        return SanityResult("conflicts", "PASS", f"no identical training inputs carry different "
                            f"{what} ({c.n_rows} rows{repeats})", values)
    example = (f"e.g. rows {', '.join(map(str, c.groups[0]))} with "
               f"{'targets' if regression else 'labels'} {', '.join(map(str, c.labels[0]))}")
    head = (f"{c.n_groups} group{'s' * (c.n_groups > 1)} of identical training inputs "
            f"({c.n_conflicting_rows} of {c.n_rows} rows, {c.fraction:.1%})")
    if regression:
        return SanityResult("conflicts", "PASS",
                            f"{head} have different targets ({example}): noise that no model "
                            f"fits, a floor of {c.best_possible:.4g} on the training mean "
                            "squared error", values)
    fail = c.fraction > CONFLICT_FAIL_FRACTION
    action = ("identical inputs with different labels are label noise or missing features: "
              "check the labelling of these rows (they can also fail the overfit check)")
    return SanityResult("conflicts", "FAIL" if fail else "WARN",
                        f"{head} carry different labels ({example}): no model can exceed "
                        f"{c.best_possible:.1%} training accuracy", values, action)


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
    X_test: Any = None,
    y_test: Any = None,
    data_checks: bool = True,
) -> SanityReport:
    """Run the four sanity checks of the notes on copies of ``model``, then the three data
    checks (baseline, duplicates, conflicts; see the module docstring).

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
        Seeds the subsets, the gradient check and the linear baseline.
    X_test, y_test : held-out rows, optional
        As the model sees them (preprocessed like X). The baselines are scored on them (on
        the training rows without them) and the duplicates check looks for them among X's
        rows (SKIP without them).
    data_checks : bool, default True
        Add the ``baseline``, ``duplicates`` and ``conflicts`` results. They read every row
        of X (a memmap a chunk at a time) to hash it, and train the linear baseline on at
        most :data:`~neuronlab.babysit.baselines.MAX_ROWS` rows.

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
    if (X_test is None) != (y_test is None):
        raise ValueError("give both X_test and y_test, or neither")
    if X_test is not None:
        X_test = check_array("X_test", X_test, finite=False)
        y_test = np.asarray(y_test)
        if y_test.ndim == 0 or y_test.shape[0] != X_test.shape[0]:
            raise ValueError(f"X_test has {X_test.shape[0]} samples but y_test has shape "
                             f"{y_test.shape}")
        if X_test.shape[1:] != X.shape[1:]:
            raise ValueError(f"X_test rows have shape {X_test.shape[1:]}, X rows {X.shape[1:]}")
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
    results = [
        _check_initial(model, loss, Xl, yl, tol),
        _check_regularization(model, loss, Xl, yl, strength),
        _check_overfit(model, loss, Xo, yo, optimizer, max_steps, 1.0),
        _check_gradients(model, loss, Xg.astype(np.float64), yg, int(rng.integers(2**31))),
    ]
    if data_checks:
        results += [
            baseline_result(X, y, X_test, y_test, loss=loss, seed=seed),
            duplicates_result(X, {} if X_test is None else {"test": (X_test, None)}),
            conflicts_result(X, y, task=loss.task),
        ]
    return SanityReport(results)
