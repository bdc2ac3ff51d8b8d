"""Huge claims and zip bombs are refused without the memory they claim.

Each group runs in a fresh subprocess that measures its own peak RSS (``ru_maxrss``) before
and after trying every case through the API and the CLI; the growth must stay under
2 x the largest file + 200 MB. Before the checks, a 78 KB file claiming ``Linear(12000,
12000)`` took 2.26 GB and a 3.5 MB deflated ``.npz`` expanded to 3.5 GB.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _hostile import signed_npz, signed_st, small_model, write, zeros_bomb

import neuronlab as nl
from neuronlab.io import files as io_files

MB = 1 << 20
_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    import neuronlab as nl
    from click.testing import CliRunner
    from neuronlab.cli import cli
    from neuronlab.data import load_arrays, read_cifar10_batch
    from neuronlab.errors import NeuronlabError

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

    cases = json.loads(sys.argv[1])
    runs = sys.argv[2]
    good = next(p for p, kind in cases.items() if kind == "good")
    del cases[good]
    nl.load(good)  # import and warm everything the cases touch
    CliRunner().invoke(cli, ["summary", good])
    base = peak()
    apis = {"model": nl.load, "npz-model": nl.load_npz, "data": load_arrays,
            "cifar": read_cifar10_batch}
    codes = []
    for path, kind in cases.items():
        try:
            apis[kind](path)
            codes.append("LOADED " + path)
        except (NeuronlabError, FileNotFoundError):
            pass
        if kind in ("model", "npz-model"):
            args = ["evaluate", path, "--data", path]
        elif kind == "data":
            args = ["train", "--data", path, "--epochs", "1", "--runs-dir", runs, "--no-report"]
        else:
            continue
        codes.append(CliRunner().invoke(cli, args).exit_code)
    print(json.dumps({"base": base, "peak": peak(), "codes": codes}))
    """
)


def _measure(cases: dict[str, str], tmp_path: Path) -> dict:
    files = [Path(p) for p, k in cases.items() if k != "good"]
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(cases), str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "NEURONLAB_ENGINE": "0"},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["codes"] and all(c == 2 for c in out["codes"]), out["codes"]
    largest = max(p.stat().st_size for p in files)
    grown = out["peak"] - out["base"]
    print(f"\npeak RSS grew {grown / MB:.1f} MB over {len(files)} cases "
          f"(largest file {largest / MB:.2f} MB)")
    assert grown <= 2 * largest + 200 * MB
    return out


@pytest.fixture(scope="module")
def model_parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mem")
    model, pre, meta = small_model()
    nl.save(model, folder / "good.safetensors", preprocessor=pre, metadata=meta)
    arrays, st_meta = io_files.read_safetensors(folder / "good.safetensors")
    return folder, {k: v.copy() for k, v in arrays.items()}, st_meta


def test_huge_claims_stay_small(model_parts, tmp_path):
    folder, arrays, meta = model_parts
    arch = json.loads(meta["architecture"])
    arch["layers"][0]["config"].update(n_in=12000, n_out=12000)  # 576 MB if built
    huge = {**meta, "architecture": json.dumps(arch)}
    cases = {
        str(folder / "good.safetensors"): "good",
        str(write(tmp_path, "huge.safetensors", signed_st(arrays, huge))): "model",
        str(write(tmp_path, "huge.npz", signed_npz(arrays, huge))): "npz-model",
    }
    # a header claiming a 4 GB array over 80 bytes
    header = {"x": {"dtype": "F32", "shape": [1 << 30], "data_offsets": [0, 80]},
              "__metadata__": {"format": "neuronlab.model"}}
    blob = json.dumps(header).encode()
    cases[str(write(tmp_path, "claim.safetensors",
                    len(blob).to_bytes(8, "little") + blob + bytes(80)))] = "model"
    # a CIFAR-10 batch whose labels are 100 references to one list of a million ints
    labels = pickle.dumps({b"data": np.zeros((100, 3072), np.uint8),
                           b"labels": [list(range(10)) * 100_000] * 100}, protocol=2)
    cases[str(write(tmp_path, "data_batch_1", labels))] = "cifar"
    _measure(cases, tmp_path)


def test_zip_bombs_stay_small(model_parts, tmp_path):
    folder, _, _ = model_parts
    bomb = zeros_bomb("X.npy", 256 * MB)  # 256 MiB of zeros in about 256 KB
    assert len(bomb) < 2 * MB
    labels = io.BytesIO()
    np.save(labels, np.zeros(64, np.int64))
    buf = io.BytesIO(bomb)
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr("y.npy", labels.getvalue())
    cases = {
        str(folder / "good.safetensors"): "good",
        str(write(tmp_path, "bomb.npz", buf.getvalue())): "data",
        str(write(tmp_path, "bomb-model.npz", zeros_bomb("0.W.npy", 256 * MB))): "npz-model",
    }
    _measure(cases, tmp_path)
