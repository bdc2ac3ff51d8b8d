"""Exact training checkpoints: one safetensors file that resumes a run bit for bit.

A checkpoint holds, as tensors: the model's parameters and buffers (``model/<name>``), the
optimizer's state arrays (``optimizer/...``), the training state's epoch order
(``state/order``) and callbacks' arrays such as early stopping's best weights
(``callbacks/...``); and, as JSON in the metadata: the architecture, the optimizer's type,
config and step counter, the schedule's config, the :class:`~neuronlab.train.TrainState`
(counters, lr_scale, running sums, fit layout, the shuffle generator's
``bit_generator.state``, the history so far), every random layer's
``rng.bit_generator.state`` and the callbacks' counters. Its SHA-256 is the model files'
(:func:`neuronlab.io.files.content_digest`: every metadata string and every tensor), so a
flipped bit is reported instead of silently loaded.

Files are written with :func:`neuronlab.io.atomic_write_bytes` (temporary file, fsync,
rename): a crash leaves either the previous file or the complete new one. Loading parses
JSON and raw arrays only; it never executes code, and every field of the state is checked
before a run resumes from it.

Version 2 (version 1 kept the trainer's counters, history and shuffle state in separate
metadata entries and the order as ``data/perm``, and its SHA-256 covered the tensors only).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuronlab.io.files import content_digest
from neuronlab.layers.sequential import Sequential
from neuronlab.train.errors import CheckpointError
from neuronlab.train.state import TrainState, check_rng_state

__all__ = ["CheckpointError", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

FORMAT = "neuronlab.checkpoint"
VERSION = 2
_META_KEYS = ("model", "optimizer", "schedule", "state", "layer_rngs", "callbacks")
CHECKPOINT_NAME = re.compile(r"^(?:epoch-(\d+)-)?step-(\d+)\.safetensors$")


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


# -- save ------------------------------------------------------------------------------------
def _callback_keys(callbacks: Sequence[Any]) -> list[str]:
    """``"EarlyStopping.0"``, ``"EarlyStopping.1"``, ...: by class and occurrence, so adding
    a stateless callback (a progress bar) on resume does not shift the others."""
    seen: dict[str, int] = {}
    keys = []
    for cb in callbacks:
        name = type(cb).__name__
        keys.append(f"{name}.{seen.get(name, 0)}")
        seen[name] = seen.get(name, 0) + 1
    return keys


def _layer_rngs(model: Sequential) -> dict[str, np.random.Generator]:
    return {
        str(i): rng
        for i, layer in enumerate(model.layers)
        if isinstance(rng := getattr(layer, "rng", None), np.random.Generator)
    }


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: Sequential,
    optimizer: Any,
    state: TrainState,
    schedule: Any = None,
    callbacks: Sequence[Any] = (),
) -> None:
    """Write a run's complete state to ``path`` atomically: the model, the optimizer,
    ``state.state_dict()``, the random layers' generators and the callbacks' states (those
    whose ``state_dict()`` is not None)."""
    from safetensors.numpy import save

    from neuronlab.io import atomic_write_bytes

    tensors: dict[str, np.ndarray] = {}
    for k, v in {**model.params, **model.buffers}.items():
        tensors[f"model/{k}"] = np.ascontiguousarray(v)
    saved_callbacks = {}
    for key, cb in zip(_callback_keys(callbacks), callbacks):
        cb_state = cb.state_dict()
        if cb_state is not None:
            saved_callbacks[key] = _flatten(cb_state, f"callbacks/{key}", tensors)
    meta = {
        "model": model.get_config(),
        "optimizer": _flatten(optimizer.state_dict(), "optimizer", tensors),
        "schedule": schedule.get_config() if hasattr(schedule, "get_config") else None,
        "state": _flatten(state.state_dict(), "state", tensors),
        "layer_rngs": {i: g.bit_generator.state for i, g in _layer_rngs(model).items()},
        "callbacks": saved_callbacks,
    }
    metadata = {"format": FORMAT, "version": str(VERSION), "meta": json.dumps(meta)}
    metadata["sha256"] = content_digest(tensors, metadata)
    atomic_write_bytes(path, save(tensors, metadata=metadata))


# -- load --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint read and verified by :func:`load_checkpoint`.

    Attributes
    ----------
    path : str
    meta : dict
        The JSON metadata (see the module docstring); ``meta["state"]["step"]`` etc.
    tensors : dict of str to ndarray
    """

    path: str
    meta: dict[str, Any]
    tensors: dict[str, np.ndarray]

    def _counter(self, key: str) -> Any:
        state = self.meta["state"]
        value = state.get(key) if isinstance(state, dict) else None
        if type(value) is not (bool if key == "epoch_done" else int):
            raise CheckpointError(f"checkpoint {self.path!r}: state.{key} is missing or malformed")
        return value

    @property
    def step(self) -> int:
        """Optimizer steps done."""
        return int(self._counter("step"))

    @property
    def epoch(self) -> int:
        """0-based index of the epoch the run was in."""
        return int(self._counter("epoch"))

    @property
    def epochs_done(self) -> int:
        """Epochs the run has finished (closed): ``epoch + 1`` at an epoch's end, else ``epoch``."""
        return self.epoch + int(self._counter("epoch_done"))

    def state_dict(self) -> dict[str, Any]:
        """The :class:`~neuronlab.train.TrainState` dict (with its order array)."""
        state: dict[str, Any] = _unflatten(self.meta["state"], self.tensors)
        return state

    def model_arrays(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by dotted name."""
        return {k[6:]: v for k, v in self.tensors.items() if k.startswith("model/")}

    def build_model(self) -> Sequential:
        """A new Sequential with the checkpoint's architecture and weights."""
        model = Sequential.from_config(self.meta["model"])
        arrays = self.model_arrays()
        dtypes = {v.dtype for v in arrays.values()}
        if len(dtypes) == 1:
            model.astype(dtypes.pop())
        model.set_arrays(arrays)
        return model

    def restore(self, model: Sequential, optimizer: Any, state: TrainState) -> None:
        """Continue the saved run in ``model``, ``optimizer`` and ``state``.

        The architecture, then the training state (:meth:`TrainState.load_state_dict`: the
        data layout must match) and the random layers' states are checked before the model
        or optimizer change. Callback states follow separately (:meth:`restore_callbacks`),
        after the callbacks' ``on_train_begin`` has reset them.

        Raises
        ------
        CheckpointError
            Another model, another data layout, or a field that is malformed (named).
        """
        saved_cfg, own_cfg = self.meta["model"], json.loads(json.dumps(model.get_config()))
        if saved_cfg != own_cfg:
            raise CheckpointError(
                f"checkpoint {self.path!r} was written for a different model: "
                f"{saved_cfg} != {own_cfg}"
            )
        rngs, saved_rngs = _layer_rngs(model), self.meta["layer_rngs"]
        if not isinstance(saved_rngs, dict) or set(rngs) != set(saved_rngs):
            raise CheckpointError(
                f"checkpoint {self.path!r} has random states for layers "
                f"{sorted(saved_rngs)}, the model has random layers {sorted(rngs)}"
            )
        try:
            state.load_state_dict(self.state_dict())
            for i, g in rngs.items():
                check_rng_state(g, saved_rngs[i], f"layer_rngs.{i}")
        except CheckpointError as e:
            raise CheckpointError(f"checkpoint {self.path!r}: {e}") from None
        try:
            model.set_arrays(self.model_arrays())
        except ValueError as e:
            raise CheckpointError(f"checkpoint {self.path!r} does not fit the model: {e}") from None
        with self._malformed("the optimizer state"):
            optimizer.load_state_dict(_unflatten(self.meta["optimizer"], self.tensors))
        _check_optimizer_state(optimizer, model, self.path)
        for i, g in rngs.items():
            g.bit_generator.state = dict(saved_rngs[i])

    def restore_callbacks(self, callbacks: Sequence[Any]) -> None:
        """Give each callback (matched by class and occurrence) its saved state."""
        saved = self.meta["callbacks"]
        if not isinstance(saved, dict):
            raise CheckpointError(f"checkpoint {self.path!r}: callbacks is not a table")
        for key, cb in zip(_callback_keys(callbacks), callbacks):
            if key in saved:
                with self._malformed(f"the state of callback {key}"):
                    cb.load_state_dict(_unflatten(saved[key], self.tensors))

    @contextlib.contextmanager
    def _malformed(self, what: str) -> Iterator[None]:
        """The optimizer and the callbacks check their own states; whatever they raise for a
        malformed one (a missing key, a wrong type or shape) is this checkpoint's fault."""
        try:
            yield
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise CheckpointError(
                f"checkpoint {self.path!r}: {what} is malformed ({type(e).__name__}: {e})"
            ) from None


def _check_optimizer_state(optimizer: Any, model: Sequential, path: str) -> None:
    """An optimizer with per-parameter slots that has taken steps holds them for every
    parameter, in its shape and dtype (a state that lost them would restart the moments)."""
    if not getattr(type(optimizer), "slots", ()) or optimizer.t == 0:
        return
    params = model.params
    if set(optimizer.state) != set(params):
        raise CheckpointError(
            f"checkpoint {path!r}: the optimizer state covers {sorted(optimizer.state)[:4]}, "
            f"not the model's parameters {sorted(params)[:4]}"
        )
    for name, slots in optimizer.state.items():
        for slot, arr in slots.items():
            p = params[name]
            if arr.shape != p.shape or arr.dtype != p.dtype:
                raise CheckpointError(
                    f"checkpoint {path!r}: optimizer state {name}.{slot} has {arr.dtype} "
                    f"{arr.shape}, the parameter {p.dtype} {p.shape}"
                )


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

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint file written by :class:`~neuronlab.train.Checkpoint`, or a folder: its
        newest checkpoint (highest step; at equal steps the end-of-epoch one).

    Returns
    -------
    LoadedCheckpoint
        The path read, the JSON metadata and the arrays.

    Raises
    ------
    FileNotFoundError
        No such file, or a folder without checkpoints.
    CheckpointError
        Truncated, corrupted (checksum mismatch) or not a neuronlab checkpoint.
    """
    from neuronlab.io.bounded import loads_json
    from neuronlab.io.safetensors_file import DTYPES, read_safetensors

    path = os.fspath(path)
    if os.path.isdir(path):
        found = latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"no checkpoint (step-*.safetensors) in folder {path!r}")
        path = found
    # a regular file only, its framing checked before any array data is read
    tensors, meta = read_safetensors(path, CheckpointError, dtypes=set(DTYPES) - {"BF16"},
                                     policy="not a neuronlab checkpoint", what="checkpoint")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not a neuronlab checkpoint (no {FORMAT!r} metadata)")
    if meta.get("version") != str(VERSION):
        raise CheckpointError(
            f"checkpoint {path!r} has version {meta.get('version')!r}; this "
            f"neuronlab reads version {VERSION}"
        )
    if "meta" not in meta or content_digest(tensors, meta) != meta.get("sha256"):
        raise CheckpointError(
            f"checkpoint {path!r} is corrupted: its contents fail the SHA-256 check"
        )
    info = loads_json(meta["meta"], path, "checkpoint metadata", CheckpointError)
    missing = [k for k in _META_KEYS if not isinstance(info, dict) or k not in info]
    if missing:
        raise CheckpointError(f"checkpoint {path!r} is corrupted: its metadata lacks {missing}")
    return LoadedCheckpoint(path, info, tensors)
