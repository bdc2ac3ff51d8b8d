"""A hostile corpus, generated in the tests (nothing large is committed), and the harness that
runs one case against the API and the CLI under a 10 s alarm.

Every case must end in one of two ways: refused (the API raises a ``NeuronlabError`` subclass
or ``FileNotFoundError`` / ``IsADirectoryError`` / ``PermissionError``; the CLI exits 2 with
one ``error:`` line), or loaded. No traceback, no hang.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner

import neuronlab as nl
from neuronlab.cli import cli
from neuronlab.errors import NeuronlabError
from neuronlab.io.files import content_digest

REFUSALS = (NeuronlabError, FileNotFoundError, IsADirectoryError, PermissionError)
SECONDS = 10
N_IN = 4


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` in the code under
    test can swallow it."""


@contextmanager
def deadline(seconds: int = SECONDS) -> Iterator[None]:
    """Fail with :class:`Hang` if the block runs longer than ``seconds``."""

    def ring(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def outcome(load: Callable[[Any], Any], path: Any) -> Any:
    """``load(path)`` under the deadline: the result, or None when it was refused. Anything
    else (a traceback) propagates and fails the test."""
    with deadline():
        try:
            return load(path)
        except REFUSALS:
            return None


def run_cli(*args: Any) -> Any:
    with deadline():
        return CliRunner().invoke(cli, [str(a) for a in args])


def assert_clean_cli(result: Any, *, refused: bool = True, naming: str = "") -> None:
    """No traceback; when ``refused``: exit 2 and exactly one ``error:`` line (containing
    ``naming``)."""
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
    assert "Traceback" not in result.output
    if refused:
        assert result.exit_code == 2, result.output
        errors = [l for l in result.stderr.strip().splitlines() if l.startswith("error: ")]
        assert len(errors) == 1, result.stderr
        assert naming in errors[0], errors[0]


# -- the small model every model case starts from ---------------------------------------
def small_model() -> tuple[nl.Sequential, Any, dict[str, Any]]:
    """Linear -> BatchNorm -> LeakyReLU -> Linear, moved off its initial values, with a
    fitted Standardize and user metadata: every part of a model file is exercised."""
    rng = np.random.default_rng(3)
    model = nl.mlp(N_IN, [5], 3, activation="leaky_relu", batchnorm=True, rng=0)
    for k, v in {**model.params, **model.buffers}.items():
        v[...] = np.abs(v) + 0.5 if k.endswith("running_var") else v + 0.3 * rng.random(v.shape)
    model.preprocessor = nl.Standardize().fit(rng.standard_normal((12, N_IN)))
    return model, model.preprocessor, {"tag": "fuzz", "classes": ["a", "b", "c"]}


def fixed_input() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((9, N_IN)).astype(np.float32)


def fingerprint(model: nl.Sequential) -> bytes:
    """The bytes of the model's outputs on the fixed input, through its preprocessor."""
    x = fixed_input()
    if model.preprocessor is not None:
        x = model.preprocessor.transform(x)
    return np.ascontiguousarray(model.forward(x, training=False)).tobytes()


# -- crafting files ---------------------------------------------------------------------
def st_bytes(header: Any, data: bytes = b"", *, length: int | None = None) -> bytes:
    """A safetensors file from a header (any JSON value, or raw bytes) and data."""
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (len(h) if length is None else length).to_bytes(8, "little") + h + data


def split_st(blob: bytes) -> tuple[dict[str, Any], bytes]:
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def signed_st(arrays: dict[str, np.ndarray], meta: dict[str, str]) -> bytes:
    """A safetensors model file whose digest matches its (edited) contents, as an attacker
    who knows the format would write it."""
    from safetensors.numpy import save

    meta = {k: v for k, v in meta.items() if k != "sha256"}
    meta["sha256"] = content_digest(arrays, meta)
    return save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=meta)


def signed_npz(arrays: dict[str, np.ndarray], meta: dict[str, str]) -> bytes:
    meta = {k: v for k, v in meta.items() if k != "sha256"}
    meta["sha256"] = content_digest(arrays, meta)
    entries = {**arrays, **{f"__neuronlab__.{k}": np.array(v, np.str_) for k, v in meta.items()}}
    buf = io.BytesIO()
    np.savez(buf, **entries)
    return buf.getvalue()


def npy_bytes(header: str | bytes, data: bytes = b"", version: bytes = b"\x01\x00") -> bytes:
    """A .npy file with a raw header text (padded as numpy pads it)."""
    h = header.encode("utf-8") if isinstance(header, str) else header
    h += b" " * ((-(len(h) + 11)) % 64) + b"\n"
    return b"\x93NUMPY" + version + len(h).to_bytes(2, "little") + h + data


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def zeros_bomb(name: str, nbytes: int, dtype: str = "<f4") -> bytes:
    """A zip with one deflated .npy member of ``nbytes`` of zeros (about 1000:1), written a
    MiB at a time: a few hundred KB on disk claiming ``nbytes``."""
    n = nbytes // np.dtype(dtype).itemsize
    header = npy_bytes(f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': ({n},), }}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open(name, "w", force_zip64=True) as w:
            w.write(header)
            chunk = bytes(1 << 20)
            for _ in range(nbytes >> 20):
                w.write(chunk)
            w.write(bytes(nbytes & ((1 << 20) - 1)))
    return buf.getvalue()


def set_member_sizes(blob: bytes, name: str, file_size: int) -> bytes:
    """Rewrite a stored member's uncompressed size in the local and central headers (a zip
    that lies about how much a member expands to)."""
    out = bytearray(blob)
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        info = z.getinfo(name)
    out[info.header_offset + 22 : info.header_offset + 26] = file_size.to_bytes(4, "little")
    cd = out.find(b"PK\x01\x02")
    while cd >= 0:
        n = int.from_bytes(out[cd + 28 : cd + 30], "little")
        if out[cd + 46 : cd + 46 + n] == name.encode():
            out[cd + 24 : cd + 28] = file_size.to_bytes(4, "little")
        cd = out.find(b"PK\x01\x02", cd + 4)
    return bytes(out)


def pickle_batch(payload_ops: bytes) -> bytes:
    """A raw pickle (protocol 2) from opcodes, for CIFAR-10 batches that lie."""
    return b"\x80\x02" + payload_ops + b"."


# -- files that are not regular files ---------------------------------------------------
def special_files(folder: Path, name: str) -> dict[str, Path]:
    """A FIFO, a /dev/zero and a /dev/null symlink, a folder, a dangling symlink, a symlink
    loop, a path through a file and (when the path is short enough) a socket, all named
    like the real thing (``name``)."""
    out: dict[str, Path] = {}
    for kind in ("fifo", "zero", "null", "dir", "dangling", "loop", "notdir", "socket"):
        d = folder / kind
        d.mkdir(parents=True, exist_ok=True)
        p = d / name
        if kind == "fifo":
            os.mkfifo(p)
        elif kind in ("zero", "null"):
            os.symlink(f"/dev/{kind}", p)
        elif kind == "dir":
            p.mkdir()
        elif kind == "dangling":
            os.symlink(d / "nowhere", p)
        elif kind == "loop":
            os.symlink(p, p)
        elif kind == "notdir":
            (d / "file").write_bytes(b"x")
            p = d / "file" / name
        elif len(os.fsencode(p)) < 100:
            s = socket.socket(socket.AF_UNIX)
            s.bind(os.fspath(p))
            s.close()
        else:
            continue
        out[kind] = p
    return out


def flip(blob: bytes | bytearray, bit: int) -> bytes:
    out = bytearray(blob)
    out[bit >> 3] ^= 1 << (bit & 7)
    return bytes(out)


def write(folder: Path, name: str, blob: bytes) -> Path:
    p = folder / name
    p.write_bytes(blob)
    return p


def hostile_json_values() -> dict[str, str]:
    """JSON texts that parse badly or dangerously."""
    return {
        "deep-list": "[" * 100_000 + "]" * 100_000,
        "deep-object": '{"a":' * 50_000 + "1" + "}" * 50_000,
        "unclosed": "[" * 100_000,
        "big-int": "1" * 5000,
        "nan": "NaN",
        "not-json": "{layers: oops",
        "null": "null",
        "string": '"relu"',
    }
