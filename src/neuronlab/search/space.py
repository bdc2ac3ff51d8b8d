"""Search spaces: named parameters with a range or a list of choices, from Python or TOML.

A parameter is written as the notes write it::

    lr         = "loguniform(1e-5, 1e-1)"    # sampled uniformly in log10 space (scale parameters)
    dropout    = "uniform(0, 0.5)"
    depth      = "int(1, 3)"                 # inclusive; "logint(16, 512)" samples in log space
    activation = "choice(relu, tanh)"        # categorical: names, integers, floats, true/false
    source     = 'choice("my data.npz", digits)'  # text with spaces, commas, "/"...: quoted

A choice's bare word is a name (letters, digits, ``_ . -``); any other text (spaces, commas,
slashes, or a word that would read as a number or a boolean, such as ``"1"`` or ``"true"``) is
written in single or double quotes, with ``\\`` before a quote of the same kind or a backslash
inside. In a TOML file the entry is easiest as a literal string: ``'choice("a b", c)'``.
:meth:`Choice.text` writes that form, so every choice reads back as itself.

Parsing is strict: anything else raises a ValueError that names the key and quotes the bad
text, so ``lr = "loguniform(1e-5 1e-1)"`` fails at once instead of after an hour of trials.
A :class:`Space` is independent of training: a synthetic objective can use any names.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Choice", "IntRange", "LogUniform", "Param", "Space", "Uniform", "load_space", "parse_param"]

Scalar = bool | int | float | str


class Param:
    """Base class of one search dimension. ``numeric`` ranges can be narrowed and gridded."""

    numeric = False

    def to_optuna(self) -> Any:  # pragma: no cover - overridden
        """The matching Optuna distribution (every subclass defines it).

        Returns
        -------
        optuna.distributions.BaseDistribution
        """
        raise NotImplementedError

    def grid(self, points: int) -> list[Scalar]:  # pragma: no cover - overridden
        """Values of this dimension for a grid search (every subclass defines it).

        Parameters
        ----------
        points : int
            Values wanted for a numeric range (choices give all their values).

        Returns
        -------
        list
        """
        raise NotImplementedError

    def text(self) -> str:  # pragma: no cover - overridden
        """The TOML text form, such as ``"loguniform(1e-05, 0.1)"`` (every subclass defines it).

        Returns
        -------
        str
        """
        raise NotImplementedError


def _check_range(name: str, low: float, high: float, *, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name}: bounds must be finite, got ({low!r}, {high!r})")
    if low > high:
        raise ValueError(f"{name}: low must be <= high, got ({low!r}, {high!r})")
    if log and low <= 0:
        raise ValueError(f"{name}: a log-scale range needs low > 0, got {low!r}")


@dataclass(frozen=True)
class Uniform(Param):
    """A real number uniform in [low, high].

    Parameters
    ----------
    low, high : float
        Finite bounds, low <= high.

    Raises
    ------
    ValueError
        If a bound is not finite or low > high.
    """

    low: float
    high: float
    numeric = True
    log = False

    def __post_init__(self) -> None:
        _check_range("uniform", self.low, self.high, log=False)

    def to_optuna(self) -> Any:
        """The matching Optuna distribution (optuna is imported here).

        Returns
        -------
        optuna.distributions.BaseDistribution
        """
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high)

    def grid(self, points: int) -> list[Scalar]:
        """``points`` evenly spaced values from low to high.

        Parameters
        ----------
        points : int
            Values wanted (a grid of fewer when integers or duplicates collapse).

        Returns
        -------
        list
            Sorted, without duplicates.
        """
        return sorted({float(v) for v in np.linspace(self.low, self.high, points)})

    def narrowed(self, low: float, high: float) -> Uniform:
        """The same kind of range over [low, high] (coarse-to-fine search narrows to the best trials).

        Parameters
        ----------
        low, high : float
            The new bounds.

        Returns
        -------
        Uniform
        """
        return Uniform(low, high)

    def text(self) -> str:
        """The TOML text form, which :func:`parse_param` reads back."""
        return f"uniform({self.low!r}, {self.high!r})"


@dataclass(frozen=True)
class LogUniform(Param):
    """A positive real number whose log10 is uniform in [log10 low, log10 high].

    Parameters
    ----------
    low, high : float
        Finite bounds, 0 < low <= high.

    Raises
    ------
    ValueError
        If a bound is not finite, low > high, or low <= 0.
    """

    low: float
    high: float
    numeric = True
    log = True

    def __post_init__(self) -> None:
        _check_range("loguniform", self.low, self.high, log=True)

    def to_optuna(self) -> Any:
        """The matching Optuna distribution (optuna is imported here).

        Returns
        -------
        optuna.distributions.BaseDistribution
        """
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=True)

    def grid(self, points: int) -> list[Scalar]:
        """``points`` log-spaced values from low to high.

        Parameters
        ----------
        points : int
            Values wanted (a grid of fewer when integers or duplicates collapse).

        Returns
        -------
        list
            Sorted, without duplicates.
        """
        return sorted({float(v) for v in np.geomspace(self.low, self.high, points)})

    def narrowed(self, low: float, high: float) -> LogUniform:
        """The same kind of range over [low, high] (coarse-to-fine search narrows to the best trials).

        Parameters
        ----------
        low, high : float
            The new bounds.

        Returns
        -------
        LogUniform
        """
        return LogUniform(low, high)

    def text(self) -> str:
        """The TOML text form, which :func:`parse_param` reads back."""
        return f"loguniform({self.low!r}, {self.high!r})"


@dataclass(frozen=True)
class IntRange(Param):
    """An integer in [low, high] (both included), uniform or (``log=True``) log-uniform.

    Parameters
    ----------
    low, high : int
        Bounds, low <= high (low > 0 on a log scale).
    log : bool, default False
        Sample uniformly in log space.

    Raises
    ------
    ValueError
        If low > high, or low <= 0 with ``log``.
    """

    low: int
    high: int
    log: bool = False
    numeric = True

    def __post_init__(self) -> None:
        _check_range("logint" if self.log else "int", self.low, self.high, log=self.log)

    def to_optuna(self) -> Any:
        """The matching Optuna distribution (optuna is imported here).

        Returns
        -------
        optuna.distributions.BaseDistribution
        """
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log)

    def grid(self, points: int) -> list[Scalar]:
        """``points`` evenly (or, with ``log``, log-) spaced values, rounded to integers.

        Parameters
        ----------
        points : int
            Values wanted (a grid of fewer when integers or duplicates collapse).

        Returns
        -------
        list
            Sorted, without duplicates.
        """
        pts = np.geomspace(self.low, self.high, points) if self.log else np.linspace(self.low, self.high, points)
        return sorted({int(np.rint(v)) for v in pts})

    def narrowed(self, low: float, high: float) -> IntRange:
        """The same kind of range over [floor(low), ceil(high)] (at least 1 on a log scale).

        Parameters
        ----------
        low, high : float
            The new bounds.

        Returns
        -------
        IntRange
        """
        lo, hi = math.floor(low), math.ceil(high)
        return IntRange(max(lo, 1) if self.log else lo, hi, self.log)

    def text(self) -> str:
        """The TOML text form, which :func:`parse_param` reads back."""
        return f"{'logint' if self.log else 'int'}({self.low}, {self.high})"


@dataclass(frozen=True)
class Choice(Param):
    """One of a fixed list of values (names, numbers, booleans).

    Parameters
    ----------
    choices : tuple
        The values, distinct, at least one.

    Raises
    ------
    ValueError
        If ``choices`` is empty or has repeated values.
    """

    choices: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError("choice: needs at least one value")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError(f"choice: values must be distinct, got {list(self.choices)!r}")

    def to_optuna(self) -> Any:
        """The matching Optuna distribution (optuna is imported here).

        Returns
        -------
        optuna.distributions.BaseDistribution
        """
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.choices)

    def grid(self, points: int) -> list[Scalar]:
        """Every choice, in the given order (a categorical dimension is not thinned).

        Parameters
        ----------
        points : int
            Ignored.

        Returns
        -------
        list
        """
        return list(self.choices)

    def text(self) -> str:
        """The TOML text form, ``choice(v1, v2, ...)``, which :func:`parse_param` reads back
        as these very values: booleans as ``true``/``false``, a string bare when it is a plain
        name and double-quoted otherwise (spaces, commas, ``"1"``, ``"true"``...)."""
        return "choice(" + ", ".join(_choice_text(c) for c in self.choices) + ")"


def _choice_text(c: Scalar) -> str:
    if isinstance(c, bool):
        return str(c).lower()
    if not isinstance(c, str):
        return str(c)
    if _NAME.match(c) and c.lower() not in ("true", "false"):
        return c  # reads back as this name
    return '"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"'


_CALL = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$", re.DOTALL)
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_KINDS = ("loguniform", "uniform", "int", "logint", "choice")


def _split_choices(key: str, body: str, raw: str) -> list[Scalar]:
    """The values of ``choice(...)``'s ``body``: comma-separated, a quoted one kept whole
    (commas and spaces included; ``\\`` escapes its quote or a backslash)."""
    out: list[Scalar] = []
    i, n = 0, len(body)
    while True:
        while i < n and body[i].isspace():
            i += 1
        if i < n and body[i] in "'\"":
            quote, i, chars = body[i], i + 1, []
            while i < n and body[i] != quote:
                if body[i] == "\\" and i + 1 < n and body[i + 1] in (quote, "\\"):
                    i += 1
                chars.append(body[i])
                i += 1
            if i >= n:
                raise ValueError(f"search space {key!r}: unclosed {quote} quote in {raw!r}")
            out.append("".join(chars))
            i += 1
            while i < n and body[i].isspace():
                i += 1
            if i < n and body[i] != ",":
                raise ValueError(f"search space {key!r}: expected a comma after the quoted value "
                                 f"{out[-1]!r} in {raw!r}")
        else:
            j = body.find(",", i)
            j = n if j < 0 else j
            t = body[i:j].strip()
            if not t:
                raise ValueError(f"search space {key!r}: empty argument in {raw!r}")
            out.append(_item(key, t, raw))
            i = j
        if i >= n:
            return out
        i += 1  # the comma


def _item(key: str, t: str, raw: str) -> Scalar:
    if _INT.match(t):
        return int(t)
    if _FLOAT.match(t):
        return float(t)
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    if _NAME.match(t):
        return t
    # anything else is text that is not a plain name (spaces, slashes...): it needs quotes
    q = _choice_text(t)
    hint = (f"; quote text that is not a plain name, e.g. choice({q}, ...), written in a TOML "
            f"file as a literal string: 'choice({q}, ...)'")
    raise ValueError(f"search space {key!r}: cannot read {t!r} in {raw!r}{hint}")


def _number(key: str, text: str, raw: str, *, integer: bool) -> float:
    t = text.strip()
    if integer and not _INT.match(t):
        raise ValueError(f"search space {key!r}: {t!r} is not an integer in {raw!r}")
    if not _FLOAT.match(t):
        raise ValueError(f"search space {key!r}: {t!r} is not a number in {raw!r}")
    return int(t) if integer else float(t)


def parse_param(key: str, text: Any) -> Param:
    """Parse one space entry such as ``"loguniform(1e-5, 1e-1)"``.

    Parameters
    ----------
    key : str
        The parameter's name (used in error messages).
    text : str or Param
        The entry; a Param is returned as it is.

    Returns
    -------
    Param

    Raises
    ------
    ValueError
        Naming ``key`` and quoting ``text`` when it is not one of ``loguniform(a, b)``,
        ``uniform(a, b)``, ``int(a, b)``, ``logint(a, b)``, ``choice(v1, v2, ...)`` with valid
        arguments (numbers, low <= high, low > 0 on a log scale, distinct choices).
    TypeError
        Naming ``key`` when ``text`` is not a string.

    Examples
    --------
    >>> parse_param("lr", "loguniform(1e-5, 1e-1)")
    LogUniform(low=1e-05, high=0.1)
    >>> parse_param("depth", "int(1, 3)").grid(5)
    [1, 2, 3]
    >>> parse_param("activation", "choice(relu, tanh)")
    Choice(choices=('relu', 'tanh'))
    """
    if isinstance(text, Param):
        return text
    if not isinstance(text, str):
        raise TypeError(
            f"search space {key!r}: expected a string like \"loguniform(1e-5, 1e-1)\" or "
            f"\"choice(relu, tanh)\", got {text!r}"
        )
    m = _CALL.match(text)
    if m is None or m.group(1) not in _KINDS:
        raise ValueError(
            f"search space {key!r}: cannot parse {text!r}; expected one of "
            "loguniform(a, b), uniform(a, b), int(a, b), logint(a, b), choice(v1, v2, ...)"
        )
    kind, body = m.group(1), m.group(2)
    try:
        if kind == "choice":
            return Choice(tuple(_split_choices(key, body, text)))
        args = body.split(",")
        if any(not a.strip() for a in args):
            raise ValueError(f"search space {key!r}: empty argument in {text!r}")
        if len(args) != 2:
            raise ValueError(f"search space {key!r}: {kind} takes 2 arguments (low, high), got {len(args)} in {text!r}")
        integer = kind in ("int", "logint")
        low, high = (_number(key, a, text, integer=integer) for a in args)
        if kind == "uniform":
            return Uniform(low, high)
        if kind == "loguniform":
            return LogUniform(low, high)
        return IntRange(int(low), int(high), log=kind == "logint")
    except ValueError as e:
        msg = str(e)
        if msg.startswith("search space"):
            raise
        raise ValueError(f"search space {key!r}: {msg} in {text!r}") from None


class Space(Mapping[str, Param]):
    """An ordered mapping name -> :class:`Param`.

    Parameters
    ----------
    params : mapping of str to Param or str
        Strings are parsed with :func:`parse_param`.
    """

    def __init__(self, params: Mapping[str, Param | str]) -> None:
        if not isinstance(params, Mapping):
            raise TypeError(f"a search space must be a mapping name -> parameter, got {type(params).__name__}")
        if not params:
            raise ValueError("a search space needs at least one parameter")
        out: dict[str, Param] = {}
        for key, value in params.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"search space names must be non-empty strings, got {key!r}")
            out[key] = parse_param(key, value)
        self._params = out

    def __getitem__(self, key: str) -> Param:
        return self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        return f"Space({self.to_dict()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self._params == other._params

    __hash__ = None  # type: ignore[assignment]

    def distributions(self) -> dict[str, Any]:
        """Optuna distributions by name."""
        return {k: p.to_optuna() for k, p in self._params.items()}

    def grid(self, points: int = 3) -> dict[str, list[Scalar]]:
        """Values per parameter for a grid: choices as given, numeric ranges at ``points``
        evenly spaced values (log-spaced on log scales), integers rounded and deduplicated.

        Parameters
        ----------
        points : int, default 3
            Values per numeric range.

        Returns
        -------
        dict of str to list
        """
        return {k: p.grid(points) for k, p in self._params.items()}

    def replace(self, **params: Param) -> Space:
        """A new space with some parameters replaced or added (this one is not changed).

        Parameters
        ----------
        **params : Param
            The new parameters by name.

        Returns
        -------
        Space
        """
        return Space({**self._params, **params})

    def to_dict(self) -> dict[str, str]:
        """The TOML text form of every parameter (``parse_param`` reads it back)."""
        return {k: p.text() for k, p in self._params.items()}


def load_space(path: str | os.PathLike[str]) -> tuple[Space, dict[str, Any]]:
    """Read a TOML space file.

    The ``[space]`` table holds the parameters; every other table is a fixed part of the run
    configuration shared by all trials (``[data]``, ``[train]``, ... as in ``neuronlab train
    --config``), returned as nested dicts for :class:`~neuronlab.config.RunConfig`.

    Parameters
    ----------
    path : str or os.PathLike
        The TOML file.

    Returns
    -------
    space : Space
    base : dict
        The other tables, ``{section: {key: value}}`` (validated by the caller).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not valid TOML (a ConfigError), has no ``[space]`` table, or an
        entry cannot be parsed.
    """
    from neuronlab.config import read_toml

    d = read_toml(path, "search space file")
    if "space" not in d or not isinstance(d["space"], dict):
        raise ValueError(f"{path} needs a [space] table, e.g. [space] lr = \"loguniform(1e-5, 1e-1)\"")
    body = d.pop("space")
    return Space(body), d


