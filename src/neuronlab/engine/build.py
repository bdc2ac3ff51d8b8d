"""Compile the training loop: one numba module generated from the kernels' own sources.

The loop (:mod:`neuronlab.engine.loop`) calls kernels that live beside their NumPy references:
each elementwise activation's ``kernel`` (:mod:`neuronlab.layers.activations`), BatchNorm's
(:mod:`neuronlab.layers.normalization`), each loss's
(:mod:`neuronlab.losses`), each update rule's (:mod:`neuronlab.optim`) and the penalties'
(:mod:`neuronlab.regularizers`).
:func:`compiled` copies those functions' source text into one module, with three small
dispatchers generated over them (``act_forward``/``act_backward`` by activation code,
``loss_kernel`` by loss code, ``rule_update`` by rule code), writes it to a cache folder
under a name that is the hash of its text, and compiles it with numba's on-disk cache: the
first fit on a machine compiles (15-30 s per dtype, with a warning saying so; ``make venv``
runs ``python -m neuronlab.engine`` to do it ahead), later processes load the machine code
(about 0.3 s), and a change to any kernel gives a new file instead of a stale cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import inspect
import os
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["ACTIVATIONS", "LOSSES", "RULES", "cache_dir", "compiled", "source"]

log = logging.getLogger(__name__)


def _activations() -> list[type]:
    from neuronlab.layers import activations

    return [activations.Sigmoid, activations.Tanh, activations.ReLU, activations.LeakyReLU,
            activations.ELU]


def _losses() -> list[type]:
    from neuronlab.losses.classification import SoftmaxCrossEntropy
    from neuronlab.losses.regression import MeanSquaredError

    return [SoftmaxCrossEntropy, MeanSquaredError]


def _rules() -> list[type]:
    from neuronlab.optim import adagrad, adam, momentum, nesterov, rmsprop, sgd

    return [sgd.SGD, momentum.Momentum, nesterov.Nesterov, adagrad.Adagrad, rmsprop.RMSprop,
            adam.Adam]


#: The activation and loss classes the loop runs, in code order (a code is the index).
ACTIVATIONS: list[type] = []
LOSSES: list[type] = []
#: The optimizer classes whose rule kernel the loop runs, in code order.
RULES: list[type] = []
_lock = threading.Lock()
_module: ModuleType | None = None


def _load_tables() -> None:
    if not ACTIVATIONS:
        ACTIVATIONS.extend(_activations())
        LOSSES.extend(_losses())
        RULES.extend(_rules())


def _source(fn: Any) -> str:
    return textwrap.dedent(inspect.getsource(fn))


def _dispatch(name: str, args: str, cases: list[str], default: str = "") -> str:
    lines = [f"def {name}(code, {args}):"]
    for i, body in enumerate(cases):
        lines.append(f"    {'if' if i == 0 else 'elif'} code == {i}:")
        lines.extend("        " + b for b in body.splitlines())
    if default:
        lines.append("    " + default)
    return "\n".join(lines) + "\n"


def source() -> str:
    """The text of the generated module (kernels, dispatchers, loop, then the njit lines)."""
    _load_tables()
    parts = ["import numpy as np\n"]
    names: list[str] = []

    def add(fn: Any) -> str:
        if fn.__name__ not in names:
            parts.append(_source(fn))
            names.append(fn.__name__)
        return str(fn.__name__)

    fwd, bwd = [], []
    for cls in ACTIVATIONS:
        value, slope = (add(f) for f in cls.kernel)
        fwd.append(f"for j in range(x.size):\n    y[j] = {value}(x[j], a)")
        bwd.append(f"for j in range(x.size):\n    d[j] *= {slope}(x[j], y[j], a)")
    from neuronlab.layers.normalization import BatchNorm, LayerNorm

    for fn in (*BatchNorm.kernel, *LayerNorm.kernel):
        add(fn)
    parts.append(_dispatch("act_forward", "x, y, a", fwd))
    parts.append(_dispatch("act_backward", "x, y, d, a", bwd))
    cases = [f"return {add(cls.kernel)}(scores, yi, yf, idx, d, wb)" for cls in LOSSES]
    parts.append(_dispatch("loss_kernel", "scores, yi, yf, idx, d, wb", cases,
                           "return 0.0, 0.0, False"))
    cases = []
    for cls in RULES:
        fn, n_slots = cls.kernel, len(cls.slots)
        n_scalars = len(inspect.signature(fn).parameters) - 2 - n_slots
        slots = ["s0", "s1"][:n_slots]
        scalars = [f"sc[{i}]" for i in range(n_scalars)]
        cases.append(f"{add(fn)}({', '.join(['w', 'g', *slots, *scalars])})")
    parts.append(_dispatch("rule_update", "w, g, s0, s1, sc", cases))
    from neuronlab import regularizers

    for fn in (regularizers._sum_squares, regularizers._add_scaled, regularizers._add_scaled_sign):
        add(fn)
    from neuronlab.engine import loop

    text = inspect.getsource(loop)
    parts.append(text[text.index("\nLINEAR = "):])
    loop_names = [n for n, v in vars(loop).items() if inspect.isfunction(v)]
    jit = ['_jit = _numba.njit(cache=_CACHE, nogil=True, error_model="numpy")']
    jit += [f"{n} = _jit({n})" for n in [*names, "act_forward", "act_backward", "loss_kernel",
                                          "rule_update", *loop_names]]
    header = "import numba as _numba\n_CACHE = True\n"
    return header + "\n\n".join(parts) + "\n\n" + "\n".join(jit) + "\n"


def cache_dir() -> Path:
    """Where the generated module and numba's machine code live: ``$NEURONLAB_CACHE``, else
    ``$XDG_CACHE_HOME/neuronlab`` or ``~/.cache/neuronlab``."""
    env = os.environ.get("NEURONLAB_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "neuronlab"


#: A cached engine version (another neuronlab's, or this one's before a kernel changed) that no
#: process has loaded for this long is deleted when a new version is written.
STALE_AFTER_S = 30 * 24 * 3600


def _write(text: str) -> tuple[Path, bool]:
    """The module file, written atomically unless it already holds exactly ``text`` (a stale
    or altered file is replaced), in the cache folder or else in a folder of this user's own
    under the temporary directory; False when neither was writable (numba then compiles in
    every process). Each load touches the version's ``.used`` stamp (not the module, whose
    time numba's cache checks); writing a new version prunes the stale ones."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    name = f"engine_{digest}.py"
    private = Path(tempfile.gettempdir()) / f"neuronlab-{os.getuid() if hasattr(os, 'getuid') else 0}"
    for folder in (cache_dir() / "engine", private / "engine"):
        path = folder / name
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.is_file() or path.is_symlink() or path.read_text() != text:
                tmp = folder / f".{name}.{os.getpid()}.tmp"
                tmp.write_text(text)
                os.replace(tmp, path)
                _prune(folder, keep=path.stem)
            path.with_suffix(".used").touch()
            return path, True
        except OSError:
            continue
    path = Path(tempfile.mkdtemp(prefix="neuronlab-engine-")) / name
    path.write_text(text.replace("_CACHE = True", "_CACHE = False"))
    return path, False


def _prune(folder: Path, *, keep: str) -> None:
    """Delete the engine versions in ``folder`` other than ``keep`` that no process has loaded
    for :data:`STALE_AFTER_S` (their ``.used`` stamp, else the module's time), with their
    machine code. A version deleted while in use is compiled again by its next process."""
    now = time.time()
    for module in folder.glob("engine_*.py"):
        if module.stem == keep:
            continue
        stamp = module.with_suffix(".used")
        try:
            last = (stamp if stamp.exists() else module).stat().st_mtime
            if now - last < STALE_AFTER_S:
                continue
            for f in [*(folder / "__pycache__").glob(f"{module.stem}.*"), stamp, module]:
                f.unlink(missing_ok=True)
        except OSError as e:  # another process pruned it first, or a read-only file
            log.debug("engine cache: %s not pruned (%s)", module.name, e)


def compiled() -> ModuleType:
    """The compiled loop's module (generated, written and imported once per process)."""
    global _module
    with _lock:
        if _module is None:
            # numba's np.dot calls SciPy's BLAS, whose library its first call would load: load
            # it now, before a fit sets the BLAS thread limits (neuronlab.threads), or that
            # fit's products would run outside them
            import scipy.linalg.cython_blas  # noqa: F401

            path, cached = _write(source())
            if not cached or not list((path.parent / "__pycache__").glob(f"{path.stem}.steps-*.nbi")):
                log.warning("compiling neuronlab's training engine (once per machine, 15-30 s per "
                            "dtype; `python -m neuronlab.engine` does it ahead of time)")
            spec = importlib.util.spec_from_file_location(f"_neuronlab_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            _module = module
    return _module

