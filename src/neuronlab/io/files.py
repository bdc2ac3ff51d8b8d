"""Model files: safetensors with a JSON architecture in its metadata, and ``.npz``.

A model file holds three things, and nothing that can execute code:

* every parameter and buffer of the model by dotted name (``"0.W"``, ``"2.running_mean"``),
  float32 or float64;
* a fitted preprocessor's arrays under ``"preprocessor.<name>"``;
* string metadata: a format tag and version, the architecture ``model.get_config()`` as JSON,
  the preprocessor's registry name, config and non-array state as JSON, the user's metadata
  as JSON, and ``sha256``: a digest of *all of it* (:func:`content_digest`), so that any
  change to anything that decides the model's behaviour -- a weight, a batch-norm ``eps``, a
  leaky-ReLU slope, ``relu`` edited to ``tanh`` -- is refused as corrupted, never loaded.

Loading checks before it builds: the container's framing (:mod:`~neuronlab.io.safetensors_file`,
:mod:`~neuronlab.io.npyfile`), the dtypes, the digest, JSON nesting, and that each layer's
declared size is backed by the array values in the file (a 78 KB file claiming a
``Linear(12000, 12000)`` is refused before 576 MB are allocated). Only then does
:meth:`Sequential.from_config` rebuild the network (registered layer classes only) and the
arrays are copied in. Every way a file can be wrong raises :class:`ModelFileError`.

Format version 2 (this one) digests everything; version 1 files (a digest of the array
bytes only) are refused with a message saying so, since their architecture is unverified.
"""

from __future__ import annotations

import hashlib
import io as _stdio
import json
import math
import os
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from neuronlab.errors import ModelFileError
from neuronlab.io.atomic import atomic_write_bytes
from neuronlab.io.bounded import loads_json
from neuronlab.io.npyfile import read_npz
from neuronlab.io.safetensors_file import read_safetensors as _read_container
from neuronlab.io.safetensors_file import write_safetensors as _write_container
from neuronlab.layers.sequential import Sequential
from neuronlab.registry import PREPROCESSORS

__all__ = ["ModelFileError", "content_digest", "load", "load_npz", "save", "save_npz"]

FORMAT = "neuronlab.model"
FORMAT_VERSION = 2
PREPROCESSOR_PREFIX = "preprocessor."
# npz has no metadata section: each metadata string is a 0-d unicode array under this prefix.
_NPZ_META_PREFIX = "__neuronlab__."
MODEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_POLICY = "neuronlab models are float32 or float64"
MAX_LAYERS = 4096
# Config keys that size a layer's largest array: its element count is their product
# (Linear W: n_in*n_out; Maxout W: n_in*n_out*pieces; norms n_features; PReLU n_units).
_SIZE_KEYS = ("n_in", "n_out", "pieces", "n_features", "n_units")

PathLike = str | os.PathLike[str]


# -- the digest -------------------------------------------------------------------------
def content_digest(arrays: Mapping[str, np.ndarray], meta: Mapping[str, str]) -> str:
    """SHA-256 over everything a model file says: every metadata string but ``sha256``
    itself, and every array's name, dtype, shape and bytes (C order), in sorted order, each
    field length-prefixed. The same content gives the same digest in safetensors and npz.
    Checkpoints are digested the same way (their ``format`` string tells them apart), and a
    search keys in-memory data by it."""
    h = hashlib.sha256(f"{FORMAT}/{FORMAT_VERSION}\n".encode())

    def put(b: bytes | memoryview) -> None:
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)

    for k in sorted(k for k in meta if k != "sha256"):
        put(k.encode("utf-8", "surrogatepass"))
        put(meta[k].encode("utf-8", "surrogatepass"))
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        put(k.encode("utf-8", "surrogatepass"))
        put(f"{a.dtype.str} {list(a.shape)}".encode())
        put(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def _verify(arrays: Mapping[str, np.ndarray], meta: Mapping[str, str], source: str) -> None:
    """Format tag, version and digest, before anything in the file is used."""
    if meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{source}: not a neuronlab model file (format tag {meta.get('format')!r:.40}, "
            f"expected {FORMAT!r})"
        )
    version = meta.get("format_version")
    if version == "1":
        raise ModelFileError(
            f"{source}: model file format version 1 (neuronlab 0.1) is no longer read: its "
            "checksum covers only the weights, not the architecture, so the file cannot be "
            f"trusted; train the model again (this neuronlab writes version {FORMAT_VERSION})"
        )
    if version != str(FORMAT_VERSION):
        raise ModelFileError(
            f"{source}: model file format version {version!r:.40} is not supported "
            f"(this neuronlab reads version {FORMAT_VERSION})"
        )
    if "sha256" not in meta:
        raise ModelFileError(f"{source}: model file has no checksum ('sha256')")
    if content_digest(arrays, meta) != meta["sha256"]:
        raise ModelFileError(
            f"{source}: corrupted file (the checksum does not match its contents: the file "
            "was damaged or edited after it was saved)"
        )


# -- building the payload ---------------------------------------------------------------
def _check_model(model: Any) -> Sequential:
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a neuronlab Sequential, got {type(model).__name__}")
    return model


def _preprocessor_payload(pre: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Split a fitted preprocessor into a JSON spec and its arrays."""
    name = getattr(type(pre), "registry_name", "")
    if not name or name not in PREPROCESSORS or PREPROCESSORS.get(name) is not type(pre):
        raise TypeError(
            f"preprocessor must be a registered neuronlab preprocessor "
            f"(one of {PREPROCESSORS.names()}), got {type(pre).__name__}"
        )
    arrays: dict[str, np.ndarray] = {}
    state: dict[str, Any] = {}
    for key, value in pre.state_dict().items():
        if isinstance(value, np.ndarray):
            arrays[key] = value
        elif isinstance(value, np.generic):
            state[key] = value.item()
        else:
            state[key] = value  # scalars, flags, None: they travel as JSON
    spec = {"type": name, "config": pre.get_config(), "state": state}
    try:
        json.dumps(spec)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"preprocessor {name!r} config/state is not JSON-serialisable: {e}"
        ) from None
    return spec, arrays


def _payload(
    model: Any, preprocessor: Any, metadata: dict[str, Any] | None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Arrays by name and the string metadata (digest included) shared by both formats."""
    model = _check_model(model)
    if metadata is None:
        metadata = getattr(model, "metadata", None)  # set by load: load -> save keeps it
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    try:
        meta_json = json.dumps(metadata or {})
    except (TypeError, ValueError) as e:
        raise TypeError(f"metadata must be JSON-serialisable: {e}") from None
    if preprocessor is None:
        preprocessor = getattr(model, "preprocessor", None)

    arrays = {**model.params, **model.buffers}
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "architecture": json.dumps(model.get_config()),
        "metadata": meta_json,
        "preprocessor": "null",
    }
    if preprocessor is not None:
        spec, pre_arrays = _preprocessor_payload(preprocessor)
        meta["preprocessor"] = json.dumps(spec)
        arrays.update({PREPROCESSOR_PREFIX + k: v for k, v in pre_arrays.items()})
    if any(np.dtype(a.dtype) not in MODEL_DTYPES for a in arrays.values()):
        raise TypeError(f"cannot save a model with arrays of {model.dtype}: {_POLICY}")
    meta["sha256"] = content_digest(arrays, meta)
    return arrays, meta


# -- rebuilding -------------------------------------------------------------------------
def _json(meta: Mapping[str, str], key: str, source: str) -> Any:
    if key not in meta:
        raise ModelFileError(f"{source}: model file metadata has no {key!r} entry")
    return loads_json(meta[key], source, f"metadata {key!r}", ModelFileError)


def _check_claims(config: Any, arrays: Mapping[str, np.ndarray], source: str) -> None:
    """Refuse an architecture whose layers declare more parameters than the file holds
    values for, before a byte of it is allocated."""
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list):
        return  # Sequential.from_config says what is wrong
    if len(layers) > MAX_LAYERS:
        raise ModelFileError(
            f"{source}: architecture has {len(layers)} layers (at most {MAX_LAYERS})"
        )
    held = Counter[str]()
    for name, a in arrays.items():
        held[name.split(".", 1)[0]] += a.size
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
            raise ModelFileError(
                f"{source}: layer {i} of the architecture must be an object with a 'type' "
                "and a 'config' object"
            )
        cfg = spec.get("config", {})
        sizes = [cfg[k] for k in _SIZE_KEYS if type(cfg.get(k)) is int]
        claim = math.prod(sizes) if sizes else 0
        if claim > held[str(i)]:
            raise ModelFileError(
                f"{source}: layer {i} ({spec.get('type')!r:.40}) declares {claim:,} parameters "
                f"but the file holds {held[str(i)]:,} values for it"
            )


def _rebuild(arrays: dict[str, np.ndarray], meta: dict[str, str], source: str) -> Sequential:
    """Turn verified arrays and string metadata back into a model (with preprocessor and
    metadata)."""
    _verify(arrays, meta, source)
    config = _json(meta, "architecture", source)
    user_meta = _json(meta, "metadata", source)
    pre_spec = _json(meta, "preprocessor", source)
    if not isinstance(user_meta, dict):
        raise ModelFileError(f"{source}: metadata 'metadata' must be a JSON object")

    model_arrays = {k: v for k, v in arrays.items() if not k.startswith(PREPROCESSOR_PREFIX)}
    pre_arrays = {
        k[len(PREPROCESSOR_PREFIX) :]: v
        for k, v in arrays.items()
        if k.startswith(PREPROCESSOR_PREFIX)
    }
    _check_claims(config, model_arrays, source)
    float_dtypes = {v.dtype for v in model_arrays.values()}
    if len(float_dtypes) > 1:
        raise ModelFileError(f"{source}: arrays mix dtypes {sorted(map(str, float_dtypes))}")
    try:
        model = Sequential.from_config(config)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
        raise ModelFileError(f"{source}: cannot rebuild the architecture: {e}") from None
    # Layers are built in their default dtype; a float64 model comes back in float64.
    if float_dtypes:
        model.astype(float_dtypes.pop())
    own = {**model.params, **model.buffers}
    for k, v in model_arrays.items():
        if k in own and own[k].dtype != v.dtype:
            raise ModelFileError(
                f"{source}: array {k!r} has dtype {v.dtype}, the model expects {own[k].dtype}"
            )
    try:
        model.set_arrays(model_arrays)
    except ValueError as e:
        raise ModelFileError(f"{source}: arrays do not match the architecture: {e}") from None

    if pre_spec is None and pre_arrays:
        raise ModelFileError(
            f"{source}: preprocessor arrays {sorted(pre_arrays)[:3]} but no preprocessor"
        )
    model.preprocessor = (
        None if pre_spec is None else _rebuild_preprocessor(pre_spec, pre_arrays, source)
    )
    model.metadata = user_meta
    return model


def _rebuild_preprocessor(spec: Any, arrays: dict[str, np.ndarray], source: str) -> Any:
    if (
        not isinstance(spec, dict)
        or not isinstance(spec.get("type"), str)
        or not all(isinstance(spec.get(k) or {}, dict) for k in ("config", "state"))
    ):
        raise ModelFileError(
            f"{source}: preprocessor entry must be an object with a 'type' and 'config' and "
            "'state' objects"
        )
    try:
        cls = PREPROCESSORS.get(spec["type"])
        pre = cls.from_config(dict(spec.get("config") or {}))
        pre.load_state_dict({**dict(spec.get("state") or {}), **arrays})
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
        raise ModelFileError(
            f"{source}: cannot rebuild preprocessor {spec['type']!r:.40}: {e}"
        ) from None
    return pre


# -- safetensors ------------------------------------------------------------------------
def write_safetensors(path: PathLike, arrays: dict[str, np.ndarray], meta: dict[str, str]) -> None:
    """Atomically write a model file's arrays and metadata, with ``sha256`` set to their
    :func:`content_digest` (any ``sha256`` in ``meta`` is replaced)."""
    meta = {k: v for k, v in meta.items() if k != "sha256"}
    _write_container(path, arrays, {**meta, "sha256": content_digest(arrays, meta)})


def read_safetensors(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays and string metadata of a safetensors model file, unverified (its framing
    and dtypes checked; :func:`load` verifies the rest)."""
    return _read_container(
        path, ModelFileError, dtypes={"F32", "F64"}, policy=_POLICY, what="model file"
    )


def save(
    model: Sequential,
    path: PathLike,
    *,
    preprocessor: Any = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Save a model (architecture, parameters, buffers) as a safetensors file, atomically.

    Parameters
    ----------
    model : Sequential
        float32 or float64.
    path : str or os.PathLike
        Destination, conventionally ``*.safetensors``. An existing file is replaced only once
        the new one is completely written.
    preprocessor : fitted preprocessor, optional
        Saved with the model so prediction applies the same transform. Defaults to
        ``model.preprocessor`` (set by :func:`load`), so load -> save keeps it.
    metadata : dict, optional
        JSON-serialisable user data (metrics, dataset name, ...), returned as ``model.metadata``.
        Defaults to ``model.metadata`` when the model has one (set by :func:`load`).
    """
    arrays, meta = _payload(model, preprocessor, metadata)
    _write_container(path, arrays, meta)


def load(path: PathLike) -> Sequential:
    """Load a model written by :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` model file.

    Returns
    -------
    Sequential
        With the saved parameters and buffers in their saved dtype, ``model.preprocessor``
        (rebuilt and fitted, or None) and ``model.metadata`` (dict).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a regular file, not a complete neuronlab model file of format
        version 2, fails its digest, has arrays other than float32/float64, or does not hold
        the arrays its architecture declares.

    Examples
    --------
    >>> import os, tempfile
    >>> from neuronlab.layers import Linear, Sequential
    >>> model = Sequential([Linear(4, 2, rng=0)])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> save(model, path, metadata={"loss": "softmax"})
    >>> loaded = load(path)
    >>> loaded.metadata["loss"], bool((loaded.params["0.W"] == model.params["0.W"]).all())
    ('softmax', True)
    """
    arrays, meta = read_safetensors(path)
    return _rebuild(arrays, meta, os.fspath(path))


# -- npz --------------------------------------------------------------------------------
def save_npz(
    model: Sequential,
    path: PathLike,
    *,
    preprocessor: Any = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Save a model as an uncompressed ``.npz`` readable with ``np.load(allow_pickle=False)``.

    Arrays are stored by dotted name; each metadata string (architecture JSON, digest, ...) is
    a 0-d unicode array named ``"__neuronlab__.<key>"`` -- never an object array, which would
    need pickle. The file is written to ``path`` exactly (no ``.npz`` suffix is added) and
    atomically.

    Parameters
    ----------
    model : Sequential
        float32 or float64.
    path : str or os.PathLike
        Destination, conventionally ``*.npz``.
    preprocessor : fitted preprocessor, optional
        As in :func:`save`; defaults to ``model.preprocessor``.
    metadata : dict, optional
        As in :func:`save`; defaults to ``model.metadata`` when the model has one.
    """
    arrays, meta = _payload(model, preprocessor, metadata)
    entries = {
        **arrays,
        **{_NPZ_META_PREFIX + k: np.array(v, dtype=np.str_) for k, v in meta.items()},
    }
    buf = _stdio.BytesIO()
    np.savez(buf, **entries)  # type: ignore[arg-type]  # mypy matches **entries to allow_pickle
    atomic_write_bytes(path, buf.getbuffer())


def load_npz(path: PathLike) -> Sequential:
    """Load a model written by :func:`save_npz` (no pickle; every member checked first).

    Parameters
    ----------
    path : str or os.PathLike
        An ``.npz`` model file.

    Returns
    -------
    Sequential
        As :func:`load` returns it.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is damaged or hostile, has arrays other than float32/float64 or
        metadata that is not a string, or has no neuronlab metadata.
    """
    source = os.fspath(path)
    entries = read_npz(source, ModelFileError, what="model file", kinds="biufU")
    cut = len(_NPZ_META_PREFIX)
    meta = {k[cut:]: v for k, v in entries.items() if k.startswith(_NPZ_META_PREFIX)}
    arrays = {k: v for k, v in entries.items() if not k.startswith(_NPZ_META_PREFIX)}
    for k, v in meta.items():
        if v.ndim != 0 or v.dtype.kind != "U":
            raise ModelFileError(f"{source}: metadata entry {k!r} is not a unicode string")
    odd = sorted(k for k, v in arrays.items() if v.dtype not in MODEL_DTYPES)
    if odd:
        kinds = " and ".join(sorted({str(arrays[k].dtype) for k in odd}))
        more = ", ..." if len(odd) > 3 else ""
        raise ModelFileError(
            f"{source}: has {kinds} arrays ({', '.join(odd[:3])}{more}); {_POLICY}"
        )
    if not meta:
        raise ModelFileError(f"{source}: .npz file has no neuronlab metadata (architecture)")
    return _rebuild(arrays, {k: str(v) for k, v in meta.items()}, source)
