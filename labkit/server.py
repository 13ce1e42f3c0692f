"""A team's tracking server: `mlflow server` on PostgreSQL, with the artifacts proxied.

    labkit server postgresql://USER@HOST:PORT/DB --artifacts DIR [--host 127.0.0.1] [--port 5000]
        [--admin-password-file FILE] [--open]

Runs, parameters, metrics and tags live in PostgreSQL; artifacts (grids, checkpoints' summaries,
executed notebooks) in DIR on the server's machine. Clients speak HTTP only: each sets
MLFLOW_TRACKING_URI=http://HOST:PORT and every labkit command works as on the local store, with no
database driver and no storage credentials of its own (the server uploads and serves the
artifacts; runs' artifact places read mlflow-artifacts:/...).

The login is MLflow's basic-auth app: users and per-experiment permissions (READ, EDIT, MANAGE)
kept in the same database. It is on whenever the admin's password is given (a file, or
MLFLOW_AUTH_ADMIN_PASSWORD; never printed), and required on any interface other than loopback:
there the server refuses to start without it unless told `--open` (a trusted network only).
Clients log in the MLflow way: MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ADMIN = "admin"  # the user the login starts with; it adds the others
AUTH_MISSING = (
    "MLflow's login (its basic-auth app) needs Flask-WTF, which is not installed here: pip install -e '.[cluster]'"
)
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


def host_patterns(names: list[str]) -> list[str]:
    """MLflow's --allowed-hosts for a server reached by these names: MLflow's own default
    (loopback, private addresses, any port) and each name, with or without a port. MLflow
    refuses a request whose Host header matches none (a DNS rebinding page in a browser)."""
    from mlflow.server.security_utils import get_default_allowed_hosts

    return [*get_default_allowed_hosts(), *(pattern for name in names for pattern in (name, f"{name}:*"))]


def admin_password(password_file: Path | None) -> str:
    """The admin's password: from the file (its first line), else MLFLOW_AUTH_ADMIN_PASSWORD ('' without either)."""
    if password_file is None:
        return os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD", "")
    lines = Path(password_file).expanduser().read_text().splitlines()
    return lines[0].strip() if lines else ""


def login_problems(host: str, password: str, open_: bool) -> list[str]:
    """What keeps the server from starting with the login it needs: none off loopback unless
    --open, a password MLflow refuses, the auth app's package missing."""
    if not password:
        if loopback(host) or open_:
            return []
        return [
            f"--host {host} is reachable from other machines, and anyone who reaches the port could read, change "
            "and delete every run: give the admin's password (--admin-password-file FILE, or "
            "MLFLOW_AUTH_ADMIN_PASSWORD) to turn on the login, or --open to run without one inside a trusted network"
        ]
    if len(password) < 12:
        return ["the admin's password must be at least 12 characters (MLflow's rule)"]
    try:
        import flask_wtf  # noqa: F401
    except ImportError:
        return [AUTH_MISSING]
    return []


def _auth_config(store_uri: str, folder: Path) -> Path:
    """MLflow's basic-auth settings: users and permissions in the store's own database, logged-in
    users reading every experiment, an experiment's creator managing it. The password is not in it."""
    path = folder / "basic_auth.ini"
    path.write_text(
        f"[mlflow]\ndefault_permission = READ\ndatabase_uri = {store_uri}\nadmin_username = {ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    path.chmod(0o600)  # it holds the database's URI, and with it any password that URI has
    return path


def _session_secret(folder: Path) -> str:
    """The key the login's forms are signed with (CSRF): one per server, kept across restarts
    (every worker and every restart must share it), unless MLFLOW_FLASK_SERVER_SECRET_KEY is set."""
    if os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
        return os.environ["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    path = folder / "flask_secret_key"
    if not path.is_file():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def serve(
    store_uri: str,
    artifacts: Path,
    host: str,
    port: int,
    workers: int,
    password_file: Path | None = None,
    open_: bool = False,
    allowed_hosts: list[str] = (),
) -> int:
    """Check the store and the login, then run the server until it is stopped; returns its exit code."""
    password = admin_password(password_file)
    problems = login_problems(host, password, open_) + store_problems(store_uri)
    if problems:
        print("labkit server: refused, nothing was started:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    artifacts = Path(artifacts).expanduser()
    artifacts.mkdir(parents=True, exist_ok=True)
    command, env = server_command(store_uri, artifacts, host, port, workers), dict(os.environ)
    if allowed_hosts:
        command += ["--allowed-hosts", ",".join(host_patterns(allowed_hosts))]
    if password:
        command += ["--app-name", "basic-auth"]
        # beside the artifacts, never among them: the server serves any file under --artifacts
        private = artifacts.parent / f".{artifacts.name}.login"
        private.mkdir(mode=0o700, exist_ok=True)
        env.update(
            MLFLOW_AUTH_CONFIG_PATH=str(_auth_config(store_uri, private)),
            MLFLOW_AUTH_ADMIN_PASSWORD=password,
            MLFLOW_FLASK_SERVER_SECRET_KEY=_session_secret(private),
        )
    print(shlex.join([hidden_password(a) for a in command]))
    print(f"  clients: export MLFLOW_TRACKING_URI=http://{host}:{port}")
    if password:
        print(
            f"  login on: clients set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD; '{ADMIN}' adds users "
            "(REST users/create, or the UI's admin page) and grants them experiments (users/permissions/grant)"
        )
    elif not loopback(host):
        print(f"  --open: {host} is reachable from other machines and the server has no login")
    return run_until_stopped(command, env=env)


def run_until_stopped(command: list[str], grace: float = 30.0, env: dict | None = None) -> int:
    """Run the server in a process group of its own until it exits or this process is stopped
    (Ctrl+C, SIGTERM), then end the whole group: `mlflow server` runs its web server and workers
    as children that would otherwise outlive it, still holding the port. Returns the server's
    exit code, 0 when it was stopped."""
    process = subprocess.Popen(command, start_new_session=True, env=env)
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
