"""A team's tracking server: `mlflow server` on PostgreSQL, with the artifacts proxied.

    labkit server postgresql://USER@HOST:PORT/DB --artifacts DIR [--host 127.0.0.1] [--port 5000]

Runs, parameters, metrics and tags live in PostgreSQL; artifacts (grids, checkpoints' summaries,
executed notebooks) in DIR on the server's machine. Clients speak HTTP only: each sets
MLFLOW_TRACKING_URI=http://HOST:PORT and every labkit command works as on the local store, with no
database driver and no storage credentials of its own (the server uploads and serves the
artifacts; runs' artifact places read mlflow-artifacts:/...). The server has no login: it binds
to 127.0.0.1 unless told otherwise, and anyone who can reach its port can write to it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

DRIVER_MISSING = (
    "PostgreSQL's driver (psycopg, which MLflow uses) is not installed here: pip install -e '.[cluster]' "
    "(make test installs it). Clients of the server do not need it, only the server."
)


def hidden_password(uri: str) -> str:
    """The store URI fit to print: its password replaced by ***."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return uri.replace(f":{parts.password}@", ":***@", 1)


def store_problems(store_uri: str) -> list[str]:
    """What keeps `mlflow server` from using this store, found before it starts: a URI that is not
    PostgreSQL's, a missing driver, a database that does not answer or does not exist."""
    if urlsplit(store_uri).scheme not in ("postgresql", "postgresql+psycopg"):
        return [
            f"{hidden_password(store_uri)}: a team store is a PostgreSQL database, "
            "postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE"
        ]
    try:
        import psycopg
    except ImportError:
        return [DRIVER_MISSING]
    try:
        psycopg.connect(store_uri.replace("postgresql+psycopg://", "postgresql://", 1), connect_timeout=10).close()
    except psycopg.OperationalError as exc:
        reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        return [
            f"{hidden_password(store_uri)}: PostgreSQL did not accept the connection ({reason}). Is the server "
            "running and listening there, and does the database exist (createdb DATABASE)?"
        ]
    return []


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def server_command(
    store_uri: str, artifacts: Path, host: str = "127.0.0.1", port: int = 5000, workers: int = 4
) -> list[str]:
    """`mlflow server` on the store, serving (proxying) the artifacts kept in `artifacts`."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        store_uri,
        "--artifacts-destination",
        str(Path(artifacts).expanduser().resolve()),
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def serve(store_uri: str, artifacts: Path, host: str, port: int, workers: int) -> int:
    """Check the store, then run the server until it is stopped; returns its exit code."""
    problems = store_problems(store_uri)
    if problems:
        print("labkit server: refused, nothing was started:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    Path(artifacts).expanduser().mkdir(parents=True, exist_ok=True)
    command = server_command(store_uri, artifacts, host, port, workers)
    print(shlex.join([hidden_password(a) for a in command]))
    print(f"  clients: export MLFLOW_TRACKING_URI=http://{host}:{port}")
    if not loopback(host):
        print(
            f"  {host} is reachable from other machines and the server has no login: keep it inside a trusted network"
        )
    return run_until_stopped(command)


def run_until_stopped(command: list[str], grace: float = 30.0) -> int:
    """Run the server in a process group of its own until it exits or this process is stopped
    (Ctrl+C, SIGTERM), then end the whole group: `mlflow server` runs its web server and workers
    as children that would otherwise outlive it, still holding the port. Returns the server's
    exit code, 0 when it was stopped."""
    process = subprocess.Popen(command, start_new_session=True)
    stopped = []
    previous = {
        s: signal.signal(s, lambda signum, frame: stopped.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while process.poll() is None and not stopped:
            time.sleep(0.5)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        end_group(process, grace)
    return 0 if stopped else process.returncode


def end_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM to every process of the group, SIGKILL to what is left after grace seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()  # reap the leader, so that only live members keep the group
            os.killpg(process.pid, 0)  # raises once every process of the group has ended
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
