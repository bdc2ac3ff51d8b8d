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


def babysitting(history: Any, error: str | None = None) -> dict[str, Any]:
    """Summarise a run for the page.

    Parameters
    ----------
    history : History
        With the Monitor's records in ``history.monitor``.
    error : str or None
        A divergence (or other failure) message; it leads the diagnosis.

    Returns
    -------
    dict
        ``{"step": int | None, "ratios": [{"param", "ratio"}], "layers": [{"layer", "type",
        "dead_fraction", "saturation"}], "diagnosis": [{"rule", "severity", "message",
        "action"}]}`` where ``ratios`` lists the weight arrays' update/weight ratios and
        ``layers`` the activation layers' dead / saturated fractions at the latest measured step.
    """
    records = history.monitor
    step = records[-1]["step"] if records else None
    latest = [r for r in reversed(records) if r["step"] == step][::-1] if records else []
    ratios = [{"param": r["param"], "ratio": _num(r.get("update_ratio"))}
              for r in latest if r["kind"] == "param" and r.get("role") == "weight"]
    layers = [{"layer": r["layer"], "type": r["type"],
               "dead_fraction": _num(r.get("dead_fraction")), "saturation": _num(r.get("saturation"))}
              for r in latest if r["kind"] == "layer"
              and ("dead_fraction" in r or "saturation" in r)]
    findings = []
    if error is not None:
        findings.append({"rule": "diverged", "severity": "error", "message": error,
                         "action": "reset with a lower learning rate (or clip gradients)"})
    if history.epochs or records:
        # the loss rules need the per-step losses; a run that diverged at step 0 has none
        findings += [{"rule": f.rule, "severity": f.severity, "message": f.message,
                      "action": f.action} for f in diagnose(history)]
    return {"step": step, "ratios": ratios, "layers": layers, "diagnosis": findings}
