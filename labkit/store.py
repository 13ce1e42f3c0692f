"""The store's file: a SQLite tracking store (runs/mlflow.db by default) read, checked, created
under a lock and backed up without MLflow, so a command that finds it missing, empty, damaged or
without the experiment asked for answers before MLflow is even imported (2 s)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

from . import keys
from .config import ParamError
from .paths import runs_dir, tracking_uri


class StoreError(ParamError):
    """The tracking store is missing where it is only read, empty, damaged or locked too long:
    the message names the file and the fix; nothing was changed."""


def store_path() -> Path | None:
    """The SQLite file of the store (None for a server or another database)."""
    uri = tracking_uri()
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def damage(path: Path) -> str:
    """What SQLite finds wrong with a store file ('' when nothing)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            found = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.OperationalError as exc:  # busy is not damage
        return "" if "locked" in str(exc) else str(exc)
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return "" if found == "ok" else found


def truncated(path: Path) -> str:
    """What the file's own header says is missing from it ('' when nothing, or when it cannot
    tell): a copy cut short or a full disk, found without reading the whole store."""
    with open(path, "rb") as f:
        header = f.read(100)
    if not header.startswith(b"SQLite format 3\x00") or len(header) < 100:
        return "not an SQLite database"
    page_size = int.from_bytes(header[16:18], "big")
    expected = int.from_bytes(header[28:32], "big") * (65536 if page_size == 1 else page_size)
    valid = header[24:28] == header[92:96]  # the header's size is valid while these counters agree
    size = path.stat().st_size
    return f"truncated: {size} of its {expected} bytes are there" if valid and expected > size else ""


def _damaged(path: Path, found: str) -> StoreError:
    return StoreError(
        f"{path}: the store is damaged ({found}); nothing was changed. Restore it from a backup (`labkit backup` "
        f"makes one), or recover what it holds: `sqlite3 {path} .recover | sqlite3 recovered.db`, then put "
        "recovered.db in its place"
    )


def damaged() -> StoreError | None:
    """The error to give when the store's file is damaged (None: it is not): asked after a failure."""
    path = store_path()
    found = damage(path) if path is not None and path.exists() else ""
    return _damaged(path, found) if found else None


def check(path: Path, create: bool) -> None:
    """Refuse a store that is not there where it is only read, or is empty: MLflow would make a
    new empty one in its place, and every run would be gone from view without a word. One that
    is cut short is refused too (other damage is found when MLflow reads it: damaged())."""
    if not path.exists() and not create:
        raise StoreError(
            f"no tracking store at {path}: nothing has run in this lab yet (`labkit ablate` makes it), or "
            "LABKIT_RUNS points at another folder than the lab's runs/"
        )
    if path.exists() and path.stat().st_size == 0:
        raise StoreError(
            f"{path} is empty (0 bytes): the store was truncated or lost, and labkit will not start a new one over "
            "it. Restore it from a backup (`labkit backup` makes one), or move it aside to start an empty store"
        )
    if path.exists() and truncated(path) and (found := damage(path)):  # SQLite, under its lock, confirms it
        raise _damaged(path, found)


@contextlib.contextmanager
def creating(path: Path):
    """One process at a time opens a store that may still be new (parallel first starts would
    each create its schema). The lock is on the store's folder, so opening a store leaves no
    file beside it; a filesystem that cannot lock a folder (NFS) gets a lock file there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            os.close(fd)
            fd = os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def experiment_names(path: Path) -> list[str] | None:
    """The active experiments of a store file, read with SQLite (None where it cannot tell)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT name FROM experiments WHERE lifecycle_stage = 'active'").fetchall()
    except sqlite3.Error:
        return None
    return sorted(name for (name,) in rows if name != "Default")


def newest_measured_experiment(path: Path) -> str | None:
    """The experiment whose newest run measured FID (what `labkit compare` tabulates) started last,
    read with SQLite; None where there is none or it cannot tell."""
    query = (
        "SELECT e.name FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
        "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = ? "
        "WHERE e.lifecycle_stage = 'active' AND r.lifecycle_stage = 'active' ORDER BY r.start_time DESC LIMIT 1"
    )
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute(query, (keys.FID_BACKBONE,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _rows(db, query: str, args: tuple) -> dict[str, dict]:
    """run id -> {key: value} for a tags, params or latest_metrics query."""
    out: dict[str, dict] = {}
    for run_id, key, value in db.execute(query, args):
        out.setdefault(run_id, {})[key] = value
    return out


def read_runs(path: Path, experiments: list[str] | None = None, running_only: bool = False) -> list:
    """The active runs of a store file (of these experiments), newest first, read with SQLite: what
    a command that only reads needs, in the shape of MLflow's runs where labkit reads them
    (info.run_id, run_name, status, experiment_id, start_time, artifact_uri; data.tags, params,
    metrics: the last value of each). Importing MLflow alone takes seconds."""
    where = ["r.lifecycle_stage = 'active'", "e.lifecycle_stage = 'active'"]
    args: tuple = ()
    if experiments is not None:
        where.append(f"e.name IN ({', '.join('?' * len(experiments))})")
        args += tuple(experiments)
    if running_only:
        where.append("r.status = 'RUNNING'")
    joined = (
        "JOIN runs r ON r.run_uuid = x.run_uuid JOIN experiments e ON e.experiment_id = r.experiment_id "
        f"WHERE {' AND '.join(where)}"
    )
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        runs = db.execute(
            "SELECT r.run_uuid, r.name, r.status, r.experiment_id, e.name, r.start_time, r.artifact_uri FROM runs r "
            f"JOIN experiments e ON e.experiment_id = r.experiment_id WHERE {' AND '.join(where)} "
            "ORDER BY r.start_time DESC",
            args,
        ).fetchall()
        tags = _rows(db, f"SELECT x.run_uuid, x.key, x.value FROM tags x {joined}", args)
        params = _rows(db, f"SELECT x.run_uuid, x.key, x.value FROM params x {joined}", args)
        metrics = _rows(db, f"SELECT x.run_uuid, x.key, x.value FROM latest_metrics x {joined}", args)
    return [
        SimpleNamespace(
            info=SimpleNamespace(
                run_id=run_id,
                run_name=name,
                status=status,
                experiment_id=str(experiment_id),
                experiment_name=experiment,
                start_time=start,
                artifact_uri=artifact_uri,
            ),
            data=SimpleNamespace(
                tags=tags.get(run_id, {}), params=params.get(run_id, {}), metrics=metrics.get(run_id, {})
            ),
        )
        for run_id, name, status, experiment_id, experiment, start, artifact_uri in runs
    ]


def store_wait_minutes() -> float:
    """How long a write waits for a store another process holds locked (LABKIT_STORE_WAIT_MINUTES)."""
    return float(os.environ.get("LABKIT_STORE_WAIT_MINUTES", "10"))


NOTE_LIMIT = 8000  # characters a tag's value holds in MLflow's store (its `tags.value` column)


def set_note(path: Path, run_id: str, key: str, text: str) -> None:
    """A run's note tag written into a SQLite store's file, as MLflow writes a tag (one row of
    `tags`), without the seconds MLflow takes to import; a store another process holds locked is
    waited for as every write waits (LABKIT_STORE_WAIT_MINUTES)."""
    with contextlib.closing(sqlite3.connect(path, timeout=60 * store_wait_minutes())) as db, db:
        db.execute(
            "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) "
            "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
            (key, text[:NOTE_LIMIT], run_id),
        )


def find_reference(ref: str, runs: list, by: float | None = None) -> object | None:
    """The run a short reference means, newest first: a run name (`glad-s0`), a params file's
    stem (`glad`: its newest run), or six or more leading characters of a run id. With `by` (a time,
    seconds: the end of a lab-log entry's day) the newest run started by then, when there is one."""
    for match in (
        lambda r: r.info.run_name == ref,
        lambda r: r.data.tags.get(keys.LABEL) == ref,
        lambda r: len(ref) >= 6 and r.info.run_id.startswith(ref.lower()),
    ):
        found = [r for r in runs if match(r)]
        earlier = [r for r in found if by is None or (r.info.start_time or 0) / 1000 <= by]
        if found:
            return (earlier or found)[0]
    return None


def unknown_experiment(name: str, names: list[str]) -> ParamError:
    return ParamError(
        f"no experiment '{name}' in {tracking_uri()}; the experiments are: "
        f"{', '.join(names) or 'none yet (run `labkit ablate` first)'}"
    )


def require(experiment: str | None = None, create: bool = False) -> None:
    """Before MLflow loads: the store file is whole, there unless it may be created, and holds the
    experiment (where given). A server, or a file SQLite cannot read, is left to MLflow."""
    path = store_path()
    if path is None:
        return
    check(path, create)
    names = experiment_names(path) if experiment else None
    if names is not None and experiment not in names:
        raise unknown_experiment(experiment, names)


def backup(dest: Path | None = None) -> Path:
    """A consistent copy of the live SQLite store (SQLite's online backup: runs may go on
    logging meanwhile), by default under runs/backups/ with the time in its name."""
    path = store_path()
    if path is None:
        raise StoreError(f"the store is {tracking_uri()}: back up a server's database with its own tools")
    check(path, create=False)
    dest = Path(dest) if dest else runs_dir() / "backups" / f"mlflow-{time.strftime('%Y%m%d-%H%M%S')}.db"
    if dest.exists():
        raise StoreError(f"{dest} exists already: name another file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    with (
        contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as source,
        contextlib.closing(sqlite3.connect(partial)) as copy,
    ):
        source.backup(copy)
    partial.replace(dest)  # a backup is whole or absent
    return dest
