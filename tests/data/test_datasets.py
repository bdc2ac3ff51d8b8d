"""Built-in data sets: shapes, dtypes, ranges, the notes' spiral geometry, seeding, names."""

from __future__ import annotations

import numpy as np
import pytest

import neuronlab as nl

GENERATED = ["spiral", "circles", "moons", "xor", "blobs"]


def test_digits_shape_and_range():
    X, y = nl.data.digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32 and X.flags.c_contiguous
    assert y.shape == (1797,) and y.dtype == np.int64
    assert np.prod(nl.data.DIGITS_IMAGE_SHAPE) == X.shape[1]
    # pixel counts 0..16 divided by 16: the range is exactly [0, 1] in steps of 1/16
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))
    np.testing.assert_array_equal(np.unique(y), np.arange(10))


def test_spiral_sizes_labels_and_geometry():
    X, y = nl.data.spiral(n_per_class=50, n_classes=4, noise=0.0)
    assert X.shape == (200, 2) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, np.repeat(np.arange(4), 50))
    # the notes: r = linspace(0, 1, N) for every class, so |x| is that radius exactly
    r = np.hypot(X[:, 0].astype(np.float64), X[:, 1])
    np.testing.assert_allclose(r, np.tile(np.linspace(0, 1, 50), 4), atol=1e-6)
    assert r.min() >= 0 and r.max() <= 1 + 1e-6
    # x = (r sin θ, r cos θ) with θ = linspace(4j, 4(j+1)) when noise = 0
    theta = np.concatenate([np.linspace(4 * j, 4 * (j + 1), 50) for j in range(4)])
    expected = np.column_stack([r * np.sin(theta), r * np.cos(theta)])
    np.testing.assert_allclose(X, expected, atol=1e-6)


def test_spiral_noise_perturbs_angle_only():
    X, _ = nl.data.spiral(noise=0.2, seed=3)
    assert X.shape == (300, 2)
    r = np.hypot(X[:, 0].astype(np.float64), X[:, 1])
    np.testing.assert_allclose(r, np.tile(np.linspace(0, 1, 100), 3), atol=1e-6)
    X0, _ = nl.data.spiral(noise=0.0)
    assert np.abs(X - X0).max() > 0.05


def test_circles_geometry():
    X, y = nl.data.circles(n=100, noise=0.0, factor=0.3)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0, atol=1e-6)  # outer circle
    np.testing.assert_allclose(r[y == 1], 0.3, atol=1e-6)  # inner circle, radius = factor


def test_xor_labels_follow_quadrants():
    X, y = nl.data.xor(n=101, noise=0.0, seed=1)
    assert X.shape == (101, 2)
    assert set(map(tuple, np.abs(X).tolist())) == {(1.0, 1.0)}  # the four corners
    np.testing.assert_array_equal(y, (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(np.int64))
    assert abs(int(np.bincount(y)[0]) - int(np.bincount(y)[1])) <= 1  # balanced


def test_blobs_classes_and_features():
    X, y = nl.data.blobs(n=90, n_classes=3, n_features=4, std=0.5, seed=2)
    assert X.shape == (90, 4)
    np.testing.assert_array_equal(np.bincount(y), [30, 30, 30])


@pytest.mark.parametrize("name", GENERATED)
def test_generated_dtypes_and_seeding(name):
    X, y = nl.data.load_dataset(name, seed=7)
    assert (
        X.dtype == np.float32 and y.dtype == np.int64 and X.ndim == 2 and y.shape == (X.shape[0],)
    )
    assert np.isfinite(X).all()
    X2, y2 = nl.data.load_dataset(name, seed=7)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = nl.data.load_dataset(name, seed=8)
    assert not np.array_equal(X, X3)
    # a Generator is accepted and advances: two draws differ
    g = np.random.default_rng(0)
    a, _ = nl.data.load_dataset(name, seed=g)
    b, _ = nl.data.load_dataset(name, seed=g)
    assert not np.array_equal(a, b)


def test_load_dataset_names_and_errors():
    assert set(nl.data.DATASETS.names()) == {"digits", "spiral", "circles", "moons", "xor", "blobs"}
    X, y = nl.data.load_dataset("spiral", n_per_class=10, n_classes=5)
    assert X.shape == (50, 2) and y.max() == 4
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; choose one of: blobs, circles"):
        nl.data.load_dataset("mnist")
    with pytest.raises(TypeError, match=r"'spiral' got unknown option\(s\) \['n_class'\]"):
        nl.data.load_dataset("spiral", n_class=3)


def test_argument_validation():
    with pytest.raises(ValueError, match="n_per_class must be > 0, got 0"):
        nl.data.spiral(n_per_class=0)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        nl.data.spiral(noise=-0.1)
    with pytest.raises(ValueError, match="factor must be < 1"):
        nl.data.circles(factor=1.0)
    with pytest.raises(TypeError, match="n must be an integer"):
        nl.data.moons(n=10.5)
    with pytest.raises(TypeError, match="rng must be None, an int seed or a numpy Generator"):
        nl.data.xor(seed="abc")


def test_digits_equal_scikit_learns_loader_without_importing_it():
    """The file is read directly (no scikit-learn import: a second of start-up), and gives
    exactly what sklearn.datasets.load_digits gives."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    X, y = nl.data.digits()
    bunch = load_digits()
    np.testing.assert_array_equal(X, (bunch.data / 16.0).astype(np.float32))
    np.testing.assert_array_equal(y, bunch.target)
    code = "import sys, neuronlab as nl; nl.data.digits(); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
