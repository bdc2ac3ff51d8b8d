"""One training configuration shared by the resume tests and the subprocess they kill.

Everything random is seeded: data, weights, dropout masks, shuffling. The model has dropout
and batch norm (RNG state and buffers must be restored), the optimizer has per-parameter
state (Adam's moments), the schedule depends on the step, a regulariser and max-norm
constraint act every step, and EarlyStopping / ReduceLROnPlateau keep counters, so a
resumed run can only match an uninterrupted one if every piece of state is restored.

Run as a script: ``python _train_resume_case.py CKPT_DIR STOP_AFTER_STEP`` trains with a
checkpoint every 4 steps, prints ``SAVED <step>`` once the checkpoint at STOP_AFTER_STEP is
on disk, then hangs (until the test kills it).
"""

from __future__ import annotations

import sys
import time

import numpy as np

import neuronlab as nl

N, EPOCHS, BATCH = 150, 4, 32  # 5 batches per epoch, the last one short (22 rows)


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((N + 60, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    return X[:N], y[:N], X[N:], y[N:]


def trainer(callbacks: list[nl.Callback]) -> nl.Trainer:
    model = nl.mlp(4, [16, 16], 3, dropout=0.3, batchnorm=True, rng=3)
    return nl.Trainer(
        model,
        nl.SoftmaxCrossEntropy(),
        nl.Adam(lr=1e-2),
        schedule=nl.Cosine(lr=1e-2, total_steps=EPOCHS * 5),
        regularizer=nl.L2(1e-3),
        constraints=[nl.MaxNorm(3.0)],
        callbacks=[
            nl.EarlyStopping(patience=10),
            nl.ReduceLROnPlateau(patience=1, factor=0.5),
            nl.NonFiniteGuard(),
            *callbacks,
        ],
    )


def fit(tr: nl.Trainer, resume: str | None = None) -> nl.History:
    X, y, Xv, yv = data()
    return tr.fit(
        X, y, validation=(Xv, yv), epochs=EPOCHS, batch_size=BATCH, seed=11, resume=resume
    )


class _Hang(nl.Callback):
    order = 200  # after Checkpoint (100): the file is complete when we announce it

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_batch_end(self, trainer: nl.Trainer, step: int, logs: dict) -> None:
        if trainer.step == self.at_step:
            print(f"SAVED {trainer.step}", flush=True)
            while True:
                time.sleep(1)


if __name__ == "__main__":
    directory, at = sys.argv[1], int(sys.argv[2])
    fit(trainer([nl.Checkpoint(directory, every_steps=4, every_epochs=None, keep=2), _Hang(at)]))
