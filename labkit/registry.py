"""Registries: the lab's extension points, each a set of named entries of one kind (as papermill
registers its engines and detectron2 its backbones). A face ablation's loss terms, the metrics,
the executors and the swap variants are each one registry; adding one is registering an entry
in a module of its own.

A module outside the package registers its entries when it is imported; to be imported in every
process of the lab (the runner, its workers, the kernels, torchrun's ranks), it is named as an
entry point of the group `labkit.plugins` in its package's metadata:

    [project.entry-points."labkit.plugins"]
    my_terms = "my_package.my_terms"
"""

from __future__ import annotations

import difflib
import importlib.metadata
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class NotRegistered(LookupError):
    """A name no entry of a registry has; the message offers the closest one."""


PLUGINS = "labkit.plugins"  # the entry point group of modules that register entries
_loaded = False


def load_plugins() -> None:
    """Import every module named in the `labkit.plugins` entry point group, once a process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for entry in importlib.metadata.entry_points(group=PLUGINS):
        entry.load()


def closest(name: str, valid) -> str:
    """' (did you mean X?)' for a mistyped name, else the valid ones."""
    close = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else f" (valid: {', '.join(valid)})"


class Registry(Generic[T]):
    """Entries of one kind by name, in the order they were registered."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, entry: T, name: str = "") -> T:
        """Add an entry under `name` (default: its `name` attribute); a name taken is refused."""
        name = name or entry.name
        if name in self._entries:
            raise ValueError(f"a {self.kind} named '{name}' is registered already")
        self._entries[name] = entry
        return entry

    def __call__(self, name: str = "") -> Callable[[T], T]:
        """As a decorator: `@EXECUTORS("ray")` registers the class or function below."""
        return lambda entry: self.register(entry, name)

    def get(self, name: str) -> T:
        """The entry of this name; an unknown name is refused with the closest valid one."""
        load_plugins()
        if name not in self._entries:
            raise NotRegistered(f"no {self.kind} named '{name}'{closest(name, self._entries)}")
        return self._entries[name]

    def names(self) -> list[str]:
        load_plugins()
        return list(self._entries)

    def __iter__(self) -> Iterator[T]:
        load_plugins()
        return iter(list(self._entries.values()))
