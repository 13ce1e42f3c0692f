"""Run references in the lab log: `run:<name or id prefix>` resolved against MLflow.

A reference is short to type: `run:glad-s0` (a run name; the newest run of that name),
`run:glad` (a params file's stem: the newest run made from it) or `run:63b723d9` (six or more
leading characters of the run id). A reference that matches no run stays in the text, shown
as unresolved, never dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .. import keys, links, store
from ..keys import Status
from .entries import Entry, all_entries, update

REFERENCE = re.compile(r"\brun:([A-Za-z0-9][\w.\-]*[\w])")


@dataclass
class RunSummary:
    ref: str
    run_id: str
    name: str
    ablation: str
    seed: str
    status: str
    fid: float | None
    backbone: str
    url: str
    measure: str = ""  # what a run without FID is judged by (a style run's losses)
    fid_ci: tuple | None = None  # its 95% interval
    artifact_uri: str = ""  # where its artifacts are (a file:// folder for a local store)

    def line(self) -> str:
        if self.fid is not None:
            smoke = " (smoke backbone)" if self.backbone and self.backbone != "inception" else ""
            interval = f" [{self.fid_ci[0]:.2f}, {self.fid_ci[1]:.2f}]" if self.fid_ci else ""
            score = f"FID {self.fid:.2f}{interval}{smoke}"
        else:
            score = self.measure or "no FID yet"
        return f"{self.name} [{self.run_id[:8]}] · {self.ablation or '-'} · seed {self.seed} · {score} · {self.status}"


def _measure(metrics: dict) -> str:
    """A style run's summary: the swap's style and content losses, or the decoder's loss."""
    if keys.STYLE_LOSS in metrics:
        return f"style loss {metrics['style_loss']:.3g}, content loss {metrics.get('content_loss', float('nan')):.3g}"
    if "loss" in metrics:
        return f"decoder loss {metrics['loss']:.3g}"
    return ""


def references(text: str) -> list[str]:
    return list(dict.fromkeys(REFERENCE.findall(text)))


def _end_of(day: dt.date | None) -> float | None:
    return None if day is None else dt.datetime.combine(day, dt.time.max).timestamp()


class Resolver:
    """Looks references up once per rendering: every run of the store, by name and id (a SQLite
    store's read from its file, without MLflow's seconds of import)."""

    def __init__(self):
        self._client, self._runs = None, None

    @property
    def client(self):
        if self._client is None:
            from .. import track

            self._client = track.client(create=False)
        return self._client

    def _all_runs(self):
        """Every run of the store; none where no store exists yet (a lab log read before any run)."""
        if self._runs is None:
            path = store.store_path()
            if path is not None and not path.exists():
                self._runs = []
            elif path is not None:
                store.check(path, create=False)  # empty or damaged: said, never hidden
                self._runs = store.read_runs(path)
            else:
                from .. import track

                self._runs = track.all_runs(self.client)
        return self._runs

    def resolve(self, ref: str, on: dt.date | None = None) -> RunSummary | None:
        """The run a reference means; written in the entry of day `on`, the newest run by that day's end."""
        run = store.find_reference(ref, self._all_runs(), by=_end_of(on))
        if run is None:
            return None
        data = run.data
        fid = data.metrics.get(keys.FID_LAST, data.metrics.get(keys.FID))
        bounds = [data.metrics.get(keys.ci(keys.FID, side)) for side in ("low", "high")]
        return RunSummary(
            fid_ci=tuple(bounds) if None not in bounds else None,
            ref=ref,
            run_id=run.info.run_id,
            name=run.info.run_name or run.info.run_id[:8],
            ablation=data.tags.get(keys.ABLATION, ""),
            seed=data.params.get("seed", "-"),
            status=run.info.status,
            fid=fid,
            backbone=data.tags.get(keys.FID_BACKBONE, ""),
            url=links.run_url(run.info.experiment_id, run.info.run_id),
            measure=_measure(data.metrics),
            artifact_uri=getattr(run.info, "artifact_uri", "") or "",
        )


def _run_ids(text: str, resolver: Resolver, on: dt.date | None = None) -> set[str]:
    return {s.run_id for r in references(text) if (s := resolver.resolve(r, on))}


def mentions(run_id: str, entries: list[Entry], resolver: Resolver) -> list[str]:
    """Every lab-log line that refers to the run, oldest first, with its date and section (and,
    for a nested line, the line it sits under: a batch's command)."""
    found = []
    for entry in sorted(entries, key=lambda e: e.date):
        for section, lines in entry.sections.items():
            for i, line in enumerate(lines):
                if run_id not in _run_ids(line, resolver, entry.date):
                    continue
                depth = len(line) - len(line.lstrip())
                parent = (
                    next(
                        (
                            p.strip().lstrip("-*+ ")
                            for p in reversed(lines[:i])
                            if p.strip() and len(p) - len(p.lstrip()) < depth
                        ),
                        "",
                    )
                    if depth
                    else ""
                )
                text = line.strip().lstrip("-*+ ")
                found.append(f"- **{entry.date}** · {section} · " + (f"{parent} → {text}" if parent else text))
    return found


def sync_notes(entry: Entry, resolver: Resolver | None = None) -> list[str]:
    """Each run this entry refers to gets, as its MLflow note, the lab-log lines that mention it
    (with their dates), so the UI shows why the run exists. Returns the run ids updated."""
    resolver = resolver or Resolver()
    targets = _run_ids("\n".join([entry.preamble, entry.body()]), resolver, entry.date)
    if not targets:
        return []
    entries, path = all_entries(), store.store_path()
    for run_id in targets:
        note = "**Lab log**\n\n" + "\n".join(mentions(run_id, entries, resolver))
        if path is not None:  # a SQLite store: written in a blink, not after MLflow's import
            store.set_note(path, run_id, keys.NOTE, note)
        else:
            resolver.client.set_tag(run_id, keys.NOTE, note)
    return sorted(targets)


def record_batch(outcomes, command: str) -> Entry:
    """Append what a `labkit ablate` batch ran to today's Actions: each run by reference (its
    name, status and FID render from the reference), with its error and its executed notebook
    when it failed; then update those runs' notes."""
    failed = sum(o.status.failed for o in outcomes)
    lines = [f"- {dt.datetime.now():%H:%M} `{command}`: {len(outcomes) - failed} ok, {failed} failed"]
    for o in outcomes:
        error = o.error.splitlines()[0][:200] if o.error else ""
        where = f", notebook {o.notebook}" if o.notebook else ""
        if not o.run_id:
            lines.append(f"  - {o.job.label} {o.status.lower()}: {error}")
        elif o.status.failed:
            lines.append(f"  - run:{o.run_id[:8]}: {error}{where}")
        else:
            lines.append(f"  - run:{o.run_id[:8]}" + (" (finished before)" if o.status == Status.SKIPPED else ""))
    entry = update(dt.date.today(), lambda e: e.sections["Actions"].extend(lines))
    sync_notes(entry, Resolver())
    return entry
