"""One generic registry, used for dataset loaders, generators, testing builders and baselines.

>>> from anomalykit.registry import Registry
>>> things = Registry("thing")
>>> @things.register("square")
... def square(x):
...     return x * x
>>> things.get("square")(3)
9
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping filled by a decorator.

    ``package`` names a package whose modules are imported on first lookup, so a module that
    registers itself there is found by name without any central list.
    """

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self.package = package
        self._items: dict[str, T] = {}
        self._discovered = package is None
        #: modules that could not be imported because an optional dependency is missing
        self.unavailable: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)  # type: ignore[arg-type]
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{self.package}."):
            leaf = module.name.rsplit(".", 1)[-1]
            if leaf.startswith("_") or leaf == "base":
                continue
            try:
                importlib.import_module(module.name)
            except ModuleNotFoundError as exc:
                # an optional dependency of that module (e.g. PyAV for video) is not installed:
                # the other entries stay usable, and a lookup miss says what is missing
                if exc.name and exc.name.split(".")[0] == "anomalykit":
                    raise
                self.unavailable[module.name] = f"needs the package {exc.name!r}"

    def get(self, name: str) -> T:
        self._discover()
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            if self.unavailable:
                missing = "; ".join(f"{m} {why}" for m, why in sorted(self.unavailable.items()))
                hint += f" Not importable (install anomalykit[all] for every module): {missing}."
            raise RegistryError(
                f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(sorted(self._items)) or 'none'}"
            ) from None

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        self._discover()
        return sorted(self._items.items())
