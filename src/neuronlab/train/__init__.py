"""Training: the :class:`Trainer` loop, its callbacks, its history and exact checkpoints."""

from neuronlab.train.callbacks import (
    Callback,
    Checkpoint,
    DivergenceError,
    EarlyStopping,
    NonFiniteGuard,
    ReduceLROnPlateau,
)
from neuronlab.train.checkpoint import CheckpointError, load_checkpoint
from neuronlab.train.history import History
from neuronlab.train.loggers import JSONLLogger, ProgressBar
from neuronlab.train.trainer import Trainer

__all__ = [
    "Callback",
    "Checkpoint",
    "CheckpointError",
    "DivergenceError",
    "EarlyStopping",
    "History",
    "JSONLLogger",
    "NonFiniteGuard",
    "ProgressBar",
    "ReduceLROnPlateau",
    "Trainer",
    "load_checkpoint",
]
