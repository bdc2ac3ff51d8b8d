"""Babysitting: measuring a run while it trains, reading the measurements, and checking advice.

One module per check, each holding how the quantity is measured, its healthy band, the rule
that reads it and its plot:

================================  ===========================================================
:mod:`~.monitor`                  the :class:`Monitor` callback that samples every measurement
:mod:`~.findings`                 :class:`Finding`, what a rule reports
:mod:`~.rules`                    the rules over a run's history, and their thresholds
:mod:`~.diagnose`                 :func:`diagnose`: every rule over a history, in report order
================================  ===========================================================

Importing this package imports none of its modules; ``neuronlab`` re-exports ``Monitor``,
``diagnose``, ``Finding`` and ``format_findings``.
"""

__all__: list[str] = []
