"""What the numbers were measured on: CPU, cores, library versions, BLAS and its threads."""

from __future__ import annotations

import datetime
import os
import platform
from typing import Any

import numpy as np

__all__ = ["blas_threads", "describe_machine"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _numpy_blas() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode  # noqa: BLE001
        return "unknown"


def blas_threads() -> int | None:
    """Threads NumPy's BLAS uses (threadpoolctl, installed with scikit-learn), or None."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return int(pool["num_threads"])
    return None


def _version(dist: str) -> str:
    """An installed distribution's version, without importing it (torch takes seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def describe_machine() -> dict[str, Any]:
    """A JSON-able description of this machine and the software measured."""
    import neuronlab
    from neuronlab import engine

    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _numpy_blas(),
        "blas_threads": blas_threads(),
        "neuronlab": neuronlab.__version__,
        "kernels": engine.describe(),
        "torch": _version("torch"),
        "sklearn": _version("scikit-learn"),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
