"""A finding: one thing a babysitting rule saw in a run, with its numbers and what to try."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Finding"]


@dataclass(frozen=True)
class Finding:
    """One diagnosis.

    Attributes
    ----------
    rule : str
        The rule's name (``"lr_too_high"``...).
    severity : {"error", "warning", "info"}
        "error": the run is broken (non-finite values); "warning": it works badly.
    message : str
        What was seen, in plain words, with the key numbers.
    evidence : dict
        The numbers and step/epoch ranges the finding rests on (JSON-able).
    action : str
        What to try.
    """

    rule: str
    severity: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    action: str = ""

    def __str__(self) -> str:
        return f"[{self.severity}] {self.rule}: {self.message}\n  try: {self.action}"

    def to_dict(self) -> dict[str, Any]:
        """The finding as a JSON-able dict (as ``neuronlab diagnose --json`` prints it).

        Returns
        -------
        dict
            ``{"rule", "severity", "message", "evidence", "action"}``.
        """
        return {"rule": self.rule, "severity": self.severity, "message": self.message,
                "evidence": self.evidence, "action": self.action}
