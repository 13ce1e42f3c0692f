"""An executor, and the registry of them (see labkit.executors)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..registry import Registry


@dataclass
class Batch:
    """How a batch runs, as the command asked: what every executor is handed with its jobs."""

    fresh: bool = False  # run again even what finished before
    workers: int = 1  # jobs at a time on this machine
    address: str = ""  # a cluster's head, HOST:PORT (empty: this machine)
    echo: Callable = print  # where a line about the batch goes
    follow: Callable = lambda outcome: []  # (ended job's Outcome) -> the jobs it lets start
    follows: bool = False  # whether `follow` may return jobs (the queue can grow)
    started: float = 0.0  # when the batch was queued: each run records how long it waited


class Executor:
    """Runs a batch's jobs, each through labkit.drive.drive, and returns their Outcomes in the
    order they ended; the jobs an ended one lets start (batch.follow) run too."""

    name = ""

    def check(self, batch: Batch) -> None:
        """Refuse (ParamError) before anything runs what this executor cannot do as asked."""

    def run(self, jobs: list, batch: Batch) -> list:
        raise NotImplementedError


EXECUTORS: Registry[type[Executor]] = Registry("executor", "labkit.executors")
