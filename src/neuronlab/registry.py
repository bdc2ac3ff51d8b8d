"""One registry per kind of component, so names in the CLI, config files and search
spaces resolve to classes in one place and unknown names list the choices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = [
    "CONSTRAINTS",
    "INITIALIZERS",
    "LAYERS",
    "LOSSES",
    "OPTIMIZERS",
    "PREPROCESSORS",
    "REGULARIZERS",
    "SCHEDULES",
    "Registry",
]

T = TypeVar("T")


class Registry(Generic[T]):
    """Map lower-case names to classes (or functions) of one kind.

    Parameters
    ----------
    kind : str
        What is registered ("layer", "loss", "initializer", ...); used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated class or function under ``name``."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            try:
                obj.registry_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return deco

    def get(self, name: str) -> T:
        """Return the entry called ``name``; a ValueError lists the valid names."""
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a str, got {type(name).__name__}: {name!r}")
        key = name.strip().lower().replace("-", "_")
        if key not in self._items:
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._items))}"
            )
        return self._items[key]

    def create(self, name: str, **kwargs: Any) -> Any:
        """Instantiate the class called ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().lower().replace("-", "_") in self._items

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


LAYERS: Registry[type[Any]] = Registry("layer")
LOSSES: Registry[type[Any]] = Registry("loss")
INITIALIZERS: Registry[Callable[..., Any]] = Registry("initializer")
REGULARIZERS: Registry[type[Any]] = Registry("regularizer")
CONSTRAINTS: Registry[type[Any]] = Registry("constraint")
OPTIMIZERS: Registry[type[Any]] = Registry("optimizer")
SCHEDULES: Registry[type[Any]] = Registry("schedule")
PREPROCESSORS: Registry[type[Any]] = Registry("preprocessor")
