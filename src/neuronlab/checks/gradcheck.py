"""Gradient checking: compare backward against centered finite differences in float64.

The practice follows the notes: the centered formula (error O(h²) rather than O(h)), the
relative error rather than the absolute one, a few sampled entries per parameter, dropout and
noise switched off, and kink crossings (ReLU, hinge, max) told apart from real bugs.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from neuronlab._validation import as_rng, check_array, check_number, check_positive_int
from neuronlab.checks.report import (
    EPS,
    GRADCHECK_BANDS,
    ROUNDOFF_ULPS,
    GradcheckReport,
    GradcheckRow,
    relative_error,
    verdict_for,
)
from neuronlab.layers.base import Layer
from neuronlab.layers.sequential import Sequential

__all__ = ["gradcheck"]


# -- the objective ----------------------------------------------------------------------------
def _is_loss(obj: Any) -> bool:
    return not isinstance(obj, (Layer, Sequential)) and all(
        callable(getattr(obj, m, None)) for m in ("forward", "backward"))


def _float64_copy(obj: Any) -> Any:
    """Deep copy ``obj`` and convert its arrays to float64 (the user's object is untouched)."""
    c = copy.deepcopy(obj)
    if callable(getattr(c, "astype", None)):
        c.astype(np.float64)
    return c


def _describe(target: Any, loss: Any, regularizer: Any) -> str:
    """Check how the arguments combine; return a description of the objective."""
    if _is_loss(target):
        if loss is not None:
            raise ValueError(f"loss must be None when target is itself a loss, got {loss!r}")
        if regularizer is not None:
            raise ValueError("regularizer needs a Sequential target; target is a loss")
        return type(target).__name__
    if not isinstance(target, (Layer, Sequential)):
        raise TypeError("target must be a Layer, a Sequential or a loss, "
                        f"got {type(target).__name__}")
    desc = type(target).__name__
    if loss is not None:
        if not _is_loss(loss):
            raise TypeError("loss must have forward(scores, y) and backward(), "
                            f"got {type(loss).__name__}")
        desc += f" + {type(loss).__name__}"
    elif isinstance(target, Sequential):
        raise ValueError("a Sequential target needs a loss: gradcheck(model, loss, x, y)")
    if regularizer is not None:
        if not isinstance(target, Sequential):
            raise ValueError("regularizer needs a Sequential target (it acts on model.weight_keys)")
        if not all(callable(getattr(regularizer, m, None)) for m in ("loss", "add_grad")):
            raise TypeError("regularizer must have loss(model) and add_grad(model), "
                            f"got {type(regularizer).__name__}")
        desc += f" + {type(regularizer).__name__}"
    return desc


class _Problem:
    """The objective and its analytic gradient, on float64 copies of the target and loss.

    ``model`` is None when the target is a loss (then x are the scores). Without a loss the
    objective is ``sum(out * R)`` for a fixed random ``R``.
    """

    def __init__(self, model: Any, loss: Any, y: Any, regularizer: Any,
                 rng: np.random.Generator) -> None:
        self.model = None if model is None else _float64_copy(model)
        self.loss = None if loss is None else _float64_copy(loss)
        self.y, self.regularizer, self.rng = y, regularizer, rng
        self.R: np.ndarray | None = None
        self.data_grads: dict[str, np.ndarray] = {}  # gradients before the regulariser's part
        if isinstance(self.model, Sequential):
            self.layers = [(f"{i}.", layer) for i, layer in enumerate(self.model.layers)]
        else:
            self.layers = [] if self.model is None else [("", self.model)]
        for _, layer in self.layers:
            # The notes: remove dropout / augmentation, or f is not a function of w at all.
            if layer.stochastic:
                layer.noise_off = True

    def arrays(self) -> list[tuple[str, np.ndarray, str]]:
        """(dotted name, the layer's own param array, where to look if it fails)."""
        out = []
        for prefix, layer in self.layers:
            cls = type(layer).__name__
            where = f"backward of layer {prefix[:-1]} ({cls})" if prefix else f"backward of {cls}"
            for k, v in layer.params.items():
                reg = self.regularizer is not None and k in layer.weight_names
                also = " or the regularizer's add_grad" if reg else ""
                out.append((f"{prefix}{k}", v, where + also))
        return out

    def _scores(self, x: np.ndarray) -> np.ndarray:
        # training=True: batch norm uses the batch statistics, deterministic for a fixed batch.
        return x if self.model is None else self.model.forward(x, training=True)

    def value(self, x: np.ndarray) -> tuple[float, float]:
        """The data term and the regulariser term of f, kept apart: differencing them one by
        one stops a large penalty from drowning the data term's difference in roundoff (and
        the penalty's difference is exactly 0 when x is perturbed)."""
        out = self._scores(x)
        if self.loss is None:
            return float(np.sum(out * self.R)), 0.0
        reg = 0.0 if self.regularizer is None else float(self.regularizer.loss(self.model))
        return float(self.loss.forward(out, self.y)), reg

    def analytic(self, x: np.ndarray, want_x: bool) -> tuple[dict[str, np.ndarray], Any]:
        """Gradients by dotted name and dL/dx (None if backward skipped it), as float64 copies:
        layers may reuse their buffers in the forward passes that follow."""
        if self.model is not None:
            self.model.zero_grad()
        out = self._scores(x)
        if self.loss is None:
            self.R = dout = self.rng.standard_normal(out.shape)
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
        grads = {k: np.array(g, dtype=np.float64) for k, g in grads.items()}
        return grads, None if dx is None else np.array(dx, dtype=np.float64)

    def kink_states(self) -> list[np.ndarray | None]:
        """``kink_state()`` of every layer and of the loss, copied: a layer may hand back a
        view of a buffer that the next forward overwrites."""
        owners = [layer for _, layer in self.layers] + [self.loss]
        states = [getattr(o, "kink_state", lambda: None)() for o in owners]
        return [None if st is None else np.array(st, copy=True) for st in states]


def _same_states(a: list[np.ndarray | None], b: list[np.ndarray | None]) -> bool:
    # array_equal is False for different shapes; None only equals None.
    return all((s is None and t is None)
               or (s is not None and t is not None and np.array_equal(s, t))
               for s, t in zip(a, b, strict=True))


def _floor(f_plus: tuple[float, float], f_minus: tuple[float, float], eps: float) -> float:
    """Denominator floor of the relative error: the roundoff bound of the centered difference
    (see ROUNDOFF_ULPS; scale sums the parts of f that changed) divided by the "ok" bound, so
    a disagreement within roundoff always reads "ok" while a larger one still shows. For
    |f| ≈ 1 and h = 1e-5 the floor is 1.1e-3: an absolute error of 1e-6 reads at least
    1e-6 / max(|a|, 1.1e-3), far above 1e-7."""
    scale = sum(max(1.0, abs(p), abs(m)) for p, m in zip(f_plus, f_minus, strict=True) if p != m)
    return ROUNDOFF_ULPS * EPS * max(scale, 1.0) / (2.0 * eps) / GRADCHECK_BANDS[0][1]


def _check_entries(problem: _Problem, x: np.ndarray, arr: np.ndarray, analytic: np.ndarray,
                   idx: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Centered differences at flat indices ``idx`` of ``arr`` (perturbed in place, then
    restored). Returns the relative errors and whether each entry straddled a kink."""
    errors = np.empty(idx.size)
    kinked = np.zeros(idx.size, dtype=bool)
    for j, flat in enumerate(idx):
        pos = np.unravel_index(int(flat), arr.shape)
        old = arr[pos]
        arr[pos] = old + eps
        f_plus, s_plus = problem.value(x), problem.kink_states()
        arr[pos] = old - eps
        f_minus, s_minus = problem.value(x), problem.kink_states()
        arr[pos] = old
        numerical = ((f_plus[0] - f_minus[0]) + (f_plus[1] - f_minus[1])) / (2.0 * eps)
        errors[j] = relative_error(analytic[pos], numerical, floor=_floor(f_plus, f_minus, eps))
        kinked[j] = not _same_states(s_plus, s_minus)
    return errors, kinked


def _row(name: str, shape: tuple[int, ...], errors: np.ndarray, kinked: np.ndarray,
         where: str) -> GradcheckRow:
    clean = errors[~kinked]  # at most max_entries values, once per check: not a hot path
    n_kinks = int(kinked.sum())
    if clean.size == 0:
        return GradcheckRow(name, shape, errors.size, n_kinks, 0.0, "kink", where)
    worst = float("nan") if np.isnan(clean).any() else float(clean.max())
    return GradcheckRow(name, shape, errors.size, n_kinks, worst, verdict_for(worst), where)


def _sample(size: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(size) if size <= k else np.sort(rng.choice(size, size=k, replace=False))


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

    Numerical gradient ``n = (f(w + h) - f(w - h)) / 2h`` with ``h = eps``; relative error
    ``|a - n| / max(|a|, |n|, floor)``, 0 where both are below 1e-12 (see
    :func:`relative_error`). ``floor`` is the roundoff bound of ``n``
    (``10·2.2e-16·max(1, |f|) / 2h``) divided by 1e-7, so gradients at roundoff level (a
    bias right before batch norm has gradient 0) do not fail.
    An array's verdict comes from its largest error ``e`` over entries that did not straddle
    a kink: ``e < 1e-7`` "ok"; ``1e-7 <= e < 1e-4`` "look" (acceptable only for objectives
    with kinks); ``1e-4 <= e < 1e-2`` "suspicious"; ``e >= 1e-2`` or NaN "wrong"; "kink" when
    every checked entry straddled one. ``report.passed`` requires "ok" (or "kink") everywhere.
    An entry straddles a kink when the ``kink_state()`` of any layer or of the loss differs
    between the ``w + h`` and the ``w - h`` evaluations; it counts in ``kinks``, not in errors.

    Parameters
    ----------
    target : Layer, Sequential or loss
        * ``Layer``: f = ``sum(layer.forward(x) * R)`` with a fixed standard-normal ``R`` of
          the output's shape (or ``loss.forward(layer.forward(x), y)`` when ``loss`` is given).
        * loss (any object with ``forward(scores, y)`` and ``backward()``): checks dL/dscores
          at ``x`` (the scores) with targets ``y``.
        * ``Sequential``: f = ``loss.forward(model.forward(x), y) + regularizer.loss(model)``;
          analytic gradient ``model.backward(loss.backward())`` plus ``regularizer.add_grad``.
    loss : loss object, optional
        Required for a Sequential; must be None when ``target`` is a loss.
    x : ndarray of shape (n_samples, ...)
        Inputs (for a loss target, scores of shape (n_samples, n_outputs) or (n_samples,)).
        Keep it small: every checked entry costs two forward passes.
    y : array_like, optional
        Targets for the loss.
    regularizer : object with ``loss(model)`` and ``add_grad(model)``, optional
        Only with a Sequential target.
    eps : float > 0, default 1e-5
        The step h. Too small loses precision to roundoff (the notes' warning).
    max_entries : int > 0, default 10
        Arrays with more entries are checked at this many entries drawn without replacement
        (seeded); smaller arrays are checked in full.
    seed : int, Generator or None, default 0
        Seeds ``R`` and the sampled entries.
    check_input : bool, default True
        Also check dL/dx (row ``"x"``; ``"scores"`` for a loss target).

    Returns
    -------
    GradcheckReport

    Notes
    -----
    The target and loss are deep-copied and converted to float64: the caller's objects are
    never changed. Dropout and noise are switched off (``noise_off = True``) and layers run
    with ``training=True`` (batch norm uses batch statistics: deterministic). Use few
    samples: fewer samples, fewer kinks to cross.
    """
    eps = check_number("eps", eps, low=0, low_inclusive=False)
    max_entries = check_positive_int("max_entries", max_entries)
    if not isinstance(check_input, (bool, np.bool_)):
        raise TypeError(f"check_input must be a bool, got {type(check_input).__name__}: "
                        f"{check_input!r}")
    # Child streams, not the seed's own: R drawn from default_rng(seed) would repeat a user's
    # x = default_rng(seed).standard_normal(...), and R ∝ x can make the check degenerate.
    r_rng, rng = as_rng(seed).spawn(2)
    desc = _describe(target, loss, regularizer)
    as_loss = _is_loss(target)
    if x is None:
        raise ValueError("x is required: the inputs (for a loss target, the scores) to check at")
    check_array("x", x, min_ndim=1 if as_loss else 2)
    x64 = np.array(x, dtype=np.float64)  # our own copy: the input row perturbs it in place

    model, loss = (None, target) if as_loss else (target, loss)
    problem = _Problem(model, loss, y, regularizer, r_rng)
    grads, dx = problem.analytic(x64, bool(check_input) or as_loss)
    rows = []
    for name, arr, where in problem.arrays():
        idx = _sample(arr.size, max_entries, rng)
        errors, kinked = _check_entries(problem, x64, arr, grads[name], idx, eps)
        rows.append(_row(name, arr.shape, errors, kinked, where))
    if check_input:
        x_name = "scores" if as_loss else "x"
        if dx is None or dx.shape != x64.shape:
            got = None if dx is None else dx.shape
            raise ValueError(f"backward returned dL/d{x_name} of shape {got}, expected {x64.shape}")
        if as_loss:
            where = f"backward of {desc} (dL/dscores)"
        elif isinstance(target, Sequential):
            where = f"the dL/dx that backward returns (layer 0 ({type(target[0]).__name__}) first)"
        else:
            where = f"the dL/dx that {type(target).__name__}.backward returns"
        idx = _sample(x64.size, max_entries, rng)
        errors, kinked = _check_entries(problem, x64, x64, dx, idx, eps)
        rows.append(_row(x_name, x64.shape, errors, kinked, where))
    if not rows:
        raise ValueError(f"nothing to check: {desc} has no parameters and check_input is False")
    return GradcheckReport(rows, desc, eps, _notes(problem, grads))


def _notes(problem: _Problem, grads: dict[str, np.ndarray]) -> list[str]:
    """The notes' warning: a regulariser that dominates a gradient can hide a backprop bug."""
    notes = []
    for name, data in problem.data_grads.items():
        rn, dn = float(np.linalg.norm(grads[name] - data)), float(np.linalg.norm(data))
        if rn > 10 * dn:
            notes.append(f"the regularizer dominates the gradient of {name} "
                         f"({rn:.2g} vs {dn:.2g}); a backprop bug could hide behind it: "
                         "check again with regularizer=None")
    return notes
