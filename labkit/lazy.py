"""Packages whose names load on first use (PEP 562), so `import labkit` and the command line stay
quick and read what they need without importing torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_getattr(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A package's module-level `__getattr__`: a name of `where` is imported from the submodule it
    maps to on first use; a name that maps to "" is that submodule itself."""

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        module = importlib.import_module(f".{where[name] or name}", package)
        return getattr(module, name) if where[name] else module

    return __getattr__
