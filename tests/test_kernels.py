"""The runner's kernels: forked warm from a process that imported the libraries once, yet each a
kernel of its own (environment, folder, session, threads, random state, the lab's code fresh from
disk), gone with the process that asked for it; cold where switched off."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill
import psutil
import pytest

from labkit import kernels
from labkit.kernels import LocalKernelManager

PROBE = """import json, os, sys
import numpy as np, torch
print(json.dumps({"warm": "torch" in sys.modules and "mlflow" in sys.modules, "labkit": "labkit" in sys.modules,
                  "cwd": os.getcwd(), "probe": os.environ.get("LABKIT_PROBE"), "pid": os.getpid(),
                  "parent": os.getppid(), "session": os.getsid(0) == os.getpid(), "threads": torch.get_num_threads(),
                  "draw": float(np.random.rand()), "argv": sys.argv[1:2]}))"""


def _probe(tmp_path, name: str) -> dict:
    nb = tmp_path / "probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)]), nb)
    out = papermill.execute_notebook(
        str(nb),
        str(tmp_path / f"{name}.ipynb"),
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
        kernel_manager_class=LocalKernelManager,
    )
    return json.loads(out.cells[0].outputs[0]["text"])


@pytest.mark.slow
def test_a_warm_kernel_is_a_kernel_of_its_own(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("LABKIT_PROBE", "first")
    first = _probe(tmp_path, "first")
    monkeypatch.setenv("LABKIT_PROBE", "second")  # set after the warm process started: each kernel gets its own
    second = _probe(tmp_path, "second")
    for kernel, probe in ((first, "first"), (second, "second")):
        assert kernel["warm"] and not kernel["labkit"]  # libraries loaded once, the lab's code fresh
        assert kernel["probe"] == probe and kernel["cwd"] == str(tmp_path) and kernel["session"]
        assert kernel["threads"] == 1 and kernel["argv"] == ["-f"]
    assert first["parent"] == second["parent"] != os.getpid()  # both forked by the one warm process
    assert first["draw"] != second["draw"]  # numpy's global random state is not the warm process's copy
    # its output reaches this process's stdout and stderr, and ipykernel knows it has a client (no banner)
    assert "ipython kernel" not in "".join(capfd.readouterr())
    assert not psutil.pid_exists(first["pid"]) or psutil.Process(first["pid"]).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_kernels_start_cold_when_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv(kernels.SWITCH, "0")
    kernel = _probe(tmp_path, "cold")
    assert not kernel["warm"] and kernel["parent"] == os.getpid() and kernel["session"]


DRIVER = """import asyncio, os, sys, time
from labkit import kernels
if sys.argv[1] == "warm":
    kernels.warm_up()
km = kernels.LocalKernelManager(kernel_name="python3")
asyncio.run(km.start_kernel())
print(km.provisioner.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.parametrize("start", ["warm", "cold"])
def test_a_kernel_dies_with_the_process_that_asked_for_it(start):
    """A process that runs one notebook starts it cold; one that warmed up, warm."""
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, start], stdout=subprocess.PIPE, text=True)
    kernel = int(driver.stdout.readline())
    family = {p.pid for p in psutil.Process(driver.pid).children(recursive=True)}
    assert kernel in family
    assert (psutil.Process(kernel).ppid() == driver.pid) is (start == "cold")
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.time() + 60  # a loaded two-core machine (the whole suite beside it) is slow to reap
    alive = family
    while alive and time.time() < deadline:
        alive = {p for p in family if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}
        time.sleep(0.2)
    assert not alive, "processes outlived the one that asked for the kernel"


def test_a_killed_runner_s_socket_folder_goes_with_the_next_start(tmp_path):
    """A runner killed with -9 runs no exit handler: its kernels' socket folder stays in the temp
    folder until the next process that starts kernels finds its owner gone."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    stale = tmp_path / f"{kernels.SOCKET_DIR_PREFIX}{gone.pid}-abc"
    alive = tmp_path / f"{kernels.SOCKET_DIR_PREFIX}{os.getpid()}-def"
    for folder in (stale, alive):
        folder.mkdir()
        (folder / "kernel-1").touch()
    code = "from labkit.kernels import LocalKernelManager; print(LocalKernelManager().ip)"
    own = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert not stale.exists() and alive.is_dir()  # the live process's folder is its own to remove
    assert own.startswith(str(tmp_path / kernels.SOCKET_DIR_PREFIX)) and not Path(own.strip()).parent.exists()
