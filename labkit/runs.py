"""`labkit runs`: every run with its status, step, last heartbeat and holder; dead runs swept.

A run is alive while its lease is held (labkit.lease): by `labkit ablate` for the runs it
drives, by the kernel for a notebook run by hand. A run still marked RUNNING whose lease
nobody holds (its command or kernel was killed, the machine restarted) is dead: `sweep` marks
it KILLED with its last step and heartbeat, and rerunning its parameters resumes it. A run
driven from another machine (a team tracking server) is judged by the heartbeat it records
in the store instead.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass

from . import keys, lease, store
from .keys import Status


@dataclass
class RunState:
    run_id: str
    name: str
    experiment: str
    status: str
    step: int | None
    beat_age: float | None  # seconds since the last heartbeat
    holder: str  # who drives it, when someone does

    @property
    def dead(self) -> bool:
        return self.status == Status.RUNNING and not self.holder


def _heartbeat(run) -> dict | None:
    """The newest heartbeat of a run: the local beat file, or the one recorded in the store."""
    local = lease.last_beat(run.info.run_id)
    if local is not None:
        return local.__dict__
    try:
        return json.loads(run.data.tags[keys.HEARTBEAT])
    except (KeyError, ValueError):
        return None


def _holder(run, beat: dict | None) -> str:
    held = lease.Lease(keys.owner_lease(run.info.run_id)).holder()
    if held is not None:
        return held.describe()
    key = run.data.tags.get(keys.RUN_KEY)
    held = lease.Lease(keys.run_lease(key)).holder() if key else None
    if held is not None:
        return f"{held.describe()} (setting it up)"
    if beat and beat["host"] != socket.gethostname():
        settings = dict(item.split("=", 1) for item in run.data.tags.get(keys.SETTINGS, "").split(", ") if "=" in item)
        slow = settings.get("stall_minutes_slow") or run.data.params.get("stall_minutes_slow", 60)
        allowance = 60 * float(slow)  # (runs logged before settings were a tag hold it as a param)
        if time.time() - beat["time"] < allowance:
            return f"pid {beat['pid']} on {beat['host']} (beating)"
    return ""


def _found(experiments: list[str] | None, running_only: bool) -> tuple[dict[str, str], list]:
    """(experiment names by id, runs newest first): from a SQLite store's file directly, a
    server's through MLflow."""
    path = store.store_path()
    if path is not None and path.is_file():
        runs = store.read_runs(path, experiments, running_only)
        return {r.info.experiment_id: r.info.experiment_name for r in runs}, runs
    from . import track

    c = track.client(create=False)
    exps = {e.experiment_id: e.name for e in c.search_experiments() if experiments is None or e.name in experiments}
    if not exps:
        return {}, []
    status = f"attributes.status = '{Status.RUNNING}'" if running_only else ""
    return exps, c.search_runs(list(exps), status, order_by=["attributes.start_time DESC"], max_results=5000)


def states(experiments: list[str] | None = None, running_only: bool = False) -> list[RunState]:
    exps, found = _found(experiments, running_only)
    out = []
    for run in found:
        beat = _heartbeat(run)
        out.append(
            RunState(
                run.info.run_id,
                run.info.run_name or "",
                exps[run.info.experiment_id],
                run.info.status,
                beat["step"] if beat else None,
                time.time() - beat["time"] if beat else None,
                _holder(run, beat) if run.info.status == Status.RUNNING else "",
            )
        )
    return out


def sweep(experiments: list[str] | None = None) -> list[str]:
    """Mark every dead run KILLED (holding its lease while doing so, so no owner starts midway);
    returns a line per run swept."""
    from . import track

    c = track.client()
    swept = []
    for state in states(experiments, running_only=True):
        if not state.dead:
            continue
        try:
            with track.run_lease(state.run_id):
                if c.get_run(state.run_id).info.status != Status.RUNNING:
                    continue
                last = (
                    f"last heartbeat at step {state.step}, {state.beat_age / 60:.0f} min ago"
                    if state.beat_age is not None
                    else "no heartbeat"
                )
                c.set_tag(
                    state.run_id,
                    keys.ERROR,
                    f"swept: nothing drives this run any more ({last}); rerun its params to resume it",
                )
                c.set_terminated(state.run_id, Status.KILLED)
        except lease.LeaseHeld:
            continue  # an owner took it meanwhile: alive
        swept.append(
            f"{state.experiment}/{state.name} ({state.run_id[:8]}): RUNNING with nothing driving it -> KILLED ({last})"
        )
    return swept


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


def table(rows: list[RunState]) -> str:
    """The runs as aligned columns, each as wide as its longest cell: names are never cut (a
    sweep's run names are long), the run id is its first 8 characters, as git shows a commit."""
    header = ("experiment", "run", "id", "status", "step", "beat", "holder")
    cells = [header] + [
        (
            r.experiment,
            r.name,
            r.run_id[:8],
            "DEAD" if r.dead else r.status,
            "-" if r.step is None else str(r.step),
            _age(r.beat_age),
            r.holder or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numbers = {header.index("step"), header.index("beat")}

    def line(row) -> str:
        return "  ".join(c.rjust(w) if i in numbers else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))

    lines = [line(row).rstrip() for row in cells]
    dead = sum(r.dead for r in rows)
    lines.append(
        f"{len(rows)} run(s)"
        + (f"; {dead} RUNNING with nothing driving them: `labkit runs --end-dead` marks them KILLED" if dead else "")
    )
    return "\n".join(lines)
