"""Long runs that survive: real `labkit ablate` processes killed, frozen and started twice on a
real SQLite store with real kernels; a full disk; checkpoints and weights that must not load."""

import datetime as dt
import json
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest
import torch
import yaml
from conftest import ROOT, TINY, wait_for_step
from mlflow.exceptions import MlflowException

from labkit import cli, drive, keys, lablog, lease, plan, runs, store, track
from labkit.config import ParamError, SketchConfig
from labkit.data import load_faces
from labkit.style.vgg import CONV_INDEX, VGGEncoder, WeightsMismatch
from labkit.train import CheckpointError, Checkpoints, Diverged, fit

# slow enough per step (64 px, batch 1) that a kill lands mid-epoch; 18 training faces an epoch
SLOW = dict(TINY, ablation="baseline", image_size=64, ngf=16, ndf=16, batch_size=1, n_epochs=2, checkpoint_every=3)


def _params(tmp_path, name, **values):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**SLOW, **values}))
    return path


def _labkit(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "labkit.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _runs(experiment):
    c = track.client()
    exp = c.get_experiment_by_name(experiment)
    return c.search_runs([exp.experiment_id], f"tags.`{keys.KIND}` = 'train'") if exp else []


def _repeated_steps(run_id) -> list:
    """(key, step) pairs with step > 0 that the store holds more than once."""
    c = track.client()
    seen, twice = set(), []
    for key in c.get_run(run_id).data.metrics:
        for m in c.get_metric_history(run_id, key):
            if m.step > 0 and (key, m.step) in seen:
                twice.append((key, m.step))
            seen.add((key, m.step))
    return twice


def _weights(run_id) -> dict:
    return Checkpoints(run_id).load()["model"]


def _same_weights(a: dict, b: dict) -> None:
    """Generator, discriminator and both optimisers' states, bit for bit."""
    for net in ("G", "D"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), (net, name)
    for opt in ("opt_G", "opt_D"):
        for index, state in a[opt]["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b[opt]["state"][index][name])), (opt, name)


@pytest.mark.slow
def test_kill_9_mid_epoch_then_the_same_command_resumes_one_run_exactly(lab, tmp_path, capsys):
    reference = _params(tmp_path, "reference", experiment="reference")
    assert cli.main(["ablate", str(reference), "--no-progress", "--no-log"]) == 0
    params = _params(tmp_path, "killed", experiment="killed")
    started = time.time()
    runner = _labkit("ablate", params, "--no-progress", "--no-log")
    beat = wait_for_step(23, started)  # epoch 2 of 3, past the mid-epoch checkpoint at step 21
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    deadline = time.time() + 15
    while _alive(beat.pid) and time.time() < deadline:  # the kernel notices its parent is gone
        time.sleep(0.2)
    assert not _alive(beat.pid), "the kernel outlived the command that drove it"
    [killed] = _runs("killed")
    assert killed.info.status == "RUNNING" and runs.states(["killed"])[0].dead

    # the newest checkpoint damaged as well: the resume falls back to the previous one, and says so here
    checkpoints = Checkpoints(killed.info.run_id)
    if not checkpoints.path.is_file():  # killed between a checkpoint's two renames: the previous one is whole
        shutil.copy(checkpoints.prev, checkpoints.path)
    newest = checkpoints.path
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    capsys.readouterr()
    assert cli.main(["ablate", str(params), "--no-progress", "--no-log"]) == 0  # the same command again
    assert f"note: {newest}: cannot read this checkpoint" in (out := capsys.readouterr().out)
    assert "; falling back to the previous checkpoint" in out and "model.prev.pt" in out
    [run] = _runs("killed")
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert "swept" in run.data.tags[keys.EARLIER_ERROR]  # the dead run was seen as dead, then resumed
    assert keys.ERROR not in run.data.tags and keys.HEARTBEAT not in run.data.tags  # none of it stale
    killed_attempt = lab / dt.date.today().isoformat() / f"killed-s0-{run.info.run_id[:8]}.ipynb"
    assert run.data.tags[keys.NOTEBOOK] == str(killed_attempt.with_name(f"{killed_attempt.stem}-attempt2.ipynb"))
    assert killed_attempt.is_file()  # the killed attempt's notebook is kept beside it
    assert _repeated_steps(run.info.run_id) == []
    _same_weights(_weights(run.info.run_id), _weights(_runs("reference")[0].info.run_id))
    executed = nbformat.read(run.data.tags[keys.NOTEBOOK], as_version=4)
    assert any("resuming run" in o.get("text", "") for c in executed.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_a_frozen_kernel_is_seen_stacked_killed_and_restarted(lab, tmp_path):
    params = _params(tmp_path, "frozen", experiment="frozen", stall_minutes=0.05, stall_minutes_slow=2.0)
    started = time.time()
    runner = _labkit("ablate", params, "--no-progress")
    beat = wait_for_step(10, started)
    os.kill(beat.pid, signal.SIGSTOP)  # frozen, as the user's training at iteration 1500
    out, _ = runner.communicate(timeout=300)
    assert runner.returncode == 0, out[-3000:]
    assert "stalled in train" in out and "restarted from its last checkpoint (1/2)" in out
    assert not _alive(beat.pid)
    [run] = _runs("frozen")
    assert run.info.status == "FINISHED" and run.data.tags["labkit.stalls"] == "1"
    stacks = track.client().download_artifacts(run.info.run_id, "stalls/stall-1.txt", str(tmp_path))
    text = Path(stacks).read_text()
    assert "Thread" in text and ("train" in text or "step" in text), text[:2000]  # the frozen kernel's own stacks
    attached = [a.path for a in track.client().list_artifacts(run.info.run_id, keys.NOTEBOOK_DIR)]
    assert len([p for p in attached if p.endswith(".ipynb")]) == 2  # each attempt's notebook
    assert _repeated_steps(run.info.run_id) == []
    problems = "\n".join(lablog.read_entry(next(lablog.log_dir().glob("*.md"))).sections["Problems"])
    assert f"run:{run.info.run_id[:8]}" in problems and "stalled in train" in problems


def test_a_run_whose_process_died_is_swept(lab, tmp_path, capsys):
    code = (
        "import time\nfrom labkit import track\nfrom labkit.config import SketchConfig\n"
        "run = track.open_run(SketchConfig(experiment='orphan'))\nrun.beat(7, force=True)\n"
        "print(run.run_id, flush=True)\ntime.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    run_id = owner.stdout.readline().strip()
    assert cli.main(["runs", "--experiment", "orphan"]) == 0
    assert f"pid {owner.pid}" in capsys.readouterr().out  # alive: its holder is shown, it is not swept
    assert runs.sweep(["orphan"]) == []
    owner.kill()
    owner.wait()
    assert cli.main(["runs", "--experiment", "orphan"]) == 0
    assert "DEAD" in capsys.readouterr().out
    assert cli.main(["runs", "--sweep"]) == 0
    assert "-> KILLED (last heartbeat at step 7" in capsys.readouterr().out
    run = track.client().get_run(run_id)
    assert run.info.status == "KILLED" and "nothing drives this run" in run.data.tags[keys.ERROR]


@pytest.mark.slow
def test_identical_commands_at_once_make_one_run(lab, tmp_path):
    params = _params(tmp_path, "twice", experiment="twice")
    runners = [_labkit("ablate", params, "--no-progress", "--no-log") for _ in range(3)]  # on a store not yet made
    outs = [r.communicate(timeout=300)[0] for r in runners]
    ran = [o for o, r in zip(outs, runners) if r.returncode == 0 and "1 ok" in o]
    refused = [o for o, r in zip(outs, runners) if r.returncode == 1]
    assert len(ran) >= 1 and len(refused) >= 1 and len(ran) + len(refused) == 3, outs
    assert sum("FINISHED" in o for o in ran) == 1  # one drove it; a late one finds it finished (SKIPPED)
    assert all("these parameters are being run already: lease held by pid" in o for o in refused)
    assert len(_runs("twice")) == 1
    # the same file twice in one command is one job
    assert len(plan.plan([params, params])) == 1
    assert len(plan.plan([params, params], seeds=2)) == 2


@pytest.mark.slow
def test_a_full_disk_fails_the_run_and_keeps_its_notebook_valid(lab, tmp_path):
    params = _params(tmp_path, "full", experiment="full")
    checkpoints = lab / "checkpoints"
    checkpoints.mkdir(parents=True)
    if (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(checkpoints)], capture_output=True
        ).returncode
        == 0
    ):
        expected = "No space left"  # a checkpoint (24 MB) does not fit
    elif os.geteuid() == 0:  # root that may not mount: the checkpoint folder's place taken by a file
        checkpoints.rmdir()
        checkpoints.write_text("")
        expected = "Not a directory"
    else:
        checkpoints.chmod(0o555)  # without root: a folder it may not write
        expected = "Permission denied"
    try:
        assert cli.main(["ablate", str(params), "--no-progress", "--no-log"]) == 1
        [run] = _runs("full")
        assert run.info.status == "FAILED"
        error = run.data.tags[keys.ERROR]
        assert error.startswith("CheckpointError: cannot write a checkpoint") or expected in error, error
        notebook = nbformat.read(run.data.tags[keys.NOTEBOOK], as_version=4)  # valid JSON, with the error in it
        assert any(o.get("output_type") == "error" for c in notebook.cells for o in c.get("outputs", []))
        assert not list(checkpoints.rglob("*.tmp"))
    finally:
        subprocess.run(["umount", str(checkpoints)], capture_output=True)
        checkpoints.chmod(0o755)


class _RunsCode:
    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_that_carries_code_is_refused(lab, tmp_path):
    checkpoints = Checkpoints("crafted")
    checkpoints.folder.mkdir(parents=True)
    payload = _RunsCode()
    payload.marker = tmp_path / "ran"
    with open(checkpoints.path, "wb") as f:
        pickle.dump({"model": payload}, f)
    with pytest.raises(
        CheckpointError, match=r"cannot read this checkpoint \(it holds objects that would run code"
    ) as e:
        checkpoints.load()
    assert not payload.marker.exists() and "weights_only=False" not in str(e.value)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(lab):
    checkpoints = Checkpoints("corrupt")
    checkpoints.save({"epoch": 1, "step": 10})
    checkpoints.save({"epoch": 2, "step": 20})
    checkpoints.path.write_bytes(checkpoints.path.read_bytes()[:100])  # cut off
    with pytest.warns(UserWarning, match=r"falling back to the previous checkpoint .*model.prev.pt \(epoch 1, step 10"):
        assert checkpoints.load()["step"] == 10


def test_a_checkpoint_resumes_where_other_gpus_or_another_precision_are(tiny_cfg):
    """A checkpoint holds the CUDA generator of the GPU its process trained on: one saved with
    two GPUs visible (older checkpoints: every visible GPU's) resumes where one or none is; a run
    checkpointed without fp16 (its gradient scaler disabled, saved empty) resumes with fp16."""
    from labkit.train.checkpoint import cuda_rng_to_restore, rng_state, set_rng_state
    from labkit.train.pix2pix import Pix2Pix

    first, second = torch.zeros(16, dtype=torch.uint8), torch.ones(16, dtype=torch.uint8)
    assert cuda_rng_to_restore([first, second], visible=1) is first
    assert cuda_rng_to_restore(second, visible=2) is second
    assert cuda_rng_to_restore([first, second], visible=0) is None and cuda_rng_to_restore(None, visible=1) is None
    set_rng_state({**rng_state(), "cuda": [first, second]})  # a two-GPU checkpoint, here on the CPU

    bf16 = Pix2Pix(tiny_cfg(fast=False), torch.device("cpu"))
    fp16 = Pix2Pix(tiny_cfg(fast=False), torch.device("cpu"))
    fp16.scaler = torch.amp.GradScaler("cpu", enabled=True)  # what precision: fp16 makes on a GPU
    assert bf16.state_dict()["scaler"] == {}
    fp16.load_state_dict(bf16.state_dict())
    assert fp16.scaler.is_enabled() and fp16.scaler.get_scale() == torch.amp.GradScaler("cpu").get_scale()


@pytest.mark.slow
def test_a_resume_mid_epoch_is_exact(lab, tiny_cfg, monkeypatch):
    cfg = tiny_cfg(checkpoint_every=2, n_epochs=2, n_epochs_decay=0, batch_size=2)
    reference = fit(cfg, load_faces(cfg, progress=False), track.open_run(cfg), progress=False)
    original = track.Run.log_metrics

    def dies_at_step_7(self, values, step=None):  # mid-epoch 1 (9 steps an epoch), after the checkpoint at 6
        if step == 7:
            raise KeyboardInterrupt
        original(self, values, step)

    monkeypatch.setattr(track.Run, "log_metrics", dies_at_step_7)
    with pytest.raises(KeyboardInterrupt), track.open_run(cfg) as run:
        fit(cfg, load_faces(cfg, progress=False), run, progress=False)
    monkeypatch.setattr(track.Run, "log_metrics", original)
    result = fit(cfg, load_faces(cfg, progress=False), track.open_run(cfg, run_id=run.run_id), progress=False)
    assert Checkpoints(run.run_id).load()["step"] == result.step
    _same_weights(result.model.state_dict(), reference.model.state_dict())
    assert _repeated_steps(run.run_id) == []


def test_divergence_fails_the_run_with_its_step_and_a_real_checkpoint(lab, tiny_cfg):
    cfg = tiny_cfg(lr=1e6)
    with pytest.raises(Diverged, match=r"at epoch 1, step \d+\. no checkpoint was written yet: a rerun starts from"):
        fit(cfg, load_faces(cfg, progress=False), track.open_run(cfg), progress=False)
    cfg = tiny_cfg(lr=1e6, checkpoint_every=1)
    with pytest.raises(Diverged, match=r"the last checkpoint is kept at .*model.pt"):
        fit(cfg, load_faces(cfg, progress=False), track.open_run(cfg), progress=False)


def test_vgg_weights_load_strictly_in_known_layouts(tmp_path):
    reference = VGGEncoder("random-init", seed=3)
    state = {f"features.{k}": v for k, v in reference.features.state_dict().items()}
    caffe = tmp_path / "caffe.pth"
    by_index = {i: name for name, i in CONV_INDEX.items()}
    torch.save({f"{by_index[int(k.split('.')[1])]}.{k.split('.')[2]}": v for k, v in state.items()}, caffe)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(
        VGGEncoder(str(caffe))(x, ("relu4_1",), check=False)["relu4_1"],
        reference(x, ("relu4_1",), check=False)["relu4_1"],
    )
    foreign = tmp_path / "foreign.pth"
    torch.save({"encoder.layer1.weight": torch.zeros(3), **state}, foreign)
    with pytest.raises(WeightsMismatch, match=r"unexpected: \['encoder.layer1.weight'\]"):
        VGGEncoder(str(foreign))
    empty = tmp_path / "empty.pth"
    torch.save({}, empty)
    with pytest.raises(WeightsMismatch, match=r"missing: \['features.0.weight'"):
        VGGEncoder(str(empty))


def test_a_hung_kernel_answers_with_its_stacks(lab):
    code = (
        "import time\nfrom labkit import lease\nlease.dump_stacks_on_signal('hung')\n"
        "def waiting_for_a_lock():\n    print('ready', flush=True)\n    time.sleep(600)\nwaiting_for_a_lock()\n"
    )
    hung = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert hung.stdout.readline().strip() == "ready"  # printed inside the function: its frame is on the stack
    try:
        stacks = drive.python_stacks(hung.pid, lease.lease_dir() / "hung.stacks")
    finally:
        hung.kill()
    assert "waiting_for_a_lock" in stacks


def test_compare_of_an_unknown_experiment_lists_the_experiments(lab, capsys):
    track.experiment_id(track.client(), "faces-real")
    assert cli.main(["compare", "--experiment", "nosuch"]) == 2
    assert "no experiment 'nosuch'" in (err := capsys.readouterr().err) and "faces-real" in err


def test_compare_without_an_experiment_takes_the_one_measured_last(lab, capsys):
    """After `make demo` (experiment demo) a plain `labkit compare` tabulates the demo, not the
    empty default; a style run (no FID) or a table's run does not count."""
    for experiment, measured in (("older", True), ("demo", True), ("demo-style", False)):
        with track.open_run(SketchConfig(experiment=experiment)) as run:
            run.set_tags({keys.FID_BACKBONE: "random-init", keys.FID_N_REAL: "6"} if measured else {})
            run.end(keys.Status.KILLED)
        time.sleep(0.01)  # start times in this order
    assert cli.main(["compare", "--no-log"]) == 0
    captured = capsys.readouterr()
    assert "experiment 'demo' (its runs measured FID last" in captured.err
    assert "No finished runs with an FID in experiment 'demo' yet" in captured.out


def test_compare_of_an_experiment_whose_runs_were_all_killed_says_so(lab, capsys):
    with track.open_run(SketchConfig(experiment="killed")) as run:
        run.set_tags({keys.FID_BACKBONE: "random-init", keys.FID_N_REAL: "6"})  # set up, never evaluated
        run.end(keys.Status.KILLED)
    assert cli.main(["compare", "--experiment", "killed", "--no-log"]) == 0
    assert "No finished runs with an FID in experiment 'killed' yet" in capsys.readouterr().out


def _other_filesystem(path: Path) -> Path | None:
    """A writable folder on another filesystem than `path`'s (/dev/shm is a tmpfs where there is one)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != path.stat().st_dev:
        return shm
    return None


def test_a_notebook_on_another_filesystem_than_the_temp_folder_is_attached(lab, tmp_path):
    """runs/ on its own disk (or a tmpfs), $TMPDIR elsewhere: the executed notebook and its HTML
    still reach the run (a move across the two once failed every run at its very end)."""
    other = _other_filesystem(tmp_path)
    if other is None:
        pytest.skip("no second filesystem to put the notebook on (/dev/shm)")
    folder = Path(tempfile.mkdtemp(dir=other))
    try:
        notebook = folder / "baseline-s0.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# done")]), notebook)
        with track.open_run(SketchConfig(experiment="disks")) as run:
            track.attach_notebook(run, notebook)
        names = {a.path for a in run.client.list_artifacts(run.run_id, keys.NOTEBOOK_DIR)}
        assert names == {"notebook/baseline-s0.ipynb", "notebook/baseline-s0.html"}
        assert sorted(p.name for p in folder.iterdir()) == ["baseline-s0.ipynb"]  # nothing left beside it
    finally:
        shutil.rmtree(folder)


def test_ui_runs_mlflow_of_this_python_with_an_argument_list(lab, monkeypatch, tmp_path, capsys):
    spaced = tmp_path / "a folder"
    monkeypatch.setenv("LABKIT_RUNS", str(spaced))
    assert cli.main(["ui", "--print-only"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(f"{sys.executable} -m mlflow ui --backend-store-uri ")
    assert cli.ui_command()[5] == f"sqlite:///{spaced / 'mlflow.db'}"  # one argument, space and all


def test_heartbeats_are_cheap_to_call_every_step(lab):
    run = track.open_run(SketchConfig(experiment="beats"))
    run.beat(1, force=True)
    first = lease.last_beat(run.run_id)
    run.beat(2)  # within BEAT_SECONDS: not written
    assert lease.last_beat(run.run_id).step == 1 == first.step
    assert json.loads(track.client().get_run(run.run_id).data.tags[keys.HEARTBEAT])["step"] == 1


def test_two_runs_storing_the_same_new_data_at_once_both_record_it(lab, monkeypatch):
    """MLflow's store looks a dataset up and then inserts it: two runs starting on the same new data
    at once can both insert, and the second insert fails the unique key (seen once in the demo's
    two-at-a-time batch; too rare to provoke on demand). The race is played here: the other run's
    insert lands between this run's look-up and its insert."""
    c = track.client()
    exp = track.experiment_id(c, "same-data")
    first, second = (track.Run(c, c.create_run(exp).info.run_id) for _ in range(2))
    real = c.log_inputs

    def the_other_run_wins(run_id, inputs):
        monkeypatch.setattr(c, "log_inputs", real)
        first.log_dataset("faces", "d1", "/data/faces")  # stored meanwhile by the other run
        raise MlflowException(
            "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name, datasets.digest"
        )

    monkeypatch.setattr(c, "log_inputs", the_other_run_wins)
    second.log_dataset("faces", "d1", "/data/faces")
    for run in (first, second):
        inputs = c.get_run(run.run_id).inputs.dataset_inputs
        assert sorted(i.dataset.name for i in inputs) == ["faces (test)", "faces (train)"]
    monkeypatch.setattr(c, "log_inputs", lambda *a: (_ for _ in ()).throw(MlflowException("store unreachable")))
    with pytest.raises(MlflowException, match="unreachable"):  # any other failure still fails
        second.log_dataset("faces", "d2", "/data/faces")


@pytest.mark.parametrize(
    "args, refusal",
    [
        (["ablate", "baseline", "--seeds", "0"], "argument --seeds: must be at least 1, got 0"),
        (["ablate", "baseline", "--seeds", "-2"], "argument --seeds: must be at least 1, got -2"),
        (["ablate", "baseline", "--workers", "0"], "argument --workers: must be at least 1, got 0"),
        (["ablate", "baseline", "--nproc", "0"], "argument --nproc: must be at least 1, got 0"),
        (["ablate", "baseline", "--sample", "0"], "argument --sample: must be at least 1, got 0"),
        (["synth", "out", "--count", "0"], "argument --count: must be at least 1, got 0"),
        (["server", "--port", "70000"], "argument --port: a port is at most 65535, got 70000"),
    ],
)
def test_the_command_line_is_checked_before_any_work(bare_lab, args, refusal, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(args)
    assert exited.value.code == 2 and refusal in capsys.readouterr().err
    assert not (bare_lab / "mlflow.db").exists() and not Path("out").exists()


def test_runs_of_an_unknown_experiment_lists_the_experiments(lab, capsys):
    track.experiment_id(track.client(), "faces-real")
    assert cli.main(["runs", "--experiment", "nosuch"]) == 2
    assert "no experiment 'nosuch'" in (err := capsys.readouterr().err) and "faces-real" in err


def test_a_missing_empty_or_damaged_store_is_named_and_never_replaced(bare_lab, tmp_path, monkeypatch, capsys):
    db = bare_lab / "mlflow.db"
    for reading in (["runs", "--all"], ["compare", "--experiment", "faces", "--no-log"]):
        assert cli.main(reading) == 2
        assert f"no tracking store at {db}" in capsys.readouterr().err and not db.exists()
    db.write_bytes(b"")
    for command in (["runs", "--all"], ["ablate", "baseline", "--no-log"]):
        assert cli.main(command) == 2
        assert f"{db} is empty (0 bytes)" in capsys.readouterr().err and db.stat().st_size == 0

    db.unlink()
    with track.open_run(SketchConfig(experiment="kept")):
        pass
    assert cli.main(["backup", str(tmp_path / "copy.db")]) == 0 and "the store copied to" in capsys.readouterr().out
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    damaged = db.read_bytes()
    monkeypatch.setattr(track, "_READY", set())  # a new process: the store is opened afresh
    assert cli.main(["runs", "--all"]) == 2
    err = capsys.readouterr().err
    assert f"{db}: the store is damaged (database disk image is malformed)" in err and ".recover" in err
    assert db.read_bytes() == damaged  # nothing was changed

    (tmp_path / "copy.db").replace(db)  # the backup restores every run (read by a new process, as a user would)
    listed = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "runs", "--all", "--experiment", "kept"], capture_output=True, text=True
    )
    assert listed.returncode == 0 and "FINISHED" in listed.stdout, listed.stderr


@pytest.mark.slow
def test_a_store_locked_longer_than_sqlite_waits_is_waited_out(lab, monkeypatch, capsys):
    """SQLite itself waits 20 s for a lock; a backup or a `sqlite3` shell may hold one longer. A
    write waits, says so, and lands; past LABKIT_STORE_WAIT_MINUTES it fails naming the store."""
    run = track.open_run(SketchConfig(experiment="locked"))
    holder = sqlite3.connect(lab / "mlflow.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setenv("LABKIT_STORE_WAIT_MINUTES", "0.01")
    with pytest.raises(store.StoreError, match=r"stayed locked by another process for 2\d s; gave up"):
        run.log_metrics({"loss": 1.0}, step=1)
    capsys.readouterr()
    monkeypatch.setenv("LABKIT_STORE_WAIT_MINUTES", "1")
    threading.Timer(24, holder.rollback).start()  # longer than SQLite's own 20 s
    started = time.monotonic()
    run.log_metrics({"loss": 2.0}, step=1)
    assert time.monotonic() - started > 23
    assert "is locked by another process; waiting up to 1 min" in capsys.readouterr().err
    assert [v for _, v in run.metric_history("loss")] == [2.0]
    run.end()


def test_a_long_holder_command_keeps_its_start_and_its_end():
    """A BUSY message names the holder's command; two commands usually differ at their end."""
    command = "labkit ablate " + " ".join(f"params/run{i}.yaml" for i in range(40)) + " --set lr=1e-3"
    short = lease.shortened(command)
    assert len(short) <= 300 and short.startswith("labkit ablate params/run0.yaml") and short.endswith("--set lr=1e-3")
    assert lease.shortened("labkit ablate glad") == "labkit ablate glad"


def test_a_notebook_run_again_by_hand_continues_the_run_of_its_parameters(lab, tmp_path, capsys):
    """Restart & Run All, or plain papermill with the values of an earlier `labkit ablate` run:
    the same parameters find their run instead of making `baseline-s0-2`; a run another process
    drives is refused, naming it."""
    namespace = {"ablation": "baseline", "experiment": "by-hand", **TINY, "In": []}
    made = track.create_run(SketchConfig(experiment="by-hand", **TINY), label="baseline")  # as labkit ablate makes it
    _, first = track.start(dict(namespace))
    assert first.run_id == made
    first.end()
    assert "run baseline-s0 FINISHED\n  http://" in capsys.readouterr().out  # the notebook's last cell says so
    _, again = track.start(dict(namespace))
    assert again.run_id == made and again.name == "baseline-s0"
    code = (
        "import sys, time; from labkit import track\n"
        f"run = track.OwnedRun(track.client(), {made!r}, system_metrics=False)\n"
        "print('held', flush=True)\ntime.sleep(60)\n"
    )
    again.end()
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ParamError, match="these parameters are being run already"):
            track.start(dict(namespace))
    finally:
        holder.kill()
