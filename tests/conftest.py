import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import ray_heads

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """Under pytest-xdist the test processes share the cores: one thread each (and each notebook
    kernel or subprocess they start), not every process spinning threads over every core."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)
    elif getattr(config.option, "numprocesses", None):
        # the controller: the test processes it starts inherit where its Ray head will be written
        os.environ[ray_heads.ADDRESS_FILE] = str(Path(tempfile.mkdtemp(prefix="ray-head-")) / "address")


_session_ray_head = []  # (process, folder) of the head the controller started, if any


def pytest_unconfigure(config):
    for head, folder in _session_ray_head:
        ray_heads.stop(head, folder)
    if os.environ.get(ray_heads.ADDRESS_FILE) and not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(Path(os.environ[ray_heads.ADDRESS_FILE]).parent, ignore_errors=True)


# Modules whose tests share a costly module-scoped service (PostgreSQL and a tracking server, a
# Ray head) or each run several heavy processes (ranks, a browser): each module's tests run in one
# test process, so a service starts once rather than once per process, and no two processes run
# the same module's heavy tests at once.
IN_ONE_PROCESS = ("test_server.py", "test_fanout.py", "test_browser.py", "test_distributed.py")


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scope scheduling with a scope per test, except the modules IN_ONE_PROCESS,
    one scope each (and so queued first, as the largest). Its own `loadgroup` marks no longer
    group anything under pytest 9."""
    from xdist.scheduler import LoadScopeScheduling

    class OneProcessPerModuleNamed(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if Path(module).name in IN_ONE_PROCESS else nodeid

        def schedule(self) -> None:
            """Before the first test runs, a Ray head when any test collected uses one (ray_head)."""
            if self.collection is None and not _session_ray_head:
                collected = next(iter(self.registered_collections.values()), [])
                if any(ray_heads.USERS in nodeid for nodeid in collected):
                    try:
                        address, head, folder = ray_heads.start(free_port)
                    except RuntimeError as e:  # the module's fixture tries again, and fails with this
                        self.log(str(e))
                    else:
                        _session_ray_head.append((head, folder))
                        Path(os.environ[ray_heads.ADDRESS_FILE]).write_text(address)
            super().schedule()

    return OneProcessPerModuleNamed(config, log)


# tiny settings: a full train + FID pass in seconds on a CPU
TINY = dict(
    synthetic_count=24,
    image_size=32,
    ngf=8,
    ndf=8,
    batch_size=4,
    n_epochs=1,
    n_epochs_decay=1,
    eval_every=1,
    log_every=1,
    fid_backbone="random-init",
    fid_dims=64,
    grid_samples=2,
    device="cpu",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(command: list[str], ready_url: str, log, timeout: float = 120, stop_wait: float = 30):
    """A server process (output to log) from the moment ready_url answers; terminated after, killed
    when it has not ended stop_wait seconds later."""
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{command[:4]} did not come up at {ready_url}") from None
                time.sleep(0.5)
        yield server
    finally:
        # JupyterLab shuts its kernels down first on SIGTERM; on a loaded machine that can take
        # longer than any fair wait, and the test's checks are done by then
        server.terminate()
        try:
            server.wait(timeout=stop_wait)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


def wait_for_step(step: int, since: float, timeout: float = 240):
    """The first heartbeat at or past step, in training, of a run beating since `since`."""
    import time

    from labkit import lease

    deadline = time.time() + timeout
    while time.time() < deadline:
        for path in lease.lease_dir().glob("*.beat"):
            beat = lease.last_beat(path.stem)
            if beat and beat.time > since and beat.step >= step and beat.phase == "train":
                return beat
        time.sleep(0.02)
    raise TimeoutError(f"no heartbeat reached step {step}")


def put_back(path: Path, content: bytes) -> None:
    """A file of the repository put back whole at once: the suite's other processes read the
    notebooks meanwhile, and a file rewritten in place is half written for a moment."""
    staged = path.with_name(f".{path.name}.put-back")
    staged.write_bytes(content)
    os.replace(staged, path)


def tiny_params(folder: Path, name: str, **fields) -> Path:
    """A params file `<name>.yaml` of a tiny baseline run, with `fields` on top."""
    import yaml

    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"ablation": "baseline", **TINY, **fields}))
    return path


def training_runs(experiment: str) -> list:
    """The training runs of an experiment (none when it does not exist)."""
    from labkit import keys, track

    c = track.client()
    exp = c.get_experiment_by_name(experiment)
    return c.search_runs([exp.experiment_id], f"tags.`{keys.KIND}` = 'train'") if exp else []


@pytest.fixture(scope="session", autouse=True)
def warm_kernels():
    """A test process starts dozens of kernels, one or two a test: it keeps a warm process, as a
    runner of many jobs does (labkit.kernels)."""
    from labkit import kernels

    kernels.warm_up()


@pytest.fixture(scope="session")
def lab_template(tmp_path_factory) -> Path:
    """What a lab starts from, made once a session: an empty MLflow store with its schema (2 CPU-s
    of migrations to create) and the tiny synthetic face set (1.4 CPU-s to draw). Each lab gets a
    copy, so no test sees another's runs or files."""
    from mlflow.tracking import MlflowClient

    from labkit.data.faces import synthetic_root

    runs = tmp_path_factory.mktemp("lab-template") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABKIT_RUNS", str(runs))
        MlflowClient(f"sqlite:///{runs / 'mlflow.db'}").search_experiments(max_results=1)
        from labkit.data.synthetic import write_synthetic_set

        write_synthetic_set(synthetic_root(TINY["synthetic_count"], 0.0), count=TINY["synthetic_count"], progress=False)
    return runs


def _point_the_lab_at(tmp_path: Path, monkeypatch) -> Path:
    runs = tmp_path / "runs"
    monkeypatch.setenv("LABKIT_ROOT", str(ROOT))
    monkeypatch.setenv("LABKIT_RUNS", str(runs))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("LABKIT_LOG", str(tmp_path / "lablog"))
    return runs


@pytest.fixture
def lab(tmp_path, monkeypatch, lab_template):
    """An empty lab: runs/ with an empty MLflow store (and the tiny synthetic face set) in a
    temporary folder, the repo as project root."""
    runs = _point_the_lab_at(tmp_path, monkeypatch)
    shutil.copytree(lab_template, runs)
    return runs


@pytest.fixture
def bare_lab(tmp_path, monkeypatch):
    """A lab where nothing exists yet, not even the store: for tests that check nothing is created."""
    return _point_the_lab_at(tmp_path, monkeypatch)


@pytest.fixture
def tiny_cfg():
    from labkit.config import SketchConfig

    return lambda **kw: SketchConfig(**{**TINY, **kw})
