"""The gradient check's verdicts and its readable per-parameter report (the notes' bands)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuronlab._validation import check_number

__all__ = ["GRADCHECK_BANDS", "GradcheckReport", "GradcheckRow", "relative_error", "verdict_for"]

# Upper edges of the notes' bands, tried in order: e < 1e-7 "ok"; e < 1e-4 "look";
# e < 1e-2 "suspicious"; anything else (NaN included) "wrong".
GRADCHECK_BANDS: tuple[tuple[str, float], ...] = (
    ("ok", 1e-7), ("look", 1e-4), ("suspicious", 1e-2))

# Both gradients below this magnitude count as agreeing (error 0 rather than 0/0 = NaN).
TINY = 1e-12

# An evaluation of f in float64 is a long sum of rounded terms: allow ROUNDOFF_ULPS units in
# the last place of max(1, |f|), so the centered difference is off by up to
# ROUNDOFF_ULPS·EPS·max(1, |f|) / 2h, about 1e-10 for |f| ≈ 1 and h = 1e-5. (One ulp was
# measured too tight: batch-norm networks showed errors of 1.5e-11 against 1.1e-11.)
EPS = float(np.finfo(np.float64).eps)
ROUNDOFF_ULPS = 10

_ADVICE = {
    "look": "worth a look: fine only if the objective has kinks there; otherwise",
    "suspicious": "suspicious: probably a bug;",
    "wrong": "wrong: the analytic gradient disagrees;",
}


def relative_error(analytic: Any, numerical: Any, *, floor: float = 0.0,
                   tiny: float = TINY) -> np.ndarray:
    """Elementwise relative error ``|a - n| / max(|a|, |n|, floor)``.

    Where both ``|a|`` and ``|n|`` are below ``tiny`` the error is 0: there is nothing to
    compare, and 0/0 would be NaN. ``floor`` (default 0, the notes' plain formula) stops a
    gradient at the roundoff level of the numerical estimate from looking like a bug.

    Parameters
    ----------
    analytic, numerical : array_like of the same shape
    floor : float >= 0, default 0.0
    tiny : float >= 0, default 1e-12

    Returns
    -------
    ndarray of float64 with the inputs' shape (0-d for scalars)
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"analytic has shape {a.shape} but numerical has shape {n.shape}")
    floor = check_number("floor", floor, low=0)
    tiny = check_number("tiny", tiny, low=0)
    scale = np.maximum(np.abs(a), np.abs(n))
    small = scale < tiny
    # np.where evaluates both branches: divide by a safe denominator where both are tiny.
    return np.where(small, 0.0, np.abs(a - n) / np.where(small, 1.0, np.maximum(scale, floor)))


def verdict_for(error: float) -> str:
    """The notes' band for a maximum relative error (see ``GRADCHECK_BANDS``)."""
    for name, upper in GRADCHECK_BANDS:
        if error < upper:  # False for NaN, which therefore lands on "wrong"
            return name
    return "wrong"


@dataclass(frozen=True)
class GradcheckRow:
    """One checked array of a gradient check (a row of :class:`GradcheckReport`).

    Attributes
    ----------
    name : str
        The array: a parameter's dotted name (``"0.W"``), ``"x"`` for the input or
        ``"scores"`` for a loss's input.
    shape : tuple of int
        The array's shape.
    checked : int
        Entries compared.
    kinks : int
        Entries that straddled a kink (left out of ``max_error``).
    max_error : float
        The largest relative error over the other entries (NaN if any is NaN).
    verdict : {"ok", "look", "suspicious", "wrong", "kink"}
        The notes' band of ``max_error`` (:func:`verdict_for`); "kink" when every checked
        entry straddled a kink (nothing verified).
    where : str
        Where to look when the row fails (the code that computes this gradient).
    """

    name: str
    shape: tuple[int, ...]
    checked: int
    kinks: int
    max_error: float
    verdict: str
    where: str

    @property
    def failed(self) -> bool:
        """True for a verdict other than "ok" and "kink"."""
        return self.verdict not in ("ok", "kink")

    def advice(self) -> str:
        """One line saying what is wrong and where to look (empty when the row passed)."""
        if not self.failed:
            return ""
        return (f"{self.name}: max rel error {self.max_error:.1e} — {_ADVICE[self.verdict]} "
                f"check {self.where}")


@dataclass(frozen=True)
class GradcheckReport:
    """Result of :func:`gradcheck`: one :class:`GradcheckRow` per checked array
    (``report["0.W"]`` picks one, a KeyError naming the rows if there is none). ``passed``
    is True when no row failed, i.e. every row is "ok" or "kink". ``str(report)`` is a
    table, a verdict line and advice per failing row.

    Attributes
    ----------
    rows : list of GradcheckRow
        One per checked array, parameters first, then the input.
    target : str
        What was checked, e.g. ``"Sequential + SoftmaxCrossEntropy"``.
    eps : float
        The finite-difference step h.
    notes : list of str
        Remarks printed under the table.

    Examples
    --------
    >>> import numpy as np
    >>> from neuronlab.checks import gradcheck
    >>> from neuronlab.layers import Linear
    >>> x = np.random.default_rng(0).standard_normal((4, 3))
    >>> report = gradcheck(Linear(3, 2, rng=0), x=x)
    >>> report.passed, [row.name for row in report.rows]
    (True, ['W', 'b', 'x'])
    """

    rows: list[GradcheckRow]
    target: str
    eps: float
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no row failed: every verdict is "ok" or "kink"."""
        return not any(r.failed for r in self.rows)

    @property
    def max_error(self) -> float:
        """Largest relative error over all rows (kink entries excluded; NaN if any is NaN)."""
        errors = [r.max_error for r in self.rows]
        return float("nan") if any(np.isnan(errors)) else max(errors, default=0.0)

    @property
    def kinks(self) -> int:
        """Entries that straddled a kink, over all rows."""
        return sum(r.kinks for r in self.rows)

    def __getitem__(self, name: str) -> GradcheckRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row {name!r}; rows are {[r.name for r in self.rows]}")

    def __str__(self) -> str:
        w = max([len("name"), *(len(r.name) for r in self.rows)])
        head = f"{'name':<{w}}  {'shape':<14}{'checked':>8}{'kinks':>7}{'max rel err':>13}  verdict"
        rule = "-" * len(head)
        lines = [f"gradcheck of {self.target} (float64, centered differences, h={self.eps:g})",
                 head, rule]
        lines += [f"{r.name:<{w}}  {str(r.shape):<14}{r.checked:>8}{r.kinks:>7}"
                  f"{r.max_error:>13.1e}  {r.verdict}" for r in self.rows]
        lines.append(rule)
        skipped = f" ({self.kinks} entries straddled a kink and were skipped)" if self.kinks else ""
        bad = [r for r in self.rows if r.failed]
        if bad:
            lines.append(f"FAILED: {len(bad)} of {len(self.rows)} arrays disagree{skipped}.")
            lines += [r.advice() for r in bad]
        else:
            ok = GRADCHECK_BANDS[0][1]
            lines.append(f"PASSED: every checked entry has relative error < {ok:g}{skipped}.")
        unverified = [r.name for r in self.rows if r.verdict == "kink"]
        if unverified:
            lines.append(f"Not verified (every checked entry at a kink): {', '.join(unverified)}; "
                         "move the inputs away from the kinks or raise max_entries.")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"GradcheckReport(passed={self.passed}, max_error={self.max_error:.2e}, "
                f"rows={len(self.rows)})")
