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
    nl.io.atomic_write_bytes(target, b"first")
    assert target.read_bytes() == b"first"
    nl.io.atomic_write_bytes(str(target), bytearray(b"second, longer"))
    assert target.read_bytes() == b"second, longer"
    assert listing(tmp_path) == ["f.bin"]  # no temporary file left behind


def test_atomic_write_uses_umask_permissions(tmp_path):
    # A temp file from mkstemp would be 0o600; the result must look like open(path, "wb").
    mask = os.umask(0o022)
    try:
        nl.io.atomic_write_bytes(tmp_path / "f.bin", b"x")
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
    with pytest.raises(OSError, match="No space left") as err:
        nl.io.atomic_write_bytes(target, b"new contents that never land")
    assert str(target) in str(err.value) and err.value.errno == 28  # names the file
    monkeypatch.undo()
    assert target.read_bytes() == b"good old contents"
    assert listing(tmp_path) == ["f.bin"]


def test_atomic_write_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="data must be bytes"):
        nl.io.atomic_write_bytes(tmp_path / "f", "text")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nl.io.atomic_write_bytes(tmp_path / "missing" / "f", b"x")
    with pytest.raises(IsADirectoryError):
        nl.io.atomic_write_bytes(tmp_path, b"x")


# -- models used below ------------------------------------------------------------------
def trained_like(model: nl.Sequential, rng: np.random.Generator) -> nl.Sequential:
    """Move every parameter and buffer away from its initial value, so a file that lost or
    mixed up an array (gamma vs beta, running mean vs var) gives different outputs."""
    for k, v in {**model.params, **model.buffers}.items():
        noise = rng.standard_normal(v.shape)
        v[...] = np.abs(noise) + 0.5 if k.endswith("running_var") else v + 0.3 * noise
    return model


def make_model(activation: str, dtype, seed: int = 0) -> nl.Sequential:
    # mlp puts Linear -> BatchNorm -> activation -> Dropout per hidden layer; with
    # activation="maxout" a Maxout replaces Linear + activation.
    model = nl.mlp(
        6, [8, 5], 3, activation=activation, batchnorm=True, dropout=0.3, rng=seed, dtype=dtype
    )
    return trained_like(model, np.random.default_rng(seed + 1))


@pytest.fixture
def x(rng):
    return rng.standard_normal((11, 6))


def assert_same_model(a: nl.Sequential, b: nl.Sequential) -> None:
    assert a.get_config() == b.get_config()
    for mine, theirs in ((a.params, b.params), (a.buffers, b.buffers)):
        assert mine.keys() == theirs.keys()
        for k in mine:
            assert theirs[k].dtype == mine[k].dtype, k
            np.testing.assert_array_equal(theirs[k], mine[k], err_msg=k)


# -- safetensors round trip -------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["prelu", "maxout"])
def test_save_load_reproduces_inference_exactly(tmp_path, x, activation, dtype):
    model = make_model(activation, dtype)
    types = {type(layer).registry_name for layer in model}
    assert {"batchnorm", "dropout", activation} <= types
    path = tmp_path / "model.safetensors"
    nl.save(model, path)
    loaded = nl.load(path)
    assert_same_model(model, loaded)
    assert loaded.dtype == np.dtype(dtype)
    xd = x.astype(dtype)
    np.testing.assert_array_equal(
        loaded.forward(xd, training=False), model.forward(xd, training=False)
    )
    assert loaded.preprocessor is None
    assert loaded.metadata == {}


def test_loaded_model_keeps_training(tmp_path, x):
    # The arrays are the model's own (writable, not views into the file buffer).
    model = make_model("prelu", np.float64)
    nl.save(model, tmp_path / "m.safetensors")
    loaded = nl.load(tmp_path / "m.safetensors")
    out = loaded.forward(x, training=True)
    loaded.backward(np.ones_like(out))
    for k, p in loaded.params.items():
        p -= 0.1 * loaded.grads[k]
    assert not np.array_equal(loaded.params["0.W"], model.params["0.W"])


def test_file_layout_is_plain_safetensors_with_json_architecture(tmp_path):
    from safetensors import safe_open

    model = make_model("prelu", np.float32)
    path = tmp_path / "m.safetensors"
    nl.save(model, path, metadata={"dataset": "digits"})
    with safe_open(str(path), framework="np") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert keys == set(model.params) | set(model.buffers)
    assert meta["format"] == "neuronlab.model"
    assert json.loads(meta["architecture"]) == model.get_config()
    assert json.loads(meta["metadata"]) == {"dataset": "digits"}
    assert json.loads(meta["preprocessor"]) is None
    assert len(meta["sha256"]) == 64


def test_metadata_round_trip(tmp_path):
    model = make_model("prelu", np.float32)
    info = {"accuracy": 0.975, "epochs": 20, "classes": ["0", "1", "2"], "nested": {"µ": None}}
    path = tmp_path / "m.safetensors"
    nl.save(model, path, metadata=info)
    loaded = nl.load(path)
    assert loaded.metadata == info
    # load -> save keeps the metadata unless new metadata is given
    nl.save(loaded, path)
    assert nl.load(path).metadata == info
    nl.save(loaded, path, metadata={"accuracy": 0.5})
    assert nl.load(path).metadata == {"accuracy": 0.5}


def test_bad_save_arguments_write_nothing(tmp_path):
    model = make_model("prelu", np.float32)
    path = tmp_path / "m.safetensors"
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        nl.save(model, path, metadata={"array": np.zeros(2)})
    with pytest.raises(TypeError, match="metadata must be a dict"):
        nl.save(model, path, metadata=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="model must be a neuronlab Sequential"):
        nl.save(model.layers[0], path)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="registered neuronlab preprocessor"):
        nl.save(model, path, preprocessor=object())
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name", ["mean_center", "standardize", "minmax", "pca", "zca"])
def test_preprocessor_round_trip(tmp_path, rng, name):
    from neuronlab.registry import PREPROCESSORS

    X = rng.standard_normal((40, 6)) @ rng.standard_normal((6, 6)) + 3.0
    config = {"n_components": 6, "whiten": True} if name == "pca" else {}
    pre = PREPROCESSORS.create(name, **config).fit(X)
    model = make_model("prelu", np.float32)
    path = tmp_path / "m.safetensors"
    nl.save(model, path, preprocessor=pre)
    loaded = nl.load(path).preprocessor
    assert type(loaded) is type(pre)
    assert loaded.get_config() == pre.get_config()
    np.testing.assert_array_equal(loaded.transform(X), pre.transform(X))
    # A preprocessor attached to the model is saved by default.
    model.preprocessor = pre
    nl.save(model, path)
    np.testing.assert_array_equal(nl.load(path).preprocessor.transform(X), pre.transform(X))


def test_unfitted_preprocessor_is_refused(tmp_path):
    from neuronlab.preprocessing import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        nl.save(make_model("prelu", np.float32), tmp_path / "m", preprocessor=nl.Standardize())


# -- bad files --------------------------------------------------------------------------
@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.safetensors"
    nl.save(make_model("maxout", np.float32), path, metadata={"tag": "good"})
    return path


def test_model_file_error_is_a_value_error():
    assert issubclass(nl.ModelFileError, ValueError)


@pytest.mark.parametrize("loader", [nl.load, nl.load_npz])
def test_missing_file_names_it(tmp_path, loader):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        loader(tmp_path / "nope.safetensors")


def test_truncated_files_are_caught(tmp_path, good_file):
    blob = good_file.read_bytes()
    header_len = int.from_bytes(blob[:8], "little")
    bad = tmp_path / "bad.safetensors"
    # Cut inside the array data, at the header/data boundary, inside the header, inside the
    # 8-byte length prefix, and to nothing.
    for keep in (len(blob) - 1, len(blob) - 37, 8 + header_len, 8 + header_len // 2, 5, 0):
        bad.write_bytes(blob[:keep])
        with pytest.raises(nl.ModelFileError, match="truncated|not a safetensors"):
            nl.load(bad)


def test_corrupted_files_are_caught(tmp_path, good_file):
    blob = bytearray(good_file.read_bytes())
    header_len = int.from_bytes(blob[:8], "little")
    bad = tmp_path / "bad.safetensors"

    flipped = blob.copy()
    flipped[-3] ^= 0x40  # one bit of one weight: the file still parses, the checksum does not match
    bad.write_bytes(flipped)
    with pytest.raises(nl.ModelFileError, match="checksum"):
        nl.load(bad)

    broken_header = blob.copy()
    broken_header[8 + header_len // 2] = 0xFF  # not valid UTF-8 / JSON any more
    bad.write_bytes(broken_header)
    with pytest.raises(nl.ModelFileError, match="not a safetensors file"):
        nl.load(bad)

    bad.write_bytes(bytes(blob) + b"trailing junk")
    with pytest.raises(nl.ModelFileError, match="13 unexpected bytes"):
        nl.load(bad)


def test_wrong_files_are_refused(tmp_path, good_file):
    from safetensors.numpy import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(other))  # someone else's safetensors file
    with pytest.raises(nl.ModelFileError, match="no neuronlab metadata"):
        nl.load(other)
    save_file({"w": np.zeros(3, np.float32)}, str(other), metadata={"format": "pt"})
    with pytest.raises(nl.ModelFileError, match="not a neuronlab model file"):
        nl.load(other)
    text = tmp_path / "notes.txt"
    text.write_text("just some text, long enough to have an 8-byte prefix\n")
    with pytest.raises(nl.ModelFileError, match="not a safetensors file|truncated"):
        nl.load(text)
    npz = tmp_path / "m.npz"
    nl.save_npz(make_model("prelu", np.float32), npz)
    with pytest.raises(nl.ModelFileError):
        nl.load(npz)
    with pytest.raises(nl.ModelFileError, match="not a readable .npz"):
        nl.load_npz(good_file)


def rewrite(path, tmp_path, *, arrays=None, **meta_changes):
    """Write a copy of a good model file with some arrays or metadata replaced (None: removed)."""
    st_arrays, meta = io_files.read_safetensors(path)
    meta.pop("sha256")
    st_arrays = {**st_arrays, **(arrays or {})}
    meta = {**meta, **meta_changes}
    out = tmp_path / "edited.safetensors"
    io_files.write_safetensors(
        out,
        {k: v for k, v in st_arrays.items() if v is not None},
        {k: v for k, v in meta.items() if v is not None},
    )
    return out


def test_arrays_must_match_the_architecture(tmp_path, good_file):
    arrays, _ = io_files.read_safetensors(good_file)
    bad = rewrite(good_file, tmp_path, arrays={"0.W": np.zeros((7, 8, 2), np.float32)})
    with pytest.raises(nl.ModelFileError, match=r"'0.W' has shape \(7, 8, 2\)"):
        nl.load(bad)
    bad = rewrite(good_file, tmp_path, arrays={"1.running_var": None})
    with pytest.raises(nl.ModelFileError, match=r"missing \['1.running_var'\]"):
        nl.load(bad)
    bad = rewrite(good_file, tmp_path, arrays={"9.W": np.zeros(2, np.float32)})
    with pytest.raises(nl.ModelFileError, match=r"unexpected \['9.W'\]"):
        nl.load(bad)
    bad = rewrite(good_file, tmp_path, arrays={"0.b": arrays["0.b"].astype(np.float64)})
    with pytest.raises(nl.ModelFileError, match="mix dtypes"):
        nl.load(bad)


def test_bad_metadata_is_refused(tmp_path, good_file):
    arch = json.loads(io_files.read_safetensors(good_file)[1]["architecture"])
    arch["layers"][0]["type"] = "convolution"
    with pytest.raises(nl.ModelFileError, match="unknown layer 'convolution'"):
        nl.load(rewrite(good_file, tmp_path, architecture=json.dumps(arch)))
    arch["layers"][0] = {"type": "linear", "config": {"n_in": 6, "n_out": 8, "typo": 1}}
    with pytest.raises(nl.ModelFileError, match="cannot rebuild the architecture"):
        nl.load(rewrite(good_file, tmp_path, architecture=json.dumps(arch)))
    with pytest.raises(nl.ModelFileError, match="'architecture' is not valid JSON"):
        nl.load(rewrite(good_file, tmp_path, architecture="{layers: oops"))
    with pytest.raises(nl.ModelFileError, match="has no 'architecture' entry"):
        nl.load(rewrite(good_file, tmp_path, architecture=None))
    with pytest.raises(nl.ModelFileError, match="metadata 'metadata' must be a JSON object"):
        nl.load(rewrite(good_file, tmp_path, metadata="[1, 2]"))
    with pytest.raises(nl.ModelFileError, match="format version '3' is not supported"):
        nl.load(rewrite(good_file, tmp_path, format_version="3"))
    with pytest.raises(nl.ModelFileError, match="version 1 .* is no longer read"):
        nl.load(rewrite(good_file, tmp_path, format_version="1"))
    with pytest.raises(nl.ModelFileError, match="cannot rebuild preprocessor 'sorcery'"):
        nl.load(rewrite(good_file, tmp_path, preprocessor='{"type": "sorcery", "config": {}}'))


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failing_save_never_overwrites_a_good_file(tmp_path, good_file, monkeypatch, x, failing):
    before = good_file.read_bytes()
    expected = nl.load(good_file).forward(x.astype(np.float32))

    def boom(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="Input/output error"):
        nl.save(make_model("maxout", np.float32, seed=7), good_file)
    monkeypatch.undo()
    assert good_file.read_bytes() == before
    assert listing(tmp_path) == ["good.safetensors"]
    loaded = nl.load(good_file)
    assert loaded.metadata == {"tag": "good"}
    np.testing.assert_array_equal(loaded.forward(x.astype(np.float32)), expected)


# -- npz --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["prelu", "maxout"])
def test_npz_round_trip(tmp_path, x, activation, dtype):
    model = make_model(activation, dtype)
    path = tmp_path / "model.npz"
    nl.save_npz(model, path, metadata={"note": "npz"})
    loaded = nl.load_npz(path)
    assert_same_model(model, loaded)
    assert loaded.metadata == {"note": "npz"}
    xd = x.astype(dtype)
    np.testing.assert_array_equal(loaded.forward(xd), model.forward(xd))


def test_npz_is_plain_numpy_without_pickle(tmp_path, rng):
    model = make_model("prelu", np.float32)
    pre = nl.Standardize().fit(rng.standard_normal((20, 6)))
    path = tmp_path / "model.npz"
    nl.save_npz(model, path, preprocessor=pre)
    assert listing(tmp_path) == ["model.npz"]  # written to the exact name, no extra suffix
    with np.load(path, allow_pickle=False) as npz:
        entries = {k: npz[k] for k in npz.files}
    assert all(v.dtype != object for v in entries.values())
    arch = entries["__neuronlab__.architecture"]
    assert arch.shape == () and arch.dtype.kind == "U"
    assert json.loads(str(arch)) == model.get_config()
    np.testing.assert_array_equal(entries["0.W"], model.params["0.W"])
    np.testing.assert_array_equal(entries["preprocessor.mean"], pre.state_dict()["mean"])
    X = rng.standard_normal((5, 6))
    np.testing.assert_array_equal(nl.load_npz(path).preprocessor.transform(X), pre.transform(X))


def test_bad_npz_files(tmp_path):
    model = make_model("prelu", np.float32)
    good = tmp_path / "good.npz"
    nl.save_npz(model, good)
    blob = good.read_bytes()
    bad = tmp_path / "bad.npz"
    for keep in (len(blob) - 1, len(blob) // 2, 10):
        bad.write_bytes(blob[:keep])
        with pytest.raises(nl.ModelFileError, match="not a readable .npz"):
            nl.load_npz(bad)
    # An object array would need pickle to load: refused, never unpickled.
    np.savez(bad, payload=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(nl.ModelFileError, match="allow_pickle"):
        nl.load_npz(bad)
    np.savez(bad, w=np.zeros(3))
    with pytest.raises(nl.ModelFileError, match="no neuronlab metadata"):
        nl.load_npz(bad)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(nl.ModelFileError, match="not a readable .npz archive"):
        nl.load_npz(tmp_path / "single.npy")
    with zipfile.ZipFile(good) as z:
        names = z.namelist()
    assert "0.W.npy" in names


# -- the digest and the error family ----------------------------------------------------
def test_error_family():
    from neuronlab import errors

    assert nl.ModelFileError is errors.ModelFileError
    for cls in (errors.DataError, errors.ModelFileError, errors.ConfigError,
                errors.CheckpointError):
        assert issubclass(cls, errors.NeuronlabError) and issubclass(cls, ValueError)
    assert issubclass(nl.data.UnsafePickleError, errors.DataError)


def test_both_formats_carry_one_digest_over_everything(tmp_path):
    model = make_model("prelu", np.float32)
    nl.save(model, tmp_path / "m.safetensors", metadata={"a": 1})
    nl.save_npz(model, tmp_path / "m.npz", metadata={"a": 1})
    arrays, meta = io_files.read_safetensors(tmp_path / "m.safetensors")
    assert meta["format_version"] == "2"
    assert meta["sha256"] == io_files.content_digest(arrays, meta)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        assert str(npz["__neuronlab__.sha256"]) == meta["sha256"]
    # every metadata string and every array property is covered
    for changed in ({**meta, "metadata": '{"a": 2}'}, {**meta, "extra": ""}):
        assert io_files.content_digest(arrays, changed) != meta["sha256"]
    w = arrays["0.W"]
    for other in (w.reshape(-1), w.astype(np.float64), w + 1):
        assert io_files.content_digest({**arrays, "0.W": other}, meta) != meta["sha256"]
    renamed = {("0.V" if k == "0.W" else k): v for k, v in arrays.items()}
    assert io_files.content_digest(renamed, meta) != meta["sha256"]


def test_float16_models_are_neither_saved_nor_loaded(tmp_path, good_file):
    model = make_model("prelu", np.float32)
    for layer in model.layers:
        for store in (layer.params, layer.buffers):
            for k in store:
                store[k] = store[k].astype(np.float16)
    with pytest.raises(TypeError, match="float32 or float64"):
        nl.save(model, tmp_path / "half.safetensors")
    arrays, _ = io_files.read_safetensors(good_file)
    bad = rewrite(good_file, tmp_path, arrays={k: v.astype(np.float16) for k, v in arrays.items()})
    with pytest.raises(nl.ModelFileError, match="has float16 arrays .*float32 or float64"):
        nl.load(bad)


def test_non_regular_files_are_refused_at_once(tmp_path):
    fifo = tmp_path / "m.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(nl.ModelFileError, match="is a FIFO"):
        nl.load(fifo)
    os.symlink("/dev/zero", tmp_path / "z.npz")
    with pytest.raises(nl.ModelFileError, match="is a character device"):
        nl.load_npz(tmp_path / "z.npz")
