"""The wheel and the sdist carry the whole package, and the wheel works installed on its own.

``python -m build`` (offline: ``--no-isolation``, with the test environment's hatchling)
builds the sdist, then the wheel from the sdist, as a release would. The wheel goes into a
fresh venv made without ``--system-site-packages``. To stay offline and fast it is installed
with ``--no-deps``, and the venv borrows only the third-party packages of the test
environment through a ``.pth`` file that names that environment's site-packages folder.
That folder holds this checkout's editable install, but as a ``.pth`` file of its own, which
Python only reads in a site directory and this folder is merely a path entry. So
``import neuronlab`` resolves to the installed wheel, never to src/, which the test checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import neuronlab

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "neuronlab"


def _package_files() -> set[str]:
    """Every file of src/neuronlab as the wheel names it (bytecode caches aside)."""
    return {
        p.relative_to(PACKAGE.parent).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> Path:
    """A venv holding the wheel, with the test environment's libraries on its path."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=False, system_site_packages=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
    ).strip())
    ours = Path(sysconfig.get_path("purelib"))
    (site / "borrowed_libraries.pth").write_text(f"{ours}\n", encoding="utf-8")
    wheel = next(dist.glob("neuronlab-*.whl"))
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return env_dir


def _run(env_dir: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_the_wheel_carries_every_file_of_the_package(dist):
    wheel = next(dist.glob("neuronlab-*.whl"))
    assert wheel.name == f"neuronlab-{neuronlab.__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "neuronlab/playground/static/index.html" in names
    assert "neuronlab/py.typed" in names
    missing = sorted(_package_files() - names)
    assert not missing, missing  # every subpackage, module and data file
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "docs/"))]
    entry_points = zipfile.ZipFile(wheel).read(
        f"neuronlab-{neuronlab.__version__}.dist-info/entry_points.txt").decode()
    assert "neuronlab = neuronlab.cli:main" in entry_points


def test_the_sdist_carries_the_sources_tests_and_docs(dist):
    sdist = next(dist.glob("neuronlab-*.tar.gz"))
    top = f"neuronlab-{neuronlab.__version__}/"
    with tarfile.open(sdist) as tar:
        names = {n.removeprefix(top) for n in tar.getnames()}
    expected = {"pyproject.toml", "README.md", "Makefile", "mkdocs.yml",
                "src/neuronlab/playground/static/index.html", "src/neuronlab/py.typed",
                "docs/tools/render_tutorials.py", "docs/tutorials/00_quickstart.py",
                "tests/docs/test_wheel.py"}
    assert expected <= names, sorted(expected - names)
    assert {f"src/{f}" for f in _package_files()} <= names
    assert not [n for n in names if n.startswith(("docs/generated/", "site/", ".venv"))]


def test_the_installed_wheel_imports_from_the_venv_and_runs(installed, tmp_path):
    python, cli = installed / "bin" / "python", installed / "bin" / "neuronlab"
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    code = (
        "import neuronlab, importlib.resources as r; print(neuronlab.__file__); "
        "print((r.files('neuronlab.playground') / 'static' / 'index.html').is_file())"
    )
    r = _run(installed, [str(python), "-c", code], outside)
    assert r.returncode == 0, r.stderr
    where, static = r.stdout.split()
    assert Path(where).resolve().is_relative_to(installed.resolve()), where
    assert not Path(where).resolve().is_relative_to(ROOT), where
    assert static == "True"

    r = _run(installed, [str(cli), "--version"], outside)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"neuronlab, version {neuronlab.__version__}; ")

    r = _run(installed, [str(cli), "train", "--epochs", "1", "--no-report", "--no-progress",
                         "--name", "wheel"], outside)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "accuracy: train" in r.stdout
    assert (outside / "runs" / "wheel" / "model.safetensors").is_file()
