"""User arrays from .npz / .npy files, memory-mapped loading and minibatch reads."""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl
from neuronlab.data import batch, iterate_minibatches, load_arrays


@pytest.fixture
def indexed() -> tuple[np.ndarray, np.ndarray]:
    """X row i is (i, i + 0.5, -i): every batch shows which rows it came from."""
    i = np.arange(53, dtype=np.float64)
    return np.column_stack([i, i + 0.5, -i]), (np.arange(53) % 4).astype(np.int64)


def test_npz(tmp_path, indexed):
    X, y = indexed
    np.savez(tmp_path / "d.npz", X=X.astype(np.float32), y=y.astype(np.int32))
    Xl, yl = load_arrays(tmp_path / "d.npz")
    assert Xl.dtype == np.float32 and yl.dtype == np.int64
    np.testing.assert_array_equal(Xl, X)
    np.testing.assert_array_equal(yl, y)
    np.savez(tmp_path / "u8.npz", X=np.arange(6, dtype=np.uint8).reshape(3, 2), y=[0, 1, 0])
    Xu, _ = load_arrays(tmp_path / "u8.npz")
    assert Xu.dtype == np.float32  # integer features become float32 in memory
    np.savez(tmp_path / "f64.npz", X=X, y=y)
    assert load_arrays(tmp_path / "f64.npz")[0].dtype == np.float64


def test_npy_pair_is_memory_mapped(tmp_path, indexed):
    X, y = indexed
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", y)
    Xm, ym = load_arrays(tmp_path / "X.npy")
    assert isinstance(Xm, np.memmap) and Xm.mode == "r"
    assert not isinstance(ym, np.memmap) and ym.dtype == np.int64
    np.testing.assert_array_equal(Xm, X)
    # the folder shorthand and the name convention for other stems
    assert isinstance(load_arrays(tmp_path)[0], np.memmap)
    np.save(tmp_path / "train_X.npy", X)
    np.save(tmp_path / "train_y.npy", y)
    np.testing.assert_array_equal(load_arrays(tmp_path / "train_X.npy")[1], y)
    assert nl.data.labels_path_for(tmp_path / "X_test.npy") == tmp_path / "y_test.npy"


def test_batches_from_memmap(tmp_path, indexed):
    X, y = indexed
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", y)
    Xm, ym = load_arrays(tmp_path / "X.npy")
    idx = np.array([2, 7, 8, 40])
    b = batch(Xm, idx)
    assert type(b) is np.ndarray and b.dtype == np.float32 and b.flags.c_contiguous
    np.testing.assert_array_equal(b, X[idx])
    order = np.random.default_rng(1).permutation(53)
    seen = []
    for Xb, yb in iterate_minibatches(Xm, ym, 10, order=order):
        rows = Xb[:, 0].astype(np.int64)
        assert np.all(np.diff(rows) > 0)  # read in sorted (file) order
        np.testing.assert_array_equal(Xb, X[rows])
        np.testing.assert_array_equal(yb, y[rows])  # labels follow their rows
        seen.append(rows)
    assert [len(s) for s in seen] == [10, 10, 10, 10, 10, 3]
    # each batch holds exactly the rows of its chunk of the order
    for k, rows in enumerate(seen):
        np.testing.assert_array_equal(rows, np.sort(order[10 * k : 10 * (k + 1)]))


def test_batch_casts_and_reuses_buffer(indexed):
    X, y = indexed
    u8 = (X[:, :2] % 200).astype(np.uint8)
    b = batch(u8, np.array([1, 3]))
    assert b.dtype == np.float32
    np.testing.assert_array_equal(b, u8[[1, 3]])
    buf = np.empty((8, 3), np.float32)
    out = batch(X, np.array([0, 5]), out=buf)
    assert np.shares_memory(out, buf) and out.shape == (2, 3)
    np.testing.assert_array_equal(out, X[[0, 5]])
    with pytest.raises(ValueError, match="out has shape"):
        batch(X, np.arange(9), out=buf)
    batches = list(iterate_minibatches(X.astype(np.float32), y, 16, reuse_buffer=True))
    assert np.shares_memory(batches[0][0], batches[1][0])  # one buffer for every step
    assert batches[-1][0].shape == (5, 3)
    f64 = next(iterate_minibatches(X, y, 4))[0]
    assert f64.dtype == np.float64  # float64 data stays float64 (gradient checks)


def test_iterate_errors(indexed):
    X, y = indexed
    with pytest.raises(ValueError, match="batch_size must be > 0, got 0"):
        next(iterate_minibatches(X, y, 0))
    with pytest.raises(ValueError, match=r"order must index rows in \[0, 53\)"):
        next(iterate_minibatches(X, y, 4, order=np.array([0, 53])))
    with pytest.raises(ValueError, match="order must be a 1-D integer"):
        next(iterate_minibatches(X, y, 4, order=np.array([0.0, 1.0])))
    with pytest.raises(ValueError, match="X has 53 rows but y has 52"):
        next(iterate_minibatches(X, y[:-1], 4))


def test_load_errors(tmp_path, indexed):
    X, y = indexed
    with pytest.raises(FileNotFoundError, match="data file not found: .*missing.npz"):
        load_arrays(tmp_path / "missing.npz")
    np.savez(tmp_path / "keys.npz", data=X, labels=y)
    with pytest.raises(ValueError, match=r"arrays named 'X' and 'y', found \['data', 'labels'\]"):
        load_arrays(tmp_path / "keys.npz")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="bad.npz: not a readable .npz archive"):
        load_arrays(tmp_path / "bad.npz")
    np.savez(tmp_path / "obj.npz", X=np.array([[1, "a"]], dtype=object), y=[0])
    with pytest.raises(ValueError, match="obj.npz .*holds Python objects"):
        load_arrays(tmp_path / "obj.npz")  # object arrays would need pickle: refused
    np.savez(tmp_path / "len.npz", X=X, y=y[:-2])
    with pytest.raises(ValueError, match="X has 53 rows but y has 51"):
        load_arrays(tmp_path / "len.npz")
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(FileNotFoundError, match="y.npy"):
        load_arrays(tmp_path / "X.npy")
    np.save(tmp_path / "y.npy", y[:10])
    with pytest.raises(ValueError, match="X has 53 rows but y has 10"):
        load_arrays(tmp_path / "X.npy")
    np.save(tmp_path / "features.npy", X)
    with pytest.raises(ValueError, match="cannot find the labels"):
        load_arrays(tmp_path / "features.npy")
    (tmp_path / "A_X.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(tmp_path / "A_y.npy", y)
    with pytest.raises(ValueError, match="A_X.npy: not a .npy array"):
        load_arrays(tmp_path / "A_X.npy")
    np.save(tmp_path / "B_X.npy", X[:, 0])
    np.save(tmp_path / "B_y.npy", y)
    with pytest.raises(ValueError, match="X must be 2-D"):
        load_arrays(tmp_path / "B_X.npy")
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="unsupported data file"):
        load_arrays(tmp_path / "d.csv")
