"""Ablations fanned out on Ray: a Ray head the test starts on 127.0.0.1 with two CPUs, tiny jobs
executed on its workers and tracked as on this machine, one that fails kept apart, and a worker
lost mid-run whose run is swept and then resumed."""

import os
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
import ray_heads
import yaml
from conftest import TINY, free_port, wait_for_step

from labkit import cli, keys, runs, track
from labkit.data import write_synthetic_set

ray = pytest.importorskip("ray", reason="the cluster extra: pip install -e '.[cluster]' (make test installs it)")


@pytest.fixture(scope="module")
def ray_head():
    """HOST:PORT of a Ray head: the one the xdist controller started for the session, else one of
    this module's own (tests/ray_heads.py says why)."""
    written = os.environ.get(ray_heads.ADDRESS_FILE)
    if written and Path(written).exists():
        yield Path(written).read_text()
        return
    try:
        address, head, folder = ray_heads.start(free_port)
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield address
    finally:
        ray_heads.stop(head, folder)


def _params(folder: Path, name: str, **fields) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"ablation": "baseline", **TINY, "experiment": "fan", **fields}))
    return path


@pytest.mark.slow
def test_on_ray_jobs_run_as_tasks_and_a_failing_one_stays_apart(lab, ray_head, tmp_path, capsys):
    # faces that pass every check before the run, and too few to hold out: it fails inside the notebook
    faces = write_synthetic_set(tmp_path / "too-few-to-hold-out", count=8, progress=False)
    files = [_params(tmp_path, "tiny"), _params(tmp_path, "broken", data_root=str(faces), val_fraction=0.05)]
    assert cli.main(["ablate", *map(str, files), "--executor", "ray", "--address", ray_head, "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert f"on Ray ({ray_head}: 2 CPUs, 0 GPUs), one CPU each" in out and "2 job(s): 1 ok, 1 failed" in out
    c = track.client()
    runs = {r.info.run_name: r for r in c.search_runs([c.get_experiment_by_name("fan").experiment_id])}
    ok, failed = runs["tiny-s0"], runs["broken-s0"]
    assert ok.info.status == "FINISHED" and "fid" in ok.data.metrics
    assert failed.info.status == "FAILED" and "DataError" in failed.data.tags["labkit.error"]
    attached = sorted(a.path for a in c.list_artifacts(ok.info.run_id, "notebook"))
    assert attached == [f"notebook/tiny-s0-{ok.info.run_id[:8]}.{ext}" for ext in ("html", "ipynb")]


def test_without_ray_the_message_says_how_to_install_it(bare_lab, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert cli.main(["ablate", str(_params(tmp_path, "tiny")), "--executor", "ray", "--no-progress"]) == 2
    assert "--executor ray needs Ray: pip install -e '.[cluster]'" in capsys.readouterr().err
    assert not (bare_lab / "mlflow.db").exists()  # refused before anything ran
    assert cli.main(["ablate", str(_params(tmp_path, "tiny")), "--address", "127.0.0.1:1"]) == 2
    assert "add --executor ray" in capsys.readouterr().err


def test_a_cluster_that_does_not_answer_is_refused_at_once(bare_lab, tmp_path, capsys):
    started = time.time()
    tiny = str(_params(tmp_path, "tiny"))
    assert cli.main(["ablate", tiny, "--executor", "ray", "--address", f"127.0.0.1:{free_port()}"]) == 2
    assert "no Ray cluster answers there" in capsys.readouterr().err and time.time() - started < 30
    assert cli.main(["ablate", tiny, "--executor", "ray", "--address", "headnode"]) == 2
    assert "write the head's HOST:PORT" in capsys.readouterr().err
    assert not (bare_lab / "mlflow.db").exists()


@pytest.mark.slow
def test_on_ray_a_lost_worker_leaves_a_run_that_is_swept_then_resumed(lab, ray_head, tmp_path, capsys):
    """The worker driving a run is killed mid-epoch: the job fails on its own, the notebook's kernel
    ends with its worker, and the same command again sweeps the dead run and resumes it."""
    params = _params(
        tmp_path, "lost", experiment="lost", image_size=64, ngf=16, ndf=16, batch_size=1, n_epochs=2, checkpoint_every=3
    )  # slow enough per step that the kill lands mid-epoch, after a checkpoint
    command = ["ablate", str(params), "--executor", "ray", "--address", ray_head, "--no-progress", "--no-log"]
    codes, started = [], time.time()
    driver = threading.Thread(target=lambda: codes.append(cli.main(command)))
    driver.start()
    beat = wait_for_step(5, started)
    kernel = psutil.Process(beat.pid)
    # the kernel runs under a Ray worker, not this process (forked by the worker's warm process)
    worker = next(p for p in kernel.parents() if "ray" in " ".join(p.cmdline()).lower())
    worker.kill()
    driver.join(timeout=120)
    assert codes == [1] and "the Ray worker was lost" in capsys.readouterr().out
    assert psutil.wait_procs([kernel], timeout=15)[1] == [], "the kernel outlived its worker"
    [lost] = _runs("lost")
    assert lost.info.status == "RUNNING" and runs.states(["lost"])[0].dead

    assert cli.main(command) == 0  # the same command again
    [run] = _runs("lost")
    assert run.info.run_id == lost.info.run_id and run.info.status == "FINISHED"
    assert "swept" in run.data.tags[keys.EARLIER_ERROR]  # seen as dead, then resumed from its checkpoint
    executed = nbformat.read(run.data.tags[keys.NOTEBOOK], as_version=4)
    assert any("resuming run" in o.get("text", "") for c in executed.cells for o in c.get("outputs", []))


def _runs(experiment: str) -> list:
    c = track.client()
    return c.search_runs([c.get_experiment_by_name(experiment).experiment_id])
