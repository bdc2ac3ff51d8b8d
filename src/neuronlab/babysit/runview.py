"""The parts of a run's history that the babysitting rules read, in one shape.

A :class:`RunView` is built from a :class:`~neuronlab.train.History` or its ``to_dict()``:
per-step losses as an array, per-epoch metrics, ``history.info``, and the Monitor's records
grouped by parameter (``kind = "param"``), by step (``kind = "layer"``) and by kind (every
other kind, e.g. ``"objective"``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

__all__ = ["RunView", "fmt", "last_layer_values", "number", "window"]


class RunView:
    """The parts of a History the rules read, as arrays and per-step groups.

    Parameters
    ----------
    history : History or dict
        A :class:`~neuronlab.train.History` or its ``to_dict()``.

    Attributes
    ----------
    loss : ndarray of float
        The per-step losses (None becomes NaN).
    epochs : list of dict
        The per-epoch records.
    info : dict
        ``history.info``.
    params : dict of str to list of dict
        The ``kind = "param"`` Monitor records, by parameter name.
    layers : dict of int to list of dict
        The ``kind = "layer"`` Monitor records, by step.
    steps : list of int
        The steps of ``layers``, increasing.
    by_kind : dict of str to list of dict
        Every other Monitor record, by kind (``"objective"``, ``"noise"``...).

    Raises
    ------
    TypeError
        If ``history`` is neither a History (something with ``loss`` and ``epochs``) nor a
        dict.
    """

    def __init__(self, history: Any) -> None:
        if isinstance(history, dict):
            get = history.get
        elif hasattr(history, "loss") and hasattr(history, "epochs"):
            def get(key: str, default: Any = None) -> Any:
                return getattr(history, key, default)
        else:
            raise TypeError(f"history must be a History or its to_dict(), got {type(history).__name__}")
        self.loss = np.array([math.nan if v is None else float(v) for v in get("loss", [])], dtype=float)
        self.epochs: list[dict[str, Any]] = list(get("epochs", []) or [])
        self.info: dict[str, Any] = dict(get("info", {}) or {})
        records = list(get("monitor", []) or [])
        self.params: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.layers: dict[int, list[dict[str, Any]]] = defaultdict(list)  # step -> records
        for r in records:
            if r.get("kind") == "param":
                self.params[r["param"]].append(r)
            elif r.get("kind") == "layer":
                self.layers[int(r["step"])].append(r)
        self.steps = sorted(self.layers)
        self.by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            if r.get("kind") not in ("param", "layer"):
                self.by_kind[str(r.get("kind"))].append(r)

    @property
    def full_batch(self) -> bool:
        """Whether the run stepped over the whole training set with a line search (L-BFGS):
        the Monitor records ``info["batch_size"] = None`` for it (a number otherwise; no key
        when no Monitor ran). Such a run has no learning rate to raise or lower."""
        return "batch_size" in self.info and self.info["batch_size"] is None

    def weight_ratios(self) -> dict[str, tuple[float, list[int]]]:
        """{param: (median update ratio, [first step, last step])} over the weight arrays."""
        out = {}
        for name, recs in self.params.items():
            vals = [(r["step"], r["update_ratio"]) for r in recs
                    if r.get("role") == "weight" and r.get("update_ratio") is not None]
            if vals:
                out[name] = (float(np.median([v for _, v in vals])), [vals[0][0], vals[-1][0]])
        return out

    def metric(self, key: str) -> list[float] | None:
        """The values of an epoch metric over the epochs, or None when some epoch lacks it.

        Parameters
        ----------
        key : str
            An epoch key (``"loss"``, ``"val_acc"``...).

        Returns
        -------
        list of float or None
            None when there are no epochs or an epoch has no value for ``key``.
        """
        vals: list[Any] = [e.get(key) for e in self.epochs]
        if not vals or any(v is None for v in vals):
            return None
        return [float(v) for v in vals]


def number(v: float | None) -> float | None:
    """A number as records hold it: a float, or None for None, NaN and Inf (records are
    strict JSON).

    Parameters
    ----------
    v : float or None

    Returns
    -------
    float or None
    """
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def fmt(v: float) -> str:
    """A number in a finding's message: three significant digits.

    Parameters
    ----------
    v : float

    Returns
    -------
    str

    Examples
    --------
    >>> fmt(0.000123456), fmt(2.5), fmt(12345.0)
    ('0.000123', '2.5', '1.23e+04')
    """
    return f"{v:.3g}"


def window(n: int) -> int:
    """Steps averaged at each end of a loss curve of ``n`` steps (a tenth, 1 to 50).

    Parameters
    ----------
    n : int
        Length of the loss curve.

    Returns
    -------
    int

    Examples
    --------
    >>> window(5), window(300), window(10_000)
    (1, 30, 50)
    """
    return max(1, min(50, n // 10))


def last_layer_values(run: RunView, key: str) -> tuple[int, list[dict[str, Any]]] | None:
    """The latest monitor step whose layer records carry ``key``, and those records.

    Parameters
    ----------
    run : RunView
        The run.
    key : str
        A field of the layer records, such as ``"dead_fraction"``.

    Returns
    -------
    (int, list of dict) or None
        The step and its records that have a non-None ``key``; None when no step has one.
    """
    for step in reversed(run.steps):
        recs = [r for r in run.layers[step] if r.get(key) is not None]
        if recs:
            return step, recs
    return None
