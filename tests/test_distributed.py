"""One face run trained by several processes: torchrun and DDP with gloo on this CPU, real worker
processes, a real store. Two processes equal one process with the same batch; a killed command
takes every process with it and the same command resumes the run exactly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
import yaml
from conftest import ROOT, TINY, training_runs, wait_for_step

from labkit import cli, keys, track
from labkit.config import ParamError, SketchConfig
from labkit.data import load_faces
from labkit.train import Checkpoints, fit
from labkit.train.distributed import DistributedTrainingError, World

# fp32 and eager: the reference formulation, so that only the processes differ. 18 training
# faces, an even split for two processes (an odd count repeats faces in the last step, as
# DistributedSampler pads)
EXACT = dict(TINY, fast=False, n_epochs=2, n_epochs_decay=1, synthetic_count=24)


def _train(cfg) -> tuple[dict, object]:
    with track.open_run(cfg) as run:
        result = fit(cfg, load_faces(cfg, progress=False), run, progress=False)
    return {
        k: np.array([v for _, v in run.metric_history(k)]) for k in ("loss_G", "loss_D", "loss_G_L1", "fid")
    }, result


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.abs(a)))


@pytest.mark.slow
def test_two_processes_train_as_one_process_with_the_same_batch(lab):
    one, _ = _train(SketchConfig(**EXACT, experiment="one"))
    two, result = _train(SketchConfig(**EXACT, experiment="two", nproc=2))
    # the same curve (measured: 1.7e-7 relative), FID measured once per evaluation by rank 0
    for key in ("loss_G", "loss_D", "loss_G_L1"):
        assert len(two[key]) == len(one[key]) == 15 and _rel(one[key], two[key]) < 1e-4, key
    assert len(two["fid"]) == 3 and _rel(one["fid"], two["fid"]) < 1e-3
    [run] = training_runs("two")
    assert run.data.tags[keys.DEVICE].endswith("x 2 processes") and run.info.status == "FINISHED"
    assert result.epoch == 3 and result.step == 15 and result.last_grid is not None  # the kernel's views
    # what the comparison tells apart: one process on one process's share is another curve
    half, _ = _train(SketchConfig(**{**EXACT, "batch_size": 2}, experiment="half"))
    assert _rel(one["loss_G"][:5], half["loss_G"][:5]) > 1e-3


def test_dropout_off_is_upstreams_no_dropout(tiny_cfg):
    from labkit.train.pix2pix import Pix2Pix

    counts = {}
    for dropout in (True, False):
        model = Pix2Pix(tiny_cfg(image_size=64, dropout=dropout), torch.device("cpu"))
        counts[dropout] = (
            sum(isinstance(m, torch.nn.Dropout) for m in model.G.modules()),
            sum(p.numel() for p in model.G.parameters()),
        )
        model.G.train()
        photo = torch.rand(1, 3, 64, 64) * 2 - 1
        same = torch.equal(model.G(photo), model.G(photo))
        assert same is (not dropout)  # only dropout makes two training-mode passes differ
    assert counts[True][0] == 1 and counts[False][0] == 0 and counts[True][1] == counts[False][1]


def test_a_rank_shards_the_epoch_as_distributed_sampler_does():
    from torch.utils.data import DistributedSampler

    order = [7, 3, 9, 0, 5, 1, 10, 2, 8, 4, 6]  # an epoch's order
    for size in (1, 2, 3, 4):
        shards = [World(rank, size).shard(order) for rank in range(size)]
        assert shards == [
            [order[i] for i in DistributedSampler(order, size, rank, shuffle=False)] for rank in range(size)
        ]
        padded = order + order[: (-len(order)) % size]
        for per in (1, 2):  # step k over every rank holds the faces of one process's step k
            for k in range(len(shards[0]) // per):
                assert sorted(i for shard in shards for i in shard[k * per : (k + 1) * per]) == sorted(
                    padded[k * per * size : (k + 1) * per * size]
                )


def test_settings_that_cannot_split_are_refused_before_any_run(lab, tmp_path, capsys):
    with pytest.raises(ParamError, match=r"batch_size=3 does not split over nproc=2"):
        SketchConfig(**{**TINY, "batch_size": 3}, nproc=2)
    with pytest.raises(ParamError, match=r"device='cuda:1' names one GPU, nproc=2 needs one each"):
        SketchConfig(**{**TINY, "device": "cuda:1"}, nproc=2)
    params = tmp_path / "odd.yaml"
    params.write_text(yaml.safe_dump({"ablation": "baseline", **TINY, "batch_size": 3}))
    assert cli.main(["ablate", str(params), "--nproc", "2", "--no-log", "--no-progress"]) == 2
    assert "odd.yaml: invalid parameters: batch_size=3 does not split over nproc=2" in capsys.readouterr().err
    assert training_runs("faces") == []


def _family(pid: int) -> set[int]:
    try:
        return {pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


@pytest.mark.slow
def test_kill_9_mid_run_ends_every_process_and_the_same_command_resumes_exactly(lab, tmp_path):
    slow = dict(EXACT, batch_size=2, n_epochs=2, n_epochs_decay=1, checkpoint_every=3)
    (tmp_path / "killed.yaml").write_text(yaml.safe_dump({"ablation": "baseline", **slow, "experiment": "killed"}))
    _train(SketchConfig(**slow, experiment="reference", nproc=2))  # uninterrupted, the same two processes' training
    command = [
        sys.executable,
        "-m",
        "labkit.cli",
        "ablate",
        str(tmp_path / "killed.yaml"),
        "--nproc",
        "2",
        "--no-progress",
        "--no-log",
    ]
    started = time.time()
    runner = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    beat = wait_for_step(13, started)  # epoch 2 of 3 (9 steps each), past the checkpoint at step 12
    tree = _family(runner.pid)
    assert beat.pid in tree and len(tree) >= 4  # kernel, torchrun, two ranks
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    deadline = time.time() + 20
    while (
        any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in tree)
        and time.time() < deadline
    ):
        time.sleep(0.2)
    alive = [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], "processes outlived the command that drove them"

    assert subprocess.run(command, cwd=ROOT, capture_output=True).returncode == 0  # the same command again
    [run] = training_runs("killed")
    assert run.info.status == "FINISHED" and "swept" in run.data.tags[keys.EARLIER_ERROR]
    [reference] = training_runs("reference")
    resumed, uninterrupted = (Checkpoints(r.info.run_id).load() for r in (run, reference))
    assert resumed["step"] == uninterrupted["step"] == 27
    for net in ("G", "D"):
        for name, tensor in uninterrupted["model"][net].items():
            assert torch.equal(tensor, resumed["model"][net][name]), (net, name)
    history = track.Run(track.client(), run.info.run_id).metric_history("loss_G")
    assert [s for s, _ in history] == list(range(1, 28))  # every step logged once, by rank 0


def _rank(process: psutil.Process) -> str | None:
    try:
        return process.environ().get("RANK")
    except psutil.Error:  # ended meanwhile
        return None


@pytest.mark.slow
def test_a_rank_that_freezes_is_seen_stacked_and_the_run_restarted(lab, tmp_path):
    """Rank 0 waits for the frozen rank in the next collective and stops beating: the watchdog
    records rank 0's stacks and kills it, torchrun ends the rest, the notebook restarts."""
    params = tmp_path / "frozen.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "ablation": "baseline",
                **EXACT,
                "batch_size": 2,
                "checkpoint_every": 3,
                "stall_minutes": 0.1,
                "experiment": "frozen",
            }
        )
    )
    started = time.time()
    runner = subprocess.Popen(
        [sys.executable, "-m", "labkit.cli", "ablate", str(params), "--nproc", "2", "--no-progress", "--no-log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    wait_for_step(5, started)
    [rank1] = [p for p in psutil.Process(runner.pid).children(recursive=True) if _rank(p) == "1"]
    rank1.suspend()
    out, _ = runner.communicate(timeout=600)
    assert runner.returncode == 0, out
    assert "(rank 0 pid" in out and "restarted from its last checkpoint (1/2)" in out
    assert not psutil.pid_exists(rank1.pid) or rank1.status() == psutil.STATUS_ZOMBIE
    [run] = training_runs("frozen")
    assert run.info.status == "FINISHED" and run.data.tags["labkit.stalls"] == "1"
    stacks = track.client().download_artifacts(run.info.run_id, "stalls/stall-1.txt", str(tmp_path))
    assert "labkit/train" in Path(stacks).read_text()  # rank 0, waiting for the frozen one


@pytest.mark.slow
def test_a_run_diverging_on_several_processes_fails_in_rank_0s_words(lab):
    cfg = SketchConfig(**{**EXACT, "lr": 1e6}, experiment="diverged", nproc=2)
    with pytest.raises(
        DistributedTrainingError,
        match=r"^rank 0: Diverged: non-finite .* at epoch 1, step \d+\. no "
        r"checkpoint was written yet",
    ):
        _train(cfg)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpus_train_as_one_gpu_with_the_same_batch(lab):
    """The NCCL path: torch's SyncBatchNorm, one GPU per rank."""
    cuda = dict(EXACT, device="cuda", compile="off")
    one, _ = _train(SketchConfig(**cuda, experiment="one"))
    two, _ = _train(SketchConfig(**cuda, experiment="two", nproc=2))
    for key in ("loss_G", "loss_D", "loss_G_L1"):
        assert _rel(one[key], two[key]) < 1e-3, key
