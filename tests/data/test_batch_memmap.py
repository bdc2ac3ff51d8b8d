"""Minibatches read from a memory-mapped .npy: the same rows as an in-memory gather, read from
the file (no mapped pages left resident), and the indexing errors of NumPy."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.data.arrays import release_pages


@pytest.fixture
def stored(tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(0).standard_normal((300, 7)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.arange(300) % 3)
    Xm, _ = nl.data.load_arrays(tmp_path)
    assert isinstance(Xm, np.memmap)
    return X, Xm


@pytest.mark.parametrize(
    "idx",
    [np.array([0, 1, 2, 3]), np.array([5, 9, 10, 11, 299]), np.array([42]),
     np.array([7, 3, 3, 250, 1]), np.array([-1, -300, 4])],
    ids=["run", "runs", "one", "unsorted-repeats", "negative"],
)
def test_memmap_rows_match_in_memory_rows(stored, idx) -> None:
    X, Xm = stored
    assert np.array_equal(nl.data.batch(Xm, idx), X[idx])
    out = np.full((8, 7), np.nan, dtype=np.float32)
    got = nl.data.batch(Xm, idx, out=out)
    assert np.array_equal(got, X[idx]) and np.shares_memory(got, out)


def test_views_conversions_and_copy_on_write(stored, tmp_path: Path) -> None:
    X, Xm = stored
    idx = np.array([0, 2, 3, 50])
    # a view keeps its base's offset attribute: rows must be located by address
    assert np.array_equal(nl.data.batch(Xm[100:], idx), X[100:][idx])
    assert np.array_equal(nl.data.batch(Xm, idx, dtype=np.float64), X[idx].astype(np.float64))
    cow = np.load(tmp_path / "X.npy", mmap_mode="c")
    cow[2] = 123.0  # private change, not in the file: must still be seen
    assert np.all(nl.data.batch(cow, idx)[1] == 123.0)
    assert not release_pages(cow) and not release_pages(X)
    assert release_pages(Xm)
    assert np.array_equal(nl.data.batch(Xm, idx), X[idx])  # readable after a release


@pytest.mark.parametrize("bad", [300, -301])
def test_out_of_range_rows_raise(stored, bad) -> None:
    X, Xm = stored
    for arr in (X, Xm):
        with pytest.raises(IndexError):
            nl.data.batch(arr, np.array([0, bad]))
        with pytest.raises(IndexError):  # also for large batches (the mode="wrap" path)
            nl.data.batch(arr, np.concatenate([np.arange(200), [bad]]).astype(np.int64),
                          out=np.empty((4096, 7), np.float32))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's RssFile")
def test_shuffled_pass_over_a_memmap_keeps_rss_flat(tmp_path: Path) -> None:
    def rss_file_kib() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssFile:"):
                return int(line.split()[1])
        return 0

    rows, width = 4096, 4096  # 64 MiB of float32
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                  shape=(rows, width))
    X[:] = 1.0
    X.flush()
    del X
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    before = rss_file_kib()
    order = np.random.default_rng(0).permutation(rows)
    out = np.empty((256, width), np.float32)
    for s in range(0, rows, 256):
        nl.data.batch(Xm, np.sort(order[s:s + 256]), out=out)
    assert out.min() == 1.0
    # a gather through the map would leave most of the 64 MiB resident
    assert rss_file_kib() - before < 16 * 1024, sys.platform
