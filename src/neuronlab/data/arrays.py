"""User data from ``.npz`` / ``.npy`` files, and minibatches read from (memory-mapped) arrays.

File conventions
----------------
``data.npz``
    Arrays named ``X`` (n_samples, n_features) and ``y`` (n_samples,), read into memory
    (``np.load(allow_pickle=False)``: loading never runs code).
``<stem>.npy``
    The features, opened with ``mmap_mode="r"`` so data larger than memory is read lazily,
    one minibatch at a time. The labels are the sibling file whose name is the stem with its
    last ``X`` replaced by ``y``: ``X.npy`` -> ``y.npy``, ``train_X.npy`` -> ``train_y.npy``,
    ``X_train.npy`` -> ``y_train.npy``. Labels are small and read into memory.
a folder
    Shorthand for ``folder/X.npy`` with ``folder/y.npy``.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np

from neuronlab._validation import check_positive_int
from neuronlab.errors import DataError
from neuronlab.io.npyfile import read_npy, read_npz

__all__ = ["batch", "iterate_minibatches", "labels_path_for", "load_arrays", "release_pages"]


def release_pages(X: np.ndarray) -> bool:
    """Drop the pages a read-only ``np.memmap`` has touched from this process's resident set.

    Every page of a memory map that has been read counts in the process's RSS until it is
    unmapped (and the kernel maps whole runs of pages around each one read), so one pass over
    a 2 GiB ``.npy`` would hold 2 GiB. ``madvise(MADV_DONTNEED)`` unmaps them; the data stay
    in the OS page cache. Only shared maps (modes ``"r"``, ``"r+"``) are released: for a
    copy-on-write map (``"c"``) it would discard the changes. Returns whether it released.
    """
    mm = getattr(X, "_mmap", None)
    if (
        not isinstance(mm, mmap.mmap)
        or getattr(X, "mode", None) not in ("r", "r+")
        or not hasattr(mmap, "MADV_DONTNEED")
    ):
        return False
    mm.madvise(mmap.MADV_DONTNEED)
    return True


def _file_rows(X: np.ndarray) -> tuple[str, int, int] | None:
    """``(path, file offset of row 0, row stride)`` when the rows of memmap ``X`` can be read
    from its file with ``pread`` (whole rows, contiguous inside), else None."""
    mm, path = getattr(X, "_mmap", None), getattr(X, "filename", None)
    if not isinstance(mm, mmap.mmap) or not path or X.ndim < 1 or X.shape[0] == 0:
        return None
    if getattr(X, "mode", None) == "c":  # copy-on-write: its changes are not in the file
        return None
    if X.strides[0] < X[0].nbytes or not X[0].flags.c_contiguous:
        return None
    # np.memmap maps from its offset rounded down to the allocation granularity; a view
    # keeps its base's offset, so locate row 0 by its address inside the map
    offset = cast(np.memmap, X).offset  # X holds an _mmap: it is an np.memmap
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    addr = np.frombuffer(mm, np.uint8, count=1).ctypes.data
    return path, start + X.ctypes.data - addr, X.strides[0]


def _pread_rows(src: tuple[str, int, int], idx: np.ndarray, out: np.ndarray) -> None:
    """Read rows ``idx`` (in range, any order) of a file-backed array into ``out`` with one
    ``preadv`` per run of consecutive rows (sorted indices make the runs long and the reads
    sequential): nothing is mapped, so the process's RSS does not grow."""
    path, base, stride = src
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate(([0], breaks)).tolist()
    stops = np.concatenate((breaks, [idx.shape[0]])).tolist()
    rows = idx.tolist()
    fd = os.open(path, os.O_RDONLY)
    try:
        for a, b in zip(starts, stops):
            # numpy types ndarray.__buffer__ for Python >= 3.12 only
            view = memoryview(out[a:b]).cast("B")  # type: ignore[arg-type]
            if os.preadv(fd, [view], base + rows[a] * stride) != view.nbytes:
                raise OSError(f"{path}: short read (was the file truncated?)")
    finally:
        os.close(fd)


def labels_path_for(x_path: str | os.PathLike[str]) -> Path:
    """The ``y`` file that goes with a ``.npy`` features file: the stem's last ``X``
    replaced by ``y``, in the same folder (the file need not exist).

    Parameters
    ----------
    x_path : str or os.PathLike
        The features file, such as ``train_X.npy``.

    Returns
    -------
    Path

    Raises
    ------
    DataError
        If the file's stem has no ``X``.

    Examples
    --------
    >>> labels_path_for("data/train_X.npy").name
    'train_y.npy'
    >>> labels_path_for("X_test.npy").name
    'y_test.npy'
    """
    x_path = Path(x_path)
    stem = x_path.stem
    i = stem.rfind("X")
    if i < 0:
        raise DataError(
            f"cannot find the labels for {x_path}: name the features file with an 'X' "
            "(X.npy, train_X.npy) and the labels the same with 'y' (y.npy, train_y.npy), "
            "or save both in one .npz with arrays 'X' and 'y'"
        )
    return x_path.with_name(stem[:i] + "y" + stem[i + 1 :] + x_path.suffix)


def _check_pair(X: np.ndarray, y: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    if X.ndim != 2:
        raise DataError(f"{source}: X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise DataError(f"{source}: X is empty: shape {X.shape}")
    if y.ndim not in (1, 2):
        raise DataError(
            f"{source}: y must have shape (n_samples,) or (n_samples, n_targets), got {y.shape}"
        )
    if y.shape[0] != X.shape[0]:
        raise DataError(f"{source}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        y = y.astype(np.int64)
    else:
        y = y.astype(np.float32)  # regression targets
    return X, y


def load_arrays(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Load features and labels from a ``.npz`` file, a ``.npy`` pair or a folder.

    Files are read by :mod:`neuronlab.io.npyfile`: only regular files, every size a header
    claims checked against the file before anything is allocated, numbers only (no pickle),
    and an ``.npz`` refused when its deflated members would expand more than a hundredfold
    (a zip bomb).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` file with arrays ``X`` and ``y``; a ``.npy`` features file, whose labels
        are the file :func:`labels_path_for` names; or a folder (``folder/X.npy`` with
        ``folder/y.npy``).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        From ``.npz``: in memory, float32 unless stored as float64. From ``.npy``: an
        ``np.memmap`` in the stored dtype (read lazily; :func:`batch` converts rows to
        float32). Values are not scanned for NaN here (that would read the whole file);
        the model checks each batch.
    y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        int64 labels (integer or bool data) or float32 regression targets, in memory.

    Raises
    ------
    FileNotFoundError
        A file is missing (named in the message).
    DataError
        A damaged or hostile file (not a regular file, corrupt, truncated, objects, a zip
        bomb), missing ``X``/``y`` arrays, or lengths that do not match. A ValueError.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "X.npy"
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = read_npz(path, DataError, names=("X", "y"))
        X, y = _check_pair(arrays["X"], arrays["y"], str(path))
        if X.dtype != np.float64:
            X = X.astype(np.float32, copy=False)
        return X, y
    if suffix == ".npy":
        X = read_npy(path, DataError, mmap=True)
        y = read_npy(labels_path_for(path), DataError, what="labels file")
        return _check_pair(X, y, str(path))
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    raise DataError(f"unsupported data file {path}: expected a .npz file, a .npy file or a folder")


def batch(
    X: np.ndarray,
    idx: np.ndarray,
    *,
    out: np.ndarray | None = None,
    dtype: Any = np.float32,
) -> np.ndarray:
    """Read rows ``X[idx]`` into a contiguous array of ``dtype``.

    Pass ``idx`` sorted (as :func:`iterate_minibatches` does): on a memory-mapped X rows are
    then read in file order, so the operating system reads ahead sequentially instead of
    seeking, and in memory the gather walks forward through the cache. The rows of an
    ``np.memmap`` are read from its file (``preadv``, one call per run of consecutive rows),
    not through the map: mapped pages would count in the process's memory, up to the whole
    file after one shuffled pass.

    Parameters
    ----------
    X : ndarray or np.memmap of shape (n_samples, n_features)
    idx : ndarray of int of shape (n_batch,)
    out : ndarray of shape (>= n_batch, n_features), optional
        Buffer reused across calls (its leading rows are filled and returned as a view).
    dtype : default float32

    Returns
    -------
    ndarray of shape (n_batch, n_features), C-contiguous, of ``dtype`` (or of ``out``).
    """
    idx = np.asarray(idx)
    n = idx.shape[0]
    if out is None:
        out = np.empty((n, *X.shape[1:]), dtype=dtype)
    elif out.shape[0] < n or out.shape[1:] != X.shape[1:]:
        raise ValueError(
            f"out has shape {out.shape}, need at least ({n}, {', '.join(map(str, X.shape[1:]))})"
        )
    dst = out[:n]
    memmap = isinstance(X, np.memmap) and n > 0
    fast = memmap or dst.nbytes >= 1 << 16  # below 64 KiB the checks cost more than they save
    if fast and (idx.max() >= X.shape[0] or idx.min() < -X.shape[0]):
        raise IndexError(f"row index out of range for X with {X.shape[0]} rows")
    src = _file_rows(X) if memmap else None
    if src is not None:
        # A memmap: read the rows from its file instead of touching the map, whose pages
        # would stay resident (the whole file after one pass over shuffled rows).
        same = X.dtype == dst.dtype and dst.flags.c_contiguous
        raw = dst if same else np.empty((n, *X.shape[1:]), X.dtype)
        rows = np.where(idx < 0, idx + X.shape[0], idx)
        try:
            _pread_rows(src, rows, raw)
        except OSError:
            src = None  # the file moved or shrank: read through the map instead
        else:
            if raw is not dst:
                dst[...] = raw
    if src is None:
        if X.dtype == dst.dtype:
            # mode="wrap" selects the same rows as the default for the indices checked above,
            # but lets NumPy gather straight into out (mode="raise" gathers into a temporary)
            np.take(X, idx, axis=0, out=dst, mode="wrap" if fast else "raise")
        else:
            dst[...] = X[idx]  # integer or float64 storage: gather, then cast once
    return dst


def iterate_minibatches(
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    order: np.ndarray | None = None,
    reuse_buffer: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(X_batch, y_batch)`` minibatches with rows read by :func:`batch`.

    Parameters
    ----------
    X : ndarray or np.memmap of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_targets)
    batch_size : int
    order : ndarray of int, optional
        Rows to visit in this order, e.g. a per-epoch permutation of the training indices
        from :func:`split_indices`. Default: 0..n_samples-1. Consecutive chunks of
        ``batch_size`` form the batches (the last may be smaller); inside a chunk rows are
        read in sorted order, which changes nothing for a minibatch gradient (a mean over
        the rows) but makes memory-mapped reads sequential.
    reuse_buffer : bool, default False
        Fill one preallocated X buffer for every batch (no allocation per step). A yielded
        batch is then only valid until the next one is requested.

    Yields
    ------
    X_batch : float32 ndarray of shape (n_batch, n_features) (float64 if X is float64)
    y_batch : ndarray of shape (n_batch,)
    """
    batch_size = check_positive_int("batch_size", batch_size)
    if X.shape[0] != np.shape(y)[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {np.shape(y)[0]}")
    n = X.shape[0]
    order = np.arange(n) if order is None else np.asarray(order)
    if order.ndim != 1 or not np.issubdtype(order.dtype, np.integer):
        raise ValueError(
            f"order must be a 1-D integer index array, got shape {order.shape}, dtype {order.dtype}"
        )
    if order.size and (order.min() < 0 or order.max() >= n):
        raise ValueError(
            f"order must index rows in [0, {n}), got {int(order.min())}..{int(order.max())}"
        )
    dtype = np.float64 if X.dtype == np.float64 else np.float32
    buf = (
        np.empty((min(batch_size, order.size), *X.shape[1:]), dtype=dtype) if reuse_buffer else None
    )
    for start in range(0, order.size, batch_size):
        idx = np.sort(order[start : start + batch_size])
        yield batch(X, idx, out=buf, dtype=dtype), y[idx]
