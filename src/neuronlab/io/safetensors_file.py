"""The safetensors container, read without trusting it.

Layout: an unsigned 64-bit little-endian header length ``n``, ``n`` bytes of JSON, then the
array bytes. The JSON maps each array name to ``{"dtype", "shape", "data_offsets"}`` (offsets
relative to the end of the header) and ``"__metadata__"`` to a dict of strings.

:func:`read_safetensors` opens only a regular file, refuses a header longer than
:data:`MAX_HEADER_BYTES` or nested deeper than ``MAX_JSON_DEPTH``, checks every entry's
types, that each array's offsets span exactly its shape x itemsize, that the arrays tile the
data section with no gap or overlap and that the file is exactly as long as that -- all before
reading a byte of array data -- and refuses dtypes the caller does not accept. Writing uses
the ``safetensors`` package, so every file is one any safetensors reader opens.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from neuronlab.io.atomic import atomic_write_bytes
from neuronlab.io.bounded import file_size, loads_json, open_regular, read_exact

__all__ = ["DTYPES", "MAX_HEADER_BYTES", "read_safetensors", "write_safetensors"]

MAX_HEADER_BYTES = 100_000_000
"""Longest header read (the ``safetensors`` package's own limit); a model's is a few KB."""
_MAX_NDIM = 32
DTYPES: dict[str, str] = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "F16": "float16",
    "BF16": "bfloat16",
    "U32": "uint32",
    "I32": "int32",
    "F32": "float32",
    "U64": "uint64",
    "I64": "int64",
    "F64": "float64",
}
"""safetensors dtype codes and their names (bfloat16 has no NumPy dtype)."""


def _is_int(v: Any) -> bool:
    return type(v) is int  # not bool, not float


def _tensors(
    header: dict[str, Any], source: str, error: type[Exception]
) -> list[tuple[int, int, str, str, tuple[int, ...]]]:
    """``(begin, end, name, code, shape)`` of every array, offsets checked against shapes."""
    out = []
    for name, t in header.items():
        if not isinstance(t, dict) or set(t) != {"dtype", "shape", "data_offsets"}:
            raise error(f"{source}: header entry {name!r} is not an array description")
        code, shape, offsets = t["dtype"], t["shape"], t["data_offsets"]
        if not isinstance(code, str) or code not in DTYPES:
            raise error(f"{source}: array {name!r} has unknown dtype {code!r}")
        if (
            not isinstance(shape, list)
            or len(shape) > _MAX_NDIM
            or not all(_is_int(n) and n >= 0 for n in shape)
        ):
            raise error(f"{source}: array {name!r} has an invalid shape {shape!r:.100}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise error(f"{source}: array {name!r} has invalid data_offsets {offsets!r:.100}")
        item = 2 if code == "BF16" else np.dtype(DTYPES[code]).itemsize
        nbytes = math.prod(shape) * item
        if offsets[1] - offsets[0] != nbytes:
            raise error(
                f"{source}: array {name!r} of shape {tuple(shape)} and dtype {DTYPES[code]} needs "
                f"{nbytes} bytes, its data_offsets span {offsets[1] - offsets[0]}"
            )
        out.append((offsets[0], offsets[1], name, code, tuple(shape)))
    return sorted(out)


def read_safetensors(
    path: str | os.PathLike[str],
    error: type[Exception],
    *,
    dtypes: Collection[str],
    policy: str,
    what: str = "model file",
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: (arrays by name, the string metadata).

    Parameters
    ----------
    path : str or os.PathLike
    error : exception class
        Raised, naming the file, for anything wrong with it.
    dtypes : collection of str
        Accepted safetensors dtype codes (``{"F32", "F64"}``); an array of another dtype is
        refused before any data are read, with ``policy`` as the reason.
    policy : str
        Why only ``dtypes`` are accepted, in the user's terms.
    what : str
        What the file should be, for messages.

    Returns
    -------
    arrays : dict of str to ndarray
        Writable views into one buffer holding the data section.
    metadata : dict of str to str
    """
    source = os.fspath(path)
    with open_regular(source, error, what) as f:
        size = file_size(f)
        if size < 8:
            raise error(f"{source}: not a safetensors file (only {size} bytes)")
        n = int.from_bytes(read_exact(f, 8, source, error), "little")
        if n > MAX_HEADER_BYTES:
            raise error(
                f"{source}: not a safetensors file (its header would be {n} bytes long, "
                f"more than the {MAX_HEADER_BYTES} a header may have)"
            )
        if n > size - 8:
            raise error(
                f"{source}: truncated or not a safetensors file (header claims {n} bytes, "
                f"{size - 8} follow)"
            )
        what_header = "not a safetensors file: its header"
        header = loads_json(read_exact(f, n, source, error), source, what_header, error)
        if not isinstance(header, dict):
            raise error(f"{source}: not a safetensors file (its header is not a JSON object)")
        meta = header.pop("__metadata__", None)
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise error(f"{source}: safetensors file has no neuronlab metadata")
        tensors = _tensors(header, source, error)
        end = 0
        for begin, stop, name, _, _ in tensors:
            if begin != end:
                raise error(f"{source}: corrupted header (array {name!r} overlaps or leaves a gap)")
            end = stop
        present = size - 8 - n
        if end > present:
            raise error(
                f"{source}: truncated file (the header describes {end} bytes of array data, "
                f"only {present} are present)"
            )
        if end < present:
            raise error(
                f"{source}: corrupted file ({present - end} unexpected bytes after the array data)"
            )
        refused = sorted({DTYPES[code] for *_, code, _ in tensors if code not in dtypes})
        if refused:
            names = [name for _, _, name, code, _ in tensors if code not in dtypes]
            raise error(
                f"{source}: has {' and '.join(refused)} arrays ({', '.join(names[:3])}"
                f"{', ...' if len(names) > 3 else ''}); {policy}"
            )
        data = read_exact(f, present, source, error)
    arrays = {
        name: np.frombuffer(data, DTYPES[code], math.prod(shape), begin).reshape(shape)
        for begin, _, name, code, shape in tensors
    }
    return arrays, meta


def write_safetensors(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]
) -> None:
    """Atomically write ``arrays`` and string ``metadata`` as a safetensors file."""
    from safetensors.numpy import save as st_save

    blob = st_save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, dict(metadata))
    atomic_write_bytes(path, blob)
