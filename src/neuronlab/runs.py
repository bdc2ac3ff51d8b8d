"""Build a training run from a :class:`~neuronlab.config.RunConfig`: load and split the data,
fit the preprocessor's choice, create the model, loss, optimizer, schedule and regularisers.

The command line uses these; they are plain functions so that scripts, searches and tests
build exactly the run ``neuronlab train`` would.
"""

from __future__ import annotations

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
    "SplitRows",
    "build_run",
    "evaluate_arrays",
    "is_file_source",
    "load_source",
    "make_preprocessor",
    "n_outputs",
    "prepare_run",
    "split_data",
    "split_rows",
]

_BINARY_LOSSES = ("sigmoid_cross_entropy", "binary_hinge")  # one score per sample


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
    """A run's data as loaded (``X`` may be a memmap) and the rows of each part:
    ``parts.train`` / ``.val`` / ``.test`` (sorted), or ``parts.test`` empty and ``test`` set
    when the data ships its own test set."""

    X: np.ndarray
    y: np.ndarray
    parts: Any  # SplitIndices
    test: tuple[np.ndarray, np.ndarray] | None

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


def split_rows(cfg: RunConfig) -> SplitRows:
    """Load ``cfg``'s data and split its row indices (stratified when labels are classes);
    nothing is gathered, so a memory-mapped file stays on disk."""
    from neuronlab.data import split_indices

    d = cfg.data
    (X, y), test = load_source(d.source)
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(f"X and y have different numbers of samples: {X.shape[0]} and {y.shape[:1]}")
    stratify = y.ndim == 1 and np.issubdtype(y.dtype, np.integer)
    # The data may have its own test set: the validation share then comes from the rest.
    parts = split_indices(y if y.ndim == 1 else np.zeros(y.shape[0]), val_size=d.val_size,
                          test_size=d.test_size if test is None else 0.0, stratify=stratify,
                          seed=cfg.train.seed)
    return SplitRows(X, y, parts, test)


def split_data(cfg: RunConfig) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The (train, validation, test) pairs of a run, gathered into memory."""
    return split_rows(cfg).gather()


def n_outputs(loss_name: str, task: str, *labels: np.ndarray) -> int:
    """Width of the output layer: one score per class (the largest label of any split + 1),
    one for binary losses, or the number of targets per sample."""
    y = labels[0]
    if task != "classification":
        return int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
    if loss_name in _BINARY_LOSSES:
        return 1
    return int(max(int(v.max()) for v in labels if v.size)) + 1


# -- building a run from its config ---------------------------------------------------------
def build_run(
    cfg: RunConfig, n_in: int, labels: tuple[np.ndarray, ...], steps_per_epoch: int
) -> dict[str, Any]:
    """Model, loss, optimizer, schedule, regularizer and constraints for ``cfg``, for data with
    ``n_in`` features and the label arrays ``labels`` (train first; they size the output).

    Schedule periods given in epochs are turned into optimizer steps here.
    """
    from neuronlab import regularizers, schedules
    from neuronlab.layers import mlp
    from neuronlab.optim import get_optimizer
    from neuronlab.registry import LOSSES, OPTIMIZERS

    m, o, r = cfg.model, cfg.optim, cfg.regularization
    loss_name = LOSSES.get(m.loss).registry_name
    loss = LOSSES.create(m.loss)
    model = mlp(
        n_in,
        m.hidden,
        n_outputs(loss_name, loss.task, *labels),
        activation=m.activation,
        batchnorm=m.batchnorm,
        dropout=m.dropout,
        init=m.init,
        out_init=m.out_init,
        rng=cfg.train.seed,
    )
    if getattr(OPTIMIZERS.get(o.optimizer), "full_batch", False):
        # L-BFGS: a line search picks every step, so lr, clipping and schedules do not apply
        if o.clip_norm is not None:
            raise ValueError(f"optim.clip_norm does not apply to {o.optimizer!r} (full batch)")
        optimizer = get_optimizer(o.optimizer)
    else:
        optimizer = get_optimizer(o.optimizer, lr=o.lr, clip_norm=o.clip_norm)
    kind = schedules.SCHEDULES.get(o.schedule).registry_name
    spe = steps_per_epoch
    if kind == "constant":
        schedule = None
    elif kind == "step":
        schedule = schedules.get_schedule(
            "step", lr=o.lr, factor=o.decay_factor, every=o.decay_epochs * spe
        )
    elif kind in ("exponential", "inverse_time"):
        # decay_rate is per epoch; the schedule counts steps: k_step = k_epoch / steps_per_epoch
        schedule = schedules.get_schedule(kind, lr=o.lr, k=o.decay_rate / spe)
    elif kind == "cosine":
        schedule = schedules.get_schedule("cosine", lr=o.lr, total_steps=cfg.train.epochs * spe)
    else:
        raise ValueError(
            f"schedule {o.schedule!r} is not available on the command line; "
            "choose one of: constant, step, exponential, inverse_time, cosine"
        )
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


def evaluate_arrays(
    model: Any, loss: Any, X: np.ndarray, y: np.ndarray, batch_size: int = 1024, *,
    rows: np.ndarray | None = None, preprocessor: Any = None,
) -> dict[str, float]:
    """Mean loss and accuracy (or mean squared error) of ``model`` on (X, y), in batches.

    ``rows``: score only these rows of X and y. ``preprocessor``: applied to each batch. A
    memory-mapped X is read from its file a batch at a time, never gathered whole."""
    from neuronlab.data.arrays import batch

    total = correct = sq = 0.0
    n = X.shape[0] if rows is None else len(rows)
    dtype = model.dtype
    for s in range(0, n, batch_size):
        if rows is not None or isinstance(X, np.memmap):
            idx = np.arange(s, min(s + batch_size, n)) if rows is None else rows[s : s + batch_size]
            xb, yb = batch(X, idx, dtype=X.dtype), y[idx]
        else:
            xb, yb = X[s : s + batch_size], y[s : s + batch_size]
        if preprocessor is not None:
            xb = preprocessor.transform(xb)
        xb = np.asarray(xb, dtype=dtype)
        scores = model.forward(xb, training=False)
        total += loss.forward(scores, yb) * xb.shape[0]
        if loss.task == "regression":
            d = scores - yb.reshape(scores.shape)
            sq += float(np.vdot(d, d))
        else:
            pred = loss.predict(scores)
            correct += int(np.count_nonzero(pred == yb.reshape(pred.shape)))
    out = {"loss": total / n}
    width = int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
    out["error" if loss.task == "regression" else "accuracy"] = (
        sq if loss.task == "regression" else correct
    ) / (n * width)
    return out


# -- everything at once ---------------------------------------------------------------------
@dataclass
class PreparedRun:
    """The data and components of one run, ready for :class:`~neuronlab.train.Trainer`.

    ``train``, ``val`` and ``test`` are ``(X, y)`` pairs already transformed by
    ``preprocessor`` (fitted on ``train`` only); ``val`` may have 0 rows.
    """

    config: RunConfig
    model: Any
    loss: Any
    optimizer: Any
    schedule: Any
    regularizer: Any
    constraints: list[Any]
    preprocessor: Any
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    scratch: Path | None = None  # the folder of streamed split files, removed by close()

    def close(self) -> None:
        """Remove the split files written for a large memory-mapped data set (if any)."""
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

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


def prepare_run(cfg: RunConfig, *, scratch_dir: str | os.PathLike[str] | None = None) -> PreparedRun:
    """Load and split ``cfg``'s data, fit its preprocessor on the training part (the notes'
    rule: statistics from training data only) and build the components.

    With ``scratch_dir``, a memory-mapped ``.npy`` larger than :data:`STREAM_BYTES` is not
    gathered into memory: each part is read, preprocessed and written to a ``.npy`` file in a
    new folder inside ``scratch_dir`` a chunk at a time, and opened memory-mapped (the Trainer
    reads it one batch at a time). The preprocessor is then fitted on :data:`FIT_BYTES` of
    training rows drawn at random (all of them when they fit). ``close()`` removes the folder."""
    s = split_rows(cfg)
    pre = make_preprocessor(cfg)
    scratch = None
    if (scratch_dir is not None and s.test is None and isinstance(s.X, np.memmap)
            and s.X.nbytes > STREAM_BYTES):
        scratch = Path(tempfile.mkdtemp(prefix=f".split-{os.getpid()}-", dir=_scratch_home(scratch_dir)))
        try:
            X_tr, X_val, X_te = _stream_parts(s, pre, scratch, cfg.train.seed)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        (y_tr, y_val, y_te) = (s.y[idx] for idx in s.parts)
    else:
        (X_tr, y_tr), (X_val, y_val), (X_te, y_te) = s.gather()
        if pre is not None:
            X_tr = pre.fit_transform(X_tr)
            X_val, X_te = pre.transform(X_val), pre.transform(np.asarray(X_te))
    n_in = int(np.prod(X_tr.shape[1:]))
    steps_per_epoch = -(-X_tr.shape[0] // cfg.train.batch_size)
    parts = build_run(cfg, n_in, (y_tr, y_val, y_te), steps_per_epoch)
    return PreparedRun(
        config=cfg,
        **parts,
        preprocessor=pre,
        train=(X_tr, y_tr),
        val=(X_val, y_val),
        test=(X_te, y_te),
        scratch=scratch,
    )


#: Memory-mapped data files above this size are split into files on disk, not into memory.
STREAM_BYTES = 256 << 20
#: A streamed run's preprocessor is fitted on this much of the training rows (as float32;
#: at least two rows per feature, so PCA and ZCA see a full-rank covariance). Fitting works in
#: float64 with temporaries: about five times this in memory, whatever the data's size.
FIT_BYTES = 32 << 20
_CHUNK_BYTES = 32 << 20


def _scratch_home(folder: str | os.PathLike[str]) -> Path:
    """``folder``, created if needed, without the ``.split-<pid>-*`` folders of processes that
    are gone (a run killed before its ``close()``)."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob(".split-*-*"):
        pid = old.name.split("-")[1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            pass
    return path


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
