"""CIFAR-10 from the standard "python version" batches a user already has on disk.

The folder (``cifar-10-batches-py`` from https://www.cs.toronto.edu/~kriz/cifar.html) holds
``data_batch_1`` .. ``data_batch_5`` (training, 10000 images each) and ``test_batch``. Each is
a pickle of a dict with ``b"data"`` (uint8 array of shape (10000, 3072)), ``b"labels"`` (list
of ints 0..9), ``b"batch_label"`` and ``b"filenames"``.

A pickle can name any importable function and call it while loading, so a tampered file could
run code. We therefore unpickle with :class:`SafeBatchUnpickler`, whose ``find_class`` resolves
only numpy's array-reconstruction functions, ``ndarray`` and ``dtype`` (what the standard files
and numpy re-saves of them contain) and refuses everything else with
:class:`UnsafePickleError` before anything is called. ``ndarray`` resolves to a token that only
``_reconstruct`` accepts, and only for the empty array a pickle then fills from its own bytes,
so a pickle cannot allocate more than the file holds. The file itself is read whole first
(a regular file of at most :data:`MAX_BATCH_BYTES`), and damaged files raise
:class:`~neuronlab.errors.DataError`.
"""

from __future__ import annotations

import codecs
import io
import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from neuronlab.errors import DataError
from neuronlab.io.bounded import file_size, open_regular, read_exact

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_IMAGE_SHAPE",
    "SafeBatchUnpickler",
    "UnsafePickleError",
    "cifar10",
    "read_cifar10_batch",
]

CIFAR10_IMAGE_SHAPE: tuple[int, int, int] = (3, 32, 32)
"""Rows are channel-major: 1024 red, then 1024 green, then 1024 blue values, each a 32x32
image in row-major order, so ``X[i].reshape(CIFAR10_IMAGE_SHAPE)`` is (channel, row, column)
and ``.transpose(1, 2, 0)`` gives a (32, 32, 3) picture."""

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
_ROW = 3 * 32 * 32
MAX_BATCH_BYTES = 512 << 20
"""Largest batch file read (a standard one is 30 MB)."""


class UnsafePickleError(DataError, pickle.UnpicklingError):
    """The file asked to load something a CIFAR-10 batch never contains; nothing was run."""


class _NdarrayToken:
    """What ``numpy.ndarray`` resolves to: usable only as ``_reconstruct``'s first argument."""

    def __repr__(self) -> str:
        return "<numpy.ndarray (reconstruct only)>"


_NDARRAY = _NdarrayToken()


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    # Pickles rebuild an array as _reconstruct(ndarray, (0,), b"b") and then fill it from their
    # own bytes (ndarray.__setstate__ checks the length); any other call would allocate.
    from numpy._core import multiarray

    if subtype is not _NDARRAY or not isinstance(shape, tuple) or math.prod(shape) != 0:
        raise UnsafePickleError(f"refusing numpy _reconstruct({subtype!r}, {shape!r:.40}, ...)")
    return multiarray._reconstruct(np.ndarray, shape, dtype)


def _safe_dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dt: np.dtype = np.dtype(obj, align, copy)
    if dt.hasobject:  # object arrays would unpickle arbitrary Python objects
        raise UnsafePickleError(f"refusing an object dtype ({dt}) in a CIFAR-10 batch")
    return dt


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 writes bytes with pickle protocols < 3 as _codecs.encode(text, "latin1").
    if codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _allowed() -> dict[tuple[str, str], Any]:
    from numpy._core import numeric

    return {
        # The original files (NumPy 1) and NumPy 2 re-saves name the module differently.
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        # Pickle protocol 5 rebuilds arrays from a buffer (of the file's own bytes).
        # numpy's stubs leave out its private _frombuffer
        ("numpy.core.numeric", "_frombuffer"): numeric._frombuffer,  # type: ignore[attr-defined]
        ("numpy._core.numeric", "_frombuffer"): numeric._frombuffer,  # type: ignore[attr-defined]
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _safe_dtype,
        ("_codecs", "encode"): _latin1_encode,
    }


class SafeBatchUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a CIFAR-10 batch needs.

    Dicts, lists, ints and bytes need no globals; arrays need numpy's reconstruction helpers,
    ``ndarray`` and ``dtype`` (object dtypes refused). Anything else raises
    :class:`UnsafePickleError` naming the refused global.
    """

    _ALLOWED: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        """Return the global ``module.name`` if it is one a CIFAR-10 batch needs.

        Parameters
        ----------
        module : str
            The module the pickle names, such as ``"numpy.core.multiarray"``.
        name : str
            The global's name in it, such as ``"_reconstruct"``.

        Returns
        -------
        object
            The allowed class or function.

        Raises
        ------
        UnsafePickleError
            For any other global.
        """
        if SafeBatchUnpickler._ALLOWED is None:
            SafeBatchUnpickler._ALLOWED = _allowed()
        obj = SafeBatchUnpickler._ALLOWED.get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name}: a CIFAR-10 batch contains only "
                "numpy arrays, lists, ints and bytes"
            )
        return obj


def _field(batch: dict[Any, Any], key: str, file: Path) -> Any:
    for k in (key.encode(), key):  # bytes keys (the originals) or str keys (Python 3 re-saves)
        if k in batch:
            return batch[k]
    raise DataError(
        f"{file} is not a CIFAR-10 batch: no {key!r} entry (found {sorted(map(repr, batch))})"
    )


def read_cifar10_batch(file: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file safely.

    Parameters
    ----------
    file : str or os.PathLike
        A batch file of the Python version of CIFAR-10 (``data_batch_1`` ... ``test_batch``).

    Returns
    -------
    data : ndarray of shape (n, 3072), uint8
    labels : ndarray of shape (n,), int64

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    UnsafePickleError
        The pickle names a global other than numpy's array helpers (a DataError).
    DataError
        The file is not a regular file, too large, truncated, not a pickle, or not shaped
        like a CIFAR-10 batch.
    """
    file = Path(file)
    with open_regular(file, DataError, "CIFAR-10 batch file") as fh:
        size = file_size(fh)
        if size > MAX_BATCH_BYTES:
            raise DataError(
                f"{file} is {size:,} bytes, more than a CIFAR-10 batch file can be "
                f"({MAX_BATCH_BYTES:,})"
            )
        blob = read_exact(fh, size, str(file), DataError)
    try:
        # encoding="bytes": the original files were written by Python 2, whose str is bytes.
        batch = SafeBatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{file}: {err}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
        RecursionError,
    ) as err:
        raise DataError(
            f"{file} is not a readable CIFAR-10 batch (truncated or corrupt?): {err}"
        ) from None
    if not isinstance(batch, dict):
        raise DataError(
            f"{file} is not a CIFAR-10 batch: expected a dict, got {type(batch).__name__}"
        )
    data = _field(batch, "data", file)
    labels = _field(batch, "labels", file)
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != _ROW
    ):
        desc = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise DataError(f"{file}: 'data' must be a uint8 array of shape (n, {_ROW}), got {desc}")
    # Check the elements before np.asarray: a list of n references to one long list would
    # otherwise become an n x len array.
    if (
        not isinstance(labels, (list, np.ndarray))
        or len(labels) != data.shape[0]
        or (isinstance(labels, list) and not all(type(v) is int for v in labels))
        or (isinstance(labels, np.ndarray) and (labels.ndim != 1 or labels.dtype.kind not in "iu"))
    ):
        raise DataError(f"{file}: 'labels' must be a list of {data.shape[0]} ints")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except OverflowError:
        raise DataError(f"{file}: labels must be in [0, 10)") from None
    if y.size and (y.min() < 0 or y.max() >= len(CIFAR10_CLASSES)):
        raise DataError(f"{file}: labels must be in [0, 10), got {int(y.min())}..{int(y.max())}")
    return data, y.astype(np.int64)


def _stack(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_cifar10_batch(f) for f in files]
    X = np.empty((sum(d.shape[0] for d, _ in parts), _ROW), dtype=np.float32)
    row = 0
    for data, _ in parts:
        # Scale into the preallocated result: no float64 intermediate of the whole set.
        np.divide(data, np.float32(255.0), out=X[row : row + data.shape[0]])
        row += data.shape[0]
    return X, np.concatenate([y for _, y in parts])


def cifar10(
    path: str | os.PathLike[str],
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load CIFAR-10 from a folder holding the python batches.

    Parameters
    ----------
    path : str or path-like
        The ``cifar-10-batches-py`` folder, or a folder that contains it.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        X float32 of shape (n, 3072) with values in [0, 1] (pixel / 255), rows channel-major
        (see ``CIFAR10_IMAGE_SHAPE``); y int64 of shape (n,), indices into
        ``CIFAR10_CLASSES``. For the full set n is 50000 and 10000.

    Raises
    ------
    FileNotFoundError
        The folder or one of its six batch files is missing (the message names them).
    UnsafePickleError
        A file tries to load anything but numpy arrays (it is never executed).
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder not found: {root}")
    nested = root / "cifar-10-batches-py"
    if not (root / TRAIN_FILES[0]).exists() and nested.is_dir():
        root = nested
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (root / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 folder {root} lacks {', '.join(missing)}; expected data_batch_1 .. "
            "data_batch_5 and test_batch (the 'CIFAR-10 python version' download)"
        )
    train = _stack([root / name for name in TRAIN_FILES])
    test = _stack([root / TEST_FILE])
    return train, test
