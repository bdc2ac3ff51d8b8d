"""Model files: safetensors with a JSON architecture in its metadata, and ``.npz``.

A model file holds three things, and nothing that can execute code:

* every parameter and buffer of the model by dotted name (``"0.W"``, ``"2.running_mean"``);
* a fitted preprocessor's arrays under ``"preprocessor.<name>"``;
* string metadata: a format tag and version, the architecture ``model.get_config()`` as JSON,
  the preprocessor's registry name, config and non-array state as JSON, the user's metadata
  as JSON and a SHA-256 of the array bytes (so a flipped bit in the weights is caught, not
  silently loaded).

Loading rebuilds the network with :meth:`Sequential.from_config` (only registered layer classes
can be named) and copies the arrays in. Every way a file can be wrong -- not a safetensors file,
truncated, corrupted, written by something else, arrays that do not fit the architecture --
raises :class:`ModelFileError`.
"""

from __future__ import annotations

import hashlib
import io as _stdio
import json
import os
import zipfile
from typing import Any

import numpy as np

from neuronlab.io.atomic import atomic_write_bytes
from neuronlab.layers.sequential import Sequential
from neuronlab.registry import PREPROCESSORS

__all__ = ["ModelFileError", "load", "load_npz", "save", "save_npz"]

FORMAT = "neuronlab.model"
FORMAT_VERSION = 1
PREPROCESSOR_PREFIX = "preprocessor."
# npz has no metadata section: each metadata string is a 0-d unicode array under this prefix.
_NPZ_META_PREFIX = "__neuronlab__."

PathLike = str | os.PathLike[str]


class ModelFileError(ValueError):
    """A model file is unreadable: not the expected format, truncated, corrupted, or its
    arrays do not match its architecture."""


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
    """Arrays by name and the string metadata shared by the safetensors and npz formats."""
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
    return arrays, meta


# -- rebuilding -------------------------------------------------------------------------
def _json(meta: dict[str, str], key: str, source: str) -> Any:
    if key not in meta:
        raise ModelFileError(f"{source}: model file metadata has no {key!r} entry")
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{source}: metadata {key!r} is not valid JSON ({e})") from None


def _rebuild(arrays: dict[str, np.ndarray], meta: dict[str, str], source: str) -> Sequential:
    """Turn arrays and string metadata back into a model (with preprocessor and metadata)."""
    if meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{source}: not a neuronlab model file (format tag {meta.get('format')!r}, "
            f"expected {FORMAT!r})"
        )
    version = meta.get("format_version")
    if version != str(FORMAT_VERSION):
        raise ModelFileError(
            f"{source}: model file format version {version!r} is not supported "
            f"(this neuronlab reads version {FORMAT_VERSION})"
        )
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
    try:
        model = Sequential.from_config(config)
    except (ValueError, TypeError, KeyError, MemoryError) as e:
        raise ModelFileError(f"{source}: cannot rebuild the architecture: {e}") from None

    # Layers are built in their default dtype; a float64 model comes back in float64.
    float_dtypes = {v.dtype for v in model_arrays.values() if np.issubdtype(v.dtype, np.floating)}
    if len(float_dtypes) > 1:
        raise ModelFileError(f"{source}: arrays mix dtypes {sorted(map(str, float_dtypes))}")
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

    model.preprocessor = (
        None if pre_spec is None else _rebuild_preprocessor(pre_spec, pre_arrays, source)
    )
    model.metadata = user_meta
    return model


def _rebuild_preprocessor(spec: Any, arrays: dict[str, np.ndarray], source: str) -> Any:
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ModelFileError(f"{source}: preprocessor entry must be an object with a 'type'")
    try:
        cls = PREPROCESSORS.get(spec["type"])
        pre = cls.from_config(dict(spec.get("config") or {}))
        pre.load_state_dict({**dict(spec.get("state") or {}), **arrays})
    except (ValueError, TypeError, KeyError) as e:
        raise ModelFileError(
            f"{source}: cannot rebuild preprocessor {spec['type']!r}: {e}"
        ) from None
    return pre


# -- safetensors container --------------------------------------------------------------
def _read_bytes(path: PathLike) -> bytes:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path!r}")
    with open(path, "rb") as f:
        return f.read()


def _data_digest(blob: bytes, header_len: int) -> str:
    # Offsets in a safetensors header are relative to the end of the header, so the data
    # section is the same bytes whatever the metadata holds: it can be hashed before the
    # hash itself is written into the header.
    return hashlib.sha256(memoryview(blob)[8 + header_len :]).hexdigest()


def write_safetensors(
    path: PathLike, arrays: dict[str, np.ndarray], metadata: dict[str, str]
) -> None:
    """Atomically write ``arrays`` and string ``metadata`` as safetensors with a SHA-256 of the
    array bytes under metadata ``"sha256"``. Shared by model files and checkpoints."""
    from safetensors.numpy import save as st_save

    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    first = st_save(arrays, metadata=dict(metadata))
    digest = _data_digest(first, int.from_bytes(first[:8], "little"))
    atomic_write_bytes(path, st_save(arrays, metadata={**metadata, "sha256": digest}))


def read_safetensors(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a file written by :func:`write_safetensors`: (arrays, string metadata).

    Raises FileNotFoundError for a missing file and :class:`ModelFileError` for anything that
    is not a complete, uncorrupted safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    source = os.fspath(path)
    blob = _read_bytes(path)
    # The layout is: u64 little-endian header length, JSON header, raw array bytes.
    if len(blob) < 8:
        raise ModelFileError(f"{source}: not a safetensors file (only {len(blob)} bytes)")
    n = int.from_bytes(blob[:8], "little")
    if n > len(blob) - 8:
        raise ModelFileError(
            f"{source}: truncated or not a safetensors file (header claims {n} bytes, "
            f"{len(blob) - 8} follow)"
        )
    try:
        header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{source}: not a safetensors file (unreadable header)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(f"{source}: safetensors file has no neuronlab metadata")
    ends = [t.get("data_offsets", [0, 0])[-1] for k, t in header.items() if isinstance(t, dict)]
    present = len(blob) - 8 - n
    if all(isinstance(e, int) for e in ends):
        described = max(ends, default=0)
        if described > present:
            raise ModelFileError(
                f"{source}: truncated file (the header describes {described} bytes of array "
                f"data, only {present} are present)"
            )
        if described < present:
            raise ModelFileError(
                f"{source}: corrupted file ({present - described} unexpected bytes after the "
                "array data)"
            )
    try:
        arrays = st_load(blob)
    except (SafetensorError, ValueError, TypeError) as e:  # bad offsets, dtypes, shapes
        raise ModelFileError(f"{source}: corrupted or truncated safetensors data ({e})") from None
    expected = meta.get("sha256")
    if expected is not None and _data_digest(blob, n) != expected:
        raise ModelFileError(
            f"{source}: corrupted file (checksum of the array data does not match)"
        )
    return arrays, meta


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
    write_safetensors(path, arrays, meta)


def load(path: PathLike) -> Sequential:
    """Load a model written by :func:`save`.

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
        If the file is not a complete neuronlab safetensors model file.
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

    Arrays are stored by dotted name; each metadata string (architecture JSON, ...) is a 0-d
    unicode array named ``"__neuronlab__.<key>"`` -- never an object array, which would need
    pickle. Arguments as in :func:`save`; the file is written to ``path`` exactly (no ``.npz``
    suffix is added) and atomically.
    """
    arrays, meta = _payload(model, preprocessor, metadata)
    entries = {
        **arrays,
        **{_NPZ_META_PREFIX + k: np.array(v, dtype=np.str_) for k, v in meta.items()},
    }
    buf = _stdio.BytesIO()
    np.savez(buf, **entries)
    atomic_write_bytes(path, buf.getbuffer())


def load_npz(path: PathLike) -> Sequential:
    """Load a model written by :func:`save_npz` (with ``allow_pickle=False``).

    Returns and raises as :func:`load`.
    """
    source = os.fspath(path)
    if not os.path.exists(source):
        raise FileNotFoundError(f"model file not found: {source!r}")
    try:
        # Our own file handle: np.load(path) leaks its handle when the zip is unreadable.
        with open(source, "rb") as f:
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ModelFileError(f"{source}: not an .npz archive (a single .npy array)")
            with npz:
                entries = {k: npz[k] for k in npz.files}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        # zip CRCs catch corrupted members; a missing end record means truncation;
        # ValueError includes "Object arrays cannot be loaded when allow_pickle=False".
        raise ModelFileError(f"{source}: not a readable .npz model file ({e})") from None
    meta: dict[str, str] = {}
    arrays: dict[str, np.ndarray] = {}
    for k, v in entries.items():
        if k.startswith(_NPZ_META_PREFIX):
            if v.ndim != 0 or v.dtype.kind != "U":
                raise ModelFileError(f"{source}: metadata entry {k!r} is not a unicode string")
            meta[k[len(_NPZ_META_PREFIX) :]] = str(v)
        else:
            arrays[k] = v
    if not meta:
        raise ModelFileError(f"{source}: .npz file has no neuronlab metadata (architecture)")
    return _rebuild(arrays, meta, source)
