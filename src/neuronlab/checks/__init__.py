"""Gradient checking: analytic gradients against centered finite differences in float64."""

from neuronlab.checks.gradcheck import gradcheck
from neuronlab.checks.report import GRADCHECK_BANDS, GradcheckReport, GradcheckRow, relative_error

__all__ = ["gradcheck", "GradcheckReport", "GradcheckRow", "relative_error", "GRADCHECK_BANDS"]
