"""Registries: the lab's extension points, each a set of named entries of one kind (as papermill
registers its engines and detectron2 its backbones). A face ablation's loss terms, the swap
variants, the metrics (evaluators) and the executors are each one registry; adding one is registering an entry in a
module of its own.

A module outside the package registers its entries when it is imported; to be imported in every
process of the lab (the runner, its workers, the kernels, torchrun's ranks), it is named as an
entry point of its registry's group in its package's metadata, and imported when that registry
is first read:

    [project.entry-points."labkit.terms"]
    my_term = "my_package.my_term"

A module of the groups `labkit.terms` and `labkit.variants` is imported while labkit.config
assembles its schemas: it imports labkit.terms (or labkit.style.variants) and labkit.knobs at its
top, and the rest inside its functions, as the built-in entries do.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

# the registries' entry point groups
GROUPS = ("labkit.terms", "labkit.variants", "labkit.executors", "labkit.evaluators")


def plugin_modules() -> set[str]:
    """The modules outside labkit that the registries' entry point groups name."""
    return {entry.module for group in GROUPS for entry in importlib.metadata.entry_points(group=group)}


class NotRegistered(LookupError):
    """A name no entry of a registry has; the message offers the closest one."""


def import_entries(package: str, path, first: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> None:
    """Import the modules of a registry's package, so their entries register: `first` in its
    order, then any other module of the package by name (a new entry is a new module, no list
    to edit); `skip` the modules that hold no entry."""
    found = sorted(m.name for m in pkgutil.iter_modules(path) if m.name not in first + skip)
    for name in first + tuple(found):
        importlib.import_module(f".{name}", package)


def closest(name: str, valid) -> str:
    """' (did you mean X?)' for a mistyped name, else the valid ones."""
    close = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else f" (valid: {', '.join(valid)})"


class Registry(Generic[T]):
    """Entries of one kind by name, in the order they were registered."""

    def __init__(self, kind: str, group: str):
        assert group in GROUPS, group
        self.kind, self.group = kind, group  # the entry point group of the modules that add entries
        self._entries: dict[str, T] = {}
        self._plugins_loaded = False

    def load_plugins(self) -> None:
        """Import every module named in this registry's entry point group, once a process."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for entry in importlib.metadata.entry_points(group=self.group):
            entry.load()

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
        self.load_plugins()
        if name not in self._entries:
            raise NotRegistered(f"no {self.kind} named '{name}'{closest(name, self._entries)}")
        return self._entries[name]

    def names(self) -> list[str]:
        self.load_plugins()
        return list(self._entries)

    def __iter__(self) -> Iterator[T]:
        self.load_plugins()
        return iter(list(self._entries.values()))
