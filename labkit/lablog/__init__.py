"""The dated lab log, tied to the runs it talks about. Names load on first use, so a command that
only needs LabLogError (every `labkit` command catches it) does not import MLflow."""

from ..lazy import lazy_getattr

_WHERE = {
    **dict.fromkeys(["SECTIONS", "Entry", "LabLogError", "add", "all_entries", "log_dir", "new"], "entries"),
    **dict.fromkeys(["parse_date", "read_entry"], "entries"),
    "import_journal": "journal",
    **dict.fromkeys(["select", "to_html", "to_text"], "render"),
    **dict.fromkeys(["Resolver", "record_batch", "references", "sync_notes"], "runs"),
}
__all__ = list(_WHERE)

__getattr__ = lazy_getattr(__name__, _WHERE)
