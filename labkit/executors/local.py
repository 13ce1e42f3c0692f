"""The local executor: the jobs one after another in this process, or `workers` at a time in
processes (one GPU each where there are GPUs, nproc each for a run trained by several processes)
that die with the command, so their kernels do too. Runs that finished before are skipped here,
before any worker starts. The runner's machinery (MLflow, papermill, Jupyter) loads when a batch
runs, not when the executor is looked up: a mistyped --executor is refused at once."""

from __future__ import annotations

import os

from .. import lease
from ..config import ParamError
from ..jobs import Job, Outcome, describe
from ..jobs import skipped as skipped_job
from ..keys import Status
from ..provenance import gpu_count
from .executor import EXECUTORS, Batch, Executor


@EXECUTORS("local")
class Local(Executor):
    name = "local"

    def check(self, batch: Batch) -> None:
        if batch.address:
            raise ParamError("--address is a Ray cluster's: add --executor ray")

    def run(self, jobs: list[Job], batch: Batch) -> list[Outcome]:
        from .. import kernels

        outcomes, queue = ([], list(jobs)) if batch.fresh else skip_finished(list(jobs), batch.follow, batch.echo)
        if len(queue) > 1 or batch.follows:
            kernels.warm_up()  # several kernels to come: it imports their libraries while the first run is made
        if batch.workers <= 1 or not queue:
            return outcomes + _one_at_a_time(queue, batch, len(outcomes))
        batch.echo(
            f"running {len(queue)} job(s){' and the jobs they let start' if batch.follows else ''}, "
            f"{batch.workers} at a time"
        )
        return outcomes + _run_in_processes(queue, batch)


def _one_at_a_time(queue: list[Job], batch: Batch, done: int) -> list[Outcome]:
    from ..drive import drive

    outcomes = []
    while queue:
        job = queue.pop(0)
        batch.echo(
            f"[{done + len(outcomes) + 1}/{done + len(outcomes) + len(queue) + 1}] {job.label}: "
            f"{job.notebook.name} (seed {job.cfg.seed})"
        )
        # papermill's cell counter stays off: the live lines say more (labkit.live)
        outcomes.append(drive(job, batch.fresh, progress=False, queued_since=batch.started))
        queue += batch.follow(outcomes[-1])  # first: the live lines drop the run before its outcome is said
        batch.echo(describe(outcomes[-1]))
    return outcomes


def skip_finished(queue: list[Job], follow, echo) -> tuple[list[Outcome], list[Job]]:
    """The jobs whose runs finished before, skipped here rather than by a worker started for each,
    and the jobs left to run (what the skipped ones let start among them)."""
    from .. import track
    from ..drive import join_sweep

    skipped, left = [], []
    while queue:
        job = queue.pop(0)
        run = track.find_run(job.cfg)
        if run is None or run.info.status != Status.FINISHED:
            left.append(job)
            continue
        joined = join_sweep(job, run)
        if joined:
            echo(joined)
        skipped.append(skipped_job(job, run.info.run_id))
        echo(describe(skipped[-1]))
        queue += follow(skipped[-1])
    return skipped, left


def _start_worker(threads: int, warm_kernels: str) -> None:
    """A worker process: killed when the command that started it dies, so its kernel (which
    dies with it) ends too; its share of the CPU cores; kernels from the runner's warm process."""
    from .. import kernels

    lease.die_with_parent()
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    kernels.share(warm_kernels)


def _drive_in_worker(job: Job, fresh: bool, gpus, queued_since: float) -> Outcome:
    from ..drive import drive

    return drive(job, fresh, progress=False, gpus=gpus, queued_since=queued_since)


def _run_in_processes(queue: list[Job], batch: Batch) -> list[Outcome]:
    """The jobs `workers` at a time in processes that die with this one; a slot that frees takes
    the next queued job at once, so no worker waits for a batch."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from .. import kernels

    ctx = multiprocessing.get_context("spawn")
    gpus, count = None, gpu_count()
    if count:  # a job takes nproc GPUs: the queue holds groups of the largest nproc
        size = max(job.cfg.processes for job in queue)
        gpus = ctx.Manager().Queue()
        for first in range(0, count - size + 1, size):
            gpus.put(",".join(map(str, range(first, first + size))))
    threads = max(1, (os.cpu_count() or 1) // batch.workers)
    warm_kernels = kernels.warm_up()  # one warm process for every worker's kernels
    outcomes, running = [], set()
    with ProcessPoolExecutor(
        batch.workers, mp_context=ctx, initializer=_start_worker, initargs=(threads, warm_kernels)
    ) as pool:
        while queue or running:
            while queue and len(running) < batch.workers:
                running.add(pool.submit(_drive_in_worker, queue.pop(0), batch.fresh, gpus, batch.started))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                outcomes.append(future.result())
                queue += batch.follow(outcomes[-1])
                batch.echo(describe(outcomes[-1]))
    return outcomes
