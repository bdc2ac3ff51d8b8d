"""The babysitting panel's numbers: the latest :class:`~neuronlab.babysit.monitor.Monitor` records
(update/weight ratios, dead and saturated units) and :func:`~neuronlab.babysit.diagnose.diagnose`'s
current findings, as JSON for the page."""

from __future__ import annotations

import math
from typing import Any

from neuronlab.babysit.diagnose import diagnose

__all__ = ["babysitting"]


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _latest(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The records of ``kind`` from the latest step that has any (the Monitor measures other
    kinds, such as gradient noise or spectra, at steps of their own)."""
    found: list[dict[str, Any]] = []
    for r in reversed(records):  # appended in step order: stop past the latest step
        if found and r["step"] < found[0]["step"]:
            break
        if r["kind"] == kind and (not found or r["step"] == found[0]["step"]):
            found.append(r)
    return found[::-1]


def babysitting(history: Any, error: str | None = None, *, started: bool = True
                ) -> dict[str, Any]:
    """Summarise a run for the page.

    Parameters
    ----------
    history : History
        With the Monitor's records in ``history.monitor``.
    error : str or None
        A divergence (or other failure) message; it leads the diagnosis.
    started : bool
        Whether training has taken a step. Before that there is nothing to measure: the
        panel stays empty (``started`` False, no rows, no findings).

    Returns
    -------
    dict
        ``{"started": bool, "step": int | None, "ratios": [{"param", "ratio"}], "layers":
        [{"layer", "type", "dead_fraction", "saturation"}], "diagnosis": [{"rule",
        "severity", "message", "action"}]}`` where ``ratios`` lists the weight arrays' update/weight ratios and
        ``layers`` the activation layers' dead / saturated fractions, each at the latest
        step that measured them.
    """
    started = started or error is not None
    if not started:
        return {"started": False, "step": None, "ratios": [], "layers": [], "diagnosis": []}
    records = history.monitor
    params, layer_records = _latest(records, "param"), _latest(records, "layer")
    steps = [r["step"] for r in params[:1] + layer_records[:1]]
    step = max(steps) if steps else None
    ratios = [{"param": r["param"], "ratio": _num(r.get("update_ratio"))}
              for r in params if r.get("role") == "weight"]
    layers = [{"layer": r["layer"], "type": r["type"],
               "dead_fraction": _num(r.get("dead_fraction")), "saturation": _num(r.get("saturation"))}
              for r in layer_records if "dead_fraction" in r or "saturation" in r]
    findings = []
    if error is not None:
        findings.append({"rule": "diverged", "severity": "error", "message": error,
                         "action": "reset with a lower learning rate (or clip gradients)"})
    if history.epochs or records:
        # the loss rules need the per-step losses; a run that diverged at step 0 has none
        try:
            found = diagnose(history)
        except Exception as err:  # noqa: BLE001  a failing rule must not stop the session
            findings.append({"rule": "diagnose", "severity": "error",
                             "message": f"the diagnosis failed: {type(err).__name__}: {err}",
                             "action": "report this as a bug of neuronlab"})
            found = []
        findings += [{"rule": f.rule, "severity": f.severity, "message": f.message,
                      "action": f.action} for f in found]
    return {"started": True, "step": step, "ratios": ratios, "layers": layers,
            "diagnosis": findings}
