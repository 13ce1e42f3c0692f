"""A job of a batch (one notebook run with one config) and how it ended: what `plan` makes, what
an executor is handed and returns, what the runner, the lab log and the demo read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
from .keys import Status


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
    notices: list[str] = field(default_factory=list)  # what the notebook said that its command repeats

    def __post_init__(self):
        self.status = Status(self.status)  # an executor may say it by name


def skipped(job: Job, run_id: str) -> Outcome:
    return Outcome(job, run_id, Status.SKIPPED, None, 0.0, "finished before; --fresh runs it again")


def describe(outcome: Outcome) -> str:
    name = outcome.name or outcome.job.label
    return (
        f"    {name}: {outcome.status}"
        + (f" run {outcome.run_id}" if outcome.run_id else "")
        + (f" in {outcome.seconds:.0f}s" if outcome.seconds else "")
        + (f" after {outcome.restarts} restart(s)" if outcome.restarts else "")
        + (f": {outcome.error}" if outcome.error else "")
        + "".join(f"\n    note: {notice}" for notice in outcome.notices)
        + (f"\n    notebook {outcome.notebook}" if outcome.notebook else "")
    )


def summary(outcomes: list[Outcome], headlines: dict[str, tuple[float | None, str]] | None = None) -> str:
    """The batch as a table: each job's run, status, last FID and run page (headlines: by run id,
    from track.headlines); a failed job's error and executed notebook under its row."""
    headlines = headlines or {}
    rows = [("run", "status", "FID", "page")]
    for o in outcomes:
        fid, url = headlines.get(o.run_id, (None, ""))
        rows.append(
            (o.name or o.job.label, str(o.status), "-" if fid is None else f"{fid:.2f}", url or o.run_id or "-")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for row, o in zip(rows, [None, *outcomes]):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])
        if o is not None and o.error and not o.status.done:
            lines.append(f"    {o.status.lower()}: {o.error.splitlines()[0][:200]}")
            lines += [f"    notebook {o.notebook}"] if o.notebook else []
    failed = sum(o.status.failed for o in outcomes)
    busy = sum(o.status == Status.BUSY for o in outcomes)
    lines.append(
        f"{len(outcomes)} job(s): {len(outcomes) - failed - busy} ok, {failed} failed"
        + (f", {busy} refused (driven by another command)" if busy else "")
    )
    return "\n".join(lines)
