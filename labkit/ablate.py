"""`labkit ablate`: params files -> papermill executions -> one MLflow run each.

plan     Every params file (or bare ablation name) is resolved and checked before anything
         runs: field defaults <- the notebook's parameters cell <- the file (and its bases)
         <- `--set`; unknown names, wrong types, out-of-range values, a missing data folder or
         weights file are all reported at once, naming their file. Identical jobs are one job.
drive    One job: a lease on its parameters (a second command for the same parameters is
         refused, naming who drives them), the run found again (same identity) or created,
         owned while its notebook executes (labkit.track.OwnedRun), and watched: a kernel that
         stops beating for `stall_minutes` has its Python stacks recorded, is killed, and the
         notebook restarts from the run's last checkpoint, up to `max_restarts` times.
run_all  The jobs one after another, or `workers` at a time in processes (one GPU each where
         there are GPUs, nproc each for a run trained by several processes) that die with the
         command, so their kernels do too.

The executed notebook (runs/<date>/<run name>-<short id>.ipynb) is written atomically after
every cell, so it is valid JSON whatever happens, and attached to its run.
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError
from papermill.iorw import papermill_io

from . import kernels, keys, lease, track
from .config import RUN_ID, Config, ParamError, parse_override, read_params_file, schema_for
from .kernels import LocalKernelManager, launched_kernel
from .keys import Status
from .paths import project_root, runs_dir
from .provenance import gpu_count

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


@dataclass
class Job:
    label: str  # the run name's stem: the params file's stem, or the ablation's name
    source: str  # where the parameters came from, for messages
    notebook: Path
    cfg: Config
    params_file: str = ""
    factors: dict = field(default_factory=dict)  # the swept parameters' values, for a run of a sweep
    tags: dict = field(default_factory=dict)  # set on its run (a sweep's: its parent and factors)

    @property
    def params(self) -> dict:
        return self.cfg.to_dict()


@dataclass
class Outcome:
    job: Job
    run_id: str
    status: Status
    notebook: Path | None
    seconds: float
    error: str = ""
    name: str = ""
    restarts: int = 0
    notebooks: list[Path] = field(default_factory=list)

    def __post_init__(self):
        self.status = Status(self.status)  # an executor may say it by name


def notebook_path(ablation: str) -> Path:
    return project_root() / "notebooks" / f"{ablation}.ipynb"


def notebook_defaults(notebook: Path, schema) -> dict:
    """The values of a notebook's parameters cell (read with Python's own parser: papermill's
    line parser skips lines whose comments hold quotes), checked against its schema."""
    cells = [c for c in nbformat.read(notebook, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise ParamError(f"{notebook}: no cell is tagged 'parameters'")
    values = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                raise ParamError(f"{notebook}: parameter '{node.targets[0].id}' is not a plain value") from None
    clean, problems = schema.coerce(values, str(notebook))
    if problems:
        raise ParamError("\n".join(problems))
    return clean


def _resolve(spec: str, extra: dict, given: str = "--set") -> tuple[str, str, Path, Config, str]:
    """(label, source, notebook, config, params file) of one spec: a params file, or an ablation name."""
    is_file = spec.endswith((".yaml", ".yml")) or Path(spec).is_file()
    raw = read_params_file(spec) if is_file else {"ablation": spec}
    label, source = (Path(spec).stem, spec) if is_file else (spec, f"ablation '{spec}'")
    if "ablation" not in raw:
        raise ParamError(f"{source}: names no ablation; add `ablation: NAME` (its notebook is notebooks/NAME.ipynb)")
    schema = schema_for(str(raw["ablation"]), source)
    notebook = notebook_path(raw["ablation"])
    if not notebook.is_file():
        raise ParamError(f"{source}: ablation '{raw['ablation']}' has no notebook at {notebook}")
    values, problems = schema.coerce(raw, source)
    overrides, more = schema.coerce(extra, given)
    if problems or more:
        raise ParamError("\n".join(problems + more))
    cfg = schema.from_values({**notebook_defaults(notebook, schema), **values, **overrides}, source)
    return label, source, notebook, cfg, spec if is_file else ""


def plan(
    specs: list[str | Path], seeds: int | None = None, overrides: list[str] = (), grid: dict[str, list] | None = None
) -> list[Job]:
    """The jobs for these params files (or ablation names), each at every point of the grid
    ({name: values}) and for each seed, or one ParamError listing every problem found. A job
    identical to an earlier one (same parameters) is left out."""
    import dataclasses

    from .sweep import label as point_label
    from .sweep import points

    problems, jobs, extra = [], [], {}
    for text in overrides:
        try:
            name, value = parse_override(text)
            extra[name] = value
        except ParamError as exc:
            problems.append(str(exc))
    problems += [f"{name} is given by --set and by --grid: keep one" for name in grid or {} if name in extra]
    for spec in map(str, specs):
        for point in points(grid or {}):
            try:
                label, source, notebook, cfg, params_file = _resolve(
                    spec, {**extra, **point}, "--grid" if grid else "--set"
                )
            except ParamError as exc:
                problems.append(str(exc))
                break  # the other points of this file would repeat its problem
            problems += [f"{source}: {p}" for p in cfg.check_inputs()]
            for seed in [cfg.seed + i for i in range(seeds)] if seeds else [cfg.seed]:
                jobs.append(
                    Job(
                        point_label(label, point),
                        source,
                        notebook,
                        dataclasses.replace(cfg, seed=seed),
                        params_file,
                        factors=point,
                    )
                )
    if problems:
        raise ParamError("\n".join(dict.fromkeys(problems)))
    if not jobs:
        raise ParamError("no params files given")
    unique = {}
    for job in jobs:
        unique.setdefault(job.cfg.run_key(), job)
    return list(unique.values())


def _key_lease(cfg: Config) -> lease.Lease:
    return lease.Lease(keys.run_lease(cfg.run_key()))


def _join_sweep(job: Job, run) -> None:
    """A run made outside any sweep becomes one of this job's sweep."""
    if job.tags and keys.PARENT not in run.data.tags:
        track.Run(track.client(), run.info.run_id).set_tags(job.tags)


def _find_or_create(job: Job, fresh: bool) -> tuple[str, bool]:
    """(run id, finished before) for a job: the run of its parameters, or a new one."""
    existing = None if fresh else track.find_run(job.cfg)
    if existing is not None:
        _join_sweep(job, existing)
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
    from . import lablog

    minutes = stall["silent"] / 60
    # who beats (whose stacks are recorded) and who was killed
    killed = (
        f"rank 0 pid {stall['pid']} killed, and the kernel with the other ranks"
        if getattr(job.cfg, "nproc", 1) > 1
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
    lablog.add(
        f"{dt.datetime.now():%H:%M} run:{run.run_id[:8]} {run.name} {what}; {then}; Python stacks in the "
        f"run's artifacts stalls/stall-{restart}.txt",
        section="problems",
    )
    print(f"    {run.name}: {what}; {then}")


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
            return _skipped(job, run_id)
        c = track.client()
        try:
            run = track.OwnedRun(c, run_id)
        except lease.LeaseHeld as exc:
            return Outcome(job, run_id, Status.BUSY, None, 0.0, f"run {run_id} is driven already: lease {exc}")
        run.set_tags({keys.QUEUED_SECONDS: f"{started - (queued_since or started):.1f}"})
        folder = runs_dir() / dt.date.today().isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"{run.name}-{run_id[:8]}.ipynb"
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
        )
    except Exception as exc:  # the store, the disk: the run (if any) was ended FAILED by its owner
        return Outcome(job, run_id, Status.FAILED, None, time.time() - started, _error_of(exc))
    finally:
        if gpu is not None:
            gpus.put(gpu)
        key.release()


def _start_worker(threads: int, warm_kernels: str) -> None:
    """A worker process: killed when the command that started it dies, so its kernel (which
    dies with it) ends too; its share of the CPU cores; kernels from the runner's warm process."""
    lease.die_with_parent()
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    kernels.share(warm_kernels)


def _drive_in_worker(job: Job, fresh: bool, gpus, queued_since: float) -> Outcome:
    return drive(job, fresh, progress=False, gpus=gpus, queued_since=queued_since)


def _skipped(job: Job, run_id: str) -> Outcome:
    return Outcome(job, run_id, Status.SKIPPED, None, 0.0, "finished before; --fresh runs it again")


def _skip_finished(queue: list[Job], follow, echo) -> tuple[list[Outcome], list[Job]]:
    """The jobs whose runs finished before, skipped here rather than by a worker started for each,
    and the jobs left to run (what the skipped ones let start among them)."""
    skipped, left = [], []
    while queue:
        job = queue.pop(0)
        run = track.find_run(job.cfg)
        if run is None or run.info.status != Status.FINISHED:
            left.append(job)
            continue
        _join_sweep(job, run)
        skipped.append(_skipped(job, run.info.run_id))
        echo(describe(skipped[-1]))
        queue += follow(skipped[-1])
    return skipped, left


def describe(outcome: Outcome) -> str:
    name = outcome.name or outcome.job.label
    return (
        f"    {name}: {outcome.status}"
        + (f" run {outcome.run_id}" if outcome.run_id else "")
        + (f" in {outcome.seconds:.0f}s" if outcome.seconds else "")
        + (f" after {outcome.restarts} restart(s)" if outcome.restarts else "")
        + (f": {outcome.error}" if outcome.error else "")
        + (f"\n    notebook {outcome.notebook}" if outcome.notebook else "")
    )


def run_all(
    jobs: list[Job],
    fresh: bool = False,
    progress: bool = True,
    workers: int = 1,
    echo=print,
    executor: str = "local",
    address: str = "",
    then=None,
) -> list[Outcome]:
    """Every job, one after another or `workers` at a time (processes; one GPU each where there
    are GPUs), or each a task on a Ray cluster (executor 'ray', labkit.fanout). Dead runs of these
    experiments are swept first. `then(outcome)`, when given, returns the jobs an ended job lets
    start (a swap waits for its decoder): they join the queue behind the jobs already in it (the
    longest jobs first, the short ones filling the last slots, is what ends a batch soonest)."""
    from .runs import sweep

    # the kernels inherit where the lab lives, wherever their notebook's folder is
    os.environ["LABKIT_ROOT"] = str(project_root())
    os.environ["LABKIT_RUNS"] = str(runs_dir())
    c = track.client()
    experiments = sorted({j.cfg.experiment for j in jobs})
    for exp in experiments:  # the store's schema and experiments exist before any parallel writer
        track.experiment_id(c, exp)
    for swept in sweep(experiments):
        echo(f"    swept {swept}")
    follow = then or (lambda outcome: [])
    if executor == "ray":
        from .fanout import run_on_ray

        outcomes, wave = [], jobs
        while wave:  # the jobs that ended let the next wave start
            ended = run_on_ray(wave, fresh, address, echo)
            outcomes += ended
            wave = [job for outcome in ended for job in follow(outcome)]
        return outcomes
    batch_started = time.time()
    outcomes, queue = ([], list(jobs)) if fresh else _skip_finished(list(jobs), follow, echo)
    if len(queue) > 1 or then:
        kernels.warm_up()  # several kernels to come: it imports their libraries while the first run is made
    if workers <= 1 or not queue:
        while queue:
            job = queue.pop(0)
            echo(
                f"[{len(outcomes) + 1}/{len(outcomes) + len(queue) + 1}] {job.label}: {job.notebook.name} "
                f"(seed {job.cfg.seed})"
            )
            outcomes.append(drive(job, fresh, progress, queued_since=batch_started))
            echo(describe(outcomes[-1]))
            queue += follow(outcomes[-1])
        return outcomes
    echo(f"running {len(queue)} job(s){' and the jobs they let start' if then else ''}, {workers} at a time")
    return outcomes + _run_in_processes(queue, fresh, workers, follow, echo, batch_started)


def _run_in_processes(queue: list[Job], fresh: bool, workers: int, follow, echo, batch_started: float) -> list[Outcome]:
    """The jobs `workers` at a time in processes that die with this one; a slot that frees takes
    the next queued job at once, so no worker waits for a batch."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")
    gpus, count = None, gpu_count()
    if count:  # a job takes nproc GPUs: the queue holds groups of the largest nproc
        size = max(getattr(job.cfg, "nproc", 1) for job in queue)
        gpus = ctx.Manager().Queue()
        for first in range(0, count - size + 1, size):
            gpus.put(",".join(map(str, range(first, first + size))))
    threads = max(1, (os.cpu_count() or 1) // workers)
    warm_kernels = kernels.warm_up()  # one warm process for every worker's kernels
    outcomes, running = [], set()
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_start_worker, initargs=(threads, warm_kernels)
    ) as pool:
        while queue or running:
            while queue and len(running) < workers:
                running.add(pool.submit(_drive_in_worker, queue.pop(0), fresh, gpus, batch_started))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                outcomes.append(future.result())
                echo(describe(outcomes[-1]))
                queue += follow(outcomes[-1])
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    lines = [f"{'job':24} {'status':9} {'run id':34} notebook"]
    for o in outcomes:
        lines.append(f"{(o.name or o.job.label):24} {o.status:9} {o.run_id or '-':34} {o.notebook or '-'}")
        if o.error and not o.status.done:
            lines.append(f"{'':24} {o.status.lower()}: {o.error.splitlines()[0][:200]}")
    failed = sum(o.status.failed for o in outcomes)
    busy = sum(o.status == Status.BUSY for o in outcomes)
    lines.append(
        f"{len(outcomes)} job(s): {len(outcomes) - failed - busy} ok, {failed} failed"
        + (f", {busy} refused (driven by another command)" if busy else "")
    )
    return "\n".join(lines)
