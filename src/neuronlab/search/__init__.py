"""Hyperparameter search: spaces, strategies (grid, random, coarse-to-fine, TPE), trials in
worker processes or on a Dask cluster, an Optuna study that survives restarts.

Optuna and Dask are optional (``pip install 'neuronlab[search]'``) and imported only by the
functions that use them.
"""

from neuronlab.search.executor import TrialContext, TrialPruned, open_executor, run_trial
from neuronlab.search.interrupt import SearchInterrupted
from neuronlab.search.objective import TrainObjective, apply_params
from neuronlab.search.output import read_records
from neuronlab.search.plots import plot_lr_reg
from neuronlab.search.space import (
    Choice,
    IntRange,
    LogUniform,
    Param,
    Space,
    Uniform,
    load_space,
    parse_param,
)
from neuronlab.search.strategies import TPE, CoarseToFine, Grid, Random, Strategy, get_strategy
from neuronlab.search.study import SearchResult, make_pruner, run_search

__all__ = [
    "TPE",
    "Choice",
    "CoarseToFine",
    "Grid",
    "IntRange",
    "LogUniform",
    "Param",
    "Random",
    "SearchInterrupted",
    "SearchResult",
    "Space",
    "Strategy",
    "TrainObjective",
    "TrialContext",
    "TrialPruned",
    "Uniform",
    "apply_params",
    "get_strategy",
    "load_space",
    "make_pruner",
    "open_executor",
    "parse_param",
    "plot_lr_reg",
    "read_records",
    "run_search",
    "run_trial",
]
