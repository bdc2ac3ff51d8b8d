"""Plots of a training run: each function returns a matplotlib ``Figure``.

The functions follow scikit-learn's display style, ``plot_x(history_or_records, *, ax=None)``:
pass ``ax`` to draw into an existing Axes, otherwise a new Figure is made. Figures are built
with ``matplotlib.figure.Figure`` directly (no pyplot, no global state, the Agg canvas when
saved), so they can be made in worker threads and in the report without a display; matplotlib
is imported inside the functions because it is only needed here.

``history_or_records`` is any of: a :class:`~neuronlab.train.History` (with the monitor's
records in ``history.monitor`` when a Monitor ran), ``History.to_dict()`` output, or the
records of a ``metrics.jsonl`` file as a list of dicts (see :func:`neuronlab.train.loggers.read_metrics`).
Monitor records are flat dicts with a ``"step"`` and a ``"layer"`` key, e.g.
``{"step": 120, "layer": "0", "type": "Linear", "param": "0.W", "update_ratio": 1.1e-3,
"weight_norm": ..., "grad_norm": ...}`` or ``{"step": 120, "layer": "1", "type": "ReLU",
"act_mean": ..., "act_std": ..., "dead_fraction": ..., "saturation": ...}``.
"""

from neuronlab.plots._base import RunRecords, as_records
from neuronlab.plots.curves import plot_accuracy, plot_learning_rate, plot_loss
from neuronlab.plots.histograms import plot_activation_histograms, plot_gradient_histograms
from neuronlab.plots.images import plot_decision_regions, plot_weight_grid, weight_mosaic
from neuronlab.babysit.dead_units import plot_dead_units
from neuronlab.babysit.gradient_flow import plot_gradient_norms
from neuronlab.babysit.update_ratio import plot_update_ratios

__all__ = [
    "RunRecords",
    "as_records",
    "plot_accuracy",
    "plot_activation_histograms",
    "plot_dead_units",
    "plot_decision_regions",
    "plot_gradient_histograms",
    "plot_gradient_norms",
    "plot_learning_rate",
    "plot_loss",
    "plot_update_ratios",
    "plot_weight_grid",
    "weight_mosaic",
]
