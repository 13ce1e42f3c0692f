"""Where the lab keeps things: the project root, runs/ and the tracking store."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


def project_root() -> Path:
    """The nearest folder at or above the working directory that holds notebooks/ and params/.

    Notebooks run with their own folder as working directory (JupyterLab and the runner), so
    the root is searched for rather than assumed. LABKIT_ROOT overrides the search.
    """
    if os.environ.get("LABKIT_ROOT"):
        return Path(os.environ["LABKIT_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and (folder / "params").is_dir():
            return folder
    return here


def runs_dir() -> Path:
    """All outputs: LABKIT_RUNS when set, else <project root>/runs."""
    path = Path(os.environ["LABKIT_RUNS"]) if os.environ.get("LABKIT_RUNS") else project_root() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def default_tracking_uri() -> str:
    return f"sqlite:///{runs_dir() / 'mlflow.db'}"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set (a team server), else the SQLite store under runs/."""
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def ui_address_file() -> Path:
    """Where a running `labkit ui` says which address it serves (the links labkit writes use it)."""
    return runs_dir() / "ui.json"


def checkpoints_dir() -> Path:
    """Every run's checkpoints, a folder per run id."""
    return runs_dir() / "checkpoints"


def checkpoint_dir(run_id: str) -> Path:
    return checkpoints_dir() / run_id


def cache_dir(kind: str) -> Path:
    path = runs_dir() / "cache" / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def exclusive(lock_file: Path):
    """Hold an OS lock on lock_file: one process at a time builds what it guards (a cache
    folder two notebooks started together would both build)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
