"""Executors, in one registry, looked up by name (`labkit ablate --executor NAME`): each is a class
of a module of this package (or of a plugin, labkit.registry) that runs a batch's jobs, each
through labkit.drive.drive, somewhere: the local process pool, the tasks of a Ray cluster.

    @EXECUTORS("mine")
    class Mine(Executor):
        def run(self, jobs, batch): ...
"""

from ..registry import import_entries
from .executor import EXECUTORS, Batch, Executor

__all__ = ["EXECUTORS", "Batch", "Executor"]

import_entries(__name__, __path__, first=("local",), skip=("executor",))
