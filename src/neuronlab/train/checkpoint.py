"""Exact training checkpoints: one safetensors file that resumes a run bit for bit.

A checkpoint holds, as tensors: the model's parameters and buffers (``model/<name>``), the
optimizer's state arrays (``optimizer/...``), the current epoch's shuffle permutation
(``data/perm``) and callbacks' arrays such as early stopping's best weights
(``callbacks/...``); and, as JSON in the metadata: the architecture, the optimizer's type,
config and step counter, the schedule's config, the trainer's counters (step, epoch,
position in the epoch, lr_scale, the epoch's running sums), the shuffle generator's
``bit_generator.state``, every random layer's ``rng.bit_generator.state``, the history so
far and the callbacks' counters. A SHA-256 of all tensor bytes is stored too, so a flipped
bit is reported instead of silently loaded.

Files are written with :func:`neuronlab.io.atomic_write_bytes` (temporary file, fsync,
rename): a crash leaves either the previous file or the complete new one. Loading parses
JSON and raw arrays only; it never executes code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from neuronlab.layers.sequential import Sequential
    from neuronlab.train.callbacks import Callback
    from neuronlab.train.trainer import Trainer

__all__ = ["CheckpointError", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

FORMAT = "neuronlab.checkpoint"
VERSION = 1
CHECKPOINT_NAME = re.compile(r"^(?:epoch-(\d+)-)?step-(\d+)\.safetensors$")


class CheckpointError(ValueError):
    """A checkpoint cannot be used: not a checkpoint, truncated, corrupted, or written for
    a different model or data layout."""


# -- nested state <-> (JSON skeleton, tensors) --------------------------------------------
def _flatten(tree: Any, path: str, tensors: dict[str, np.ndarray]) -> Any:
    """Replace every ndarray / NumPy scalar in ``tree`` by ``{"__tensor__": key}`` and put
    the array in ``tensors``. NumPy scalars travel as 0-d arrays so their dtype survives
    (a float32 scalar must not come back as a Python float64)."""
    if isinstance(tree, (np.ndarray, np.generic)):
        tensors[path] = np.ascontiguousarray(tree)
        return {"__tensor__": path, "scalar": isinstance(tree, np.generic)}
    if isinstance(tree, Mapping):
        out = {}
        for k, v in tree.items():
            if not isinstance(k, str):
                raise TypeError(f"state keys must be str, got {k!r} at {path!r}")
            out[k] = _flatten(v, f"{path}/{k}", tensors)
        return out
    if isinstance(tree, (list, tuple)):
        return [_flatten(v, f"{path}/{i}", tensors) for i, v in enumerate(tree)]
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(f"cannot checkpoint a {type(tree).__name__} at {path!r}")


def _unflatten(tree: Any, tensors: Mapping[str, np.ndarray]) -> Any:
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            key = tree["__tensor__"]
            if key not in tensors:
                raise CheckpointError(f"checkpoint metadata refers to a missing tensor {key!r}")
            arr = tensors[key]
            return arr[()] if tree.get("scalar") else arr
        return {k: _unflatten(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unflatten(v, tensors) for v in tree]
    return tree


def _digest(tensors: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.reshape(-1).view(np.uint8).data if a.size else b"")
    return h.hexdigest()


# -- capture / restore ---------------------------------------------------------------------
def _callback_keys(callbacks: list[Callback]) -> list[str]:
    """``"EarlyStopping.0"``, ``"EarlyStopping.1"``, ...: by class and occurrence, so adding
    a stateless callback (a progress bar) on resume does not shift the others."""
    seen: dict[str, int] = {}
    keys = []
    for cb in callbacks:
        name = type(cb).__name__
        keys.append(f"{name}.{seen.get(name, 0)}")
        seen[name] = seen.get(name, 0) + 1
    return keys


def _layer_rngs(model: Sequential) -> dict[str, Any]:
    return {
        str(i): layer.rng
        for i, layer in enumerate(model.layers)
        if isinstance(getattr(layer, "rng", None), np.random.Generator)
    }


def save_checkpoint(trainer: Trainer, path: str | os.PathLike[str]) -> None:
    """Write the trainer's complete state to ``path`` atomically."""
    from safetensors.numpy import save

    from neuronlab.io import atomic_write_bytes

    model = trainer.model
    tensors: dict[str, np.ndarray] = {}
    for k, v in {**model.params, **model.buffers}.items():
        tensors[f"model/{k}"] = np.ascontiguousarray(v)
    if trainer._perm is not None:
        tensors["data/perm"] = trainer._perm
    callbacks = {}
    for key, cb in zip(_callback_keys(trainer.callbacks), trainer.callbacks):
        state = cb.state_dict()
        if state is not None:
            callbacks[key] = _flatten(state, f"callbacks/{key}", tensors)
    schedule = trainer.schedule
    meta = {
        "model": model.get_config(),
        "optimizer": _flatten(trainer.optimizer.state_dict(), "optimizer", tensors),
        "schedule": schedule.get_config() if hasattr(schedule, "get_config") else None,
        "trainer": _counters(trainer),
        "shuffle_rng": trainer._shuffle_rng.bit_generator.state,
        "layer_rngs": {i: g.bit_generator.state for i, g in _layer_rngs(model).items()},
        "history": trainer.history.to_dict(),
        "callbacks": callbacks,
    }
    metadata = {
        "format": FORMAT,
        "version": str(VERSION),
        "meta": json.dumps(meta),
        "sha256": _digest(tensors),
    }
    atomic_write_bytes(path, save(tensors, metadata=metadata))


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint read and verified by :func:`load_checkpoint`.

    Attributes
    ----------
    path : str
    meta : dict
        The JSON metadata (see the module docstring); ``meta["trainer"]["step"]`` etc.
    tensors : dict of str to ndarray
    """

    path: str
    meta: dict[str, Any]
    tensors: dict[str, np.ndarray]

    @property
    def step(self) -> int:
        return int(self.meta["trainer"]["step"])

    @property
    def epoch(self) -> int:
        return int(self.meta["trainer"]["epoch"])

    @property
    def epochs_done(self) -> int:
        """Epochs the run had finished when this checkpoint was written."""
        return len(self.meta["history"]["epochs"])

    def model_arrays(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by dotted name."""
        return {k[6:]: v for k, v in self.tensors.items() if k.startswith("model/")}

    def build_model(self) -> Sequential:
        """A new Sequential with the checkpoint's architecture and weights."""
        from neuronlab.layers.sequential import Sequential

        model = Sequential.from_config(self.meta["model"])
        arrays = self.model_arrays()
        dtypes = {v.dtype for v in arrays.values()}
        if len(dtypes) == 1:
            model.astype(dtypes.pop())
        model.set_arrays(arrays)
        return model


def _read_metadata(data: bytes, path: str) -> dict[str, str]:
    """The safetensors header's ``__metadata__`` after checking the header's framing (an
    8-byte little-endian length, then that much JSON, then the tensor bytes it describes)."""
    if len(data) < 8:
        raise CheckpointError(f"checkpoint {path!r} is truncated or empty ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise CheckpointError(f"checkpoint {path!r} is truncated or not a safetensors file")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"checkpoint {path!r} is corrupted: unreadable header") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"checkpoint {path!r} is corrupted: bad header")
    end = max(
        (
            int(v["data_offsets"][1])
            for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v
        ),
        default=0,
    )
    if 8 + n + end != len(data):
        raise CheckpointError(
            f"checkpoint {path!r} is truncated or corrupted: the header describes "
            f"{8 + n + end} bytes, the file has {len(data)}"
        )
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not a neuronlab checkpoint (no {FORMAT!r} metadata)")
    return meta


def latest_checkpoint(directory: str | os.PathLike[str]) -> str | None:
    """The newest checkpoint file in ``directory`` (highest step; at equal steps the one
    written at the end of the epoch), or None."""
    best: tuple[int, int, str] | None = None
    for name in os.listdir(directory):
        m = CHECKPOINT_NAME.match(name)
        if m:
            key = (int(m.group(2)), m.group(1) is not None, name)
            if best is None or key > best:
                best = key
    return None if best is None else os.path.join(os.fspath(directory), best[2])


def load_checkpoint(path: str | os.PathLike[str]) -> LoadedCheckpoint:
    """Read and verify a checkpoint file, or the latest one in a folder.

    Raises
    ------
    FileNotFoundError
        No such file, or a folder without checkpoints.
    CheckpointError
        Truncated, corrupted (checksum mismatch) or not a neuronlab checkpoint.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = os.fspath(path)
    if os.path.isdir(path):
        found = latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"no checkpoint (step-*.safetensors) in folder {path!r}")
        path = found
    with open(path, "rb") as f:
        data = f.read()
    meta = _read_metadata(data, path)
    if meta.get("version") != str(VERSION):
        raise CheckpointError(
            f"checkpoint {path!r} has version {meta.get('version')!r}; this "
            f"neuronlab reads version {VERSION}"
        )
    try:
        tensors = load(data)
        info = json.loads(meta["meta"])
    except (SafetensorError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path!r} is corrupted: {e}") from None
    if _digest(tensors) != meta.get("sha256"):
        raise CheckpointError(
            f"checkpoint {path!r} is corrupted: its arrays fail the SHA-256 check"
        )
    return LoadedCheckpoint(path, info, tensors)


def restore_checkpoint(trainer: Trainer, ckpt: LoadedCheckpoint) -> None:
    """Put the model, optimizer, RNGs, counters and history of ``ckpt`` into ``trainer``.
    Callback states are restored separately (:func:`restore_callbacks`), after the
    callbacks' ``on_train_begin`` has reset them."""
    meta, model = ckpt.meta, trainer.model
    saved_cfg, own_cfg = meta["model"], json.loads(json.dumps(model.get_config()))
    if saved_cfg != own_cfg:
        raise CheckpointError(
            f"checkpoint {ckpt.path!r} was written for a different model: {saved_cfg} != {own_cfg}"
        )
    saved_fit, own_fit = meta["trainer"]["fit"], _counters(trainer)["fit"]
    for key in ("n_samples", "batch_size"):
        if saved_fit[key] != own_fit[key]:
            raise CheckpointError(
                f"checkpoint {ckpt.path!r} was written with {key}={saved_fit[key]}, "
                f"this run has {key}={own_fit[key]}; resume needs the same data layout"
            )
    try:
        model.set_arrays(ckpt.model_arrays())
    except ValueError as e:
        raise CheckpointError(f"checkpoint {ckpt.path!r} does not fit the model: {e}") from None
    trainer.optimizer.load_state_dict(_unflatten(meta["optimizer"], ckpt.tensors))
    rngs, saved_rngs = _layer_rngs(model), meta["layer_rngs"]
    if set(rngs) != set(saved_rngs):
        raise CheckpointError(
            f"checkpoint {ckpt.path!r} has random states for layers "
            f"{sorted(saved_rngs)}, the model has random layers {sorted(rngs)}"
        )
    for i, g in rngs.items():
        _set_rng_state(g, saved_rngs[i])
    _set_rng_state(trainer._shuffle_rng, meta["shuffle_rng"])
    perm = ckpt.tensors.get("data/perm")
    trainer._perm = None if perm is None else np.array(perm, dtype=np.int64)
    _set_counters(trainer, meta["trainer"])
    from neuronlab.train.history import History

    trainer.history = History.from_dict(meta["history"])


def restore_callbacks(trainer: Trainer, ckpt: LoadedCheckpoint) -> None:
    saved = ckpt.meta["callbacks"]
    for key, cb in zip(_callback_keys(trainer.callbacks), trainer.callbacks):
        if key in saved:
            cb.load_state_dict(_unflatten(saved[key], ckpt.tensors))


def _set_rng_state(g: np.random.Generator, state: dict[str, Any]) -> None:
    if state.get("bit_generator") != type(g.bit_generator).__name__:
        raise CheckpointError(
            f"random state is for {state.get('bit_generator')!r}, the generator "
            f"uses {type(g.bit_generator).__name__}"
        )
    g.bit_generator.state = state


def _counters(trainer: Trainer) -> dict[str, Any]:
    """The trainer's scalar state (JSON) that a checkpoint stores."""
    t = trainer
    return {
        "step": t.step,
        "epoch": t.epoch,
        "batch_in_epoch": t.batch_in_epoch,
        "epoch_done": t.epoch_done,
        "stop_training": t.stop_training,
        "lr_scale": t.lr_scale,
        "sums": dict(t._sums),
        "fit": {"n_samples": t.n_samples, "batch_size": t.batch_size, "epochs": t.epochs,
                "seed": t._seed},
    }


def _set_counters(trainer: Trainer, c: dict[str, Any]) -> None:
    t = trainer
    t.step, t.epoch, t.batch_in_epoch = int(c["step"]), int(c["epoch"]), int(c["batch_in_epoch"])
    t.epoch_done, t.stop_training = bool(c["epoch_done"]), bool(c["stop_training"])
    t.lr_scale = float(c["lr_scale"])
    t._sums = dict(c["sums"])
