"""The curated public namespace: ``neuronlab`` exports the core and the training API, by
name; everything else is reached through its subpackage, imported on first use."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest

import neuronlab as nl

PACKAGE = Path(nl.__file__).parent
README = Path(__file__).resolve().parents[1] / "README.md"

# The top level, written out: a name joins or leaves it here, on purpose, with the README.
CURATED = [
    "data",
    # layers
    "ACTIVATIONS", "BatchNorm", "Dropout", "ELU", "GaussianNoise", "Layer", "LayerNorm",
    "LeakyReLU", "Linear", "Maxout", "PReLU", "ReLU", "Sequential", "Sigmoid", "Tanh", "mlp",
    # losses
    "BinaryHinge", "Loss", "MeanAbsoluteError", "MeanSquaredError", "MulticlassHinge",
    "SigmoidCrossEntropy", "SoftmaxCrossEntropy",
    # initialisers, regularisers, constraint
    "initialize", "ElasticNet", "L1", "L2", "MaxNorm", "Regularizer",
    # optimizers
    "Adagrad", "Adam", "AdamW", "LBFGS", "Momentum", "Nesterov", "Optimizer", "RMSprop", "SGD",
    "get_optimizer",
    # schedules
    "Constant", "Cosine", "Exponential", "InverseTime", "Schedule", "StepDecay", "Warmup",
    "get_schedule", "schedule_from_config",
    # preprocessing
    "MeanCenter", "MinMax", "NotFittedError", "PCA", "Preprocessor", "Standardize", "ZCA",
    # training
    "Callback", "Checkpoint", "EarlyStopping", "History", "JSONLLogger", "Monitor",
    "NonFiniteGuard", "ProgressBar", "ReduceLROnPlateau", "TrainState", "Trainer",
    "load_checkpoint",
    # checks and diagnosis
    "Finding", "GradcheckReport", "LRFindResult", "SanityReport", "diagnose", "format_findings",
    "gradcheck", "lr_find", "sanity_check",
    # model files
    "export_onnx", "load", "load_npz", "save", "save_npz",
    # ensembles
    "EMA", "Ensemble", "Polyak",
    # errors
    "CheckpointError", "ConfigError", "DataError", "DivergenceError", "ModelFileError",
    "NeuronlabError",
]  # fmt: skip

INTERNALS = ["SECTION_IDS", "GRADCHECK_BANDS", "atomic_write_bytes", "weight_mosaic"]
HEAVY = ["neuronlab.report", "neuronlab.plots", "neuronlab.tensorboard", "neuronlab.search",
         "neuronlab.playground", "neuronlab.sklearn", "neuronlab.cli", "matplotlib",
         "tensorboardX", "optuna", "dask", "onnx", "click", "starlette"]  # fmt: skip


def test_the_top_level_is_the_curated_list():
    assert len(CURATED) == len(set(CURATED))
    assert sorted(nl.__all__) == sorted(CURATED)
    namespace: dict[str, object] = {}
    exec("from neuronlab import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(CURATED)


@pytest.mark.parametrize("name", CURATED)
def test_every_name_resolves(name):
    assert getattr(nl, name) is not None


def test_no_internals_at_the_top():
    for name in INTERNALS:
        assert name not in nl.__all__
        with pytest.raises(AttributeError, match=rf"{name}'; use neuronlab\.[\w.]+\.{name}"):
            getattr(nl, name)


def test_errors_are_the_family():
    for name in ("CheckpointError", "ConfigError", "DataError", "ModelFileError"):
        assert issubclass(getattr(nl, name), nl.NeuronlabError)
        assert issubclass(getattr(nl, name), ValueError)
        assert getattr(nl, name) is getattr(nl.errors, name)


def test_subpackages_load_on_first_use():
    assert nl.plots.plot_loss is importlib.import_module("neuronlab.plots").plot_loss
    assert nl.report.write_report and nl.tensorboard.TensorBoardLogger
    assert nl.io.atomic_write_bytes and nl.checks.GRADCHECK_BANDS
    assert {"plots", "report", "search", "tensorboard", "sklearn"} <= set(dir(nl))
    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        nl.no_such_thing  # noqa: B018


def test_import_neuronlab_stays_light():
    code = (
        "import sys, neuronlab as nl; nl.Trainer, nl.load, nl.diagnose\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append((".".join(parts), path))
    return out


def _declared_all(path: Path) -> list[str] | None:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            try:
                return list(ast.literal_eval(node.value))
            except ValueError:  # built from other lists (the top level's is literal)
                return []
    return None


def test_every_module_lists_its_public_names():
    missing = [name for name, path in _modules() if _declared_all(path) is None]
    assert missing == [], f"modules without __all__: {missing}"


def test_every_listed_name_exists():
    stale = []
    for name, path in _modules():
        if name == "neuronlab.__main__":  # running it starts the command line
            continue
        module = importlib.import_module(name)
        stale += [f"{name}.{n}" for n in module.__all__ if not hasattr(module, n)]
    assert stale == []


def test_the_package_is_typed():
    assert (PACKAGE / "py.typed").is_file()


def test_readme_api_paragraph_names_the_top_level():
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## API\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert section, "README has no '## API' section"
    named = set(re.findall(r"`(\w+)`", section.group(1)))
    assert sorted(set(CURATED) - named) == []


def _mypy_config() -> tuple[Path, dict]:
    root = PACKAGE.parents[1]
    if not (root / "pyproject.toml").is_file():
        pytest.skip("neuronlab is not installed from a source tree")
    with open(root / "pyproject.toml", "rb") as f:
        return root, tomllib.load(f)["tool"]["mypy"]


def test_the_modules_defining_the_public_names_are_type_checked():
    root, config = _mypy_config()
    assert config.get("strict") is True
    listed = [(root / f).resolve() for f in config["files"]]
    unchecked = set()
    for name in nl.__all__:
        obj = getattr(nl, name)
        is_module = isinstance(obj, types.ModuleType)
        module = obj.__name__ if is_module else getattr(obj, "__module__", None)
        if module is None:  # a plain value (ACTIVATIONS, a tuple) names no module
            continue
        path = Path(importlib.import_module(module).__file__).resolve()
        if not any(path == f or f in path.parents for f in listed):
            unchecked.add(module)
    assert sorted(unchecked) == []


def test_the_typed_modules_pass_mypy():
    pytest.importorskip("mypy")
    root, _ = _mypy_config()
    out = subprocess.run(  # strict, on the files listed in [tool.mypy]; no cache left in the tree
        [sys.executable, "-m", "mypy", "--cache-dir", "/dev/null"],
        cwd=root, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
