"""Run folders that two runs never share and a crash never strands.

A run folder appears complete or not at all: its ``config.toml`` is written into a hidden
staging folder (``.staging-<pid>-*``) beside it, which is then renamed to the run's name. A
rename onto an existing, non-empty folder fails, so of two runs started with one name exactly
one gets it; the other is told the name is taken (a timestamp name takes the next suffix
instead). The folder is made only after the data and every option have been checked, so a
refused run leaves nothing behind.

A run killed before its first checkpoint leaves a folder with its ``config.toml`` and no
checkpoint: ``--resume`` restarts it from step 0. Files that a killed process was writing
(``.<name>.<hex>.tmp`` from :func:`~neuronlab.io.atomic_write_bytes`) are removed by the next
``--resume``, and hidden folders of processes that died (staging, streamed splits) by the next
run in the same runs folder.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from neuronlab.config import RunConfig

__all__ = [
    "RunExistsError",
    "check_run_name",
    "create_run_folder",
    "remove_dead_folders",
    "remove_orphan_temporaries",
]

logger = logging.getLogger(__name__)
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")  # atomic_write_bytes' temporary files


class RunExistsError(ValueError):
    """The run folder's name is taken."""


def check_run_name(root: str | os.PathLike[str], name: str) -> Path:
    """``root/name`` for a plain folder name not taken yet (checked again, atomically, when
    the folder is made)."""
    if not name or "/" in name or os.sep in name or name in (".", "..") or name.startswith("."):
        raise ValueError(f"a run name must be a plain folder name, got {name!r}")
    path = Path(root) / name
    if path.exists():
        raise RunExistsError(
            f"run directory {path} already exists; choose another --name or continue it with "
            f"--resume {path}"
        )
    return path


def remove_dead_folders(root: str | os.PathLike[str]) -> Path:
    """Create ``root`` if needed and delete its hidden ``.staging-<pid>-*`` and
    ``.split-<pid>-*`` folders whose process is gone (a run killed before its clean-up)."""
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    for old in [*path.glob(".staging-*-*"), *path.glob(".split-*-*")]:
        pid = old.name.split("-")[1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            logger.info("removing %s, left by process %s that is gone", old, pid)
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            pass
    return path


def create_run_folder(root: str | os.PathLike[str], name: str | None, config: RunConfig) -> Path:
    """Make the run folder ``root/name`` (``name`` None: a timestamp, with ``-2``, ``-3``, ...
    when taken) holding ``config.toml``, atomically and exclusively.

    Raises
    ------
    RunExistsError
        ``name`` is taken (also when another run took it a moment ago).
    """
    from neuronlab.config import save_config

    root = remove_dead_folders(root)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{os.getpid()}-", dir=root))
    try:
        save_config(config, staging / "config.toml")
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; a run folder is not
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(1, 10_000):
            target = check_run_name(root, name) if name is not None else (
                root / (stamp if i == 1 else f"{stamp}-{i}"))
            try:
                os.rename(staging, target)  # fails onto a non-empty folder: that run won
                return target
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    raise
                if name is not None:
                    raise RunExistsError(
                        f"run directory {target} already exists (another run took the name); "
                        "choose another --name"
                    ) from None
        raise RunExistsError(f"no free run name for {stamp} in {root}")  # pragma: no cover
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after a successful rename


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_orphan_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that atomic writes of a killed process left in ``folder``
    and its ``checkpoints/`` (a live writer of this run is excluded by the caller: a run is
    resumed by one process). Returns the removed paths."""
    removed = []
    for where in (Path(folder), Path(folder) / "checkpoints"):
        if not where.is_dir():
            continue
        for p in where.iterdir():
            if _TEMPORARY.match(p.name) and p.is_file():
                logger.info("removing %s, a write a killed run left unfinished", p)
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed
