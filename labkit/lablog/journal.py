"""`labkit log import FILE`: a free-form journal (dated headings in any style) into dated entries.

Dated headings (`## 9/24`, `# 10/8`, `#10/11`, `## 01/06`) start an entry; their text goes
under Actions, verbatim. Undated headings that name a section (problem list, causes,
actions, ideas; in Chinese or English) put the text that follows under that section: before
the first date, of the first dated entry; after a date, of that date's entry. Years are
inferred: dates run forward, and a month smaller than the one before means a new year;
the start year is given, or the latest one that puts no entry in the future.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from .entries import LabLogError, update

DATE_HEADING = re.compile(r"^#{1,6}\s*(\d{1,2})\s*/\s*(\d{1,2})\s*$")
HEADING = re.compile(r"^#{1,6}\s*(.+?)\s*$")
SECTION_WORDS = {
    "Problems": ("问题清单", "问题列表", "problem"),
    "Causes": ("原因", "cause"),
    "Actions": ("行动", "action", "进展"),
    "Ideas": ("想法", "idea", "思路"),
}


def _section_of(heading: str) -> str | None:
    low = heading.lower()
    for name, words in SECTION_WORDS.items():
        if any(w in low for w in words):
            return name
    return None


def parse(text: str, source: str = "journal") -> list[tuple[tuple[int, int], str, list[str]]]:
    """[((month, day), section, lines)] in file order; the undated opening has date None."""
    blocks: list[list] = []
    date, section = None, "Problems"
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and re.match(r"^#\s", lines[first]):  # the journal's own title: no entry's text
        title = HEADING.match(lines[first]).group(1)
        if not DATE_HEADING.match(lines[first]) and _section_of(title) is None:
            lines[first] = ""
    for number, line in enumerate(lines, start=1):
        dated = DATE_HEADING.match(line)
        if dated:
            month, day = int(dated.group(1)), int(dated.group(2))
            try:
                dt.date(2000, month, day)  # a leap year: every real month/day passes
            except ValueError:
                raise LabLogError(f"{source}:{number}: '{line.strip()}' is not a month/day date") from None
            date, section = (month, day), "Actions"
            blocks.append([date, section, []])
            continue
        heading = HEADING.match(line)
        named = _section_of(heading.group(1)) if heading else None
        if named and not re.match(r"^#{3,}", line):  # '### 1. ...' are items of a list, not sections
            section = named
            blocks.append([date, section, []])
            continue
        if not blocks:
            blocks.append([date, section, []])
        blocks[-1][2].append(line)
    return [(d, s, lines) for d, s, lines in blocks if any(text.strip() for text in lines)]


def infer_years(dates: list[tuple[int, int]], start_year: int | None, today: dt.date) -> list[dt.date]:
    def place(year):
        out, y, last = [], year, None
        for month, day in dates:
            if last is not None and (month, day) < last:
                y += 1
            out.append(dt.date(y, month, day))
            last = (month, day)
        return out

    if start_year is not None:
        return place(start_year)
    year = today.year
    while place(year) and place(year)[-1] > today:
        year -= 1
    return place(year)


def import_journal(path: str | Path, start_year: int | None = None, today: dt.date | None = None) -> list[dt.date]:
    """Write the journal's sections into the log; returns the dates written. Importing the same
    file twice adds nothing the second time (and returns no date)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabLogError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise LabLogError(
            f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); convert it first, e.g. "
            f"`iconv -f GBK -t UTF-8 {path.name} > journal-utf8.md`"
        ) from None
    blocks = parse(text, str(path))
    dated = [d for d, _, _ in blocks if d is not None]
    if not dated:
        raise LabLogError(f"{path}: no dated headings found (like '## 9/24' or '# 10/8')")
    order = list(dict.fromkeys(dated))
    years = dict(zip(order, infer_years(order, start_year, today or dt.date.today())))
    marker = f"<!-- imported from {path.name} -->"
    written: dict[dt.date, list[tuple[str, list[str]]]] = {}
    for d, section, lines in blocks:
        day = years[d] if d is not None else years[order[0]]
        written.setdefault(day, []).append((section, lines))

    added = []
    for day, parts in written.items():

        def merge(entry, parts=parts, day=day):
            if marker in entry.preamble:
                return
            added.append(day)
            entry.preamble = (entry.preamble + "\n" + marker).strip()
            for section, lines in parts:
                body = entry.sections.setdefault(section, [])
                if body and body[-1].strip():
                    body.append("")
                body.extend(lines)

        update(day, merge)
    return sorted(added)
