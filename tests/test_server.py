"""A team's tracking server for real: Debian's PostgreSQL (initdb and pg_ctl, as the postgres user
when the tests run as root, since the server refuses root) on a free loopback port in a temporary
folder, and `labkit server` on it. Ablations, compare, the lab log and eight runners at once go
through HTTP; everything is read back through the server's REST API."""

import base64
import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY, free_port, serving

from labkit import cli, server

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = pytest.mark.skipif(
    not PG_BIN, reason="needs Debian's PostgreSQL server (apt-get install postgresql; .ci/run installs it)"
)


@pytest.fixture(scope="module")
def postgres():
    """postgresql://... of an empty database on a PostgreSQL server of its own."""
    bindir, folder = Path(PG_BIN[-1]), Path(tempfile.mkdtemp(prefix="labkit-pg-"))
    owner = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        owner = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    run = lambda *args: subprocess.run([*owner, *map(str, args)], check=True, capture_output=True)  # noqa: E731
    try:
        run(bindir / "initdb", "-D", data, "-U", "labkit", "-A", "trust", "-E", "UTF8", "--no-sync")
        run(
            bindir / "pg_ctl",
            "-D",
            data,
            "-l",
            folder / "server.log",
            "-w",
            "-o",
            f"-p {port} -h 127.0.0.1 -k {folder} -F",
            "start",
        )
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "labkit", "mlflow")
        yield f"postgresql://labkit@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(
            [*owner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _labkit_server(store: str, artifacts: Path, log_file: Path, *options: str):
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        sys.executable,
        "-m",
        "labkit.cli",
        "server",
        store,
        "--artifacts",
        str(artifacts),
        "--port",
        url.rsplit(":", 1)[1],
        "--workers",
        "2",
        *options,
    ]
    with open(log_file, "w") as log, serving(command, f"{url}/health", log, timeout=180, stop_wait=90):
        yield url
    with pytest.raises(OSError):  # the server's own web server and workers ended with it, the port is free
        urllib.request.urlopen(f"{url}/health", timeout=2)


@pytest.fixture(scope="module")
def tracking_server(postgres, tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    with _labkit_server(postgres, folder / "artifacts", folder / "server.log") as url:
        yield url, folder / "artifacts"


def _api(url: str, endpoint: str, body: dict | None = None, login: tuple[str, str] | None = None, **query) -> dict:
    """One call of MLflow's REST API (2.0, unless the endpoint names its version: 3.0/...): GET with
    the query, POST with a JSON body; as a user with login."""
    version, endpoint = endpoint.split("/", 1) if endpoint.startswith("3.0/") else ("2.0", endpoint)
    address = f"{url}/api/{version}/mlflow/{endpoint}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    headers = {"Content-Type": "application/json"}
    if login:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(login).encode()).decode()
    request = urllib.request.Request(address, data=None if body is None else json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _artifact(url: str, run: dict, path: str) -> bytes:
    """An artifact's bytes, through the server (which proxies the artifact store)."""
    query = urllib.parse.urlencode({"path": path, "run_uuid": run["info"]["run_id"]})
    with urllib.request.urlopen(f"{url}/get-artifact?{query}", timeout=30) as answer:
        return answer.read()


def _files(url: str, run_id: str, path: str) -> list[str]:
    """Every artifact file under path, listed folder by folder through the API."""
    found = []
    for entry in _api(url, "artifacts/list", run_id=run_id, path=path).get("files", []):
        found += _files(url, run_id, entry["path"]) if entry["is_dir"] else [entry["path"]]
    return found


def test_a_store_that_is_not_there_is_refused_before_the_server_starts(postgres):
    wrong = postgres.rsplit("/", 1)[0] + "/nosuchdb"
    problems = server.store_problems(wrong)
    assert len(problems) == 1 and "nosuchdb" in problems[0] and "createdb" in problems[0]
    assert "PostgreSQL database" in server.store_problems("sqlite:///runs/mlflow.db")[0]
    assert server.hidden_password("postgresql://me:secret@db:5432/lab") == "postgresql://me:***@db:5432/lab"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "psycopg", None)  # the extra not installed
        assert server.store_problems(postgres) == [server.DRIVER_MISSING]
    result = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "server", wrong], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 2 and "refused, nothing was started" in result.stderr


@pytest.mark.slow
def test_ablations_compare_and_the_lab_log_through_the_server(lab, tracking_server, tmp_path, monkeypatch, capsys):
    url, artifacts = tracking_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    files = []
    for name, extra in (("base", {"ablation": "baseline"}), ("glad", {"ablation": "glad", "lambda_glad": 100.0})):
        files.append(tmp_path / f"{name}.yaml")
        files[-1].write_text(yaml.safe_dump({**TINY, "experiment": "team", **extra}))
    assert cli.main(["ablate", *map(str, files), "--workers", "2", "--no-progress"]) == 0
    assert cli.main(["compare", "--experiment", "team"]) == 0
    assert cli.main(["log", "add", "base-s0 against glad-s0, tracked on the team server"]) == 0
    assert cli.main(["log", "show"]) == 0
    printed = capsys.readouterr().out
    table = (lab / "compare" / "team.md").read_text()
    assert "| glad | GAN + 100·L1 + 100·glad |" in table and "| baseline | GAN + 100·L1 |" in table
    assert f"{url}/#/experiments/" in printed  # the log links the runs to the server's pages
    assert cli.main(["runs", "--all", "--experiment", "team"]) == 0
    listed = capsys.readouterr().out
    assert "base-s0" in listed and "glad-s0" in listed and listed.count("FINISHED") == 2

    # read back by plain HTTP, as any other tool of the team would
    experiment = _api(url, "experiments/get-by-name", experiment_name="team")["experiment"]
    runs = _api(url, "runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    by_name = {r["info"]["run_name"]: r for r in runs}
    assert set(by_name) == {"base-s0", "glad-s0"} and {r["info"]["status"] for r in runs} == {"FINISHED"}
    notebooks = set()
    for run in by_name.values():
        assert run["info"]["artifact_uri"].startswith("mlflow-artifacts:")  # proxied: clients never touch the store
        history = _api(url, "metrics/get-history", run_id=run["info"]["run_id"], metric_key="fid")["metrics"]
        assert [m["step"] for m in history] == [1, 2]  # an evaluation per epoch (TINY: 1 + 1 epochs)
        listed = _api(url, "artifacts/list", run_id=run["info"]["run_id"], path="notebook")["files"]
        notebook = next(f["path"] for f in listed if f["path"].endswith(".ipynb"))
        notebooks.add(Path(notebook).name)
        executed = json.loads(_artifact(url, run, notebook))
        assert any(cell.get("outputs") for cell in executed["cells"])  # the executed notebook, with its outputs
        pictures = [p for p in _files(url, run["info"]["run_id"], "images") if p.endswith(".png")]
        assert pictures and all(_artifact(url, run, p)[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures[:3])
    assert {p.name for p in artifacts.rglob("*.ipynb")} == notebooks  # kept by the server, in its folder
    assert not (lab / "artifacts").exists()  # and nothing in the client's runs/


RUNNER = """
import sys, time
from labkit import track
index, steps, start = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
c = track.client()
run = track.Run(c, c.create_run(track.experiment_id(c, "crowd"), run_name=f"runner-{index}").info.run_id)
time.sleep(max(0.0, start - time.time()))  # all eight begin together
for step in range(1, steps + 1):
    run.log_metrics({"loss": index + step / 1000, "lr": 1.0 / step}, step)
    if step % 25 == 0:
        run.set_tags({"reached": step})
run.log_text(f"runner {index} done", "summary.txt")
c.set_terminated(run.run_id, "FINISHED")
"""


@pytest.mark.slow
def test_eight_runners_logging_at_once_lose_nothing(lab, tracking_server, monkeypatch):
    url, _ = tracking_server
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    steps, start = 100, time.time() + 8
    runners = [
        subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(i), str(steps), str(start)],
            env=env,
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    for runner in runners:
        assert runner.wait(timeout=300) == 0, runner.stderr.read()[-2000:]
    experiment = _api(url, "experiments/get-by-name", experiment_name="crowd")["experiment"]
    runs = _api(url, "runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    assert sorted(r["info"]["run_name"] for r in runs) == [f"runner-{i}" for i in range(8)]
    for run in runs:
        index = int(run["info"]["run_name"].split("-")[1])
        assert run["info"]["status"] == "FINISHED"
        for key, value in (("loss", lambda s, i=index: i + s / 1000), ("lr", lambda s: 1.0 / s)):
            history = _api(url, "metrics/get-history", run_id=run["info"]["run_id"], metric_key=key, max_results=1000)[
                "metrics"
            ]
            assert sorted((m["step"], m["value"]) for m in history) == [
                (s, pytest.approx(value(s))) for s in range(1, steps + 1)
            ]
        assert {t["key"]: t["value"] for t in run["data"]["tags"]}["reached"] == str(steps)
        assert _artifact(url, run, "summary.txt") == f"runner {index} done".encode()


def test_off_loopback_the_server_refuses_to_start_without_a_login(postgres, tmp_path, capsys):
    port = free_port()
    assert server.serve(postgres, tmp_path / "artifacts", "0.0.0.0", port, 1) == 2
    assert "--host 0.0.0.0 is reachable from other machines" in capsys.readouterr().err
    short = tmp_path / "short"
    short.write_text("too-short\n")
    assert server.serve(postgres, tmp_path / "artifacts", "0.0.0.0", port, 1, password_file=short) == 2
    assert "at least 12 characters" in capsys.readouterr().err
    with pytest.raises(OSError):  # nothing was started
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


@pytest.mark.slow
def test_the_login_keeps_out_who_does_not_belong(lab, postgres, tmp_path, monkeypatch):
    """MLflow's basic-auth app in front of the team's store: no anonymous call, a reader cannot
    delete, and `labkit ablate` logs with the MLflow way's credentials."""
    secret = "correct-horse-battery"
    (tmp_path / "admin").write_text(secret + "\n")
    admin, reader = ("admin", secret), ("reader", "a-reader-password")
    options = ("--admin-password-file", str(tmp_path / "admin"), "--allowed-hosts", "mlflow.lab.example")
    with _labkit_server(postgres, tmp_path / "artifacts", tmp_path / "server.log", *options) as url:
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            _api(url, "experiments/search", max_results=10)
        assert anonymous.value.code == 401
        for host, code in (("mlflow.lab.example:5000", 401), ("rebound.example", 403)):  # DNS rebinding refused
            request = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search", headers={"Host": host})
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(request, timeout=30)
            assert answer.value.code == code, host
        _api(url, "users/create", {"username": reader[0], "password": reader[1]}, login=admin)
        exp = _api(url, "experiments/create", {"name": "guarded"}, login=admin)["experiment_id"]
        run_id = _api(url, "runs/create", {"experiment_id": exp}, login=admin)["run"]["info"]["run_id"]
        grant = {"username": reader[0], "resource_type": "experiment", "resource_id": exp, "permission": "READ"}
        _api(url, "3.0/users/permissions/grant", grant, login=admin)
        assert _api(url, "runs/get", login=reader, run_id=run_id)["run"]["info"]["run_id"] == run_id
        with pytest.raises(urllib.error.HTTPError) as refused:
            _api(url, "runs/delete", {"run_id": run_id}, login=reader)
        assert refused.value.code == 403

        env = {**os.environ, "MLFLOW_TRACKING_URI": url, "MLFLOW_TRACKING_USERNAME": admin[0]}
        params = tmp_path / "tiny.yaml"
        params.write_text(yaml.safe_dump({"ablation": "baseline", **TINY, "experiment": "guarded"}))
        ablate = [sys.executable, "-m", "labkit.cli", "ablate", str(params), "--no-progress", "--no-log"]
        unknown = subprocess.run(ablate, env=env, capture_output=True, text=True)  # no password: refused
        assert unknown.returncode == 2 and "user 'admin' and its password were not accepted" in unknown.stderr
        done = subprocess.run(ablate, env={**env, "MLFLOW_TRACKING_PASSWORD": secret}, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        runs = _api(url, "runs/search", {"experiment_ids": [exp]}, login=admin)["runs"]
        assert {r["info"]["status"] for r in runs if r["info"]["run_name"] == "tiny-s0"} == {"FINISHED"}
    assert secret not in (tmp_path / "server.log").read_text()  # never printed
    private = list((tmp_path / ".artifacts.login").iterdir())  # beside the artifacts the server serves
    assert sorted(p.name for p in private) == ["basic_auth.ini", "flask_secret_key"]
    assert all(p.stat().st_mode & 0o077 == 0 and secret not in p.read_text() for p in private)
