"""``python -m neuronlab.engine``: compile the training engine into the cache now, so that the
first fit on this machine loads machine code instead of compiling (``make venv`` runs it)."""

import time

import numpy as np

from neuronlab.engine import available, build
from neuronlab.layers.builders import mlp
from neuronlab.losses.classification import SoftmaxCrossEntropy
from neuronlab.optim.momentum import Momentum
from neuronlab.train.trainer import Trainer

__all__: list[str] = []

if available():
    start = time.perf_counter()
    X, y = np.arange(16, dtype=np.float64).reshape(8, 2), np.arange(8) % 2
    for dtype in (np.float32, np.float64):  # a one-step fit in each: the signatures fits use
        Trainer(mlp(2, [3], 2, rng=0, dtype=dtype), SoftmaxCrossEntropy(), Momentum(lr=0.01),
                monitor=False, engine=True).fit(X.astype(dtype), y, epochs=1, batch_size=8)
    print(f"neuronlab engine compiled for float32 and float64 in "
          f"{time.perf_counter() - start:.1f} s (cache: {build.cache_dir()})")
else:
    print("numba is not installed: training runs on the NumPy path")
