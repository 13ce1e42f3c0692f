"""The notebook kernels a runner starts: on this machine, over Unix sockets, and warm.

A kernel started cold is a new interpreter that imports torch, MLflow and ipykernel before the
notebook's first line: about 5 CPU-s, most of what a small notebook costs. A warm kernel is
forked from a process that imported those libraries once: the "warm process", which a process
that will start several kernels keeps (`warm_up`: a runner with more than one job, and its
workers share the runner's) until it ends. A command that runs one notebook starts it cold: the
warm process would cost what it saves. The lab's own code is not imported in advance: a kernel
imports labkit as it is on disk when the kernel starts, so a run's recorded diff is the code it
ran.

A warm kernel is what a cold one is to jupyter_client and to the notebook: a session of its own,
the environment, folder and arguments the runner gives, its own random state, the thread count
its OMP_NUM_THREADS asks for; it dies with the process that asked for it (the warm process kills
its kernels when that process is gone, and a kernel dies with the warm process). Kernels start
cold where the warm process cannot serve (it failed to start, or a library touched CUDA while
loading: a forked child could not use the GPU), or with LABKIT_WARM_KERNELS=0.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
import warnings
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

# What every kernel imports before its notebook's first line (third-party only: the lab's own
# modules are imported fresh by each kernel). Not ipykernel.kernelapp: its defaults read the
# kernel's environment (JPY_PARENT_PID) when it is imported.
PRELOAD = (
    "numpy",
    "torch",
    "torch._dynamo",
    "torchvision",
    "pytorch_fid.inception",
    "scipy.linalg",
    "PIL.Image",
    "yaml",
    "tqdm.auto",
    "psutil",
    "mlflow",
    "mlflow.tracking",
    "mlflow.store.tracking.sqlalchemy_store",
    "ipykernel.ipkernel",
)
SWITCH = "LABKIT_WARM_KERNELS"  # 0: every kernel starts cold
LAUNCHER = ("-m", "ipykernel_launcher")

# --- the warm process ---------------------------------------------------------------------------


def _preload() -> int:
    """Import what kernels import; the thread count a new process would take. A library that
    initialises CUDA here would leave the forked kernels without a GPU: then refuse to serve."""
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            continue
    import torch

    if torch.cuda.is_initialized():
        raise SystemExit("a preloaded library initialised CUDA: kernels start cold")
    return torch.get_num_threads()


def serve(listener: socket.socket, parent: int) -> None:
    """Fork a kernel for each request on `listener` until `parent` (the process that started this
    one) is gone; then kill the kernels still running and end. Each request is one message,
    {argv, env, cwd} with the kernel's stdin, stdout and stderr; the answer {pid}, and when the
    kernel ends, {exit}."""
    threads = _preload()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle, not ours
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the loop through wake_w
    kernels: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    while os.getppid() == parent:
        for key, _ in selector.select(timeout=0.5):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                pid = _fork_kernel(conn, threads, [listener, selector, wake_r, wake_w, *kernels.values()])
                if pid:
                    kernels[pid] = conn
            else:
                _drain(wake_r)
                _reap(kernels)
    for pid in kernels:  # whoever asked for them is gone
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _reap(kernels: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return
        conn = kernels.pop(pid, None)
        if conn is not None:
            try:
                conn.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
            except OSError:
                pass
            conn.close()


def _fork_kernel(conn: socket.socket, threads: int, inherited: list) -> int:
    """A kernel for the request on conn; its pid once it is set up, 0 when it could not be."""
    try:
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        request = json.loads(message)
    except (OSError, ValueError):
        conn.close()
        return 0
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the kernel
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(ready_r)
            for thing in inherited:
                os.close(thing) if isinstance(thing, int) else thing.close()
            conn.close()
            code = _become_kernel(request, fds, threads, ready_w)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(ready_w)
    for fd in fds:
        os.close(fd)
    ready = selectors.DefaultSelector()
    ready.register(ready_r, selectors.EVENT_READ)
    set_up = bool(ready.select(timeout=30)) and os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    conn.send(json.dumps({"pid": pid} if set_up else {"error": "the kernel did not set up"}).encode())
    if not set_up:
        conn.close()
        return 0
    return pid


def _become_kernel(request: dict, fds: list[int], threads: int, ready_w: int) -> int:
    """In the forked child: what a new kernel process would be, then the kernel; its exit code."""
    os.setsid()  # a session of its own, as jupyter_client starts kernels: interrupts reach its group
    from .lease import die_with_parent

    die_with_parent()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a new interpreter
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.path[0] = os.getcwd()  # as `python -m` sets it
    sys.argv = [request["argv"][0], *request["argv"][3:]]  # what `python -m ipykernel_launcher ...` shows
    from .registry import plugin_modules

    # the kernel imports the lab's code as it is on disk now, and the plugins register their
    # entries again in the registries that fresh import makes
    fresh = plugin_modules()
    for name in [m for m in sys.modules if m == "labkit" or m.startswith("labkit.") or m in fresh]:
        del sys.modules[name]
    _own_threads_and_random_state(threads)
    _die_with(request["client"])
    os.write(ready_w, b"1")
    os.close(ready_w)
    code = 0
    try:
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        import atexit as exiting

        exiting._run_exitfuncs()  # as an interpreter does at its end
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    return code


def _die_with(pid: int) -> None:
    """Be killed when the process that asked for this kernel ends (the warm process may serve
    others: the runner's workers ask the runner's)."""

    def watch(pidfd: int) -> None:
        select.select([pidfd], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)
    threading.Thread(target=watch, args=(pidfd,), name="labkit-die-with-client", daemon=True).start()


def _own_threads_and_random_state(default_threads: int) -> None:
    """The thread count the kernel's environment asks for (the warm process's own libraries were
    loaded before it was known), and random states of its own (a fork copies the parent's)."""
    import numpy as np
    import torch

    asked = os.environ.get("OMP_NUM_THREADS", "")
    count = int(asked) if asked.isdigit() and int(asked) > 0 else default_threads
    torch.set_num_threads(count)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(count, user_api="blas")
    except ImportError:
        pass
    np.random.seed()  # Python's random reseeds itself after a fork; numpy's global state does not


# --- the process that asks for kernels ------------------------------------------------------------


class WarmKernel:
    """A kernel forked by the warm process: the part of subprocess.Popen that jupyter_client's
    provisioner uses. Its end comes over the connection it was asked for on."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, conn: socket.socket):
        self.pid, self.conn, self.returncode = pid, conn, None

    def _ended(self, message: bytes) -> None:
        # no message: the warm process is gone, and its kernels died with it
        self.returncode = json.loads(message)["exit"] if message else -signal.SIGKILL
        self.conn.close()

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self._ended(self.conn.recv(4096, socket.MSG_DONTWAIT))
            except BlockingIOError:
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.conn.settimeout(timeout)
            try:
                self._ended(self.conn.recv(4096))
            except TimeoutError:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout) from None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class WarmProcess:
    """This process's warm process: started on first use, refused for good when it cannot serve."""

    def __init__(self):
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.address = ""  # of this process's own warm process
        self.shared = ""  # of the runner's, for a worker of the runner
        # it pays from a process's second kernel on: a command that runs one notebook starts it cold
        self.wanted = False
        self.broken = ""

    def _start(self) -> None:
        self.address = f"\0labkit-kernels-{os.getpid()}-{uuid.uuid4().hex}"  # abstract: no file to clean up
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(self.address)
        listener.listen(16)  # requests wait here while the warm process imports
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        env["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"  # a CUDA check while loading must not initialise CUDA
        code = f"import socket, labkit.kernels as k; k.serve(socket.socket(fileno={listener.fileno()}), {os.getpid()})"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=(listener.fileno(),), env=env, stdin=subprocess.DEVNULL
        )
        listener.close()

    def running(self) -> str:
        """The address of this process's warm process, started if it is wanted and not running ('' where
        kernels start cold)."""
        with self.lock:
            if self.broken or os.environ.get(SWITCH, "1") == "0" or sys.platform != "linux":
                return ""
            if self.process is None or self.process.poll() is not None:
                if not self.wanted:
                    return ""
                self._start()
            return self.address

    def start(self, argv: list[str], env: dict, cwd: str, fds: list[int]) -> WarmKernel | None:
        """A kernel forked with these arguments, environment, folder and standard streams, from the
        shared warm process (a runner's, for its workers) or this process's own; None (and a
        warning, once) when neither can serve."""
        request = json.dumps({"argv": argv, "env": env, "cwd": cwd, "client": os.getpid()}).encode()
        if self.shared:
            kernel, _ = _ask(self.shared, request, fds)
            if kernel is not None:
                return kernel
            self.shared = ""  # gone (its runner ended): one of this process's own from now on
        address = self.running()
        if not address:
            return None
        kernel, answer = _ask(address, request, fds)
        if kernel is None:
            code = self.process.poll()
            self.broken = (
                f"the warm process ended (exit {code})"
                if code is not None
                else f"it could not start a kernel ({answer or 'no answer'})"
            )
            warnings.warn(f"kernels start cold from now on: {self.broken}", RuntimeWarning, stacklevel=2)
        return kernel


def _ask(address: str, request: bytes, fds: list[int]) -> tuple[WarmKernel | None, str]:
    """A kernel from the warm process at address, or None and why not."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(address)
        socket.send_fds(conn, [request], fds)
        answer = conn.recv(4096)
        pid = json.loads(answer).get("pid") if answer else None
    except (OSError, ValueError) as exc:
        pid, answer = None, str(exc).encode()
    if pid:
        return WarmKernel(pid, conn), ""
    conn.close()
    return None, answer.decode(errors="replace")


_WARM = WarmProcess()
_LAUNCHED: list = []  # the kernels this process started (warm or cold), newest last


def warm_up() -> str:
    """This process will start several kernels: start its warm process now (it imports while the
    runner prepares its runs). Its address, for the runner's workers to share ('' where kernels
    start cold)."""
    _WARM.wanted = True
    return _WARM.running()


def share(address: str) -> None:
    """In a runner's worker: ask the runner's warm process (at address) for kernels, else one of
    its own."""
    _WARM.shared, _WARM.wanted = address, True


def launched_kernel() -> int | None:
    """The newest kernel this process started that is still running (the one its job drives)."""
    for process in reversed(_LAUNCHED):
        if process.poll() is None:
            return process.pid
    return None


def start_warm(cmd: list[str], kwargs: dict) -> WarmKernel | None:
    """The kernel of this command line (jupyter_client's, with its Popen arguments) forked warm, or
    None where it starts cold: another interpreter or kernel, a pipe asked for, or switched off."""
    python_kernel = (
        len(cmd) > 3 and tuple(cmd[1:3]) == LAUNCHER and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable)
    )
    if os.environ.get(SWITCH, "1") == "0" or not python_kernel:
        return None
    # stdin: jupyter_client's pipe is never read (input comes over the kernel's stdin channel)
    streams = [subprocess.DEVNULL, kwargs.get("stdout"), kwargs.get("stderr")]
    if any(s is not None and s != subprocess.DEVNULL and not hasattr(s, "fileno") for s in streams):
        return None
    null = os.open(os.devnull, os.O_RDWR)
    try:
        fds = [
            null if s == subprocess.DEVNULL else number if s is None else s.fileno() for number, s in enumerate(streams)
        ]
        env = dict(kwargs.get("env") or os.environ)
        if not kwargs.get("independent"):  # what jupyter_client's launch_kernel adds: the kernel knows its client
            env["JPY_PARENT_PID"] = str(os.getpid())
        launcher = importlib.util.find_spec("ipykernel_launcher").origin
        return _WARM.start([launcher, *cmd[1:]], env, str(kwargs.get("cwd") or os.getcwd()), fds)
    finally:
        os.close(null)


class WarmProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, starting the kernel warm where it can."""

    async def launch_kernel(self, cmd: list[str], **kwargs) -> dict:
        kernel = start_warm(cmd, kwargs)
        if kernel is None:
            info = await super().launch_kernel(cmd, **kwargs)
        else:
            self.process, self.pid, self.pgid = kernel, kernel.pid, kernel.pid  # its own session
            self.cwd = kwargs.get("cwd", os.getcwd())
            info = self.connection_info
        _LAUNCHED.append(self.process)
        return info


SOCKET_DIR_PREFIX = "labkit-kernels-"  # then the pid of the process whose kernels' sockets it holds


def _remove_dead_socket_dirs() -> None:
    """The socket folders of processes that are gone: a runner killed with -9 runs no atexit."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SOCKET_DIR_PREFIX}*-*"):
        pid = folder.name[len(SOCKET_DIR_PREFIX) :].partition("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


class LocalKernelManager(AsyncKernelManager):
    """A kernel on this machine, started warm where it can, spoken to over Unix sockets: no TCP
    port is opened (nothing to eavesdrop on, and ipykernel has no unencrypted-TCP warning to
    print). The sockets are named by absolute path (kernel and client run in different folders),
    in one folder per process that goes when the process does, killed kernels' sockets with it."""

    socket_dirs: dict[int, Path] = {}  # by process id: a forked worker numbers its sockets apart

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        folder = self.socket_dirs.get(os.getpid())
        if folder is None:
            _remove_dead_socket_dirs()
            folder = Path(tempfile.mkdtemp(prefix=f"{SOCKET_DIR_PREFIX}{os.getpid()}-"))
            self.socket_dirs[os.getpid()] = folder
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
        self.transport = "ipc"
        self.ip = str(folder / "kernel")  # jupyter_client numbers the sockets after it

    async def _async_pre_start_kernel(self, **kwargs):
        if self.provisioner is None:  # jupyter_client would make a LocalProvisioner; kept on restarts
            self.kernel_id = self.kernel_id or kwargs.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = WarmProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kwargs)
