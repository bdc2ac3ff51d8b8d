"""Start-up stays light: ``import neuronlab`` and ``neuronlab --help`` import neither the edges
(report, plots, search, playground, TensorBoard, ONNX export) nor the heavy libraries they
and the compiled engine use. Each import is checked in a fresh interpreter, by the modules
it leaves in ``sys.modules`` (never by how long it takes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
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


def test_import_neuronlab_imports_nothing_until_a_name_is_used(tmp_path):
    modules = _modules_after("import neuronlab", tmp_path)
    assert sorted(m for m in modules if m.startswith("neuronlab")) == ["neuronlab"]
    assert "numpy" not in modules and _loaded(modules) == []


def test_a_name_loads_its_module_and_no_heavy_one(tmp_path):
    modules = _modules_after("import neuronlab as nl\nnl.Trainer, nl.Linear, nl.diagnose", tmp_path)
    assert "neuronlab.layers" in modules and "neuronlab.train" in modules  # the core is there
    assert _loaded(modules) == []


def test_every_exported_name_has_its_module():
    """The run-time map of the top level gives the objects its ``if TYPE_CHECKING:`` imports
    name (what type checkers and readers see)."""
    import ast
    import importlib

    import neuronlab as nl

    tree = ast.parse(Path(nl.__file__).read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If)
                 and getattr(n.test, "id", None) == "TYPE_CHECKING")
    declared: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names:
            declared[alias.name] = (f"{node.module}.{alias.name}" if node.module == "neuronlab"
                                    else node.module)
    assert sorted(declared) == sorted(set(nl.__all__) | {"checks", "errors", "init", "io",
                                                          "layers", "losses", "optim",
                                                          "prediction", "preprocessing",
                                                          "regularizers", "schedules", "train"})
    assert set(nl.__all__) <= set(nl._EXPORTS) | nl._LAZY_MODULES
    for name, module in declared.items():
        target = importlib.import_module(module)
        expected = target if module.endswith(f".{name}") and module.startswith("neuronlab.") \
            and name in nl._LAZY_MODULES else getattr(target, name)
        assert getattr(nl, name) is expected, name


_EACH_ALONE = """
import os, sys, importlib, pathlib, traceback
import numpy  # third-party modules may be loaded first: only neuronlab's own order matters
root = pathlib.Path(sys.argv[1])
names = []
for path in sorted(root.rglob("*.py")):  # from the files: importing a package to list it would
    parts = list(path.relative_to(root.parent).with_suffix("").parts)  # load it here
    if parts[-1] == "__init__":
        parts.pop()
    if parts[-1] != "__main__":
        names.append(".".join(parts))
assert "neuronlab" not in sys.modules and len(names) > 100
failed = []
for name in names:
    pid = os.fork()
    if pid == 0:  # a fresh copy of this process: nothing of neuronlab is imported yet
        code = 0
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]):
        failed.append(name)
print("FAILED", failed)
"""


def test_every_module_imports_first():
    """``import neuronlab`` imports nothing, so any module may be the first a program imports
    (``from neuronlab.babysit.monitor import Monitor``, the playground's server): each must
    import alone, without a cycle that another order would have hidden."""
    import neuronlab

    out = subprocess.run([sys.executable, "-c", _EACH_ALONE, str(Path(neuronlab.__file__).parent)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "FAILED []", out.stderr[-3000:]


def test_the_cli_help_loads_neither_numpy_nor_a_command(tmp_path):
    modules = _modules_after("from neuronlab.cli import main\nmain(['--help'])", tmp_path)
    assert "click" in modules
    assert sorted(m for m in modules if m.startswith("neuronlab")) == [
        "neuronlab", "neuronlab.cli", "neuronlab.cli.app"]
    assert "numpy" not in modules and _loaded(modules) == []


def test_the_listing_of_every_lazy_command_is_its_own_help():
    listing = CliRunner().invoke(cli, ["--help"])
    assert listing.exit_code == 0
    assert sorted(cli.lazy_commands) == cli.list_commands(None)  # type: ignore[arg-type]
    for name, (_, help_text) in cli.lazy_commands.items():
        stub = click.Command(name, help=help_text)  # what the listing shows
        real = cli.get_command(None, name)  # type: ignore[arg-type]
        assert real is not None
        for limit in (45, 80, 1000):
            assert stub.get_short_help_str(limit) == real.get_short_help_str(limit), name
        assert f"  {name}" in listing.output


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
