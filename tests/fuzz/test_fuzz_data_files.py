"""Data files under attack, against ``load_arrays``, the CIFAR-10 reader and ``neuronlab train
--data FILE``: truncations, bit flips, lying ``.npy`` headers, objects (pickle), members that
are not ``.npy``, zip bombs and files that are not files.

A refused data file raises ``DataError`` (or FileNotFoundError...), and ``train`` exits 2 with
one ``error:`` line and leaves no run folder behind.
"""

from __future__ import annotations

import io
import pickle
import random
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from _hostile import (
    assert_clean_cli,
    flip,
    npy_bytes,
    outcome,
    run_cli,
    set_member_sizes,
    special_files,
    write,
    zeros_bomb,
    zip_bytes,
)

import neuronlab as nl
from neuronlab.data import load_arrays, read_cifar10_batch

STATS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    """Prints what the tests of this module tried (shown with ``-s``)."""
    yield
    print("\nfuzz data files:", dict(sorted(STATS.items())))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4)).astype(np.float32)
    y = np.arange(40) % 3
    np.savez(folder / "data.npz", X=X, y=y)
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    return SimpleNamespace(
        folder=folder, X=X, y=y,
        npz=(folder / "data.npz").read_bytes(),
        x_npy=(folder / "X.npy").read_bytes(),
        y_npy=(folder / "y.npy").read_bytes(),
    )


def _npy(header: str, data: bytes = b"", version: bytes = b"\x01\x00") -> bytes:
    return npy_bytes(header, data, version)


def _x_header(descr: str = "'<f4'", shape: str = "40, 4", fortran: str = "False") -> str:
    return f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': ({shape}), }}"


def npy_corpus(b: SimpleNamespace) -> dict[str, bytes]:
    """Hostile ``X.npy`` files (``y.npy`` beside them is good)."""
    data = b.X.tobytes()
    out = {f"truncated-{c}": b.x_npy[:c]
           for c in sorted({*range(0, 12), 64, 100, 127, 128, 129, len(b.x_npy) - 1})}
    out.update({
        "appended": b.x_npy + b"\0",
        "object": _npy(_x_header("'|O'", "2,"), pickle.dumps([1, 2])),
        "complex": _npy(_x_header("'<c16'", "40, 4"), bytes(40 * 4 * 16)),
        "text": _npy(_x_header("'<U3'", "40, 4"), bytes(40 * 4 * 12)),
        "void": _npy(_x_header("'|V16'", "40,"), bytes(40 * 16)),
        "structured": _npy(_x_header("[('a', '<f4')]", "40,"), bytes(160)),
        "subarray": _npy(_x_header("('<f4', (4,))", "40,"), data),
        "huge-shape": _npy(_x_header(shape="10**12, 4"), data),
        "huge-shape-lit": _npy(_x_header(shape="1000000000000, 4"), data),
        "negative-shape": _npy(_x_header(shape="-40, -4"), data),
        "shape-float": _npy(_x_header(shape="40.0, 4"), data),
        "shape-not-tuple": _npy("{'descr': '<f4', 'fortran_order': False, 'shape': 7, }", data),
        "fortran-string": _npy(_x_header(fortran="'yes'"), data),
        "missing-key": _npy("{'descr': '<f4', 'shape': (40, 4), }", data),
        "not-a-dict": _npy("[1, 2, 3]", data),
        "code": _npy("__import__('os').system('touch pwned')", data),
        "deep-header": _npy("(" * 3000 + ")" * 3000, data),
        "unary-header": _npy("{'shape': (" + "-" * 9000 + "1,)}", data),
        "long-header": _npy(_x_header() + " " * 20000, data, version=b"\x02\x00"),
        "v3": b"\x93NUMPY\x03\x00" + b.x_npy[8:],
        "v9": b"\x93NUMPY\x09\x00" + b.x_npy[8:],
        "bad-magic": b"\x93NUMPZ" + b.x_npy[6:],
        "one-d": _npy(_x_header(shape="160,"), data),
        "empty": _npy(_x_header(shape="0, 4"), b""),
    })
    return out


def npz_corpus(b: SimpleNamespace) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(b.npz)) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    bad_x = {f"x-{k}": zip_bytes({**members, "X.npy": v}) for k, v in npy_corpus(b).items()
             if not k.startswith("truncated")}
    return {
        **{f"truncated-{c}": b.npz[:c] for c in sorted({*range(0, 40, 3), *range(
            40, len(b.npz), max(1, len(b.npz) // 24)), len(b.npz) - 1})},
        **bad_x,
        "member-text": zip_bytes({**members, "notes.txt": b"hello"}),
        "member-dir": zip_bytes({**members, "sub/": b""}),
        "object-array": zip_bytes({**members, "X.npy": _npy(_x_header("'|O'", "2,"),
                                                             pickle.dumps([{"evil": 1}]))}),
        "no-y": zip_bytes({"X.npy": members["X.npy"]}),
        "empty-zip": zip_bytes({}),
        "bzip2": zip_bytes(members, zipfile.ZIP_BZIP2),
        "size-lie": set_member_sizes(b.npz, "X.npy", 10**9),
        "size-lie-small": set_member_sizes(b.npz, "X.npy", 16),
        "bomb": zeros_bomb("X.npy", 64 << 20),
        "not-zip": b"PK\x03\x04 not a zip" * 8,
    }


def _train(data: Path, runs: Path, naming: str | None = None) -> None:
    """``neuronlab train --data FILE`` refuses it cleanly, naming the file (``naming``, by
    default the data's own name), and creates no run folder."""
    result = run_cli("train", "--data", data, "--epochs", "1", "--runs-dir", runs,
                     "--no-report", "--no-progress")
    assert_clean_cli(result, naming=naming or Path(str(data).split(":")[-1]).name)
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")]
    STATS["train-cli"] += 1
    # `neuronlab check` reads the data through the same run lifecycle: refused the same way
    assert_clean_cli(run_cli("check", "--data", data, "--hidden", "4"),
                     naming=naming or Path(str(data).split(":")[-1]).name)
    STATS["check-cli"] += 1


def test_npy_corpus(base, tmp_path):
    corpus = npy_corpus(base)
    for name, blob in corpus.items():
        folder = tmp_path / name
        folder.mkdir()
        x = write(folder, "X.npy", blob)
        write(folder, "y.npy", base.y_npy)
        assert outcome(load_arrays, x) is None, name
        _train(x, tmp_path / "runs")
        STATS["npy"] += 1
    assert not (Path.cwd() / "pwned").exists()


def test_npz_corpus(base, tmp_path):
    for name, blob in npz_corpus(base).items():
        path = write(tmp_path, f"{name}.npz", blob)
        assert outcome(load_arrays, path) is None, name
        _train(path, tmp_path / "runs")
        STATS["npz"] += 1


def test_labels_files_too(base, tmp_path):
    for name, blob in npy_corpus(base).items():
        folder = tmp_path / name
        folder.mkdir()
        write(folder, "X.npy", base.x_npy)
        write(folder, "y.npy", blob)
        assert outcome(load_arrays, folder) is None, name
        STATS["y.npy"] += 1


@pytest.mark.parametrize("name", ["data.npz", "X.npy", "y.npy"])
def test_files_that_are_not_regular_files(base, tmp_path, name):
    for kind, path in special_files(tmp_path, name).items():
        if name == "y.npy":
            if not path.parent.is_dir():
                continue
            write(path.parent, "X.npy", base.x_npy)
            path = path.parent / "X.npy"
        elif name == "X.npy" and path.parent.is_dir():
            write(path.parent, "y.npy", base.y_npy)
        assert outcome(load_arrays, path) is None, kind
        _train(path, tmp_path / "runs", naming=name)
        STATS["special"] += 1


def _npz_flips(base, tmp_path: Path, bits) -> None:
    path = tmp_path / "flipped.npz"
    for bit in bits:
        path.write_bytes(flip(base.npz, bit))
        got = outcome(load_arrays, path)
        if got is not None:
            np.testing.assert_array_equal(got[0], base.X)
            np.testing.assert_array_equal(got[1], base.y)
        STATS["npz-flips-" + ("identical" if got else "refused")] += 1


def test_npz_bit_flips_sampled(base, tmp_path):
    """A stored member's bytes are under its zip CRC: a flip is refused or changes nothing."""
    _npz_flips(base, tmp_path, random.Random(0).sample(range(8 * len(base.npz)), 600))


@pytest.mark.slow
def test_every_bit_flip_of_a_data_npz(base, tmp_path):
    _npz_flips(base, tmp_path, range(8 * len(base.npz)))


def test_npy_bit_flips_sampled(base, tmp_path):
    """A raw .npy has no checksum: a flip in its data loads changed numbers (documented); a
    flip anywhere is still never a traceback or a hang."""
    write(tmp_path, "y.npy", base.y_npy)
    path = tmp_path / "X.npy"
    n = 8 * 128  # the header, exhaustively; the data, sampled
    for bit in [*range(n), *random.Random(1).sample(range(n, 8 * len(base.x_npy)), 100)]:
        path.write_bytes(flip(base.x_npy, bit))
        got = outcome(load_arrays, path)
        STATS["npy-flips-" + ("loaded" if got else "refused")] += 1


# -- CIFAR-10 ---------------------------------------------------------------------------
class _Reduce:
    """Pickles as ``func(*args)`` with func named by its module path."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def cifar_corpus() -> dict[str, bytes]:
    from numpy._core import multiarray

    data = np.zeros((100, 3072), np.uint8)
    long_list = list(range(10)) * 100_000  # a million ints, pickled once (memoized)
    good = {b"data": data, b"labels": [0] * 100}
    return {
        "reconstruct-huge": pickle.dumps(
            {**good, b"data": _Reduce(multiarray._reconstruct, (np.ndarray, (10**12,), b"b"))},
            protocol=2),
        "ndarray-call": pickle.dumps({**good, b"data": _Reduce(np.ndarray, ((10**12,),))},
                                     protocol=2),
        "labels-aliased": pickle.dumps({**good, b"labels": [long_list] * 100}, protocol=2),
        "labels-floats": pickle.dumps({**good, b"labels": [0.5] * 100}, protocol=2),
        "labels-huge-int": pickle.dumps({**good, b"labels": [10**30] * 100}, protocol=2),
        "system": pickle.dumps({**good, b"x": _Reduce(__import__("os").system, ("true",))}),
        "truncated": pickle.dumps(good)[:-100],
        "not-a-dict": pickle.dumps([1, 2]),
        "empty": b"",
        "data-1d": pickle.dumps({**good, b"data": data.reshape(-1)}),
        "frombuffer-lie": pickle.dumps(good, protocol=5)[:-40000] + pickle.dumps(good)[-10:],
    }


def test_cifar10_batches(tmp_path):
    folder = tmp_path / "cifar"
    folder.mkdir()
    good = pickle.dumps({b"data": np.zeros((10, 3072), np.uint8), b"labels": [1] * 10})
    for name in ("data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        write(folder, name, good)
    for name, blob in cifar_corpus().items():
        path = write(folder, "data_batch_1", blob)
        assert outcome(read_cifar10_batch, path) is None, name
        assert outcome(nl.data.cifar10, folder) is None, name
        _train(Path(f"cifar10:{folder}"), tmp_path / "runs")
        STATS["cifar"] += 1
    (folder / "data_batch_1").unlink()
    for kind, path in special_files(tmp_path / "special", "data_batch_1").items():
        assert outcome(read_cifar10_batch, path) is None, kind
