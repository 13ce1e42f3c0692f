"""`labkit ablate`: params files -> papermill executions -> one MLflow run each.

Everything is validated before anything runs. Each execution gets its MLflow run id before
the kernel starts, so the executed notebook (runs/<date>/<name>-<short id>.ipynb), the
checkpoints (runs/checkpoints/<id>/) and the run share one name; rerunning the same params
finds that run again (by a hash of the params) and resumes it instead of starting another.
A failing notebook marks its run FAILED, keeps its executed notebook with the error, and the
other jobs still run.
"""
from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path

import papermill
from papermill.exceptions import PapermillExecutionError

from . import track
from .config import ParamError, from_dict, normalize_params, parse_override, read_params_file, schema_for
from .paths import project_root, runs_dir

KERNEL_START_RETRIES = 2


@dataclass
class Job:
    name: str
    params_file: Path
    notebook: Path
    params: dict  # every parameter, resolved and validated (run_id excluded)


@dataclass
class Outcome:
    job: Job
    run_id: str
    status: str          # FINISHED, FAILED, SKIPPED (finished before)
    notebook: Path | None
    seconds: float
    error: str = ""


def notebook_parameters(notebook: Path) -> set[str]:
    return set(papermill.inspect_notebook(str(notebook)))


def plan(files: list[str | Path], seeds: int | None = None, overrides: list[str] = ()) -> list[Job]:
    """The jobs for these params files, or one ParamError listing every problem found."""
    problems, jobs = [], []
    extra = {}
    for text in overrides:
        try:
            name, value = parse_override(text)
            extra[name] = value
        except ParamError as exc:
            problems.append(str(exc))
    for file in files:
        file = Path(file)
        try:
            params = read_params_file(file)
            schema = schema_for(params.get("ablation", ""))
            overrides, more = normalize_params(extra, "--set", schema)
            if more:
                raise ParamError("\n".join(more))
            base = from_dict({**params, **overrides}, source=str(file), schema=schema)
        except ParamError as exc:
            problems.append(str(exc))
            continue
        notebook = project_root() / "notebooks" / f"{base.ablation}.ipynb"
        if not notebook.is_file():
            problems.append(f"{file}: ablation '{base.ablation}' has no notebook at {notebook}")
            continue
        missing = set(schema.names()) - notebook_parameters(notebook)
        if missing:
            problems.append(f"{notebook}: its parameters cell lacks {sorted(missing)}")
            continue
        seed_list = [base.seed + i for i in range(seeds)] if seeds else [base.seed]
        for seed in seed_list:
            resolved = {k: v for k, v in base.to_dict().items() if k != "run_id"}
            resolved["seed"] = seed
            name = file.stem + (f"-s{seed}" if seeds else "")
            jobs.append(Job(name=name, params_file=file, notebook=notebook, params=resolved))
    if problems:
        raise ParamError("\n".join(problems))
    if not jobs:
        raise ParamError("no params files given")
    return jobs


def _execute(job: Job, run_id: str, out: Path, progress: bool) -> None:
    for attempt in range(KERNEL_START_RETRIES + 1):
        try:
            papermill.execute_notebook(str(job.notebook), str(out), parameters={**job.params, "run_id": run_id},
                                       kernel_name="python3", cwd=str(job.notebook.parent),
                                       progress_bar=progress, start_timeout=120)
            return
        except RuntimeError as exc:
            # a kernel that did not come up is worth another try; an error inside the notebook is not
            if "Kernel didn't respond" not in str(exc) or attempt == KERNEL_START_RETRIES:
                raise
            time.sleep(5 * (attempt + 1))


def prepare(job: Job, fresh: bool = False) -> tuple[str, bool]:
    """(run id, already finished) for a job: the run its params made before, or a new one."""
    existing = None if fresh else track.find_run(job.params)
    if existing is not None:
        return existing.info.run_id, existing.info.status == "FINISHED"
    return track.create_run(job.params, run_name=job.name, tags={"labkit.params_file": str(job.params_file)}), False


def execute(job: Job, run_id: str, progress: bool = True, gpus=None) -> Outcome:
    """Run the job's notebook for its run; with `gpus` (a queue of ids) on one GPU of its own."""
    started = time.time()
    folder = runs_dir() / dt.date.today().isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{job.name}-{run_id[:8]}.ipynb"
    gpu = gpus.get() if gpus is not None else None
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)  # the kernel inherits it
    status, error = "FINISHED", ""
    try:
        _execute(job, run_id, out, progress)
    except PapermillExecutionError as exc:
        status, error = "FAILED", f"{exc.ename}: {exc.evalue}".strip()
    except Exception as exc:  # dead kernel (often out of memory), kernel never started, ...
        status, error = "FAILED", f"{type(exc).__name__}: {exc}"
    finally:
        if gpu is not None:
            gpus.put(gpu)
    c = track.client()
    if out.is_file():
        c.log_artifact(run_id, str(out), "notebook")
        c.set_tag(run_id, "labkit.notebook", str(out))
    if status == "FAILED":
        c.set_terminated(run_id, "FAILED")
    return Outcome(job, run_id, status, out if out.is_file() else None, time.time() - started, error)


def _execute_in_worker(job: Job, run_id: str, delay: float, gpus, threads: int) -> Outcome:
    time.sleep(delay)  # staggered kernel starts: parallel starts race for ports
    # the kernels share the CPU cores instead of each spinning a thread per core
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    return execute(job, run_id, progress=False, gpus=gpus)


def _describe(outcome: Outcome) -> str:
    return (f"    {outcome.job.name}: {outcome.status} run {outcome.run_id}"
            + (f" in {outcome.seconds:.0f}s" if outcome.seconds else "")
            + (f": {outcome.error}" if outcome.error else "")
            + (f"\n    notebook {outcome.notebook}" if outcome.notebook else ""))


def run_all(jobs: list[Job], fresh: bool = False, progress: bool = True, workers: int = 1,
            echo=print) -> list[Outcome]:
    """Every job, one after another or `workers` at a time (processes; one GPU each where
    there are GPUs). Runs are created here, before any kernel starts, so the store sees one
    writer at a time while it is set up."""
    # the kernels inherit where the lab lives, wherever their notebook's folder is
    os.environ["LABKIT_ROOT"] = str(project_root())
    os.environ["LABKIT_RUNS"] = str(runs_dir())
    c = track.client()
    for exp in sorted({j.params["experiment"] for j in jobs}):
        track.experiment_id(c, exp)
    outcomes, todo = [], []
    for job in jobs:
        run_id, finished = prepare(job, fresh)
        if finished:
            outcomes.append(Outcome(job, run_id, "SKIPPED", None, 0.0, "finished before; --fresh runs it again"))
            echo(_describe(outcomes[-1]))
        else:
            todo.append((job, run_id))
    if workers <= 1:
        for i, (job, run_id) in enumerate(todo, 1):
            echo(f"[{i}/{len(todo)}] {job.name}: {job.notebook.name} (seed {job.params['seed']})")
            outcomes.append(execute(job, run_id, progress))
            echo(_describe(outcomes[-1]))
        return outcomes
    import multiprocessing
    import torch
    from concurrent.futures import ProcessPoolExecutor, as_completed
    ctx = multiprocessing.get_context("spawn")
    gpus = None
    if torch.cuda.is_available():
        gpus = ctx.Manager().Queue()
        for gpu in range(torch.cuda.device_count()):
            gpus.put(gpu)
    echo(f"running {len(todo)} job(s), {workers} at a time")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        threads = max(1, (os.cpu_count() or 1) // workers)
        futures = [pool.submit(_execute_in_worker, job, run_id, 3.0 * i if i < workers else 0.0, gpus, threads)
                   for i, (job, run_id) in enumerate(todo)]
        for future in as_completed(futures):
            outcomes.append(future.result())
            echo(_describe(outcomes[-1]))
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    lines = [f"{'job':24} {'status':9} {'run id':34} notebook"]
    for o in outcomes:
        lines.append(f"{o.job.name:24} {o.status:9} {o.run_id:34} {o.notebook or '-'}")
        if o.error and o.status == "FAILED":
            lines.append(f"{'':24} error: {o.error.splitlines()[0][:200]}")
    failed = sum(o.status == "FAILED" for o in outcomes)
    lines.append(f"{len(outcomes)} job(s): {len(outcomes) - failed} ok, {failed} failed")
    return "\n".join(lines)
