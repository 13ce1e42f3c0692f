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

from .. import keys, track
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

    def line(self) -> str:
        fid = f"FID {self.fid:.2f}" if self.fid is not None else "no FID yet"
        smoke = " (smoke backbone)" if self.backbone and self.backbone != "inception" else ""
        return f"{self.name} [{self.run_id[:8]}] · {self.ablation or '-'} · seed {self.seed} · {fid}{smoke} · {self.status}"


def references(text: str) -> list[str]:
    return list(dict.fromkeys(REFERENCE.findall(text)))


class Resolver:
    """Looks references up once per rendering: every run of the store, by name and id."""

    def __init__(self):
        self.client = track.client()
        self._runs = None

    def _all_runs(self):
        if self._runs is None:
            self._runs = track.all_runs(self.client)
        return self._runs

    def resolve(self, ref: str) -> RunSummary | None:
        run = track.find_reference(ref, self._all_runs())
        if run is None:
            return None
        data = run.data
        fid = data.metrics.get(keys.FID_LAST, data.metrics.get(keys.FID))
        return RunSummary(ref=ref, run_id=run.info.run_id, name=run.info.run_name or run.info.run_id[:8],
                          ablation=data.tags.get(keys.ABLATION, ""), seed=data.params.get("seed", "-"),
                          status=run.info.status, fid=fid, backbone=data.tags.get(keys.FID_BACKBONE, ""),
                          url=track.Run(self.client, run.info.run_id).url())


def _run_ids(entry: Entry, resolver: Resolver) -> set[str]:
    return {s.run_id for r in references(entry.body() + entry.preamble) if (s := resolver.resolve(r))}


def sync_notes(entry: Entry, resolver: Resolver | None = None) -> list[str]:
    """Attach every entry that references a run to that run's MLflow note (newest first), so
    the UI shows why the run exists. Returns the run ids updated."""
    resolver = resolver or Resolver()
    targets = _run_ids(entry, resolver)
    if not targets:
        return []
    ids_by_entry = [(e, _run_ids(e, resolver)) for e in all_entries()]
    for run_id in targets:
        note = "\n\n---\n\n".join(e.text() for e, ids in ids_by_entry if run_id in ids)
        resolver.client.set_tag(run_id, keys.NOTE, f"**Lab log**\n\n{note}")
    return sorted(targets)


def record_batch(outcomes, command: str) -> Entry:
    """Append what a `labkit ablate` batch ran to today's Actions: each run by reference with its
    status and FID, or its error and where its executed notebook is; then attach the entry to
    those runs' notes."""
    resolver = Resolver()
    failed = sum(o.status in ("FAILED", "KILLED") for o in outcomes)
    lines = [f"- {dt.datetime.now():%H:%M} `{command}`: {len(outcomes) - failed} ok, {failed} failed"]
    for o in outcomes:
        ref = f"run:{o.run_id[:8]} " if o.run_id else ""
        name = o.name or o.job.label
        if o.status in ("FAILED", "KILLED", "BUSY"):
            where = f", notebook {o.notebook}" if o.notebook else ""
            lines.append(f"  - {ref}{name} {o.status}: {o.error.splitlines()[0][:200] if o.error else ''}{where}")
        else:
            summary = resolver.resolve(o.run_id)
            fid = f"FID {summary.fid:.2f}" if summary and summary.fid is not None else "no FID"
            lines.append(f"  - {ref}{name} {o.status.lower()}, {fid}")
    entry = update(dt.date.today(), lambda e: e.sections["Actions"].extend(lines))
    sync_notes(entry, Resolver())
    return entry
