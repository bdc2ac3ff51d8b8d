"""One registry per kind of component, so names in the CLI, config files and search
spaces resolve to classes in one place and unknown names list the choices."""

from __future__ import annotations

import importlib
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
    modules : str, ...
        The modules whose classes register here: imported on the first lookup (``import
        neuronlab`` imports nothing, so a name is found however little was imported).
    """

    def __init__(self, kind: str, *modules: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._modules = modules

    def _load(self) -> None:
        if self._modules:
            modules, self._modules = self._modules, ()
            for name in modules:
                importlib.import_module(name)

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
        self._load()
        if key not in self._items:
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._items))}"
            )
        return self._items[key]

    def create(self, name: str, **kwargs: Any) -> Any:
        """Instantiate the class called ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and name.strip().lower().replace("-", "_") in self._items

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


LAYERS: Registry[type[Any]] = Registry("layer", "neuronlab.layers")
LOSSES: Registry[type[Any]] = Registry("loss", "neuronlab.losses")
INITIALIZERS: Registry[Callable[..., Any]] = Registry("initializer", "neuronlab.init")
REGULARIZERS: Registry[type[Any]] = Registry("regularizer", "neuronlab.regularizers")
CONSTRAINTS: Registry[type[Any]] = Registry("constraint", "neuronlab.regularizers")
OPTIMIZERS: Registry[type[Any]] = Registry("optimizer", "neuronlab.optim")
SCHEDULES: Registry[type[Any]] = Registry("schedule", "neuronlab.schedules")
PREPROCESSORS: Registry[type[Any]] = Registry("preprocessor", "neuronlab.preprocessing")
