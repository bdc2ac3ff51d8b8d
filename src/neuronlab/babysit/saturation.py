"""Saturated sigmoid and tanh units: outputs near the asymptotes, where the gradient is nearly 0.

Each squashing activation declares ``"saturation"`` in its ``statistics`` and its
``saturation_band`` (Sigmoid: outputs < 0.05 or > 0.95, where σ' < 0.048, a fifth of its
peak; Tanh: ``|y| > 0.95``, where tanh' < 0.098, a tenth of its peak). The record field is
``saturation``; its plot is :func:`~neuronlab.babysit.dead_units.plot_dead_units` (dashed).
"""

from __future__ import annotations

import numpy as np

from neuronlab.babysit.findings import Finding
from neuronlab.babysit.runview import RunView, last_layer_values

__all__ = ["SATURATED_FRACTION", "saturation", "saturation_rule"]

SATURATED_FRACTION = 0.50


def saturation(y: np.ndarray, band: tuple[float, float]) -> float:
    """Fraction of the outputs ``y`` outside ``band``: sitting near an asymptote, where the
    activation's slope is a small fraction of its peak.

    Parameters
    ----------
    y : ndarray
        A layer's outputs on a sample of inputs (any shape).
    band : (float, float)
        ``(centre, half width)``: an output is saturated when ``|y - centre| > half width``
        (the layer's ``saturation_band``).

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> saturation(np.array([[0.01, 0.5], [0.99, 0.97]]), band=(0.5, 0.45))  # sigmoid's band
    0.75
    """
    centre, half = band
    dist = np.abs(y - centre) if centre else np.abs(y)
    return float(np.count_nonzero(dist > half)) / y.size


def saturation_rule(run: RunView) -> Finding | None:
    """``saturation``: at the latest step with measurements, at least :data:`SATURATED_FRACTION`
    of some sigmoid or tanh layer's outputs lie outside its band.

    Parameters
    ----------
    run : RunView
        The run's history as the rules read it.

    Returns
    -------
    Finding or None
        A warning naming the worst layer, its type and saturated fraction; None when no
        layer is past the threshold.
    """
    found = last_layer_values(run, "saturation")
    if found is None:
        return None
    step, recs = found
    bad = {r["layer"]: r["saturation"] for r in recs if r["saturation"] >= SATURATED_FRACTION}
    if not bad:
        return None
    types = {r["layer"]: r["type"] for r in recs}
    worst = max(bad, key=bad.__getitem__)
    return Finding("saturation", "warning",
                   f"{bad[worst]:.0%} of the outputs of layer {worst} ({types[worst]}) sit near its "
                   f"asymptotes at step {step}, where its gradient is nearly 0",
                   {"saturation": bad, "types": {k: types[k] for k in bad}, "steps": [step, step]},
                   "use a smaller initialisation (glorot/lecun), add batch norm before the "
                   "activation, or switch to ReLU")
