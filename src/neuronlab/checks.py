"""Gradient checking: compare backward against centered finite differences in float64.

The practice follows the notes: the centered formula (error O(h²) rather than O(h)), the
relative error rather than the absolute one, a few sampled entries per parameter, dropout and
noise switched off, and kink crossings (ReLU, hinge, max) told apart from real bugs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuronlab._validation import as_rng, check_array, check_number, check_positive_int
from neuronlab.layers.base import Layer
from neuronlab.layers.sequential import Sequential

__all__ = ["gradcheck", "GradcheckReport", "GradcheckRow", "relative_error", "VERDICTS"]

# Upper edges of the notes' bands, checked in this order: e < 1e-7 "ok"; e < 1e-4 "look";
# e < 1e-2 "suspicious"; anything else (including NaN) "wrong".
VERDICTS: tuple[tuple[str, float], ...] = (("ok", 1e-7), ("look", 1e-4), ("suspicious", 1e-2))

# Both gradients below this magnitude count as agreeing (relative error 0, not 0/0 = NaN).
TINY = 1e-12

# float64 machine epsilon: each evaluation of f carries a roundoff of about EPS·|f|, so the
# centered difference carries about EPS·|f| / h (2e-11 for |f| ≈ 1 and h = 1e-5).
EPS = float(np.finfo(np.float64).eps)

_ADVICE = {
    "look": "worth a look: fine only if the objective has kinks there; otherwise",
    "suspicious": "suspicious: probably a bug;",
    "wrong": "wrong: the analytic gradient disagrees;",
}


def relative_error(analytic: Any, numerical: Any, *, floor: float = 0.0, tiny: float = TINY) -> np.ndarray:
    """Elementwise relative error ``|a - n| / max(|a|, |n|, floor)``.

    Where both ``|a|`` and ``|n|`` are below ``tiny`` the error is 0 (there is nothing to
    compare, and 0/0 would be NaN). ``floor`` (default 0: the notes' plain formula) keeps
    gradients at the roundoff level of the numerical estimate from looking like bugs:
    :func:`gradcheck` sets it so that a difference within roundoff stays below 1e-7.

    Parameters
    ----------
    analytic, numerical : array_like of the same shape
    floor : float >= 0, default 0.0
    tiny : float >= 0, default 1e-12

    Returns
    -------
    ndarray of float64, same shape (0-d for scalars)
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"analytic has shape {a.shape} but numerical has shape {n.shape}")
    floor = check_number("floor", floor, low=0)
    tiny = check_number("tiny", tiny, low=0)
    scale = np.maximum(np.abs(a), np.abs(n))
    small = scale < tiny
    # np.where evaluates both branches, so divide by a safe denominator where both are tiny.
    return np.where(small, 0.0, np.abs(a - n) / np.where(small, 1.0, np.maximum(scale, floor)))


def verdict_for(error: float) -> str:
    """The notes' band for a maximum relative error (see :data:`VERDICTS`)."""
    for name, upper in VERDICTS:
        if error < upper:  # False for NaN, which therefore lands on "wrong"
            return name
    return "wrong"


@dataclass(frozen=True)
class GradcheckRow:
    """One checked array: its name, shape, how many entries were compared, how many of them
    straddled a kink (excluded from ``max_error``), the largest relative error and its verdict.
    ``verdict`` is "kink" when every checked entry straddled a kink (nothing verified)."""

    name: str
    shape: tuple[int, ...]
    checked: int
    kinks: int
    max_error: float
    verdict: str
    where: str

    @property
    def failed(self) -> bool:
        return self.verdict not in ("ok", "kink")

    def advice(self) -> str:
        """One line saying what is wrong and where to look (empty when the row passed)."""
        if not self.failed:
            return ""
        return f"{self.name}: max rel error {self.max_error:.1e} — {_ADVICE[self.verdict]} check {self.where}"


@dataclass(frozen=True)
class GradcheckReport:
    """Result of :func:`gradcheck`: one :class:`GradcheckRow` per checked array.

    ``passed`` is True when every row is "ok" (entries at kinks excluded; a row whose entries
    all straddled kinks does not fail). ``str(report)`` is a table with a verdict line and
    advice for every failing row.
    """

    rows: list[GradcheckRow]
    target: str
    eps: float
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(r.failed for r in self.rows)

    @property
    def max_error(self) -> float:
        """Largest relative error over all rows (kink entries excluded)."""
        return max((r.max_error for r in self.rows), default=0.0)

    @property
    def kinks(self) -> int:
        return sum(r.kinks for r in self.rows)

    def __getitem__(self, name: str) -> GradcheckRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row {name!r}; rows are {[r.name for r in self.rows]}")

    def __str__(self) -> str:
        w = max([len("name"), *(len(r.name) for r in self.rows)])
        head = f"{'name':<{w}}  {'shape':<14}{'checked':>8}{'kinks':>7}{'max rel err':>13}  verdict"
        lines = [f"gradcheck of {self.target} (float64, centered differences, h={self.eps:g})", head]
        lines.append("-" * len(head))
        for r in self.rows:
            lines.append(
                f"{r.name:<{w}}  {str(r.shape):<14}{r.checked:>8}{r.kinks:>7}{r.max_error:>13.1e}  {r.verdict}"
            )
        lines.append("-" * len(head))
        skipped = f" ({self.kinks} entries straddled a kink and were skipped)" if self.kinks else ""
        bad = [r for r in self.rows if r.failed]
        if not bad:
            lines.append(f"PASSED: every checked entry has relative error < {VERDICTS[0][1]:g}{skipped}.")
        else:
            lines.append(f"FAILED: {len(bad)} of {len(self.rows)} arrays disagree{skipped}.")
            lines.extend(r.advice() for r in bad)
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"GradcheckReport(passed={self.passed}, max_error={self.max_error:.2e}, rows={len(self.rows)})"


# -- the objective ----------------------------------------------------------------------------
def _is_loss(obj: Any) -> bool:
    return (not isinstance(obj, (Layer, Sequential))
            and callable(getattr(obj, "forward", None)) and callable(getattr(obj, "backward", None)))


def _float64_copy(obj: Any) -> Any:
    """Deep copy ``obj`` and convert its arrays to float64 (the user's object is untouched)."""
    c = copy.deepcopy(obj)
    if callable(getattr(c, "astype", None)):
        c.astype(np.float64)
    return c


class _Problem:
    """A scalar objective of (params, x) with its analytic gradient, on float64 copies.

    ``value(x)`` evaluates the objective; ``analytic(x, want_x)`` returns the gradients by
    dotted name and dL/dx; ``arrays()`` yields (name, array, where-to-look) for every param.
    """

    def __init__(self, target: Any, loss: Any, y: Any, regularizer: Any, rng: np.random.Generator) -> None:
        self.y = y
        self.regularizer = regularizer
        self.rng = rng
        self.loss = None if loss is None else _float64_copy(loss)
        self.model: Any = None
        self.layers: list[tuple[str, Layer]] = []
        self.R: np.ndarray | None = None  # fixed random output weights when there is no loss
        self.data_grads: dict[str, np.ndarray] = {}  # gradients before the regulariser's part
        if isinstance(target, Sequential):
            self.model = _float64_copy(target)
            self.layers = [(f"{i}.", layer) for i, layer in enumerate(self.model.layers)]
        elif isinstance(target, Layer):
            self.model = _float64_copy(target)
            self.layers = [("", self.model)]
        for _, layer in self.layers:
            # The notes: remove dropout / augmentation, or f is not a function of w at all.
            if layer.stochastic:
                layer.noise_off = True

    def arrays(self) -> list[tuple[str, np.ndarray, str]]:
        out = []
        for prefix, layer in self.layers:
            where = f"backward of layer {prefix[:-1]} ({type(layer).__name__})" if prefix else \
                f"backward of {type(layer).__name__}"
            for k, v in layer.params.items():
                if self.regularizer is not None and k in layer.weight_names:
                    w = f"{where} or the regularizer's add_grad"
                else:
                    w = where
                out.append((f"{prefix}{k}", v, w))
        return out

    def _scores(self, x: np.ndarray) -> np.ndarray:
        if self.model is None:  # the target is the loss: x are the scores
            return x
        # training=True: batch norm uses batch statistics, which is deterministic for a batch.
        return self.model.forward(x, training=True)

    def value(self, x: np.ndarray) -> tuple[float, float]:
        """The data term and the regulariser term of the objective, kept apart: differencing
        them separately stops a large penalty from drowning the data term's difference in
        roundoff (and the penalty's difference is exactly 0 when x is perturbed)."""
        out = self._scores(x)
        if self.loss is None:
            return float(np.sum(out * self.R)), 0.0
        reg = 0.0 if self.regularizer is None else float(self.regularizer.loss(self.model))
        return float(self.loss.forward(out, self.y)), reg

    def analytic(self, x: np.ndarray, want_x: bool) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        if self.model is not None:
            self.model.zero_grad()
        out = self._scores(x)
        if self.loss is None:
            self.R = self.rng.standard_normal(out.shape)
            dout = self.R
        else:
            self.loss.forward(out, self.y)
            dout = np.asarray(self.loss.backward(), dtype=np.float64)
        if self.model is None:
            return {}, np.array(dout, dtype=np.float64)
        dx = self.model.backward(dout, input_grad=want_x)
        grads = {f"{p}{k}": g for p, layer in self.layers for k, g in layer.grads.items()}
        if self.regularizer is not None:
            self.data_grads = {k: g.copy() for k, g in grads.items()}
            self.regularizer.add_grad(self.model)
        # Copies: layers may reuse these buffers in the forward passes that follow.
        grads = {k: np.array(g, dtype=np.float64) for k, g in grads.items()}
        return grads, None if dx is None else np.array(dx, dtype=np.float64)

    def kink_states(self) -> list[np.ndarray | None]:
        owners: list[Any] = [layer for _, layer in self.layers]
        if self.loss is not None:
            owners.append(self.loss)
        states = []
        for o in owners:
            s = o.kink_state() if callable(getattr(o, "kink_state", None)) else None
            # Copy: a layer may hand back a view of a buffer the next forward overwrites.
            states.append(None if s is None else np.array(s, copy=True))
        return states


def _same_states(a: list[np.ndarray | None], b: list[np.ndarray | None]) -> bool:
    for s, t in zip(a, b, strict=True):
        if (s is None) != (t is None):
            return False
        if s is not None and (s.shape != t.shape or not np.array_equal(s, t)):
            return False
    return True


def _validate_target(target: Any, loss: Any, regularizer: Any) -> str:
    """Check the combination of arguments; return a description of the objective."""
    if _is_loss(target):
        if loss is not None:
            raise ValueError(f"loss must be None when target is itself a loss, got {type(loss).__name__}")
        if regularizer is not None:
            raise ValueError("regularizer needs a Sequential target; target is a loss")
        return type(target).__name__
    if not isinstance(target, (Layer, Sequential)):
        raise TypeError(f"target must be a Layer, a Sequential or a loss, got {type(target).__name__}")
    desc = type(target).__name__
    if loss is not None:
        if not _is_loss(loss):
            raise TypeError(f"loss must have forward(scores, y) and backward(), got {type(loss).__name__}")
        desc += f" + {type(loss).__name__}"
    elif isinstance(target, Sequential):
        raise ValueError("a Sequential target needs a loss: gradcheck(model, loss, x, y)")
    if regularizer is not None:
        if not isinstance(target, Sequential):
            raise ValueError("regularizer needs a Sequential target (it acts on model.weight_keys)")
        if not (callable(getattr(regularizer, "loss", None)) and callable(getattr(regularizer, "add_grad", None))):
            raise TypeError(f"regularizer must have loss(model) and add_grad(model), got {type(regularizer).__name__}")
        desc += f" + {type(regularizer).__name__}"
    return desc


def _check_entries(problem: _Problem, x: np.ndarray, arr: np.ndarray, analytic: np.ndarray,
                   idx: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Centered differences at flat indices ``idx`` of ``arr`` (perturbed in place and restored).
    Returns the relative errors and a mask of entries whose kink state changed."""
    errors = np.empty(idx.size)
    kinked = np.zeros(idx.size, dtype=bool)
    for j, flat in enumerate(idx):
        pos = np.unravel_index(int(flat), arr.shape)
        old = arr[pos]
        arr[pos] = old + eps
        f_plus = problem.value(x)
        s_plus = problem.kink_states()
        arr[pos] = old - eps
        f_minus = problem.value(x)
        s_minus = problem.kink_states()
        arr[pos] = old
        numerical = ((f_plus[0] - f_minus[0]) + (f_plus[1] - f_minus[1])) / (2.0 * eps)
        errors[j] = relative_error(analytic[pos], numerical, floor=_floor(f_plus, f_minus, eps))
        kinked[j] = not _same_states(s_plus, s_minus)
    return errors, kinked


def _floor(f_plus: tuple[float, float], f_minus: tuple[float, float], eps: float) -> float:
    """Denominator floor of the relative error: the roundoff of the centered difference,
    ``EPS·scale / h`` (scale: the magnitude of each part of f that changed, at least 1),
    divided by the "ok" bound, so that a disagreement within roundoff always reads "ok"."""
    scale = sum(max(1.0, abs(p), abs(m)) for p, m in zip(f_plus, f_minus, strict=True) if p != m)
    return EPS * max(scale, 1.0) / eps / VERDICTS[0][1]


def _row(name: str, shape: tuple[int, ...], errors: np.ndarray, kinked: np.ndarray, where: str) -> GradcheckRow:
    clean = errors[~kinked]  # the reported arrays are at most max_entries long: no hot path
    if clean.size == 0:
        return GradcheckRow(name, shape, errors.size, int(kinked.sum()), 0.0, "kink", where)
    worst = float(np.max(clean)) if not np.isnan(clean).any() else float("nan")
    return GradcheckRow(name, shape, errors.size, int(kinked.sum()), worst, verdict_for(worst), where)


def gradcheck(
    target: Any,
    loss: Any = None,
    x: np.ndarray | None = None,
    y: Any = None,
    *,
    regularizer: Any = None,
    eps: float = 1e-5,
    max_entries: int = 10,
    seed: int | np.random.Generator | None = 0,
    check_input: bool = True,
) -> GradcheckReport:
    """Compare analytic gradients with centered finite differences, in float64.

    Numerical gradient: ``(f(w + h) - f(w - h)) / 2h`` with ``h = eps``. Relative error:
    ``|a - n| / max(|a|, |n|)``, 0 where both are below 1e-12 (see :func:`relative_error`).
    The verdict of an array comes from its largest relative error ``e`` over entries that did
    not straddle a kink: ``e < 1e-7`` "ok"; ``1e-7 <= e < 1e-4`` "look" (acceptable only for
    objectives with kinks); ``1e-4 <= e < 1e-2`` "suspicious"; ``e >= 1e-2`` or NaN "wrong".
    ``report.passed`` requires "ok" everywhere. An entry straddles a kink when the
    ``kink_state()`` of any layer or of the loss differs between the ``w + h`` and the ``w - h``
    evaluation; it is counted in the row's ``kinks`` instead of its error.

    Parameters
    ----------
    target : Layer, Sequential or loss
        * ``Layer``: objective ``sum(layer.forward(x) * R)`` with a fixed standard-normal ``R``
          of the output's shape (or ``loss(layer.forward(x), y)`` when ``loss`` is given).
        * loss (an object with ``forward(scores, y)`` and ``backward()``): checks dL/dscores at
          ``x`` (the scores) with targets ``y``.
        * ``Sequential``: objective ``loss.forward(model.forward(x), y) + regularizer.loss(model)``;
          analytic gradient ``model.backward(loss.backward())`` plus ``regularizer.add_grad``.
    loss : loss object, optional
        Required for a Sequential; must be None when ``target`` is a loss.
    x : ndarray of shape (n_samples, ...)
        Inputs (scores of shape (n_samples, n_classes) for a loss target). Cast to float64.
        Keep it small: every checked entry costs two forward passes.
    y : array_like, optional
        Targets for the loss.
    regularizer : object with ``loss(model)`` and ``add_grad(model)``, optional
        Only with a Sequential target.
    eps : float, default 1e-5
        The step h. Too small loses precision to roundoff (the notes' warning).
    max_entries : int, default 10
        Arrays with more entries are checked at this many entries drawn without replacement
        (seeded); smaller arrays are checked in full.
    seed : int, Generator or None, default 0
        Seeds ``R`` and the sampled entries.
    check_input : bool, default True
        Also check dL/dx (row ``"x"``; ``"scores"`` for a loss).

    Returns
    -------
    GradcheckReport

    Notes
    -----
    The target is deep-copied and converted to float64, so the caller's object (and its
    cached state) is never changed. Dropout and noise are switched off (``noise_off = True``)
    and layers run with ``training=True`` (batch norm uses the batch statistics, which is
    deterministic). Use few samples: fewer samples, fewer kinks to cross.
    """
    eps = check_number("eps", eps, low=0, low_inclusive=False)
    max_entries = check_positive_int("max_entries", max_entries)
    if not isinstance(check_input, (bool, np.bool_)):
        raise TypeError(f"check_input must be a bool, got {type(check_input).__name__}: {check_input!r}")
    # Child streams, not the seed's own: R drawn from default_rng(seed) would repeat a user's
    # x = default_rng(seed).standard_normal(...) and can make the check degenerate (R ∝ x).
    r_rng, rng = as_rng(seed).spawn(2)
    desc = _validate_target(target, loss, regularizer)
    as_loss = _is_loss(target)
    if x is None:
        raise ValueError("x is required: the inputs (or, for a loss target, the scores) to check at")
    check_array("x", x, min_ndim=1 if as_loss else 2)
    x64 = np.array(x, dtype=np.float64)  # our own copy: the input row perturbs it in place

    problem = _Problem(None if as_loss else target, target if as_loss else loss, y, regularizer, r_rng)
    grads, dx = problem.analytic(x64, bool(check_input) or as_loss)
    rows: list[GradcheckRow] = []
    for name, arr, where in problem.arrays():
        errors, kinked = _check_entries(problem, x64, arr, grads[name], _sample(arr.size, max_entries, rng), eps)
        rows.append(_row(name, arr.shape, errors, kinked, where))
    if check_input:
        x_name = "scores" if as_loss else "x"
        if dx is None or dx.shape != x64.shape:
            got = None if dx is None else dx.shape
            raise ValueError(f"backward returned dL/d{x_name} of shape {got}, expected {x64.shape}")
        if as_loss:
            where = f"backward of {desc} (dL/dscores)"
        elif isinstance(target, Sequential):
            where = f"the dL/dx that backward returns (layer 0 ({type(target.layers[0]).__name__}) first)"
        else:
            where = f"the dL/dx that {desc.split(' ')[0]}.backward returns"
        errors, kinked = _check_entries(problem, x64, x64, dx, _sample(x64.size, max_entries, rng), eps)
        rows.append(_row(x_name, x64.shape, errors, kinked, where))
    if not rows:
        raise ValueError(f"nothing to check: {desc} has no parameters and check_input is False")
    return GradcheckReport(rows, desc, eps, _notes(problem, grads))


def _sample(size: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if size <= k:
        return np.arange(size)
    return np.sort(rng.choice(size, size=k, replace=False))


def _notes(problem: _Problem, grads: dict[str, np.ndarray]) -> list[str]:
    """The notes' warning: a regulariser that dominates a gradient can hide a backprop bug."""
    notes = []
    for name, data in problem.data_grads.items():
        rn = float(np.linalg.norm(grads[name] - data))
        dn = float(np.linalg.norm(data))
        if rn > 10 * dn:
            notes.append(f"the regularizer dominates the gradient of {name} ({rn:.2g} vs {dn:.2g}); "
                         "a backprop bug could hide behind it: check again with regularizer=None")
    return notes
