"""Start-up stays light: ``import neuronlab`` and ``neuronlab --help`` import neither the edges
(report, plots, search, playground, TensorBoard, ONNX export) nor the heavy libraries they
and the compiled kernels use. Each import is checked in a fresh interpreter, by the modules
it leaves in ``sys.modules`` (never by how long it takes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from neuronlab.cli import cli

# What each costs to import on the 2-core benchmark machine, for the record: numba 0.3 s,
# matplotlib 0.5 s, any scipy submodule 0.2-0.3 s (scipy.special and scipy.linalg pull its
# array-API layer), optuna and dask about 1 s, onnx 0.3 s, starlette 0.1 s.
HEAVY = [
    "numba",
    "matplotlib",
    "scipy",
    "scipy.optimize",
    "scipy.signal",
    "optuna",
    "dask",
    "distributed",
    "onnx",
    "onnxruntime",
    "starlette",
    "uvicorn",
    "tensorboardX",
    "sklearn",
    "neuronlab.report",
    "neuronlab.plots",
    "neuronlab.search",
    "neuronlab.playground",
    "neuronlab.tensorboard",
]


def _modules_after(code: str, tmp_path: Path) -> set[str]:
    """The modules a fresh interpreter has loaded when ``code`` has run (or exited)."""
    out = tmp_path / "modules.json"
    prologue = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
    )
    subprocess.run(
        [sys.executable, "-c", prologue + code], capture_output=True, text=True, check=True
    )
    return set(json.loads(out.read_text()))


def _loaded(modules: set[str]) -> list[str]:
    return [m for m in HEAVY if m in modules or any(n.startswith(m + ".") for n in modules)]


def test_import_neuronlab_loads_no_heavy_module(tmp_path):
    modules = _modules_after("import neuronlab", tmp_path)
    assert "neuronlab.layers" in modules and "neuronlab.train" in modules  # the core is there
    assert _loaded(modules) == []


def test_the_cli_help_loads_no_heavy_module(tmp_path):
    modules = _modules_after("from neuronlab.cli import main\nmain(['--help'])", tmp_path)
    assert "click" in modules and "neuronlab.cli.train" in modules
    assert _loaded(modules) == []


def test_a_subcommand_help_loads_only_what_it_needs(tmp_path):
    modules = _modules_after("from neuronlab.cli import main\nmain(['train', '--help'])", tmp_path)
    assert _loaded(modules) == []


def test_the_playground_command_is_listed_without_importing_it_and_runs_when_asked():
    from neuronlab.playground.command import playground

    target, help_text = cli.lazy_commands["playground"]
    assert target == "neuronlab.playground.command:playground"
    assert help_text == playground.help  # the --help line cannot drift from the docstring
    listing = CliRunner().invoke(cli, ["--help"])
    assert listing.exit_code == 0 and "playground  Train a network on 2-D data" in listing.output
    result = CliRunner().invoke(cli, ["playground", "--help"])
    assert result.exit_code == 0 and "--max-sessions" in result.output
    assert cli.get_command(None, "playground") is playground  # type: ignore[arg-type]
