"""TOML files (run configs, search spaces) read without trusting them.

``tomllib`` recurses once per level of nested arrays or inline tables, so ``hidden = [[[...]]]``
10,000 deep raises ``RecursionError``. :func:`read_toml` reads only a regular file of at most
:data:`MAX_TOML_BYTES`, measures the nesting first (comments and strings removed, then the
same non-recursive bracket count as JSON) and refuses anything deeper than
:data:`MAX_TOML_DEPTH` with :class:`~neuronlab.errors.ConfigError`.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from neuronlab.errors import ConfigError
from neuronlab.io.bounded import bracket_depth, file_size, open_regular, read_exact

__all__ = ["MAX_TOML_BYTES", "MAX_TOML_DEPTH", "read_toml"]

MAX_TOML_BYTES = 1 << 20
"""Largest TOML file read (a run config is well under 1 KB)."""
MAX_TOML_DEPTH = 32
"""Deepest nesting of arrays and inline tables (``hidden = [...]`` is 1; a search space 2)."""
# What is not structure: comments and the four kinds of strings. Each alternative also ends
# at the end of the text (or line), so an unterminated string costs one linear pass.
_NOT_STRUCTURE = re.compile(
    r"#[^\n]*"
    r"|'''[\s\S]*?(?:'''|\Z)"
    r'|"""(?:[^"\\]|\\[\s\S]|"(?!""))*+(?:"""|\Z)'
    r'|"(?:[^"\\\n]|\\.)*+(?:"|(?=\n)|\Z)'
    r"|'[^'\n]*+(?:'|(?=\n)|\Z)"
)


def read_toml(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The tables of the TOML file ``path``; errors name ``what`` it is ("config file", ...).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ConfigError
        Not a regular file, larger than :data:`MAX_TOML_BYTES`, not UTF-8, not valid TOML, or
        nested deeper than :data:`MAX_TOML_DEPTH`. A ValueError.
    """
    path = Path(path)
    with open_regular(path, ConfigError, what) as f:
        size = file_size(f)
        if size > MAX_TOML_BYTES:
            raise ConfigError(f"{path} is {size:,} bytes: too large for a {what}")
        raw = read_exact(f, size, str(path), ConfigError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not a UTF-8 text file: {e}") from None
    if bracket_depth(_NOT_STRUCTURE.sub("", text), stop=MAX_TOML_DEPTH) > MAX_TOML_DEPTH:
        raise ConfigError(
            f"{path} is not a usable {what}: arrays or tables nested deeper than "
            f"{MAX_TOML_DEPTH} levels"
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    except RecursionError:  # a nesting the scan above did not see
        raise ConfigError(f"{path} is not a usable {what}: nested too deeply") from None
