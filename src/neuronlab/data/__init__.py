"""Data sets, splits and minibatches: ``nl.data.digits()``, ``nl.data.spiral()``, ...

Every loader returns ``(X, y)`` with X float32 of shape (n_samples, n_features) and y int64
of shape (n_samples,); :func:`cifar10` returns a (train, test) pair of those.
"""

from neuronlab.data.arrays import batch, iterate_minibatches, labels_path_for, load_arrays
from neuronlab.data.cifar10 import (
    CIFAR10_CLASSES,
    CIFAR10_IMAGE_SHAPE,
    SafeBatchUnpickler,
    UnsafePickleError,
    cifar10,
    read_cifar10_batch,
)
from neuronlab.data.datasets import (
    DATASETS,
    DIGITS_IMAGE_SHAPE,
    blobs,
    circles,
    digits,
    load_dataset,
    moons,
    spiral,
    xor,
)
from neuronlab.data.split import Split, SplitIndices, split_indices, train_val_test_split

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_IMAGE_SHAPE",
    "DATASETS",
    "DIGITS_IMAGE_SHAPE",
    "SafeBatchUnpickler",
    "Split",
    "SplitIndices",
    "UnsafePickleError",
    "batch",
    "blobs",
    "cifar10",
    "circles",
    "digits",
    "iterate_minibatches",
    "labels_path_for",
    "load_arrays",
    "load_dataset",
    "moons",
    "read_cifar10_batch",
    "spiral",
    "split_indices",
    "train_val_test_split",
    "xor",
]
