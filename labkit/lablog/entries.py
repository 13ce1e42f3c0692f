"""Dated lab log entries: one Markdown file a day in the repo's lablog/ folder.

    # 2026-11-23 · title
    ## Problems
    ## Causes
    ## Actions
    ## Ideas

Lines are appended under a section by `labkit log add` and by `labkit ablate`; every write
happens under a lock and re-reads the file first, so appends from a batch and edits saved in
between are all kept.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import exclusive, project_root

SECTIONS = ("Problems", "Causes", "Actions", "Ideas")
ENTRY_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.md$")


class LabLogError(ValueError):
    pass


def log_dir() -> Path:
    """LABKIT_LOG when set, else <project root>/lablog (kept in git: the log is part of the work)."""
    path = Path(os.environ["LABKIT_LOG"]) if os.environ.get("LABKIT_LOG") else project_root() / "lablog"
    path.mkdir(parents=True, exist_ok=True)
    return path


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise LabLogError(f"'{text}' is not a date; write it as YYYY-MM-DD (e.g. 2026-09-24)") from None


def section_name(text: str) -> str:
    for name in SECTIONS:
        if name.lower().startswith(text.strip().lower()) and text.strip():
            return name
    raise LabLogError(f"unknown section '{text}'; use one of {', '.join(s.lower() for s in SECTIONS)}")


@dataclass
class Entry:
    date: dt.date
    title: str = ""
    preamble: str = ""  # text before the first section
    sections: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SECTIONS})

    @property
    def path(self) -> Path:
        return log_dir() / f"{self.date.isoformat()}.md"

    def text(self, empty_sections: bool = True) -> str:
        """The entry as Markdown: in its file with every section's heading (a day's page to fill
        in), when shown without the empty ones."""
        head = f"# {self.date.isoformat()}" + (f" · {self.title}" if self.title else "")
        parts = [head, ""] + ([self.preamble.strip(), ""] if self.preamble.strip() else [])
        for name in SECTIONS:
            body = "\n".join(self.sections.get(name, [])).strip("\n")
            if body or empty_sections:
                parts += [f"## {name}", ""] + ([body, ""] if body else [])
        extra = [n for n in self.sections if n not in SECTIONS]
        for name in extra:
            parts += [f"## {name}", "", "\n".join(self.sections[name]).strip("\n"), ""]
        return "\n".join(parts).rstrip("\n") + "\n"

    def body(self) -> str:
        return "\n".join(line for name in self.sections for line in self.sections[name])


def parse_entry(text: str, date: dt.date) -> Entry:
    entry = Entry(date=date)
    current = None
    preamble = []
    for line in text.splitlines():
        heading = re.match(r"^#\s+(\d{4}-\d{2}-\d{2})(?:\s*·\s*(.*))?\s*$", line)
        if heading and current is None and not entry.title and not preamble:
            entry.title = (heading.group(2) or "").strip()
            continue
        sub = re.match(r"^##\s+(.+?)\s*$", line)
        if sub:
            name = sub.group(1).strip()
            current = next((s for s in SECTIONS if s.lower() == name.lower()), name)
            entry.sections.setdefault(current, [])
            continue
        if current is None:
            preamble.append(line)
        else:
            entry.sections[current].append(line)
    entry.preamble = "\n".join(preamble).strip("\n")
    for name in entry.sections:  # no trailing blank lines: text() adds its own spacing
        while entry.sections[name] and not entry.sections[name][-1].strip():
            entry.sections[name].pop()
        while entry.sections[name] and not entry.sections[name][0].strip():
            entry.sections[name].pop(0)
    return entry


def read_entry(path: Path) -> Entry:
    match = ENTRY_NAME.match(path.name)
    if not match:
        raise LabLogError(f"{path}: lab log entries are named YYYY-MM-DD.md")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LabLogError(
            f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); convert it, e.g. `iconv -f GBK -t UTF-8`"
        ) from None
    return parse_entry(text, parse_date(match.group(1)))


def all_entries(since: dt.date | None = None, until: dt.date | None = None) -> list[Entry]:
    """Every entry, newest first, optionally within [since, until]."""
    entries = []
    for path in sorted(log_dir().glob("*.md"), reverse=True):
        if not ENTRY_NAME.match(path.name):
            continue
        entry = read_entry(path)
        if (since and entry.date < since) or (until and entry.date > until):
            continue
        entries.append(entry)
    return entries


def _locked():
    return exclusive(log_dir() / ".lock")


def _write(entry: Entry) -> Path:
    tmp = entry.path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(entry.text(), encoding="utf-8")
    tmp.replace(entry.path)
    return entry.path


def update(date: dt.date, change) -> Entry:
    """Re-read the day's entry under the lock, apply change(entry), write it back atomically."""
    with _locked():
        path = log_dir() / f"{date.isoformat()}.md"
        entry = read_entry(path) if path.is_file() else Entry(date=date)
        change(entry)
        _write(entry)
        return entry


def new(title: str = "", date: dt.date | None = None) -> tuple[Entry, bool]:
    """Today's entry (or date's), created with the four sections; (entry, created)."""
    date = date or dt.date.today()
    created = not (log_dir() / f"{date.isoformat()}.md").is_file()

    def set_title(entry: Entry):
        if title and not entry.title:
            entry.title = title
        elif title and title not in entry.title:
            entry.title = f"{entry.title} · {title}"

    return update(date, set_title), created


def add(text: str, section: str = "actions", date: dt.date | None = None) -> Entry:
    """Append a line (a '- ' bullet unless it already is a list item) under a section."""
    name = section_name(section)
    lines = text.rstrip("\n").splitlines() or [""]
    if not re.match(r"^\s*([-*+]|\d+[.)])\s", lines[0]):
        lines[0] = f"- {lines[0]}"
    return update(date or dt.date.today(), lambda e: e.sections.setdefault(name, []).extend(lines))
