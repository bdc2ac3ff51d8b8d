"""Property tests of the validators: whatever the input, they return a checked value or raise
their one error class, and they agree with the reference parsers where those are safe."""

from __future__ import annotations

import json
import math
import tomllib

import pytest
from _hostile import deadline, npy_bytes, st_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuronlab.config import read_toml
from neuronlab.io.tomlfile import MAX_TOML_DEPTH
from neuronlab.errors import ConfigError, DataError, ModelFileError
from neuronlab.io.bounded import MAX_JSON_DEPTH, bracket_depth, loads_json
from neuronlab.io.npyfile import read_npy
from neuronlab.io.safetensors_file import read_safetensors

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False), st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=30,
)


def depth(v) -> int:
    if isinstance(v, list):
        return 1 + max(map(depth, v), default=0)
    if isinstance(v, dict):
        return 1 + max(map(depth, v.values()), default=0)
    return 0


@FAST
@given(json_values, st.integers(0, 80))
def test_bracket_depth_is_the_nesting_depth(value, wrap):
    value = [value]
    for _ in range(wrap):
        value = {"k": value} if wrap % 2 else [value]
    text = json.dumps(value)
    assert bracket_depth(text) == depth(value)
    if depth(value) <= MAX_JSON_DEPTH:
        assert loads_json(text, "f", "x", ValueError) == value
    else:
        with pytest.raises(ValueError, match="nested deeper than 64"):
            loads_json(text, "f", "x", ValueError)


@FAST
@given(st.one_of(st.text(), st.binary()))
def test_loads_json_raises_only_its_error(text):
    try:
        loads_json(text, "f", "x", ModelFileError)
    except ModelFileError:
        pass


offset_like = st.one_of(scalars, st.lists(st.one_of(st.integers(-5, 200), scalars), max_size=3))
shape_like = st.one_of(scalars, st.lists(st.one_of(st.integers(-3, 12), scalars), max_size=4))
dtype_like = st.one_of(st.sampled_from(["F32", "F64", "F16", "BF16", "I8", "BOOL", "U64", "x"]),
                       scalars)


def _check_safetensors(tmp, entries, data, meta):
    header = {f"t{i}": {"dtype": d, "shape": s, "data_offsets": o}
              for i, (d, s, o) in enumerate(entries)}
    if meta is not None:
        header["__metadata__"] = meta
    path = tmp / "h.safetensors"
    path.write_bytes(st_bytes(header, data))
    try:
        with deadline():
            arrays, _ = read_safetensors(path, ModelFileError, dtypes={"F32", "F64"}, policy="p")
    except ModelFileError:
        return
    assert sum(a.nbytes for a in arrays.values()) == len(data)
    for i, (d, s, _) in enumerate(entries):
        assert arrays[f"t{i}"].shape == tuple(s)


header_entries = st.lists(st.tuples(dtype_like, shape_like, offset_like), max_size=3)
metas = st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.text(max_size=3)), scalars)


@FAST
@given(header_entries, st.binary(max_size=64), metas)
def test_safetensors_headers_are_checked(tmp_path_factory, entries, data, meta):
    _check_safetensors(tmp_path_factory.getbasetemp(), entries, data, meta)


@FAST
@given(st.lists(st.tuples(st.sampled_from(["F32", "F64"]), st.lists(st.integers(0, 4), max_size=3)),
                min_size=1, max_size=4), st.randoms())
def test_consistent_headers_load(tmp_path_factory, specs, rnd):
    """Well-formed headers (offsets tiling the data) are read, with the right shapes."""
    entries, end = [], 0
    for code, shape in specs:
        n = math.prod(shape) * (4 if code == "F32" else 8)
        entries.append((code, shape, [end, end + n]))
        end += n
    rnd.shuffle(entries)
    _check_safetensors(tmp_path_factory.getbasetemp(), entries, bytes(end), {"a": "b"})


descrs = st.one_of(st.sampled_from(["'<f4'", "'<f8'", "'|u1'", "'|O'", "'<U3'", "'<c16'",
                                    "'|b1'", "[('a', '<f4')]", "'V8'", "None", "'<f4"]),
                   st.text(max_size=6).map(repr))
shapes = st.one_of(st.lists(st.integers(-2, 6), max_size=3).map(lambda s: repr(tuple(s))),
                   st.text(max_size=6))


@FAST
@given(descrs, shapes, st.sampled_from(["False", "True", "0", "'x'"]), st.binary(max_size=96))
def test_npy_headers_are_checked(tmp_path_factory, descr, shape, fortran, data):
    path = tmp_path_factory.getbasetemp() / "h.npy"
    path.write_bytes(npy_bytes(
        f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}", data))
    for mmap in (False, True):
        try:
            with deadline():
                a = read_npy(path, DataError, mmap=mmap)
        except DataError:
            continue
        assert a.nbytes == len(data) and a.dtype.kind in "biuf"
        del a


@FAST
@given(st.integers(0, 2 * MAX_TOML_DEPTH), st.text(alphabet="[]{}\"'#x\n ", max_size=20))
def test_toml_nesting_is_capped(tmp_path_factory, n, noise):
    path = tmp_path_factory.getbasetemp() / "c.toml"
    path.write_text(f"hidden = {'[' * n}1{']' * n}\nnote = {json.dumps(noise)}\n")
    if n > MAX_TOML_DEPTH:
        with pytest.raises(ConfigError, match="nested deeper"):
            read_toml(path, "config file")
    else:
        assert read_toml(path, "config file") == tomllib.loads(path.read_text())


@FAST
@given(st.text(max_size=200))
def test_any_toml_text_reads_or_is_a_config_error(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "c.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        read_toml(path, "config file")
    except ConfigError:
        pass


def test_toml_nested_ten_thousand_deep(tmp_path):
    path = tmp_path / "c.toml"
    for text in ("[model]\nhidden = " + "[" * 10_000 + "]" * 10_000,
                 "a = " + "{b = " * 10_000 + "1" + "}" * 10_000,
                 "hidden = " + "[" * 10_000):
        path.write_text(text)
        with pytest.raises(ConfigError, match="nested deeper than 32"):
            read_toml(path, "config file")


@pytest.mark.slow
@SLOW
@given(header_entries, st.binary(max_size=64), metas)
def test_safetensors_headers_are_checked_long(tmp_path_factory, entries, data, meta):
    _check_safetensors(tmp_path_factory.getbasetemp(), entries, data, meta)


@pytest.mark.slow
@SLOW
@given(descrs, shapes, st.sampled_from(["False", "True"]), st.binary(max_size=96))
def test_npy_headers_are_checked_long(tmp_path_factory, descr, shape, fortran, data):
    test_npy_headers_are_checked.hypothesis.inner_test(tmp_path_factory, descr, shape, fortran,
                                                      data)
