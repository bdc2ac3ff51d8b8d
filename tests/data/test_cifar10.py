"""CIFAR-10 python batches: a small fixture in the standard format, and refused pickles."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.data import UnsafePickleError

ROWS = 20  # per batch file; the real files hold 10000


def make_batch(rng: np.random.Generator, index: int) -> dict:
    """A dict laid out exactly like a CIFAR-10 python batch (bytes keys, as Python 2 wrote)."""
    data = rng.integers(0, 256, size=(ROWS, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=ROWS)]
    return {
        b"batch_label": f"training batch {index} of 5".encode(),
        b"labels": labels,
        b"data": data,
        b"filenames": [f"img_{index}_{i}.png".encode() for i in range(ROWS)],
    }


def write_folder(
    folder: Path, rng: np.random.Generator, protocol: int = pickle.HIGHEST_PROTOCOL
) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = make_batch(rng, len(batches) + 1)
        (folder / name).write_bytes(pickle.dumps(batches[name], protocol=protocol))
    return batches


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_reads_fixture(tmp_path, rng, protocol):
    batches = write_folder(tmp_path / "cifar-10-batches-py", rng, protocol)
    (X, y), (Xt, yt) = nl.data.cifar10(tmp_path / "cifar-10-batches-py")
    assert X.shape == (5 * ROWS, 3072) and X.dtype == np.float32 and y.dtype == np.int64
    assert Xt.shape == (ROWS, 3072) and yt.shape == (ROWS,)
    raw = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    np.testing.assert_array_equal(X, raw.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(
        y, sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    )
    np.testing.assert_array_equal(Xt, batches["test_batch"][b"data"] / np.float32(255))
    assert X.min() >= 0 and X.max() <= 1


def test_parent_folder_and_channel_major_layout(tmp_path, rng):
    batches = write_folder(tmp_path / "cifar-10-batches-py", rng)
    # first training row: red channel all 10, green 20, blue 30 (rows are R..., G..., B...)
    d = batches["data_batch_1"][b"data"]
    d[0] = np.repeat(np.array([10, 20, 30], dtype=np.uint8), 1024)
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(
        pickle.dumps(batches["data_batch_1"])
    )
    (X, _), _ = nl.data.cifar10(tmp_path)  # the folder that contains cifar-10-batches-py
    img = X[0].reshape(nl.data.CIFAR10_IMAGE_SHAPE)
    np.testing.assert_array_equal(img[:, 5, 7] * 255, [10, 20, 30])
    assert len(nl.data.CIFAR10_CLASSES) == 10


def test_original_numpy1_global_names(tmp_path, rng):
    # Files written by NumPy 1 name numpy.core.multiarray._reconstruct (GLOBAL opcode with
    # protocol 2: b"c<module>\n<name>\n"); they must still load under NumPy 2.
    batch = make_batch(rng, 1)
    blob = pickle.dumps(batch, protocol=2)
    assert b"cnumpy._core.multiarray\n_reconstruct\n" in blob
    blob = blob.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path = tmp_path / "data_batch_1"
    path.write_bytes(blob)
    data, labels = nl.data.read_cifar10_batch(path)
    np.testing.assert_array_equal(data, batch[b"data"])
    np.testing.assert_array_equal(labels, batch[b"labels"])


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path, rng):
    folder = tmp_path / "cifar"
    batches = write_folder(folder, rng)
    marker = tmp_path / "pwned"
    evil = {**batches["data_batch_3"], b"batch_label": _RunsCode(marker)}
    (folder / "data_batch_3").write_bytes(pickle.dumps(evil))
    with pytest.raises(
        UnsafePickleError, match=r"data_batch_3.*refusing to load global (posix|os|nt)\.system"
    ):
        nl.data.cifar10(folder)
    assert not marker.exists()
    assert issubclass(UnsafePickleError, pickle.UnpicklingError)


@pytest.mark.parametrize(
    "payload, message",
    [
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"x": eval}, "builtins.eval"),
        ({b"data": np.array([1, "a"], dtype=object), b"labels": [0, 1]}, "object dtype"),
    ],
    ids=["builtin", "object-array"],
)
def test_other_unsafe_content_refused(tmp_path, payload, message):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UnsafePickleError, match=message):
        nl.data.read_cifar10_batch(path)


def test_missing_and_corrupt(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="CIFAR-10 folder not found: .*nowhere"):
        nl.data.cifar10(tmp_path / "nowhere")
    folder = tmp_path / "cifar"
    write_folder(folder, rng)
    (folder / "data_batch_4").unlink()
    (folder / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="lacks data_batch_4, test_batch"):
        nl.data.cifar10(folder)
    good = pickle.dumps(make_batch(rng, 1))
    (folder / "truncated").write_bytes(good[: len(good) // 2])
    with pytest.raises(
        ValueError, match="truncated .*not a readable CIFAR-10 batch|not a readable CIFAR-10 batch"
    ):
        nl.data.read_cifar10_batch(folder / "truncated")
    (folder / "text").write_text("hello")
    with pytest.raises(ValueError, match="not a readable CIFAR-10 batch"):
        nl.data.read_cifar10_batch(folder / "text")


@pytest.mark.parametrize(
    "payload, message",
    [
        ([1, 2, 3], "expected a dict, got list"),
        ({b"labels": [0]}, "no 'data' entry"),
        ({b"data": np.zeros((1, 3072), np.float32), b"labels": [0]}, "uint8 array of shape"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "list of 2 ints"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, r"labels must be in \[0, 10\)"),
    ],
)
def test_wrong_structure(tmp_path, payload, message):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(ValueError, match=message):
        nl.data.read_cifar10_batch(path)
