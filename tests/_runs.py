"""Small real training runs shared by the monitor and diagnosis tests.

Each run is seeded and takes well under a second; it returns the trainer, whose history holds
the monitor records. The data are the digits (standardised with training statistics) or
generated 2-D sets.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

import neuronlab as nl


@cache
def digits_split(n_train: int = 1000, n_val: int = 500) -> tuple[np.ndarray, ...]:
    """Standardised digits: (X_train, y_train, X_val, y_val), a seeded split."""
    X, y = nl.data.digits()
    perm = np.random.default_rng(0).permutation(len(X))
    tr, va = perm[:n_train], perm[n_train : n_train + n_val]
    mu, sd = X[tr].mean(axis=0), X[tr].std(axis=0) + 1e-3  # constant border pixels: sd = 0
    Xs = ((X - mu) / sd).astype(np.float32)
    return Xs[tr], y[tr], Xs[va], y[va]


def scaled(model: nl.Sequential, factor: float, layers: Any = None) -> nl.Sequential:
    """Multiply the weights of the chosen layers (default: all) by ``factor``."""
    for i, layer in enumerate(model.layers):
        if "W" in layer.params and (layers is None or i in layers):
            layer.params["W"] *= factor
    return model


def train(model: nl.Sequential, optimizer: Any, *, data: tuple[np.ndarray, ...] | None = None,
          epochs: int = 5, batch_size: int = 64, every: int = 5, loss: Any = None,
          regularizer: Any = None, schedule: Any = None, **monitor: Any) -> nl.Trainer:
    """Fit ``model`` with a Monitor sampling every ``every`` steps. A diverging run (which
    these runs provoke on purpose: overflow warnings silenced) ends with its DivergenceError
    kept as ``trainer.diverged``; the history up to that step stays in the trainer."""
    X, y, Xv, yv = data if data is not None else digits_split()
    tr = nl.Trainer(model, loss or nl.SoftmaxCrossEntropy(), optimizer, regularizer=regularizer,
                    schedule=schedule,
                    monitor=nl.Monitor(every=every, sample_size=256, **monitor))
    tr.diverged = None
    with np.errstate(all="ignore"):
        try:
            tr.fit(X, y, validation=(Xv, yv), epochs=epochs, batch_size=batch_size)
        except nl.DivergenceError as err:
            tr.diverged = err
    return tr


def healthy() -> nl.Trainer:
    """A ReLU MLP with He init and Adam at 1e-3 on 1000 digits: 10 epochs, 160 steps."""
    return train(nl.mlp(64, [64, 64], 10, rng=0), nl.Adam(lr=1e-3), epochs=10)


def deep(activation: str, depth: int, width: int, *, init: str, factor: float = 1.0,
         seed: int = 0) -> nl.Sequential:
    return scaled(nl.mlp(64, [width] * depth, 10, activation=activation, init=init, out_init=init, rng=seed),
                  factor)
