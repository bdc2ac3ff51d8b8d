"""Model files: atomic writes, safetensors save/load, npz, and every way a file can be bad."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.io import files as io_files


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


# -- atomic_write_bytes -----------------------------------------------------------------
def test_atomic_write_creates_and_replaces(tmp_path):
    target = tmp_path / "f.bin"
    nl.atomic_write_bytes(target, b"first")
    assert target.read_bytes() == b"first"
    nl.atomic_write_bytes(str(target), bytearray(b"second, longer"))
    assert target.read_bytes() == b"second, longer"
    assert listing(tmp_path) == ["f.bin"]  # no temporary file left behind


def test_atomic_write_uses_umask_permissions(tmp_path):
    # A temp file from mkstemp would be 0o600; the result must look like open(path, "wb").
    mask = os.umask(0o022)
    try:
        nl.atomic_write_bytes(tmp_path / "f.bin", b"x")
    finally:
        os.umask(mask)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("failing", ["fsync", "replace", "write"])
def test_atomic_write_failure_keeps_old_file_and_cleans_up(tmp_path, monkeypatch, failing):
    target = tmp_path / "f.bin"
    target.write_bytes(b"good old contents")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if failing == "write":
        # Fail inside the file write itself, after the temporary file exists.
        real_fdopen = os.fdopen

        class Broken:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                self.f.write(data[:3])  # a torn partial write, then the disk fills up
                boom()

        monkeypatch.setattr(os, "fdopen", lambda fd, mode: Broken(real_fdopen(fd, mode)))
    else:
        monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        nl.atomic_write_bytes(target, b"new contents that never land")
    monkeypatch.undo()
    assert target.read_bytes() == b"good old contents"
    assert listing(tmp_path) == ["f.bin"]


def test_atomic_write_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="data must be bytes"):
        nl.atomic_write_bytes(tmp_path / "f", "text")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nl.atomic_write_bytes(tmp_path / "missing" / "f", b"x")
    with pytest.raises(IsADirectoryError):
        nl.atomic_write_bytes(tmp_path, b"x")
