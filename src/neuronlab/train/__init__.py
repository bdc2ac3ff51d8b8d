"""Training: the :class:`Trainer` loop, its state, callbacks, history and exact checkpoints."""

from neuronlab.train.base import Callback
from neuronlab.train.callbacks import (
    Checkpoint,
    EarlyStopping,
    NonFiniteGuard,
    ReduceLROnPlateau,
)
from neuronlab.train.checkpoint import load_checkpoint
from neuronlab.train.errors import CheckpointError, DivergenceError
from neuronlab.train.history import History
from neuronlab.train.loggers import JSONLLogger, ProgressBar
from neuronlab.train.state import TrainState
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
    "TrainState",
    "Trainer",
    "load_checkpoint",
]
