"""Update rules. One optimizer updates a whole model, keyed by the dotted parameter names;
clipping and weight decay live once in :class:`Optimizer`."""

from typing import Any

from neuronlab.optim.adagrad import Adagrad
from neuronlab.optim.adam import Adam, AdamW
from neuronlab.optim.base import Optimizer
from neuronlab.optim.lbfgs import LBFGS
from neuronlab.optim.momentum import Momentum
from neuronlab.optim.nesterov import Nesterov
from neuronlab.optim.rmsprop import RMSprop
from neuronlab.optim.sgd import SGD
from neuronlab.registry import OPTIMIZERS

__all__ = [
    "Optimizer",
    "SGD",
    "Momentum",
    "Nesterov",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "LBFGS",
    "get_optimizer",
]


def get_optimizer(name: str, **kwargs: Any) -> Optimizer:
    """Build the optimizer registered as ``name`` ("sgd", "adam", ...) with ``kwargs``.

    Unknown names raise a ValueError listing the choices; unknown keywords a TypeError.
    """
    optimizer: Optimizer = OPTIMIZERS.create(name, **kwargs)
    return optimizer
