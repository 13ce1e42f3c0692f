"""Jobs fanned out on a Ray cluster (`labkit ablate ... --executor ray [--address ADDR]`).

Each job is one Ray task that drives its notebook on a worker exactly as `labkit ablate` does on
this machine (`labkit.drive`: the lease, the run, papermill, the watchdog, the executed notebook
attached to the run), with one GPU where the cluster has GPUs and one CPU otherwise (nproc of
them, on one machine, for a run trained by several processes); Ray decides where and when.
The workers log to the same tracking store: a team's server
(MLFLOW_TRACKING_URI=http://...) when the cluster spans machines, which also need this
repository at the same path and labkit installed. A job that fails is its own outcome and the
others go on; a worker lost mid-run (its machine gone, the process killed) releases the run's
lease, so the next `labkit ablate` or `labkit runs --end-dead` marks the run KILLED, and rerunning
the same parameters resumes it from its last checkpoint.
"""

from __future__ import annotations

import os
import socket
import time

from ..config import ParamError
from ..jobs import Job, Outcome, describe
from ..keys import Status
from .executor import EXECUTORS, Batch, Executor

RAY_MISSING = (
    "--executor ray needs Ray: pip install -e '.[cluster]' (make test installs it), on this machine and "
    "on every machine of the cluster"
)
# what the workers must see as the driver does: where the lab lives, the store, the log
SHARED_ENVIRONMENT = ("LABKIT_ROOT", "LABKIT_RUNS", "LABKIT_LOG", "LABKIT_UI", "MLFLOW_TRACKING_URI", "TORCH_HOME")


def _drive_task(job: Job, fresh: bool, queued_since: float) -> Outcome:
    from ..drive import drive

    return drive(job, fresh, progress=False, queued_since=queued_since)


def check_cluster(address: str = "") -> None:
    """Refuse before anything runs when Ray is not installed, or no cluster answers at address
    (ray.init would retry it for minutes)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ParamError(RAY_MISSING) from None
    if not address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ParamError(f"--address {address!r}: write the head's HOST:PORT (ray start --head prints it)")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise ParamError(
            f"--address {address}: no Ray cluster answers there ({exc}). Start one with `ray start "
            f"--head --port {port}` on {host}, or leave out --address to use a Ray instance of this "
            "machine"
        ) from None


def run_on_ray(jobs: list[Job], fresh: bool, address: str = "", echo=print) -> list[Outcome]:
    """Every job as a Ray task on the cluster at `address` (empty: a Ray instance of this machine,
    started for the batch and ended with it); the outcomes in the order they end."""
    import ray

    if address:
        # a cluster started by `ray start` asks for its token (~/.ray/auth_token or RAY_AUTH_TOKEN), and
        # a driver joining it sends the token only in token mode, which Ray turns on for `ray start` and
        # a new local instance but not for ray.init(address=...)
        from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available

        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    env = {name: os.environ[name] for name in SHARED_ENVIRONMENT if os.environ.get(name)}
    ray.init(
        address=address or None,
        runtime_env={"env_vars": env},
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(_drive_task)
        echo(
            f"running {len(jobs)} job(s) on Ray ({address or 'this machine'}: "
            f"{ray.cluster_resources().get('CPU', 0):g} CPUs, {gpus:g} GPUs), one "
            f"{'GPU' if gpus else 'CPU'} each (nproc each for a run trained by several processes)"
        )
        started = time.time()
        pending = {}
        for job in jobs:
            n = job.cfg.processes
            options = dict(num_gpus=n, num_cpus=1) if gpus else dict(num_gpus=0, num_cpus=n)
            pending[task.options(**options, max_retries=0).remote(job, fresh, started)] = job
        outcomes = []
        while pending:
            [done], _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done)
            try:
                outcome = ray.get(done)
            except ray.exceptions.RayError as exc:  # the worker itself died: its run's lease went with it
                outcome = Outcome(
                    job,
                    "",
                    Status.FAILED,
                    None,
                    time.time() - started,
                    f"the Ray worker was lost ({type(exc).__name__}); rerun these parameters to resume "
                    "the run from its last checkpoint",
                )
            outcomes.append(outcome)
            echo(describe(outcome))
        return outcomes
    finally:
        ray.shutdown()


@EXECUTORS("ray")
class Ray(Executor):
    name = "ray"

    def check(self, batch: Batch) -> None:
        check_cluster(batch.address)

    def run(self, jobs: list[Job], batch: Batch) -> list[Outcome]:
        outcomes, wave = [], jobs
        while wave:  # the jobs that ended let the next wave start
            ended = run_on_ray(wave, batch.fresh, batch.address, batch.echo)
            outcomes += ended
            wave = [job for outcome in ended for job in batch.follow(outcome)]
        return outcomes
