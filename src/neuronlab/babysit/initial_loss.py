"""The initial-loss check: at initialisation, with small weights, the loss should be its
expected value (ln C for softmax cross-entropy over C classes: the notes' "2.302 for 10
classes").

Measured by the :class:`~neuronlab.babysit.monitor.Monitor` at step 0 (``history.info``:
``expected_initial_loss`` from the loss, ``initial_loss`` the first batch's data loss). A
full-batch L-BFGS run has no such loss: its first recorded loss comes after the first
epoch's iterations, so the Monitor leaves ``initial_loss`` at None and the check is skipped.
"""

from __future__ import annotations

import math

from neuronlab.babysit.findings import Finding
from neuronlab.babysit.runview import RunView, fmt

__all__ = ["INITIAL_FACTOR", "initial_loss_rule"]

INITIAL_FACTOR = 2.0  # initial loss off its expected value by more than this factor


def initial_loss_rule(run: RunView) -> Finding | None:
    """``initial_loss``: the loss at step 0 is more than :data:`INITIAL_FACTOR` times above or
    below the loss's expected initial value (``history.info``; the first step's loss when the
    Monitor did not record ``initial_loss``, except for a full-batch run, whose first
    recorded loss is measured after its first L-BFGS iterations, not at the initial weights).

    Parameters
    ----------
    run : RunView
        The run's history as the rules read it.

    Returns
    -------
    Finding or None
        A warning with both values and their ratio; None when they agree or either is
        missing or not positive (for a full-batch run without a recorded ``initial_loss``:
        always None).
    """
    expected = run.info.get("expected_initial_loss")
    observed = run.info.get("initial_loss")
    # a minibatch step's loss is taken before its update (at the initial weights for step
    # 0); L-BFGS records its loss after the epoch's minimize call (RunView.full_batch)
    if observed is None and not run.full_batch and run.loss.size and math.isfinite(run.loss[0]):
        observed = float(run.loss[0])
    if expected is None or observed is None or expected <= 0 or observed <= 0:
        return None
    factor = observed / expected
    if 1 / INITIAL_FACTOR <= factor <= INITIAL_FACTOR:
        return None
    return Finding("initial_loss", "warning",
                   f"the initial loss {fmt(observed)} is {factor:.2g}x its expected value "
                   f"{fmt(expected)} ({run.info.get('loss', 'loss')} with "
                   f"{run.info.get('n_outputs')} outputs and small weights)",
                   {"initial_loss": observed, "expected_initial_loss": expected, "factor": factor,
                    "steps": [0, 0]},
                   "check the initialisation scale (weights too large make confident wrong "
                   "scores), the preprocessing and the loss; run nl.sanity_check")
