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

    Parameters
    ----------
    name : str
        A registry name: "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam",
        "adamw" or "lbfgs" (case and ``-``/``_`` do not matter).
    **kwargs
        The optimizer's constructor arguments (``lr=...``, ``momentum=...``).

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the choices) or a value is out of range.
    TypeError
        If a keyword is not one the optimizer takes.

    Examples
    --------
    >>> get_optimizer("momentum", lr=0.1, momentum=0.9)
    Momentum(lr=0.1, clip_value=None, clip_norm=None, weight_decay=0.0, momentum=0.9)
    """
    optimizer: Optimizer = OPTIMIZERS.create(name, **kwargs)
    return optimizer
