"""The build helpers of docs/tools/, imported by path (docs/ is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "docs" / "tools"


def load(name: str) -> ModuleType:
    """``docs/tools/<name>.py`` as a module (imported once)."""
    key = f"_docs_tools_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, TOOLS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


render_tutorials = load("render_tutorials")
cli_reference = load("cli_reference")
