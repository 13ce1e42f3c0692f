"""Reading the log: a plain-text view for the terminal and one HTML page, with every run
reference replaced by its one-line summary (and a link to its MLflow page, and its last
sample grid in HTML)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
import tempfile
import urllib.parse
from pathlib import Path

import mistune

from .. import keys
from ..console import plural
from .entries import Entry, all_entries
from .runs import REFERENCE, Resolver

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Lab log</title><style>
body {{ font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.45; color: #222 }}
article {{ border-top: 2px solid #ddd; padding-top: .5em; margin-top: 2em }}
.run {{ background: #eef4ff; border-radius: 4px; padding: 0 .3em; font-size: .92em }}
.unresolved {{ background: #ffe9e6; border-radius: 4px; padding: 0 .3em }}
img.grid {{ display: block; max-width: 100%; margin: .4em 0; border: 1px solid #ccc }}
</style></head><body><h1>Lab log</h1><p>{count}{span}. Run references link to MLflow.</p>
{body}</body></html>"""


def _entries_matching(entries: list[Entry], ablation: str, resolver: Resolver) -> list[Entry]:
    if not ablation:
        return entries
    keep = []
    for e in entries:
        text = e.text()
        runs = [resolver.resolve(r, e.date) for r in REFERENCE.findall(text)]
        if ablation in text or any(s and s.ablation == ablation for s in runs):
            keep.append(e)
    return keep


def select(
    since: dt.date | None = None,
    until: dt.date | None = None,
    ablation: str = "",
    oldest_first: bool = False,
    resolver: Resolver | None = None,
) -> list[Entry]:
    entries = _entries_matching(all_entries(since, until), ablation, resolver or Resolver())
    return entries[::-1] if oldest_first else entries


def to_text(entries: list[Entry], resolver: Resolver | None = None) -> str:
    resolver = resolver or Resolver()

    def replace(match, on: dt.date):
        summary = resolver.resolve(match.group(1), on)
        return f"[{summary.line()}]" if summary else f"[run:{match.group(1)} unresolved: no such run]"

    return "\n".join(REFERENCE.sub(lambda m, on=e.date: replace(m, on), e.text(empty_sections=False)) for e in entries)


def _last_grid(resolver: Resolver, run_id: str, artifact_uri: str = "") -> str | None:
    """The run's newest sample grid as a data URI (read from disk where the store keeps it there)."""
    local = Path(urllib.parse.urlparse(artifact_uri).path) / keys.LAST_SAMPLES
    if artifact_uri.startswith("file://") and local.is_file():
        return "data:image/png;base64," + base64.b64encode(local.read_bytes()).decode()
    c = resolver.client  # a server's, or a store moved since it last opened
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per picture is noise
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = c.download_artifacts(run_id, keys.LAST_SAMPLES, tmp)
            return "data:image/png;base64," + base64.b64encode(Path(local).read_bytes()).decode()
    except Exception:  # no grid (a style run, an old run), or a store that cannot be read: the link remains
        return None


def to_html(entries: list[Entry], resolver: Resolver | None = None, images: bool = True, page: bool = True) -> str:
    """One HTML page (or, page=False, just the entries, for a notebook), newest entry first
    unless the list says otherwise."""
    resolver = resolver or Resolver()
    shown_grids: set[str] = set()
    markers: dict[str, str] = {}

    def replace(match, on: dt.date):
        # a placeholder survives Markdown rendering; the HTML goes in afterwards
        key = f"LABKITREF{len(markers)}X"
        summary = resolver.resolve(match.group(1), on)
        if summary is None:
            markers[key] = (
                f'<span class="unresolved">run:{html.escape(match.group(1))} (unresolved: no such run)</span>'
            )
        else:
            grid = ""
            if (
                images
                and summary.run_id not in shown_grids
                and (uri := _last_grid(resolver, summary.run_id, summary.artifact_uri))
            ):
                shown_grids.add(summary.run_id)
                grid = f'<img class="grid" src="{uri}" alt="last sample grid of {html.escape(summary.name)}">'
            markers[key] = f'<a class="run" href="{html.escape(summary.url)}">{html.escape(summary.line())}</a>{grid}'
        return key

    articles = []
    for e in entries:
        body = mistune.html(REFERENCE.sub(lambda m, on=e.date: replace(m, on), e.text(empty_sections=False)))
        for key, value in markers.items():
            body = body.replace(key, value)
        articles.append(f'<article id="{e.date.isoformat()}">{body}</article>')
    if not page:
        return "\n".join(articles)
    dates = sorted(e.date for e in entries)
    span = f", {dates[0]} to {dates[-1]}" if dates else ""
    return PAGE.format(count=plural(len(entries), "entry", "entries"), span=span, body="\n".join(articles))
