"""``.npy`` and ``.npz`` files read without trusting them (data files and ``.npz`` models).

``np.load`` believes what a file says: an ``.npz`` member named ``notes.txt`` comes back as
``bytes``, a 1 KB member whose header claims a shape of 10^10 elements allocates 80 GB before
reading, and a deflated member of zeros 3.5 MB long expands to 3.5 GB. Here every claim is
checked against the bytes present *before* anything is allocated or decompressed:

* only regular files are opened (:func:`~neuronlab.io.bounded.open_regular`);
* every ``.npz`` member is a ``.npy`` (its name, then its magic string and header), stored or
  deflated, not encrypted, and its uncompressed size (``ZipInfo.file_size``) is exactly its
  header's shape x itemsize plus the header;
* deflated members may expand at most :data:`MAX_RATIO` times (past
  :data:`RATIO_FREE_BYTES`): more is a zip bomb, since numbers worth learning from do not
  compress a hundredfold;
* a ``.npy`` file's size is exactly its header plus its data;
* dtypes are numbers (or unicode strings where asked), never objects, so nothing is unpickled.
"""

from __future__ import annotations

import math
import os
import tokenize
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

import numpy as np

from neuronlab.io.bounded import file_size, open_regular, read_exact

__all__ = ["MAX_RATIO", "RATIO_FREE_BYTES", "NpyHeader", "read_npy", "read_npy_header", "read_npz"]

MAX_RATIO = 100
"""Most a deflated ``.npz`` may expand (uncompressed / compressed, over all its deflated
members) once it is past :data:`RATIO_FREE_BYTES`."""
RATIO_FREE_BYTES = 16 << 20
"""Deflated members expanding to at most this much in all are never called a zip bomb."""
MAX_MEMBERS = 100_000
_MAX_HEADER = 10_000  # numpy's own default bound on a .npy header's text
NUMBERS = "biuf"
"""dtype kinds of numeric arrays: bool, signed and unsigned integers, floats."""
_READ_ERRORS = (
    ValueError,  # includes UnicodeDecodeError
    OSError,
    EOFError,
    SyntaxError,
    tokenize.TokenError,  # numpy re-tokenizes a header it cannot parse (Python 2 files)
    TypeError,
    OverflowError,
    RecursionError,
    MemoryError,  # "parser stack overflowed" on a header of 10,000 brackets
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
)


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` header declares; ``offset`` is where its data start."""

    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    offset: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def read_npy_header(f: IO[bytes], source: str, error: type[Exception], kinds: str) -> NpyHeader:
    """Read and check a ``.npy`` header from ``f`` (left at the start of the data).

    ``kinds`` lists the accepted dtype kinds (``"biuf"``, ``"U"``); object and structured
    dtypes are always refused. ``source`` names the file (and member) in messages.
    """
    start = f.tell()
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise error(f"{source}: not a .npy array (format version {version[0]}.{version[1]})")
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        # A hostile header may raise any warning (deprecated dtype aliases, Python 2 syntax
        # parsed again): its verdict is the error below, not a warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shape, fortran, dtype = read(f, max_header_size=_MAX_HEADER)
    except _READ_ERRORS as e:
        if isinstance(e, error):
            raise
        raise error(f"{source}: not a .npy array ({str(e) or type(e).__name__})") from None
    if dtype.hasobject:
        raise error(
            f"{source}: holds Python objects, which only pickle can load; refused "
            "(loading never runs code: allow_pickle=False)"
        )
    if dtype.kind not in kinds or dtype.names is not None or dtype.subdtype is not None:
        raise error(f"{source}: has dtype {dtype}, expected {_kind_names(kinds)}")
    if any(n < 0 for n in shape):
        raise error(f"{source}: has a negative size in its shape {shape}")
    return NpyHeader(tuple(shape), bool(fortran), dtype, f.tell() - start)


def _kind_names(kinds: str) -> str:
    names = {"b": "bool", "i": "integers", "u": "unsigned integers", "f": "floats", "U": "text"}
    return " or ".join(names[k] for k in kinds)


def _array(buf: bytearray, h: NpyHeader) -> np.ndarray:
    return np.ndarray(h.shape, h.dtype, buffer=buf, order="F" if h.fortran else "C")


def read_npy(
    path: str | os.PathLike[str],
    error: type[Exception],
    *,
    what: str = "data file",
    kinds: str = NUMBERS,
    mmap: bool = False,
) -> np.ndarray:
    """Read a ``.npy`` file, into memory or as a read-only ``np.memmap`` (``mmap=True``).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    error
        Not a regular file, not a ``.npy``, a refused dtype, or a size that does not match
        the header (truncated or with trailing bytes).
    """
    source = os.fspath(path)
    with open_regular(source, error, what) as f:
        h = read_npy_header(f, source, error, kinds)
        present = file_size(f) - h.offset
        if present != h.nbytes:
            cut = "truncated" if present < h.nbytes else "corrupted"
            raise error(
                f"{source}: {cut} file (its header describes {h.nbytes} bytes of "
                f"{h.dtype} {h.shape} data, {present} are present)"
            )
        if mmap and h.nbytes:
            return np.memmap(
                f, h.dtype, mode="r", offset=h.offset, shape=h.shape, order="F" if h.fortran else "C"
            )
        return _array(read_exact(f, h.nbytes, source, error), h)


def _check_members(infos: list[zipfile.ZipInfo], size: int, source: str, error: type) -> None:
    """Names, compression and declared sizes of an archive's members, before any reading."""
    if len(infos) > MAX_MEMBERS:
        raise error(f"{source}: .npz archive has {len(infos)} members (at most {MAX_MEMBERS})")
    seen: set[str] = set()
    packed = unpacked = 0
    for info in infos:
        name = info.filename
        if not name.endswith(".npy"):
            raise error(f"{source}: member {name!r} is not a .npy array")
        if name in seen:
            raise error(f"{source}: member {name!r} appears twice")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise error(f"{source}: member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise error(
                f"{source}: member {name!r} uses compression method {info.compress_type} "
                "(only stored or deflated members are read)"
            )
        if info.compress_size > size or (
            info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size
        ):
            raise error(f"{source}: member {name!r} claims sizes the archive does not hold")
        if info.compress_type == zipfile.ZIP_DEFLATED:
            packed += info.compress_size
            unpacked += info.file_size
    if unpacked > max(RATIO_FREE_BYTES, MAX_RATIO * packed):
        raise error(
            f"{source}: deflated members would expand from {packed:,} to {unpacked:,} bytes "
            f"(more than {MAX_RATIO}x): refusing a likely zip bomb; save real data "
            "uncompressed (np.savez)"
        )


def read_npz(
    path: str | os.PathLike[str],
    error: type[Exception],
    *,
    what: str = "data file",
    kinds: str = NUMBERS,
    names: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray]:
    """Read the arrays of an ``.npz`` archive, checking every member first (module docstring).

    Parameters
    ----------
    path : str or os.PathLike
    error : exception class
        Raised, naming the file and member, for anything wrong.
    what : str
        What the file should be, for messages ("data file", "model file").
    kinds : str
        Accepted dtype kinds (``"biuf"`` numbers, ``"U"`` text).
    names : tuple of str, optional
        Read only these arrays (every member is still checked), and refuse an archive that
        lacks one of them, listing what it holds; default: read all.

    Returns
    -------
    dict of str to ndarray
        By member name without ``.npy``; writable arrays in memory.
    """
    source = os.fspath(path)
    with open_regular(source, error, what) as f:
        size = file_size(f)
        try:
            zf = zipfile.ZipFile(f)
        except _READ_ERRORS as e:
            raise error(f"{source}: not a readable .npz archive ({e})") from None
        with zf:
            infos = zf.infolist()
            _check_members(infos, size, source, error)
            out: dict[str, np.ndarray] = {}
            for info in infos:
                key = info.filename[: -len(".npy")]
                where = f"{source} (array {key!r})"
                try:
                    with zf.open(info) as member:
                        h = read_npy_header(member, where, error, kinds)
                        if h.offset + h.nbytes != info.file_size:
                            raise error(
                                f"{where}: its header describes {h.nbytes} bytes of data, the "
                                f"archive holds {info.file_size - h.offset}"
                            )
                        if names is None or key in names:
                            out[key] = _array(read_exact(member, h.nbytes, where, error), h)
                except _READ_ERRORS as e:
                    if isinstance(e, error):
                        raise
                    raise error(f"{where}: damaged .npz member ({e})") from None
    if names is not None and set(names) - set(out):
        found = sorted(info.filename[: -len(".npy")] for info in infos)
        wanted = " and ".join(map(repr, names))
        raise error(f"{source} must hold arrays named {wanted}, found {found}")
    return out
