"""Bounded reads: open only regular files, read exactly what a header promised, parse JSON
only when it is not nested too deeply.

A path the user gives may name a FIFO (reading it waits forever for a writer), a device
(``/dev/zero`` never ends), a socket or a folder. :func:`open_regular` refuses them at once:
it looks with ``stat``, opens with ``O_NONBLOCK`` (so even a FIFO swapped in between cannot
block the ``open``), and checks the opened file again with ``fstat``. Callers then compare
the file's size with what its header claims *before* reading or allocating anything.

``json.loads`` recurses once per nesting level, so ``[[[[...]]]]`` 100,000 deep raises
``RecursionError``. :func:`loads_json` first measures the nesting depth without recursing
(strings removed, then a running sum over the brackets) and refuses anything deeper than
:data:`MAX_JSON_DEPTH`; it also refuses an object with a key twice (parsers disagree on which
one wins).
"""

from __future__ import annotations

import json
import os
import re
import stat
from typing import IO, Any, BinaryIO

import numpy as np

__all__ = [
    "MAX_JSON_DEPTH",
    "bracket_depth",
    "file_size",
    "loads_json",
    "open_regular",
    "read_exact",
]

MAX_JSON_DEPTH = 64
"""Deepest JSON nesting accepted. A model's architecture is 4 levels deep and run metadata a
few more; 64 leaves room for any user metadata while keeping every parser's recursion short."""

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
# A JSON string: a quote, then runs of ordinary characters or backslash escapes (unrolled so
# the regex runs in linear time), then a quote.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_CHUNK = 1 << 20
_READ_CHUNK = 16 << 20


def _refuse_kind(mode: int, source: str, what: str, error: type[Exception]) -> None:
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise error(f"{source} is {kind}, not a {what}: only regular files are read")


def open_regular(path: str | os.PathLike[str], error: type[Exception], what: str) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file (symlinks are followed).

    Parameters
    ----------
    path : str or os.PathLike
    error : exception class
        Raised, naming the file, for a FIFO, device, socket or folder.
    what : str
        What the file should be ("model file", "data file"), for the messages.

    Returns
    -------
    BinaryIO
        The open file; its ``name`` is ``path`` (so a memory map of it knows its file).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (a dangling symlink included).
    PermissionError
        It cannot be read.
    """
    source = os.fspath(path)
    flags = os.O_NONBLOCK | getattr(os, "O_BINARY", 0)
    try:
        _refuse_kind(os.stat(source).st_mode, source, what, error)
        f = open(source, "rb", opener=lambda p, fl: os.open(p, fl | flags))  # noqa: SIM115
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {source}") from None
    except PermissionError:
        raise
    except OSError as e:  # a symlink loop, a path through a file, a socket (ENXIO), ...
        raise error(f"{source} cannot be opened as a {what}: {e.strerror or e}") from None
    try:
        _refuse_kind(os.fstat(f.fileno()).st_mode, source, what, error)
    except BaseException:
        f.close()
        raise
    return f


def file_size(f: IO[bytes]) -> int:
    """Size in bytes of an open regular file."""
    return os.fstat(f.fileno()).st_size


def read_exact(f: IO[bytes], n: int, source: str, error: type[Exception]) -> bytearray:
    """Read exactly ``n`` bytes (into one writable buffer, a chunk at a time) or raise
    ``error`` saying the file is truncated; never reads or allocates more than ``n``."""
    buf = bytearray(n)
    got = 0
    while got < n:
        chunk = f.read(min(n - got, _READ_CHUNK))
        if not chunk:
            raise error(f"{source}: truncated file (expected {n} bytes, got {got})")
        buf[got : got + len(chunk)] = chunk
        got += len(chunk)
    return buf


def bracket_depth(text: bytes | bytearray | str, stop: int | None = None) -> int:
    """The deepest nesting of ``[`` / ``{`` outside JSON strings, without recursion.

    ``stop``: return as soon as the depth exceeds it (the result is then ``> stop``).
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    steps = np.frombuffer(brackets, np.uint8)
    depth = deepest = 0
    for start in range(0, steps.size, _CHUNK):
        chunk = steps[start : start + _CHUNK]
        # '[' 0x5B and '{' 0x7B open; ']' 0x5D and '}' 0x7D close
        running = np.cumsum(np.where((chunk == 0x5B) | (chunk == 0x7B), 1, -1)) + depth
        deepest = max(deepest, int(running.max()))
        depth = int(running[-1])
        if stop is not None and deepest > stop:
            break
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins, so a reader must not pick one.
    out = dict(pairs)
    if len(out) != len(pairs):
        dup = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
        raise ValueError(f"duplicate key {dup!r:.40}")
    return out


def loads_json(
    text: bytes | bytearray | str,
    source: str,
    what: str,
    error: type[Exception],
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """``json.loads(text)`` for untrusted text: invalid JSON, or JSON nested deeper than
    ``max_depth``, raises ``error`` naming ``source`` and ``what`` the text is."""
    try:
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8")  # never json's UTF-16/32 guessing
    except UnicodeDecodeError as e:
        raise error(f"{source}: {what} is not UTF-8 text ({e})") from None
    if bracket_depth(text, stop=max_depth) > max_depth:
        raise error(f"{source}: {what} is nested deeper than {max_depth} levels")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise error(f"{source}: {what} is not valid JSON ({e})") from None
    except (ValueError, RecursionError) as e:  # 5,000-digit integers; depth is checked above
        raise error(f"{source}: {what} is not usable JSON ({e})") from None
