"""Training: the :class:`Trainer` loop, its callbacks, its history and exact checkpoints."""

from neuronlab.train.callbacks import (
    Callback,
    DivergenceError,
    EarlyStopping,
    JSONLLogger,
    NonFiniteGuard,
    ProgressBar,
    ReduceLROnPlateau,
)
from neuronlab.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from neuronlab.train.history import History
from neuronlab.train.trainer import Trainer

__all__ = [
    "Trainer",
    "History",
    "Callback",
    "EarlyStopping",
    "ReduceLROnPlateau",
    "Checkpoint",
    "CheckpointError",
    "NonFiniteGuard",
    "DivergenceError",
    "ProgressBar",
    "JSONLLogger",
    "load_checkpoint",
]
