"""Babysitting: measuring a run while it trains, reading the measurements, and checking advice.

One module per check, each holding how the quantity is measured, its healthy band, the rule
that reads it and its plot:

================================  ===========================================================
:mod:`~.monitor`                  the :class:`Monitor` callback that samples every measurement
:mod:`~.findings`                 :class:`Finding`, what a rule reports
:mod:`~.rules`                    the rules over a run's history, and their thresholds
:mod:`~.diagnose`                 :func:`diagnose`: every rule over a history, in report order
================================  ===========================================================

Importing this package imports none of its modules, only :mod:`neuronlab.train` first:
:class:`Monitor` is a training callback and the trainer builds one, so the two import each
other, which works in that order only (``import neuronlab`` imports neither, so
``from neuronlab.babysit.monitor import Monitor`` may come first). ``neuronlab`` re-exports
``Monitor``, ``diagnose``, ``Finding`` and ``format_findings``.
"""

import neuronlab.train  # noqa: F401  (see above)

__all__: list[str] = []
