"""Crash-safe file writes: a temporary file in the same folder, fsynced, then renamed.

``os.replace`` is atomic on POSIX and Windows when source and target are on the same file
system, which is why the temporary file lives next to the target rather than in ``/tmp``.
A reader therefore sees either the old file or the complete new one, never a torn mix.
"""

from __future__ import annotations

import os
import secrets

__all__ = ["atomic_write_bytes"]


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable: on POSIX the directory entry lives in the directory's
    own data, which ``fsync`` of the file does not flush."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:  # Windows cannot open a directory; its rename is already journalled
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (network mounts) refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` atomically.

    The bytes go to a hidden temporary file in the target's folder, which is flushed and
    fsynced, then renamed onto ``path`` with :func:`os.replace`; finally the folder is fsynced
    so the rename survives a power cut. If anything fails, an existing file at ``path`` is left
    untouched and the temporary file is removed.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file. Its folder must exist.
    data : bytes, bytearray or memoryview
        The complete new contents.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: folder {directory!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path!r}: it is a directory")
    # A random name (O_EXCL) rather than mkstemp so the file gets the usual 0o666 & ~umask
    # permissions, like a file written with open(path, "wb").
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        # BaseException too: a KeyboardInterrupt mid-write must not leave the temp file behind.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.filename is None:  # name the file (disk full, ...)
            raise type(e)(e.errno, f"cannot write {path}: {e.strerror or e}", path) from None
        raise
    _fsync_directory(directory)
