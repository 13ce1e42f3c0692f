"""One face run trained by several processes (`nproc`): torchrun starts them, each trains a
DistributedDataParallel replica on its share of every step's faces, and rank 0 alone logs,
checkpoints and measures FID.

launch   What the notebook's kernel does in `labkit.train.fit` when nproc > 1: it runs torchrun
         (`torch.distributed.run --standalone --nproc-per-node N`) on labkit.train.worker, shows
         its output as it comes and waits. The tree dies with the kernel: torchrun and each rank
         are killed when their parent dies (PR_SET_PDEATHSIG), so a killed `labkit ablate` or a
         stalled run restarted by its watchdog leaves nothing behind. Rank 0 beats for the run
         (its pid is the one the watchdog asks for stacks). The kernel then loads the finished
         checkpoint, as for any finished run, for the notebook's views.
worker   (labkit.train.worker) one rank: its device (cuda:LOCAL_RANK with NCCL, else the CPU
         with gloo), the faces, the run and labkit.train.fit with its World.
World    rank, size, and the few collectives the loop needs.

N processes compute what one process computes with the same batch_size:
- batch_size is the step's whole batch; each process takes batch_size / nproc faces of it. The
  epoch's order (loop.epoch_order) is sharded the way torch's DistributedSampler shards: padded
  by wrapping to a multiple of N, then every N-th face from the rank's offset, so the faces of
  step k over all processes are those of one process's step k;
- a face is jittered by (seed, epoch, index), wherever it trains (labkit.data.faces);
- BatchNorm normalises over the whole step's batch while a process holds fewer than
  SYNC_BATCHNORM_BELOW faces: torch's SyncBatchNorm on GPUs, and on CPUs, where torch's refuses,
  SyncBatchNormCPU (the same statistics, summed across processes with autograd);
- DDP averages the gradients; the losses logged are the mean over the processes.
What differs: each process draws its own dropout masks, and sums add up in another order.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from ..lease import last_beat

SYNC_BATCHNORM_BELOW = 16  # faces per process: with fewer, BatchNorm's statistics are the whole step's
FAILED = "labkit.train.distributed: rank"  # how a worker's error line starts, for the launcher to find


class DistributedTrainingError(RuntimeError):
    """The processes did not finish; the message carries the failing rank's own error."""


@dataclass(frozen=True)
class World:
    """This process's place among the processes that train one run (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0  # on this machine: which GPU

    def device(self, name: str) -> torch.device:
        """Where this rank computes: the run's device, or on GPUs the rank's own."""
        from ..provenance import pick_device

        device = pick_device(name)
        return torch.device("cuda", self.local_rank) if device.type == "cuda" and self.size > 1 else device

    @property
    def leads(self) -> bool:
        """Rank 0: the one that logs, checkpoints and measures FID."""
        return self.rank == 0

    def shard(self, order: list[int]) -> list[int]:
        """This rank's faces of an epoch's order: DistributedSampler's rule (wrap-padded to a
        multiple of size, then every size-th from rank)."""
        if self.size == 1:
            return order
        padded = order + order[: (-len(order)) % self.size]
        return padded[self.rank :: self.size]

    def replicate(self, net: nn.Module | None) -> nn.Module | None:
        """The network as it trains here: itself, or its DDP replica (gradients averaged in
        backward). Buffers are not broadcast at each forward: the BatchNorm statistics are
        synchronised where they matter, and rank 0's are the ones kept."""
        if self.size == 1 or net is None:
            return net
        return nn.parallel.DistributedDataParallel(net, forward_sync_buffers=False)

    def mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean over the ranks, in place."""
        if self.size > 1:
            dist.all_reduce(tensor)
            tensor /= self.size
        return tensor

    def first_nonzero_(self, step: torch.Tensor) -> torch.Tensor:
        """The smallest non-zero value over the ranks (0 when every rank holds 0), in place."""
        if self.size > 1:
            big = torch.iinfo(step.dtype).max
            step.copy_(torch.where(step > 0, step, big))
            dist.all_reduce(step, op=dist.ReduceOp.MIN)
            step.copy_(torch.where(step == big, 0, step))
        return step

    def agree(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's answer, on every rank (for decisions made by a clock, which ranks do not share)."""
        if self.size == 1:
            return flag
        value = torch.tensor([int(flag)], device=device)
        dist.broadcast(value, 0)
        return bool(value.item())

    def gather(self, value) -> list:
        """Every rank's value, in rank order, on every rank."""
        if self.size == 1:
            return [value]
        out = [None] * self.size
        dist.all_gather_object(out, value)
        return out


class SyncBatchNormCPU(nn.BatchNorm2d):
    """BatchNorm2d over the whole step's batch for processes on CPUs (gloo), where torch's
    SyncBatchNorm refuses to run: per-channel sums all-reduced by differentiable collectives, so
    each process's gradient carries the other processes' share, as in torch's. Two passes (the
    mean, then the centred squares) for the variance, as one process computes it. The same
    parameters and buffers as BatchNorm2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        # the differentiable all-reduce (torch.distributed.nn.functional's is deprecated for it)
        from torch.distributed._functional_collectives import all_reduce

        def total(t):
            return all_reduce(t, "sum", dist.group.WORLD)

        dims, shape = (0, 2, 3), (1, -1, 1, 1)
        xf = x.float()
        sums = total(torch.cat([xf.sum(dims), xf.new_tensor([xf.numel() / xf.shape[1]])]))
        count = sums[-1]
        mean = sums[:-1] / count
        centred = xf - mean.view(shape)
        var = total(centred.pow(2).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * count / (count - 1).clamp(min=1), momentum)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def sync_batchnorm(net: nn.Module, device: torch.device) -> nn.Module:
    """The network with every BatchNorm2d synchronised across the processes, in place (the
    same parameters and buffers: an optimiser made before and a checkpoint stay valid)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(net)
    for name, child in net.named_children():
        if type(child) is nn.BatchNorm2d:
            synced = SyncBatchNormCPU(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats, device=device
            )
            synced.load_state_dict(child.state_dict())
            if child.affine:
                synced.weight, synced.bias = child.weight, child.bias
            synced.train(child.training)
            setattr(net, name, synced)
        else:
            sync_batchnorm(child, device)
    return net


def needs_sync_batchnorm(cfg) -> bool:
    return cfg.nproc > 1 and cfg.batch_size // cfg.nproc < SYNC_BATCHNORM_BELOW


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank r's own random stream (dropout): rank 0 keeps the run's."""
    return seed + 1_000_003 * rank


def check_devices(cfg) -> None:
    """nproc GPUs where the run computes on GPUs; the CPU takes any nproc (gloo)."""
    if _on_gpus(cfg) and torch.cuda.device_count() < cfg.nproc:
        raise RuntimeError(
            f"nproc={cfg.nproc} needs {cfg.nproc} GPUs, {torch.cuda.device_count()} are visible "
            "(CUDA_VISIBLE_DEVICES); lower nproc, or train on the CPU with device='cpu'"
        )


def _relay(process: subprocess.Popen, run_id: str, started: float, bar, tail: deque, failures: list) -> int:
    """Print what the processes print as it comes (the last lines kept in tail, the ranks' own
    failures in failures), move the bar to rank 0's heartbeat; torchrun's exit code."""
    pending = b""
    while True:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        chunk = os.read(process.stdout.fileno(), 1 << 16) if ready else b""
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            text = line.decode(errors="replace")
            tail.append(text)
            if text.startswith(FAILED):
                failures.append(text[len(FAILED) :].strip())
            print(text, flush=True)
        beat = last_beat(run_id)
        if beat is not None and beat.time >= started and beat.step != bar.n:
            bar.update(beat.step - bar.n)
        if ready and not chunk:  # the pipe closed: torchrun ended
            break
    if pending:
        tail.append(pending.decode(errors="replace"))
        print(tail[-1], flush=True)
    return process.wait()


def launch(cfg, run_id: str, total_steps: int, progress: bool = True) -> None:
    """Train the run in cfg.nproc processes under torchrun and wait for them, showing what they
    print and a progress bar of rank 0's heartbeat (a bar drawn by a process of its own would
    add an output to the notebook at every redraw); raises DistributedTrainingError with the
    failing rank's error when they do not finish."""
    check_devices(cfg)
    threads = max(1, torch.get_num_threads() // cfg.nproc)  # the cores shared out, not multiplied
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "labkit.train.worker",
        "torchrun",
        "--standalone",
        f"--nproc-per-node={cfg.nproc}",
        "-m",
        "labkit.train.worker",
        run_id,
        json.dumps(cfg.to_dict()),
    ]
    print(
        f"training in {cfg.nproc} processes (torchrun, {'NCCL' if _on_gpus(cfg) else f'gloo, {threads} threads each'}"
        f"; {cfg.batch_size // cfg.nproc} faces each per step"
        f"{', BatchNorm synchronised' if needs_sync_batchnorm(cfg) else ''})",
        flush=True,
    )
    started = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    bar = tqdm(total=total_steps, desc=f"{cfg.nproc} processes", unit="step", disable=not progress)
    tail, failures = deque(maxlen=20), []
    try:
        code = _relay(process, run_id, started, bar, tail, failures)
    finally:  # interrupted (the notebook's stop button): torchrun stops its workers on SIGTERM
        bar.close()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    if code:
        failures.sort(key=lambda error: not error.startswith("0:"))  # rank 0's own words first
        raise DistributedTrainingError(
            f"rank {failures[0]}" if failures else f"torchrun exited with {code}: " + "\n".join(list(tail)[-5:])
        )


def _on_gpus(cfg) -> bool:
    from ..provenance import pick_device

    return pick_device(cfg.device).type == "cuda"
