"""Model files under attack, against ``nl.load`` / ``nl.load_npz`` and ``neuronlab summary``,
``export`` and ``evaluate``: truncations, single-bit flips, lying headers, huge claims, deep
nesting, wrong dtypes, files that are not files, zip bombs and pickles.

Every hostile file is refused with a ``NeuronlabError`` (the CLI: exit 2, one ``error:``
line) in under 10 s; a flipped bit is refused or changes nothing (bit-identical outputs).
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from _hostile import (
    assert_clean_cli,
    fingerprint,
    flip,
    hostile_json_values,
    npy_bytes,
    outcome,
    run_cli,
    set_member_sizes,
    signed_npz,
    signed_st,
    small_model,
    special_files,
    split_st,
    st_bytes,
    write,
    zeros_bomb,
    zip_bytes,
)

import neuronlab as nl
from neuronlab.io import files as io_files

STATS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    """Prints what the tests of this module tried (shown with ``-s``)."""
    yield
    print("\nfuzz model files:", dict(sorted(STATS.items())))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("models")
    model, pre, meta = small_model()
    nl.save(model, folder / "good.safetensors", preprocessor=pre, metadata=meta)
    nl.save_npz(model, folder / "good.npz", preprocessor=pre, metadata=meta)
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", X=rng.standard_normal((30, 4)).astype(np.float32),
             y=np.arange(30) % 3)
    arrays, st_meta = io_files.read_safetensors(folder / "good.safetensors")
    for load, name in ((nl.load, "good.safetensors"), (nl.load_npz, "good.npz")):
        assert fingerprint(load(folder / name)) == fingerprint(model)
    return SimpleNamespace(
        folder=folder,
        st=(folder / "good.safetensors").read_bytes(),
        npz=(folder / "good.npz").read_bytes(),
        arrays={k: v.copy() for k, v in arrays.items()},
        meta=st_meta,
        print=fingerprint(model),
        data=folder / "data.npz",
    )


# -- the corpus -------------------------------------------------------------------------
def _cuts(size: int, header_end: int) -> set[int]:
    return {
        *range(0, 12),
        *range(12, header_end + 1, max(1, header_end // 48)),
        *range(header_end, size, max(1, (size - header_end) // 16)),
        *(size - k for k in (1, 2, 3, 4, 7, 8, 9, 16, 33)),
    }


def _lying_headers(good: bytes) -> dict[str, bytes]:
    """Headers whose framing lies; refused before the digest is even looked at."""
    header, data = split_st(good)
    n = len(good) - len(data) - 8
    first = sorted(k for k in header if k != "__metadata__")[0]
    b, e = header[first]["data_offsets"]
    out = {f"length-{v}": v.to_bytes(8, "little") + good[8:]
           for v in (0, 1, 2, n - 1, n + 1, len(good), 100_000_001, 2**63, 2**64 - 1)}
    raw = {"not-utf8": b"\xff\xfe{}", "nul": b"\0" * 16, "bom": b"\xef\xbb\xbf{}", "list": b"[]",
           "number": b"1", "string": b'"x"', "deep": b"[" * 100_000 + b"]" * 100_000,
           "deep-unclosed": b"{" * 100_000, "empty-object": b"{}"}
    out.update({f"header-{k}": st_bytes(v) for k, v in raw.items()})
    edits: dict[str, tuple[str, object]] = {
        **{f"offsets-{i}": ("data_offsets", v) for i, v in enumerate([
            [], 4, [b], [b, e, e], [-4, e], [e, b], [b, 10**12], [b + 1, e + 1], [b, e - 1],
            [float(b), float(e)], [True, False], f"{b},{e}", None, [str(b), str(e)],
            [0, 10**30], [b, e + len(data)]])},
        **{f"shape-{i}": ("shape", v) for i, v in enumerate([
            [], -1, [-1], [10**12, 10**12], [3.0], [True], [[3]], "3", None, [1] * 40, [2**64],
            [0], [-5, -4]])},
        **{f"dtype-{v}": ("dtype", v) for v in ["F8", "f32", 16, None, "F16", "BF16", "I8",
                                                "BOOL", "U64", "", "F32 "]},
    }
    for name, (key, value) in edits.items():
        h = json.loads(json.dumps(header))
        h[first][key] = value
        out[name] = st_bytes(h, data)
    for name, change in {
        "entry-int": lambda h: h.__setitem__(first, 5),
        "entry-extra-key": lambda h: h[first].__setitem__("x", 1),
        "entry-missing-key": lambda h: h[first].pop("dtype"),
        "meta-missing": lambda h: h.pop("__metadata__"),
        "meta-list": lambda h: h.__setitem__("__metadata__", []),
        "meta-int-value": lambda h: h["__metadata__"].__setitem__("format", 1),
        "meta-nested": lambda h: h["__metadata__"].__setitem__("x", {"a": "b"}),
        "tensor-dropped": lambda h: h.pop(first),
    }.items():
        h = json.loads(json.dumps(header))
        change(h)
        out[name] = st_bytes(h, data)
    text = json.dumps(header)
    dup = text.replace(f'"{first}": ', f'"{first}": {json.dumps(header[first])}, "{first}": ', 1)
    out["duplicate-key"] = st_bytes(dup.encode(), data)
    return out


def _signed_lies(arrays: dict, meta: dict, sign) -> dict[str, bytes]:
    """Files whose digest is right (anyone can compute a SHA-256) but whose content lies."""
    arch = json.loads(meta["architecture"])

    def with_arch(edit) -> str:
        a = json.loads(json.dumps(arch))
        edit(a["layers"])
        return json.dumps(a)

    out = {f"dtype-{t}": sign({k: v.astype(t) for k, v in arrays.items()}, meta)
           for t in ("float16", "int8", "bool", "uint64", ">f4")}
    one = sorted(arrays)[0]
    out["dtype-mixed"] = sign({**arrays, one: arrays[one].astype(np.float64)}, meta)
    archs = {
        "huge-linear": with_arch(lambda ls: ls[0]["config"].update(n_in=12000, n_out=12000)),
        "huge-maxout": with_arch(lambda ls: ls.__setitem__(0, {"type": "maxout", "config": {
            "n_in": 4, "n_out": 5, "pieces": 10**7}})),
        "huge-batchnorm": with_arch(lambda ls: ls[1]["config"].update(n_features=10**9)),
        "huge-prelu": with_arch(lambda ls: ls.__setitem__(2, {"type": "prelu", "config": {
            "n_units": 10**9}})),
        "many-layers": with_arch(lambda ls: ls.extend([{"type": "relu"}] * 100_000)),
        "n-in-5000-digits": json.dumps(arch).replace('"n_in": 4', '"n_in": ' + "1" * 5000, 1),
        "n-in-float": with_arch(lambda ls: ls[0]["config"].update(n_in=4.0)),
        "n-in-negative": with_arch(lambda ls: ls[0]["config"].update(n_in=-4)),
        "config-dtype-float16": with_arch(lambda ls: ls[0]["config"].update(dtype="float16")),
        "type-int": with_arch(lambda ls: ls[0].update(type=5)),
        "type-unknown": with_arch(lambda ls: ls[0].update(type="convolution")),
        "config-list": with_arch(lambda ls: ls[0].update(config=[1, 2])),
        "config-string": with_arch(lambda ls: ls[0].update(config="abc")),
        "config-typo": with_arch(lambda ls: ls[0]["config"].update(typo=1)),
        "eps-string": with_arch(lambda ls: ls[1]["config"].update(eps="NaN")),
        "no-layers": "[]",
        "layers-string": '{"layers": "x"}',
        "layers-empty": '{"layers": []}',
        **hostile_json_values(),
    }
    out.update({f"arch-{k}": sign(arrays, {**meta, "architecture": v}) for k, v in archs.items()})
    for k, v in {**hostile_json_values(), "list": "[1, 2]"}.items():
        out[f"metadata-{k}"] = sign(arrays, {**meta, "metadata": v})
    pres = {**hostile_json_values(), "type-unknown": '{"type": "sorcery"}',
            "type-int": '{"type": 5}',
            "config-list": '{"type": "standardize", "config": [1]}',
            "state-string": '{"type": "standardize", "config": {}, "state": "x"}'}
    pres.pop("null")  # "no preprocessor": a valid file (its arrays are then unexpected: refused)
    out.update({f"pre-{k}": sign(arrays, {**meta, "preprocessor": v}) for k, v in pres.items()})
    out["pre-arrays-dropped"] = sign(
        {k: v for k, v in arrays.items() if not k.startswith("preprocessor.")}, meta)
    out["pre-null-arrays-kept"] = sign(arrays, {**meta, "preprocessor": "null"})
    for k, v in {"format-pt": {"format": "pt"}, "version-3": {"format_version": "3"},
                 "version-missing": {"format_version": None}, "format-missing": {"format": None},
                 "arch-missing": {"architecture": None}}.items():
        out[k] = sign(arrays, {a: b for a, b in {**meta, **v}.items() if b is not None})
    return out


def _unsigned_edits(good: bytes) -> dict[str, bytes]:
    """The silent changes measured before the digest covered the header: each must now be
    refused as corrupted."""
    header, data = split_st(good)
    out = {}
    for name, (old, new) in {
        "alpha": ('\\"alpha\\": 0.01', '\\"alpha\\": 0.09'),
        "eps": ('\\"eps\\": 1e-05', '\\"eps\\": 1e-03'),
        "relu-tanh": ('\\"type\\": \\"leaky_relu\\", \\"config\\": {\\"alpha\\": 0.01}',
                      '\\"type\\": \\"tanh\\", \\"config\\": {}'),
        "metadata": ('\\"tag\\": \\"fuzz\\"', '\\"tag\\": \\"fuzZ\\"'),
    }.items():
        text = json.dumps(header)
        assert old in text, (name, text)
        out[f"edited-{name}"] = st_bytes(text.replace(old, new).encode(), data)
    h = json.loads(json.dumps(header))
    h["__metadata__"].pop("sha256")
    out["sha256-missing"] = st_bytes(h, data)
    h["__metadata__"]["sha256"] = "0" * 64
    out["sha256-zero"] = st_bytes(h, data)
    return out


def _v1_file(arrays: dict, meta: dict) -> bytes:
    """A format-1 file as neuronlab 0.1 wrote it (digest of the array bytes only)."""
    import hashlib

    from safetensors.numpy import save

    m = {**meta, "format_version": "1"}
    m.pop("sha256")
    first = save(arrays, metadata=m)
    n = int.from_bytes(first[:8], "little")
    m["sha256"] = hashlib.sha256(first[8 + n :]).hexdigest()
    return save(arrays, metadata=m)


def st_corpus(b: SimpleNamespace) -> dict[str, bytes]:
    n = int.from_bytes(b.st[:8], "little")
    out = {f"truncated-{c}": b.st[:c] for c in sorted(_cuts(len(b.st), 8 + n))}
    out["appended"] = b.st + b"\0"
    out["doubled"] = b.st + b.st
    out.update(_lying_headers(b.st))
    out.update(_signed_lies(b.arrays, b.meta, signed_st))
    out.update(_unsigned_edits(b.st))
    out["format-1"] = _v1_file(b.arrays, b.meta)
    return out


def npz_corpus(b: SimpleNamespace) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(b.npz)) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    w = "0.W.npy"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }"
    out = {f"truncated-{c}": b.npz[:c] for c in sorted(_cuts(len(b.npz), 64))[::2]}
    out.update({
        "not-zip": b"PK\x03\x04 not a zip" * 8,
        "empty-zip": zip_bytes({}),
        "member-text": zip_bytes({**members, "notes.txt": b"hello"}),
        "member-no-suffix": zip_bytes({**members, "0.W": members[w]}),
        "member-object": zip_bytes({**members, w: npy_bytes(
            "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", b"\x80\x04N.")}),
        "member-structured": zip_bytes({**members, w: npy_bytes(
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", bytes(4))}),
        "member-bad-magic": zip_bytes({**members, w: b"\x93NUMPX" + members[w][6:]}),
        "member-v3": zip_bytes({**members, w: b"\x93NUMPY\x03\x00" + members[w][8:]}),
        "member-huge-shape": zip_bytes({**members, w: npy_bytes(header % "10**12,", bytes(80))}),
        "member-huge-shape-lit": zip_bytes({**members, w: npy_bytes(header % "1000000000000,",
                                                                    bytes(80))}),
        "member-negative-shape": zip_bytes({**members, w: npy_bytes(header % "-4, -5",
                                                                    bytes(80))}),
        "member-short-data": zip_bytes({**members, w: members[w][:-4]}),
        "member-deep-header": zip_bytes({**members, w: npy_bytes("(" * 3000 + ")" * 3000)}),
        "member-long-header": zip_bytes({**members, w: npy_bytes(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (20,), }" + " " * 20000,
            version=b"\x02\x00")}),
        "member-bzip2": zip_bytes(members, zipfile.ZIP_BZIP2),
        "member-lzma": zip_bytes(members, zipfile.ZIP_LZMA),
        "member-size-lie": set_member_sizes(b.npz, w, 10**9),
        "no-meta": zip_bytes({k: v for k, v in members.items() if not k.startswith("__")}),
        "meta-bytes": zip_bytes({**members, "__neuronlab__.format.npy": npy_bytes(
            "{'descr': '|S15', 'fortran_order': False, 'shape': (), }", b"neuronlab.model")}),
        "meta-1d": zip_bytes({**members, "__neuronlab__.format.npy": npy_bytes(
            "{'descr': '<U1', 'fortran_order': False, 'shape': (2,), }", bytes(8))}),
    })
    out["duplicate-member"] = zip_bytes({**members, "0.Q.npy": members[w]}).replace(
        b"0.Q.npy", w.encode())
    encrypted = bytearray(b.npz)
    at = encrypted.find(b"PK\x01\x02")
    encrypted[at + 8] |= 1
    out["encrypted"] = bytes(encrypted)
    out["bomb"] = zeros_bomb(w, 64 << 20)  # 64 MiB of zeros in about 64 KB
    out.update(_signed_lies(b.arrays, b.meta, signed_npz))
    return out


# -- the tests --------------------------------------------------------------------------
def _run_corpus(base, corpus: dict[str, bytes], suffix: str, tmp_path: Path, cli: bool) -> None:
    load = nl.load_npz if suffix == ".npz" else nl.load
    for name, blob in corpus.items():
        path = write(tmp_path, f"{name}{suffix}", blob)
        assert outcome(load, path) is None, f"{name}: a hostile file loaded"
        STATS[f"corpus{suffix}"] += 1
        if cli:
            out = tmp_path / "out.npz"
            for args in (["summary", path], ["export", path, "--format", "npz", "-o", out],
                         ["evaluate", path, "--data", base.data]):
                assert_clean_cli(run_cli(*args), naming=path.name)
                STATS["cli"] += 1


def test_safetensors_corpus(base, tmp_path):
    corpus = st_corpus(base)
    assert len(corpus) > 200
    _run_corpus(base, corpus, ".safetensors", tmp_path, cli=True)


def test_npz_corpus(base, tmp_path):
    corpus = npz_corpus(base)
    assert len(corpus) > 100
    _run_corpus(base, corpus, ".npz", tmp_path, cli=True)


def test_silent_changes_of_the_issue_are_refused(base, tmp_path):
    for name, blob in _unsigned_edits(base.st).items():
        with pytest.raises(nl.ModelFileError, match="corrupted file|no checksum"):
            nl.load(write(tmp_path, f"{name}.safetensors", blob))
    with pytest.raises(nl.ModelFileError, match="version 1 .*no longer read"):
        nl.load(write(tmp_path, "v1.safetensors", _v1_file(base.arrays, base.meta)))


def test_float16_model_is_refused_at_load(base, tmp_path):
    arrays = {k: v.astype(np.float16) for k, v in base.arrays.items()}
    for suffix, sign, load in ((".safetensors", signed_st, nl.load),
                               (".npz", signed_npz, nl.load_npz)):
        path = write(tmp_path, f"f16{suffix}", sign(arrays, base.meta))
        with pytest.raises(nl.ModelFileError,
                           match="has float16 arrays.*neuronlab models are float32 or float64"):
            load(path)
        result = run_cli("summary", path)
        assert_clean_cli(result)
        assert "float16" in result.stderr


def test_huge_claim_is_refused_before_building(base, tmp_path):
    blob = _signed_lies(base.arrays, base.meta, signed_st)["arch-huge-linear"]
    with pytest.raises(nl.ModelFileError, match="declares 144,000,000 parameters"):
        nl.load(write(tmp_path, "huge.safetensors", blob))


@pytest.mark.parametrize("name", ["model.safetensors", "model.npz"])
def test_files_that_are_not_regular_files(base, tmp_path, name):
    load = nl.load_npz if name.endswith(".npz") else nl.load
    for kind, path in special_files(tmp_path, name).items():
        assert outcome(load, path) is None, kind
        for args in (["summary", path], ["evaluate", path, "--data", base.data],
                     ["export", path, "--format", "onnx", "-o", tmp_path / "o.onnx"]):
            assert_clean_cli(run_cli(*args))
        STATS["special"] += 1


# -- bit flips --------------------------------------------------------------------------
def _flips(base, blob: bytes, bits, suffix: str, tmp_path: Path, cli: bool = False) -> Counter:
    """Flip each bit in turn: refused, or a model with bit-identical outputs."""
    load = nl.load_npz if suffix == ".npz" else nl.load
    seen: Counter[str] = Counter()
    path = tmp_path / f"flipped{suffix}"
    for bit in bits:
        path.write_bytes(flip(blob, bit))
        model = outcome(load, path)
        if model is None:
            seen["refused"] += 1
        else:
            assert fingerprint(model) == base.print, f"bit {bit}: loaded with other outputs"
            seen["identical"] += 1
        if cli:
            result = run_cli("summary", path)
            assert_clean_cli(result, refused=model is None)
    STATS.update({f"flips{suffix}-{k}": v for k, v in seen.items()})
    return seen


def test_header_bit_flips_exhaustive(base, tmp_path):
    n = int.from_bytes(base.st[:8], "little")
    seen = _flips(base, base.st, range(8 * (8 + n)), ".safetensors", tmp_path)
    assert sum(seen.values()) == 8 * (8 + n) > 8000


def test_data_bit_flips_sampled(base, tmp_path):
    n = int.from_bytes(base.st[:8], "little")
    bits = random.Random(0).sample(range(8 * (8 + n), 8 * len(base.st)), 256)
    seen = _flips(base, base.st, bits, ".safetensors", tmp_path)
    assert seen["refused"] == 256  # the digest covers every array byte


def test_npz_bit_flips_sampled(base, tmp_path):
    _flips(base, base.npz, random.Random(1).sample(range(8 * len(base.npz)), 1500), ".npz",
           tmp_path)


def test_bit_flips_through_the_cli_sampled(base, tmp_path):
    _flips(base, base.st, random.Random(2).sample(range(8 * len(base.st)), 80), ".safetensors",
           tmp_path, cli=True)
    _flips(base, base.npz, random.Random(3).sample(range(8 * len(base.npz)), 80), ".npz",
           tmp_path, cli=True)


@pytest.mark.slow
def test_every_bit_flip_of_both_formats(base, tmp_path):
    _flips(base, base.st, range(8 * len(base.st)), ".safetensors", tmp_path)
    _flips(base, base.npz, range(8 * len(base.npz)), ".npz", tmp_path)


@pytest.mark.slow
def test_every_header_bit_flip_through_the_cli(base, tmp_path):
    n = int.from_bytes(base.st[:8], "little")
    _flips(base, base.st, range(8 * (8 + n)), ".safetensors", tmp_path, cli=True)


def test_a_redigested_zero_preprocessor_scale_is_refused_by_name(tmp_path):
    """A scale of 0 would turn a feature into Inf/NaN at evaluation ("x contains NaN or Inf",
    blaming the input): the file is refused at load, naming the preprocessor's state."""
    from safetensors.numpy import load as st_load

    from _hostile import signed_st, small_model, split_st

    model, _, meta = small_model()
    good = tmp_path / "good.safetensors"
    nl.save(model, good, metadata=meta)
    arrays = dict(st_load(good.read_bytes()))
    header, _ = split_st(good.read_bytes())
    scale = next(k for k in arrays if k.startswith("preprocessor.") and k.endswith("scale"))
    arrays[scale] = arrays[scale].copy()
    arrays[scale][1] = 0.0
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(signed_st(arrays, header["__metadata__"]))
    with pytest.raises(nl.ModelFileError, match=r"scale.*feature 1.*> 0"):
        nl.load(bad)


def test_report_of_a_run_with_a_hostile_model(base, tmp_path):
    """`neuronlab report RUN_DIR` with a hostile model.safetensors in the run folder: the
    report is written with a note where the model's sections would be (a missing piece never
    fails a report), or refused with one error line; never a traceback or a hang."""
    import shutil

    runs = tmp_path / "runs"
    trained = run_cli("train", "--data", "xor", "--hidden", "4", "--epochs", "1", "--runs-dir",
                      runs, "--name", "r", "--no-report", "--no-progress")
    assert trained.exit_code == 0, trained.output
    corpus = st_corpus(base)
    names = sorted(corpus)[:: max(1, len(corpus) // 8)]  # a spread of the corpus: 8 reports
    for name in names:
        run = tmp_path / name
        shutil.copytree(runs / "r", run)
        write(run, "model.safetensors", corpus[name])
        result = run_cli("report", run)
        assert_clean_cli(result, refused=result.exit_code != 0, naming="model.safetensors")
        if result.exit_code == 0:
            assert "model.safetensors" in (run / "report.html").read_text()
        STATS["report-cli"] += 1
