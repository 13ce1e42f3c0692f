"""A Ray head of the suite's own on 127.0.0.1 (two CPUs, no dashboard), its processes in one group.

Ray gives a new raylet a fixed 30 s to register with its head (ray/_private/node.py, not a setting).
Started while four test processes share two cores, it missed that three times in a row on a slow
machine; so under pytest-xdist the head is started by the controller at the one quiet moment, after
every test process has collected and before any runs a test, and its address handed on in a file."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# where the controller's head writes its HOST:PORT: a path in the environment the test processes inherit
ADDRESS_FILE = "LABKIT_TEST_RAY_HEAD"
# the tests that use a head: the controller starts one only when the collection holds one of them
USERS = "test_fanout.py::test_on_ray_"


def _ahead_of_the_tests() -> None:
    """The head's processes are scheduled ahead of the tests where the user may raise a priority."""
    with contextlib.suppress(PermissionError):
        os.nice(-10)


def _start(port: int, folder: Path) -> subprocess.Popen | None:
    """A Ray head on PORT, or None when it failed to come up (its processes ended)."""
    log = folder / "head.log"
    with open(log, "w") as out:
        head = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "ray"),
                "start",
                "--head",
                "--block",
                f"--port={port}",
                "--num-cpus=2",
                "--num-gpus=0",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={folder}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_ahead_of_the_tests,
            env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},  # as the test processes
        )
    deadline = time.time() + 120
    while "Ray runtime started" not in log.read_text():
        if head.poll() is not None or time.time() > deadline:
            _end(head)
            return None
        time.sleep(0.5)
    return head


def start(free_port) -> tuple[str, subprocess.Popen, Path]:
    """(HOST:PORT, process, folder) of a new head; tried three times on a fresh port and folder."""
    for _ in range(3):
        port, folder = free_port(), Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's socket paths must fit
        head = _start(port, folder)
        if head is not None:
            return f"127.0.0.1:{port}", head, folder
        log = (folder / "head.log").read_text()
        shutil.rmtree(folder, ignore_errors=True)
    raise RuntimeError(f"the Ray head did not come up in 3 tries; the last said:\n{log}")


def _end(head: subprocess.Popen) -> None:
    """The head's processes ended: Ray's orderly stop takes half a minute, the test's cluster holds
    nothing worth it, so whatever is left after a few seconds is killed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=5)
        os.killpg(head.pid, signal.SIGKILL)
    head.wait()


def stop(head: subprocess.Popen, folder: Path) -> None:
    """The head ended and its folder removed."""
    _end(head)
    shutil.rmtree(folder, ignore_errors=True)
