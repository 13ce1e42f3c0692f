"""Who drives a run, and whether it is alive.

A lease is an OS file lock (flock) on runs/leases/<name>.lock, held by the process that drives
the run: the kernel dies or is killed, the OS drops the lock, and the run is free again; no
stale lock files to clean. The lock file names its holder (host, pid, command) so a refused
command can say who holds it.

A heartbeat is a small file, runs/leases/<run id>.beat, that the training loop rewrites at
every logged step and at least every BEAT_SECONDS of work: the step it reached, the phase
(start, train, evaluate, views: all but train get the slow allowance) and the kernel's pid.
The runner reads it to see a run that hangs, and `labkit runs` to show how long ago each run
last beat.
"""

from __future__ import annotations

import ctypes
import faulthandler
import fcntl
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .paths import runs_dir

BEAT_SECONDS = 30.0


def lease_dir() -> Path:
    path = runs_dir() / "leases"
    path.mkdir(parents=True, exist_ok=True)
    return path


class LeaseHeld(RuntimeError):
    """The lease belongs to a live process; the message says which."""


@dataclass
class Holder:
    host: str
    pid: int
    command: str
    since: float

    def describe(self) -> str:
        return (
            f"pid {self.pid} on {self.host} (since {time.strftime('%H:%M:%S', time.localtime(self.since))}: "
            f"{self.command})"
        )


def shortened(text: str, most: int = 300) -> str:
    """At most `most` characters, the middle cut: two commands usually differ at their end (the
    params file, a --set) as much as at their start."""
    if len(text) <= most:
        return text
    half = (most - 3) // 2
    return f"{text[:half]} … {text[-half:]}"


def me(command: str = "") -> Holder:
    return Holder(socket.gethostname(), os.getpid(), shortened(command or " ".join(sys.argv)), time.time())


class Lease:
    """An exclusive, non-blocking lock on one name, released when the holder ends it or dies."""

    def __init__(self, name: str):
        self.path = lease_dir() / f"{name}.lock"
        self._file = None

    def holder(self) -> Holder | None:
        """Who holds it now (None when free)."""
        try:
            with open(self.path, "a+") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    f.seek(0)
                    try:
                        return Holder(**json.loads(f.read()))
                    except (ValueError, TypeError):
                        return Holder("?", 0, "unknown", 0.0)
                fcntl.flock(f, fcntl.LOCK_UN)
        except OSError:
            return None
        return None

    def acquire(self, command: str = "") -> Lease:
        """Take the lease, or raise LeaseHeld naming its holder."""
        f = open(self.path, "a+")  # noqa: SIM115 (held open: the lock lives as long as the file is open)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            text = f.read()
            f.close()
            try:
                who = Holder(**json.loads(text)).describe()
            except (ValueError, TypeError):
                who = "another process"
            raise LeaseHeld(f"held by {who}") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps(me(command).__dict__))
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@dataclass
class Beat:
    pid: int
    host: str
    step: int
    phase: str
    time: float
    progress: dict = field(default_factory=dict)  # run name and key, epoch, steps, last FID: the live lines'

    @property
    def age(self) -> float:
        return time.time() - self.time


def alive(pid: int) -> bool:
    """Whether a process of this id exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def beat_path(run_id: str) -> Path:
    return lease_dir() / f"{run_id}.beat"


def beat(run_id: str, step: int, phase: str = "train", progress: dict | None = None) -> Beat:
    """Say that the run is alive: this process, at this step, in this phase (and how far it is)."""
    path = beat_path(run_id)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    now = Beat(os.getpid(), socket.gethostname(), step, phase, time.time(), dict(progress or {}))
    tmp.write_text(json.dumps(now.__dict__))
    tmp.replace(path)
    return now


def last_beat(run_id: str) -> Beat | None:
    try:
        return Beat(**json.loads(beat_path(run_id).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def die_with_parent() -> None:
    """This process killed when the one that started it dies (Linux's PR_SET_PDEATHSIG), even by
    SIGKILL: what keeps a run's processes (workers, kernels, ranks) from outliving its command."""
    parent = os.getppid()
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took hold
        os._exit(1)


def dump_stacks_on_signal(run_id: str) -> Path:
    """Make SIGUSR1 write every thread's Python stack to runs/leases/<run id>.stacks: what the
    runner asks a kernel that stopped beating (faulthandler works even when Python is stuck in C)."""
    path = lease_dir() / f"{run_id}.stacks"
    # append mode: the runner empties the file before it asks, and the dump lands at its start
    stacks = open(path, "a")  # noqa: SIM115 (faulthandler writes to it for the kernel's life)
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True, chain=False)
    return path
