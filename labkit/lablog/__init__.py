"""The dated lab log, tied to the runs it talks about."""

from .entries import SECTIONS, Entry, LabLogError, add, all_entries, log_dir, new, parse_date, read_entry
from .journal import import_journal
from .render import select, to_html, to_text
from .runs import Resolver, record_batch, references, sync_notes

__all__ = [
    "SECTIONS",
    "Entry",
    "LabLogError",
    "add",
    "all_entries",
    "log_dir",
    "new",
    "parse_date",
    "read_entry",
    "import_journal",
    "select",
    "to_html",
    "to_text",
    "Resolver",
    "record_batch",
    "references",
    "sync_notes",
]
