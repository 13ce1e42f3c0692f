"""One job from start to end status: a lease on its parameters (a second command for the same
parameters is refused, naming who drives them), the run found again (same identity) or created,
owned while its notebook executes (labkit.track.OwnedRun), and watched: a kernel that stops
beating for `stall_minutes` has its Python stacks recorded, is killed, and the notebook restarts
from the run's last checkpoint, up to `max_restarts` times.

The executed notebook (runs/<date>/<run name>-<short id>.ipynb) is written atomically after
every cell, so it is valid JSON whatever happens, and attached to its run. Every executor
(labkit.executors) drives its jobs through `drive`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError
from papermill.iorw import papermill_io

from . import keys, lease, track
from .config import RUN_ID, Config
from .jobs import Job, Outcome, skipped
from .kernels import LocalKernelManager, launched_kernel
from .keys import Status
from .paths import runs_dir
from .plan import notebook_defaults

KERNEL_START_RETRIES = 2
POLL_SECONDS = 2.0


class _NamesFromOutsideTheCell(logging.Filter):
    """papermill warns about every injected name the parameters cell does not show; the lab
    injects such names on purpose (a notebook's cell shows only its knobs) and checks them all."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Passed unknown parameter" not in record.getMessage()


logging.getLogger("papermill").addFilter(_NamesFromOutsideTheCell())


class AtomicNotebookWriter:
    """papermill's local writer, but through a temporary file and a rename: the executed
    notebook on disk is always whole (a full disk or a kill mid-write leaves the last good one).
    A notebook it could not write is kept in memory, for the error it holds."""

    def __init__(self):
        self.unsaved: str | None = None

    def read(self, path):
        return Path(path).read_text(encoding="utf-8")

    def listdir(self, path):
        return [str(p) for p in Path(path).iterdir()]

    def pretty_path(self, path):
        return path

    def write(self, buf, path):
        tmp = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(buf, encoding="utf-8")
            tmp.replace(path)
            self.unsaved = None
        except OSError:
            self.unsaved = buf
            raise
        finally:
            tmp.unlink(missing_ok=True)

    def last_error(self, path: Path) -> str:
        """The last error output of the notebook at path, or of the one that could not be
        written there ('' when neither has one)."""
        for text in (self.unsaved, path.read_text(encoding="utf-8") if path.is_file() else None):
            try:
                cells = nbformat.reads(text, as_version=4).cells if text else []
            except Exception:  # half a notebook: nothing to read
                continue
            errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                return f"{errors[-1]['ename']}: {errors[-1]['evalue']}"
        return ""


WRITER = AtomicNotebookWriter()


def _key_lease(cfg: Config) -> lease.Lease:
    return lease.Lease(keys.run_lease(cfg.run_key()))


def join_sweep(job: Job, run) -> str:
    """A run made outside any sweep becomes one of this job's sweep (its parameters ran before):
    what to say about it, or ''."""
    if job.tags and keys.PARENT not in run.data.tags:
        track.Run(track.client(), run.info.run_id).set_tags(job.tags)
        return f"    {run.info.run_name}: made before with these parameters, outside any sweep: now one of this sweep's"
    return ""


def _find_or_create(job: Job, fresh: bool) -> tuple[str, bool]:
    """(run id, finished before) for a job: the run of its parameters, or a new one."""
    existing = None if fresh else track.find_run(job.cfg)
    if existing is not None:
        joined = join_sweep(job, existing)
        if joined:
            print(joined)
        return existing.info.run_id, existing.info.status == Status.FINISHED
    tags = {keys.PARAMS_FILE: job.params_file} if job.params_file else {}
    return track.create_run(job.cfg, label=job.label, tags={**tags, **job.tags}), False


def python_stacks(pid: int, stacks_file: Path, wait: float = 5.0) -> str:
    """The Python stacks of a hung kernel: faulthandler (the kernel registered SIGUSR1 to dump
    into stacks_file), else py-spy, which reads them even from a frozen process."""
    if stacks_file.is_file():
        stacks_file.write_text("")  # emptied, not removed: the kernel keeps it open
    try:
        os.kill(pid, signal.SIGUSR1)
    except OSError:
        pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if stacks_file.is_file() and stacks_file.stat().st_size:
            time.sleep(0.2)  # let it finish writing
            return stacks_file.read_text(errors="replace")
        time.sleep(0.2)
    for exe in (str(Path(sys.executable).parent / "py-spy"), shutil.which("py-spy") or "py-spy"):
        try:
            out = subprocess.run(
                [exe, "dump", "--nonblocking", "--pid", str(pid)], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout
    return "(no stacks: the kernel did not answer SIGUSR1 and py-spy could not read it)"


class Watchdog(threading.Thread):
    """Watches a notebook's heartbeat while it executes; when it goes silent past its allowance
    (stall_minutes while training, stall_minutes_slow while starting or evaluating), records
    the kernel's stacks and kills the kernel, which ends the execution with a dead kernel."""

    def __init__(self, run_id: str, cfg: Config):
        super().__init__(daemon=True)
        self.run_id, self.cfg = run_id, cfg
        self.started = time.time()
        self.stop = threading.Event()
        self.stall: dict | None = None

    def silence(self) -> tuple[float, float, lease.Beat | None]:
        """(seconds without a beat, the allowance, the last beat of this execution)."""
        beat = lease.last_beat(self.run_id)
        if beat is None or beat.time < self.started:
            beat = None
        since = beat.time if beat else self.started
        phase = beat.phase if beat else "start"
        minutes = self.cfg.stall_minutes if phase == "train" else self.cfg.stall_minutes_slow
        return time.time() - since, 60 * minutes, beat

    def run(self) -> None:
        while not self.stop.wait(POLL_SECONDS):
            silent, allowance, beat = self.silence()
            if silent <= allowance:
                continue
            pid = beat.pid if beat else launched_kernel()
            stacks = python_stacks(pid, lease.lease_dir() / f"{self.run_id}.stacks") if pid else "(no kernel found)"
            self.stall = {
                "silent": silent,
                "step": beat.step if beat else 0,
                "phase": beat.phase if beat else "start",
                "pid": pid,
                "stacks": stacks,
            }
            # the beating process, and the kernel with it where a rank beats: every process of the
            # run dies with the kernel at once (torchrun would give a frozen rank 30 s to stop)
            for target in dict.fromkeys(filter(None, [pid, launched_kernel()])):
                try:
                    os.kill(target, signal.SIGKILL)
                except OSError:
                    pass
            return


def _papermill(job: Job, run_id: str, out: Path, progress: bool) -> None:
    for attempt in range(KERNEL_START_RETRIES + 1):
        try:
            papermill.execute_notebook(
                str(job.notebook),
                str(out),
                parameters={**_injected(job), RUN_ID: run_id},
                kernel_name="python3",
                cwd=str(job.notebook.parent),
                progress_bar=progress,
                start_timeout=120,
                kernel_manager_class=LocalKernelManager,
            )
            return
        except RuntimeError as exc:
            # a kernel that did not come up is worth another try; an error inside the notebook is not
            if "Kernel didn't respond" not in str(exc) or attempt == KERNEL_START_RETRIES:
                raise
            time.sleep(5 * (attempt + 1))


def _injected(job: Job) -> dict:
    """What papermill injects: every value that differs from the notebook's own cell."""
    own = notebook_defaults(job.notebook, type(job.cfg))
    defaults = type(job.cfg)().to_dict()
    return {k: v for k, v in job.params.items() if own.get(k, defaults[k]) != v}


def _error_of(exc: BaseException) -> str:
    if isinstance(exc, PapermillExecutionError):
        return f"{exc.ename}: {exc.evalue}".strip()
    return f"{type(exc).__name__}: {exc}".strip()


def _record_stall(run: track.OwnedRun, job: Job, stall: dict, restart: int, restarting: bool) -> None:
    from .lablog.entries import add as add_to_lab_log

    minutes = stall["silent"] / 60
    # who beats (whose stacks are recorded) and who was killed
    killed = (
        f"rank 0 pid {stall['pid']} killed, and the kernel with the other ranks"
        if job.cfg.processes > 1
        else f"kernel pid {stall['pid']} killed"
    )
    what = f"stalled in {stall['phase']} at step {stall['step']}: no heartbeat for {minutes:.1f} min ({killed})"
    run.log_text(stall["stacks"], keys.STALL_STACKS.format(restart=restart))
    run.set_tags({keys.STALLS: restart, keys.LAST_STALL: what})
    then = (
        f"restarted from its last checkpoint ({restart}/{job.cfg.max_restarts})"
        if restarting
        else f"not restarted: max_restarts={job.cfg.max_restarts} reached"
    )
    add_to_lab_log(
        f"{dt.datetime.now():%H:%M} run:{run.run_id[:8]} {run.name} {what}; {then}; Python stacks in the "
        f"run's artifacts stalls/stall-{restart}.txt",
        section="problems",
    )
    print(f"    {run.name}: {what}; {then}")


def _notices(notebooks: list[Path]) -> list[str]:
    """What the notebooks' kernels warned that the command should repeat in the terminal: a
    checkpoint that could not be read, and the one the run fell back to."""
    found = []
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                lines = output.get("text", "").splitlines() if output.get("name") == "stderr" else []
                found += [
                    f"{lines[i - 1].rpartition('UserWarning: ')[2]}; {line.strip()}" if i else line.strip()
                    for i, line in enumerate(lines)
                    if line.startswith(keys.CHECKPOINT_FALLBACK)
                ]
    return found


def _unused(path: Path) -> Path:
    """The path, or `-attempt2`, `-attempt3`, ... beside it: a resumed run's notebook of the same
    day keeps the killed attempt's, which shows where it stopped."""
    n, found = 2, path
    while found.exists():
        found, n = path.with_name(f"{path.stem}-attempt{n}{path.suffix}"), n + 1
    return found


def _execute(job: Job, run: track.OwnedRun, out: Path, progress: bool) -> tuple[str, str, int, list[Path]]:
    """Execute the job's notebook for its run, watched, restarting stalled kernels; returns
    (status, error, restarts, executed notebooks)."""
    notebooks, restarts = [], 0
    while True:
        target = out if not restarts else out.with_name(f"{out.stem}-restart{restarts}.ipynb")
        watchdog = Watchdog(run.run_id, job.cfg)
        watchdog.start()
        status, error = Status.FINISHED, ""
        try:
            _papermill(job, run.run_id, target, progress)
        except PapermillExecutionError as exc:  # the notebook's own error
            status, error = Status.FAILED, _error_of(exc)
        except Exception as exc:  # a dead kernel, a full disk ...: the notebook's error (if any) came first
            status, error = Status.FAILED, "; then ".join(filter(None, [WRITER.last_error(target), _error_of(exc)]))
        finally:
            watchdog.stop.set()
            watchdog.join()
        if target.is_file():
            notebooks.append(target)
        if watchdog.stall is None:
            return status, error, restarts, notebooks
        restarts += 1
        again = restarts <= job.cfg.max_restarts
        _record_stall(run, job, watchdog.stall, restarts, again)
        if not again:
            return (
                Status.FAILED,
                f"stalled {restarts} time(s): {run.info.run_name} kept hanging",
                restarts - 1,
                notebooks,
            )


def drive(
    job: Job, fresh: bool = False, progress: bool = True, gpus=None, queued_since: float | None = None
) -> Outcome:
    """One job from start to end status (see the module's note); never raises for the job's own
    failures: they are its Outcome. The run is made (or taken up again) when the job starts, so
    its duration is its own; the time it waited in the batch is recorded apart."""
    started, run_id = time.time(), ""
    try:
        key = _key_lease(job.cfg).acquire()
    except lease.LeaseHeld as exc:
        return Outcome(job, "", Status.BUSY, None, 0.0, f"these parameters are being run already: lease {exc}")
    gpu = gpus.get() if gpus is not None else None
    try:
        if gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)  # the kernel inherits it
        run_id, finished = _find_or_create(job, fresh)
        if finished:  # meanwhile, by another command
            return skipped(job, run_id)
        c = track.client()
        try:
            run = track.OwnedRun(c, run_id)
        except lease.LeaseHeld as exc:
            return Outcome(job, run_id, Status.BUSY, None, 0.0, f"run {run_id} is driven already: lease {exc}")
        run.set_tags({keys.QUEUED_SECONDS: f"{started - (queued_since or started):.1f}"})
        folder = runs_dir() / dt.date.today().isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        out = _unused(folder / f"{run.name}-{run_id[:8]}.ipynb")
        papermill_io.register(str(runs_dir()), WRITER)
        with run:
            status, error, restarts, notebooks = _execute(job, run, out, progress)
            try:
                for path in notebooks:
                    track.attach_notebook(run, path)
            except Exception as exc:  # a full disk, an unreachable artifact store: the run's own error comes first
                status, error = (
                    Status.FAILED,
                    "; ".join(filter(None, [error, f"attaching the notebook: {_error_of(exc)}"])),
                )
            run.end(status, error)
        return Outcome(
            job,
            run_id,
            status,
            notebooks[-1] if notebooks else None,
            time.time() - started,
            error,
            run.name,
            restarts,
            notebooks,
            _notices(notebooks),
        )
    except Exception as exc:  # the store, the disk: the run (if any) was ended FAILED by its owner
        return Outcome(job, run_id, Status.FAILED, None, time.time() - started, _error_of(exc))
    finally:
        if gpu is not None:
            gpus.put(gpu)
        key.release()
