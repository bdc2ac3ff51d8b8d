"""Build a training run from a :class:`~neuronlab.config.RunConfig`: load and split the data,
fit the preprocessor's choice, create the model, loss, optimizer, schedule and regularisers.

The command line uses these; they are plain functions so that scripts, searches and tests
build exactly the run ``neuronlab train`` would.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuronlab.config import RunConfig

__all__ = [
    "FIT_BYTES",
    "STREAM_BYTES",
    "PreparedRun",
    "RunData",
    "SplitRows",
    "build_run",
    "is_file_source",
    "load_source",
    "make_preprocessor",
    "check_network_memory",
    "loss_kind",
    "prepare_data",
    "prepare_run",
    "split_data",
    "split_rows",
]


# -- data ---------------------------------------------------------------------------------
def load_source(
    source: str,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """Load ``source``: ``((X, y), None)``, or ``((X_train, y_train), (X_test, y_test))`` for
    data that ships its own test set (``cifar10:DIR``)."""
    from neuronlab import data

    if source.startswith("cifar10:"):
        folder = source.split(":", 1)[1]
        if not folder:
            raise ValueError("cifar10 needs a folder: --data cifar10:DIR")
        train, test = data.cifar10(folder)
        return train, test
    if is_file_source(source) and (
        source.lower().endswith((".npz", ".npy")) or os.sep in source or Path(source).exists()
    ):
        return data.load_arrays(source), None
    if source not in data.DATASETS:
        raise ValueError(
            f"unknown data {source!r}: give one of {', '.join(data.DATASETS.names())}, "
            "a .npz/.npy file or cifar10:DIR"
        )
    return data.load_dataset(source), None


def is_file_source(source: str) -> bool:
    """True when ``source`` names a file or folder rather than a data set or ``cifar10:DIR``."""
    from neuronlab.data import DATASETS

    return not source.startswith("cifar10:") and source not in DATASETS


@dataclass
class SplitRows:
    """A run's data as loaded (``X`` may be a memmap), its targets checked against the loss,
    and the rows of each part: ``parts.train`` / ``.val`` / ``.test`` (sorted), or
    ``parts.test`` empty and ``test`` set when the data ships its own test set.
    ``n_outputs`` is the width of the output layer the targets call for."""

    X: np.ndarray
    y: np.ndarray
    parts: Any  # SplitIndices
    test: tuple[np.ndarray, np.ndarray] | None
    n_outputs: int

    def gather(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """The (train, validation, test) pairs, read into memory."""
        return self.pair("train"), self.pair("val"), self.pair("test")

    def pair(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        """One part ("train", "val" or "test") read into memory; the test part is the data's
        own test set when it has one."""
        if part == "test" and self.test is not None:
            return self.test
        idx = getattr(self.parts, part)
        return np.asarray(self.X[idx]), self.y[idx]


def loss_kind(loss: str) -> tuple[str, str]:
    """The registry name and task of the loss called ``loss`` (errors list the choices)."""
    from neuronlab.registry import LOSSES

    return LOSSES.get(loss).registry_name, LOSSES.create(loss).task


def split_rows(cfg: RunConfig, *, data: tuple[Any, Any] | None = None) -> SplitRows:
    """Load ``cfg``'s data (or take ``data``, an ``(X, y)`` pair of arrays, instead of
    ``cfg.data.source``), check its targets against the loss and split its row indices
    (stratified when labels are classes); nothing is gathered, so a memory-mapped file stays
    on disk.

    Class labels must be 0..C-1 with every class present in the training split, unless
    ``data.classes`` declares C; a sparse set such as {0, 1, 2, 999} is refused with the odd
    labels named (:func:`neuronlab.data.labels.check_targets`)."""
    from neuronlab.data import split_indices
    from neuronlab.data.labels import BINARY_LOSSES, check_targets, check_training_classes

    d = cfg.data
    (X, y), test = load_source(d.source) if data is None else (_in_memory(data), None)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(f"X and y have different numbers of samples: {X.shape[0]} and {y.shape[:1]}")
    loss_name, task = loss_kind(cfg.model.loss)
    y, n_out = check_targets(y, loss_name, task, classes=d.classes)
    classes = task == "classification"
    if test is not None:
        declared = n_out if classes and loss_name not in BINARY_LOSSES else None
        test = (test[0], check_targets(test[1], loss_name, task, classes=declared,
                                       name="the test set's y")[0])
    # The data may have its own test set: the validation share then comes from the rest.
    parts = split_indices(y if y.ndim == 1 else np.zeros(y.shape[0]), val_size=d.val_size,
                          test_size=d.test_size if test is None else 0.0, stratify=classes,
                          seed=cfg.train.seed)
    if classes and d.classes is None:
        check_training_classes(y[parts.train], max(n_out, 2), y)
    return SplitRows(X, y, parts, test, n_out)


def _in_memory(data: tuple[Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    """An ``(X, y)`` pair given to the Python API: X as float32 (float64 kept)."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError("data must be a pair (X, y) of arrays")
    X, y = np.asarray(data[0]), np.asarray(data[1])
    if X.ndim != 2 or X.shape[0] == 0 or X.dtype.kind not in "iuf":
        raise ValueError(f"X must be a non-empty 2-D numeric array, got {X.dtype} {X.shape}")
    return (X if X.dtype == np.float64 else X.astype(np.float32)), y


def split_data(cfg: RunConfig, *, data: tuple[Any, Any] | None = None
               ) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The (train, validation, test) pairs of a run, gathered into memory."""
    return split_rows(cfg, data=data).gather()


# -- building a run from its config ---------------------------------------------------------
def build_run(
    cfg: RunConfig, n_in: int, n_outputs: int, n_train: int, *, dtype: Any = np.float32
) -> dict[str, Any]:
    """Model, loss, optimizer, schedule, regularizer and constraints for ``cfg``, for data with
    ``n_in`` features, ``n_outputs`` outputs (:attr:`SplitRows.n_outputs`) and ``n_train``
    training rows, with parameters of ``dtype``. The memory the network needs is checked before
    anything is allocated. The CLI, search trials, the playground and the scikit-learn
    estimators all build their components here.

    Schedule periods given in epochs are turned into optimizer steps here.
    """
    from neuronlab import regularizers, schedules
    from neuronlab.layers import mlp
    from neuronlab.optim import get_optimizer
    from neuronlab.registry import LOSSES, OPTIMIZERS

    m, o, r = cfg.model, cfg.optim, cfg.regularization
    loss = LOSSES.create(m.loss)
    check_network_memory(n_in, m.hidden, n_outputs, min(cfg.train.batch_size, n_train))
    model = mlp(
        n_in,
        m.hidden,
        n_outputs,
        activation=m.activation,
        batchnorm=m.batchnorm,
        dropout=m.dropout,
        init=m.init,
        out_init=m.out_init,
        rng=cfg.train.seed,
        dtype=dtype,
    )
    if getattr(OPTIMIZERS.get(o.optimizer), "full_batch", False):
        # L-BFGS: a line search picks every step, so lr, clipping and schedules do not apply
        if o.clip_norm is not None:
            raise ValueError(f"optim.clip_norm does not apply to {o.optimizer!r} (full batch)")
        optimizer = get_optimizer(o.optimizer)
    else:
        optimizer = get_optimizer(o.optimizer, lr=o.lr, clip_norm=o.clip_norm)
    kind = schedules.SCHEDULES.get(o.schedule)
    schedule = None if kind is schedules.Constant else kind.from_epochs(  # None: the optimizer's lr
        lr=o.lr, steps_per_epoch=-(-n_train // cfg.train.batch_size), epochs=cfg.train.epochs,
        decay_factor=o.decay_factor, decay_epochs=o.decay_epochs, decay_rate=o.decay_rate)
    if r.l1 and r.l2:
        regularizer = regularizers.ElasticNet(l1=r.l1, l2=r.l2)
    elif r.l2:
        regularizer = regularizers.L2(r.l2)
    elif r.l1:
        regularizer = regularizers.L1(r.l1)
    else:
        regularizer = None
    constraints = [regularizers.MaxNorm(r.max_norm)] if r.max_norm is not None else []
    return {
        "model": model,
        "loss": loss,
        "optimizer": optimizer,
        "schedule": schedule,
        "regularizer": regularizer,
        "constraints": constraints,
    }


def check_network_memory(n_in: int, hidden: list[int], n_out: int, batch_rows: int) -> int:
    """Refuse a network that cannot be trained in this machine's memory, before allocating it;
    returns the estimate in bytes: float32 parameters, gradients, two optimizer slots and the
    monitor's copy, plus a batch's activations and their gradients."""
    widths = [n_in, *hidden, n_out]
    n_params = sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    need = 4 * (5 * n_params + 4 * batch_rows * sum(widths))
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > have:
        shape = "-".join(map(str, widths))
        raise ValueError(
            f"the network {shape} has {n_params:,} parameters and needs about "
            f"{need / 2**30:.1f} GiB to train with batches of {batch_rows}, more than this "
            f"machine's {have / 2**30:.1f} GiB; use smaller --hidden widths or --batch-size"
        )
    return need


def make_preprocessor(cfg: RunConfig) -> Any:
    """The unfitted preprocessor named by ``cfg.data.preprocess`` (None for "none")."""
    from neuronlab.registry import PREPROCESSORS

    name = cfg.data.preprocess
    if name.strip().lower() == "none":
        return None
    if name not in PREPROCESSORS:
        raise ValueError(
            f"unknown preprocessor {name!r}; choose one of: none, {', '.join(PREPROCESSORS.names())}"
        )
    kind = PREPROCESSORS.get(name).registry_name
    if kind == "pca":
        return PREPROCESSORS.create("pca", n_components=cfg.data.components)
    return PREPROCESSORS.create(kind)


# -- everything at once ---------------------------------------------------------------------
@dataclass
class RunData:
    """A run's data, checked, split and preprocessed: ``train``, ``val`` and ``test`` are
    ``(X, y)`` pairs transformed by ``preprocessor`` (fitted on ``train`` only); ``val`` may
    have 0 rows, ``test`` is None when it was not asked for. ``n_outputs`` is the width of the
    output layer the targets call for."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray] | None
    preprocessor: Any
    n_outputs: int
    scratch: Path | None = None  # the folder of streamed split files, removed by close()

    def close(self) -> None:
        """Remove the split files written for a large memory-mapped data set (if any)."""
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


@dataclass
class PreparedRun(RunData):
    """A run's :class:`RunData` and its components, ready for :class:`~neuronlab.train.Trainer`."""

    config: RunConfig = None  # type: ignore[assignment]
    model: Any = None
    loss: Any = None
    optimizer: Any = None
    schedule: Any = None
    regularizer: Any = None
    constraints: list[Any] = dataclasses.field(default_factory=list)

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``Trainer`` besides the callbacks."""
        return {
            "model": self.model,
            "loss": self.loss,
            "optimizer": self.optimizer,
            "schedule": self.schedule,
            "regularizer": self.regularizer,
            "constraints": self.constraints,
        }


def prepare_data(cfg: RunConfig, *, data: tuple[Any, Any] | None = None,
                 scratch_dir: str | os.PathLike[str] | None = None,
                 test: bool = True) -> RunData:
    """Load ``cfg``'s data (or take ``data``, an ``(X, y)`` pair), check and split it and fit
    its preprocessor on the training part (the notes' rule: statistics from training data
    only). ``test=False`` leaves the test rows unread (search trials).

    With ``scratch_dir``, a memory-mapped ``.npy`` larger than :data:`STREAM_BYTES` is not
    gathered into memory: each part is read, preprocessed and written to a ``.npy`` file in a
    new folder inside ``scratch_dir`` a chunk at a time, and opened memory-mapped (the Trainer
    reads it one batch at a time). The preprocessor is then fitted on :data:`FIT_BYTES` of
    training rows drawn at random (all of them when they fit). ``close()`` removes the folder."""
    from neuronlab.run_folder import remove_dead_folders

    s = split_rows(cfg, data=data)
    pre = make_preprocessor(cfg)
    # before any preprocessing or streaming: a network too large for memory is refused at once
    # (with the raw width, an upper bound of what PCA leaves)
    check_network_memory(int(np.prod(s.X.shape[1:])), cfg.model.hidden, s.n_outputs,
                         min(cfg.train.batch_size, s.parts.train.size))
    if (scratch_dir is not None and s.test is None and isinstance(s.X, np.memmap)
            and s.X.nbytes > STREAM_BYTES):
        scratch = Path(tempfile.mkdtemp(prefix=f".split-{os.getpid()}-", dir=remove_dead_folders(scratch_dir)))
        try:
            X_tr, X_val, X_te = _stream_parts(s, pre, scratch, cfg.train.seed)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        y_tr, y_val, y_te = (s.y[idx] for idx in s.parts)
        return RunData((X_tr, y_tr), (X_val, y_val), (X_te, y_te) if test else None, pre,
                       s.n_outputs, scratch)
    (X_tr, y_tr), (X_val, y_val) = s.pair("train"), s.pair("val")
    te = s.pair("test") if test else None
    if pre is not None:
        X_tr = pre.fit_transform(X_tr)

        def transform(X: np.ndarray) -> np.ndarray:  # an empty part keeps the output's width
            X = np.asarray(X)
            return pre.transform(X) if len(X) else np.empty((0, *X_tr.shape[1:]), X_tr.dtype)

        X_val = transform(X_val)
        te = None if te is None else (transform(te[0]), te[1])
    return RunData((X_tr, y_tr), (X_val, y_val), te, pre, s.n_outputs)


def prepare_run(cfg: RunConfig, *, scratch_dir: str | os.PathLike[str] | None = None,
                data: tuple[Any, Any] | None = None) -> PreparedRun:
    """:func:`prepare_data` and :func:`build_run`: the data and components of the run
    ``neuronlab train`` makes of ``cfg``. ``close()`` it when done (streamed split files)."""
    d = prepare_data(cfg, data=data, scratch_dir=scratch_dir)
    try:
        X_tr = d.train[0]
        parts = build_run(cfg, int(np.prod(X_tr.shape[1:])), d.n_outputs, X_tr.shape[0])
    except BaseException:
        d.close()
        raise
    return PreparedRun(**{f.name: getattr(d, f.name) for f in dataclasses.fields(d)},
                       config=cfg, **parts)


#: Memory-mapped data files above this size are split into files on disk, not into memory.
STREAM_BYTES = 256 << 20
#: A streamed run's preprocessor is fitted on this much of the training rows (as float32;
#: at least two rows per feature, so PCA and ZCA see a full-rank covariance). Fitting works in
#: float64 with temporaries: about five times this in memory, whatever the data's size.
FIT_BYTES = 32 << 20
_CHUNK_BYTES = 32 << 20


def _stream_parts(s: SplitRows, pre: Any, folder: Path, seed: int) -> list[np.ndarray]:
    """Each part of ``s.X``, preprocessed, as a read-only memmap of ``folder/X_<part>.npy``
    written a chunk at a time (memory stays bounded by the chunk, whatever the data size)."""
    from neuronlab.data.arrays import batch, release_pages

    X = s.X
    width = int(np.prod(X.shape[1:]))
    if pre is not None:
        cap = max(2 * width, FIT_BYTES // (4 * width))
        rows = s.parts.train
        if rows.size > cap:
            rows = np.sort(np.random.default_rng(seed).choice(rows, cap, replace=False))
        pre.fit(batch(X, rows, dtype=X.dtype).reshape(rows.size, width))
    step = max(1, _CHUNK_BYTES // (X.itemsize * width))
    out: list[np.ndarray] = []
    for name, idx in zip(("train", "val", "test"), s.parts):  # train first: never empty
        if idx.size == 0:
            out.append(np.empty((0, *out[0].shape[1:]), dtype=out[0].dtype))
            continue
        path, handle = folder / f"X_{name}.npy", None
        try:
            for start in range(0, idx.size, step):
                chunk = batch(X, idx[start : start + step], dtype=X.dtype)
                if pre is not None:
                    chunk = np.ascontiguousarray(pre.transform(chunk.reshape(chunk.shape[0], width)))
                if handle is None:  # the header needs the transform's output dtype and width
                    mm = np.lib.format.open_memmap(path, mode="w+", dtype=chunk.dtype,
                                                   shape=(idx.size, *chunk.shape[1:]))
                    offset, row_bytes = mm.offset, chunk[0].nbytes
                    del mm
                    handle = os.open(path, os.O_WRONLY)
                os.pwrite(handle, chunk.tobytes(), offset + start * row_bytes)
                release_pages(X)
        finally:
            if handle is not None:
                os.close(handle)
        out.append(np.load(path, mmap_mode="r", allow_pickle=False))
    return out
