"""`labkit ablate`: params files -> papermill executions -> one MLflow run each.

The jobs come from labkit.plan (params files checked before anything runs); each is driven by
labkit.drive (lease, run, papermill, watchdog); an executor of labkit.executors, looked up by
name, decides where and how many at a time: the local process pool, or a Ray cluster.
"""

from __future__ import annotations

import os
import time

from . import track
from .executors import EXECUTORS, Batch
from .jobs import Job, Outcome
from .live import LiveLines
from .paths import project_root, runs_dir


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
    """Every job, run by the executor of this name. Dead runs of these experiments are swept
    first. `then(outcome)`, when given, returns the jobs an ended job lets start (a swap waits for
    its decoder): they join the queue behind the jobs already in it (the longest jobs first, the
    short ones filling the last slots, is what ends a batch soonest)."""

    runner = EXECUTORS.get(executor)()
    runner.check(Batch(address=address))
    # a line per running job (epoch, step, time left, FID) in place of papermill's cell counter
    live = LiveLines({job.cfg.run_key() for job in jobs}).start() if progress else None

    def follow(outcome: Outcome) -> list[Job]:
        more = then(outcome) if then else []
        if live:
            live.ended(outcome.run_id)
            live.add(job.cfg.run_key() for job in more)
        return more

    batch = Batch(fresh, workers, address, live.echo if live else echo, follow, then is not None, time.time())
    try:
        return _run(runner, jobs, batch)
    finally:
        if live:
            live.stop()


def _run(runner, jobs: list[Job], batch: Batch) -> list[Outcome]:
    from .runs import sweep

    # the kernels inherit where the lab lives, wherever their notebook's folder is
    os.environ["LABKIT_ROOT"] = str(project_root())
    os.environ["LABKIT_RUNS"] = str(runs_dir())
    c = track.client()
    experiments = sorted({j.cfg.experiment for j in jobs})
    for exp in experiments:  # the store's schema and experiments exist before any parallel writer
        track.experiment_id(c, exp)
    for swept in sweep(experiments):
        batch.echo(f"    swept {swept}")
    return runner.run(list(jobs), batch)
