"""Training steps per second: labkit's default path against the reference formulation, for the
baseline and +local at 256 px, batch 1 and 8.

    .venv/bin/python benchmarks/train_step.py [--device cpu|cuda] [--steps 5] [--rounds 3]

reference  the upstream networks (pix2pix's U-Net and PatchGAN, APDrawingGAN-style parts) in fp32
           (on CUDA without cuDNN autotuning or TF32), eager, plain Adam, each batch assembled
           face by face on the host and every loss read (`.item()`) after every step, as the
           reference training script does
labkit     the same networks on labkit's default path (labkit.speed: native mixed precision,
           fused Adam, and on CUDA channels_last, cuDNN autotuning and torch.compile), the
           faces jittered on the device as one batch, losses read every 100 steps

Both run in this one process, interleaved round by round (reference, then labkit), so a noisy
machine slows both alike; the ratio is the median over rounds of labkit's steps/s over the
reference's. On CUDA the peak memory of each is printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch


def setups(device: str, sizes=(1, 8)) -> list[tuple[str, dict]]:
    base = dict(synthetic_count=24, image_size=256, ngf=64, ndf=64, device=device, fid_backbone="random-init")
    return [
        (f"{name}, batch {b}", {**base, "ablation": name, "local": name == "local", "batch_size": b})
        for name in ("baseline", "local")
        for b in sizes
    ]


def runner(cfg, data, reference: bool):
    """A function doing one training step of this path, and the model."""
    from labkit.train.pix2pix import Pix2Pix

    torch.manual_seed(0)
    model = Pix2Pix(cfg, torch.device(cfg.device))
    order, position, pending = list(range(len(data.train))), [0], []
    data.train.set_epoch(0)

    def indices():
        start = position[0] % len(order)
        position[0] += cfg.batch_size
        return [order[(start + i) % len(order)] for i in range(cfg.batch_size)]

    def step():
        if reference:
            faces = [data.train[i] for i in indices()]
            batch = {
                k: torch.stack([torch.as_tensor(f[k]) for f in faces]) for k in ("photo", "sketch", "mask", "landmarks")
            }
            losses = model.train_step(batch)
            [float(v) for v in losses.values()]  # the host waits for the device every step
        else:
            pending.append(model.train_step(data.train.batch(indices(), torch.device(cfg.device))))
            if len(pending) == 100:
                torch.stack([v for losses in pending for v in losses.values()]).cpu()
                pending.clear()

    return step, model


def cuda_backend(reference: bool) -> None:
    """The process-wide CUDA switches each path runs under: the reference as its code runs (no
    cuDNN autotuning, no TF32: fp32 is fp32), labkit's path with cuDNN's autotuning (and torch's
    TF32 default for convolutions). Set before each path's steps, so neither inherits the other's."""
    torch.backends.cudnn.benchmark = not reference
    torch.backends.cudnn.allow_tf32 = not reference
    torch.backends.cuda.matmul.allow_tf32 = False


def timed(step, steps: int, device: str, reference: bool) -> float:
    if device.startswith("cuda"):
        cuda_backend(reference)
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=5, help="steps timed per path per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, autotuning)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    os.environ.setdefault("LABKIT_RUNS", tempfile.mkdtemp(prefix="labkit-bench-"))
    from labkit.config import SketchConfig
    from labkit.data import load_faces
    from labkit.provenance import device_description
    from labkit.speed import cpu_features

    print(f"device: {device_description(torch.device(args.device))}; torch {torch.__version__}\nCPU: {cpu_features()}")
    print(
        f"{'setting':22} {'reference steps/s':>18} {'labkit steps/s':>15} {'ratio':>6}  labkit path"
        + ("   peak MiB ref / labkit" if args.device.startswith("cuda") else "")
    )
    for name, values in setups(args.device, args.batch):
        ref_cfg, fast_cfg = SketchConfig(**values, fast=False), SketchConfig(**values)
        data = load_faces(fast_cfg, progress=False)
        paths, peaks = {}, {}
        for label, cfg in (("reference", ref_cfg), ("labkit", fast_cfg)):
            step, model = runner(cfg, data, reference=label == "reference")
            if args.device.startswith("cuda"):
                cuda_backend(reference=label == "reference")
                torch.cuda.reset_peak_memory_stats()
            for _ in range(args.warmup):
                step()
            paths[label] = (step, model)
            if args.device.startswith("cuda"):
                peaks[label] = torch.cuda.max_memory_allocated() / 2**20
        rates = {"reference": [], "labkit": []}
        for _ in range(args.rounds):
            for label in ("reference", "labkit"):
                rates[label].append(timed(paths[label][0], args.steps, args.device, label == "reference"))
        ratio = statistics.median(b / a for a, b in zip(rates["reference"], rates["labkit"]))
        ref, fast = statistics.median(rates["reference"]), statistics.median(rates["labkit"])
        print(
            f"{name:22} {ref:18.2f} {fast:15.2f} {ratio:5.2f}x  {paths['labkit'][1].speed.describe()}"
            + (f"   {peaks['reference']:.0f} / {peaks['labkit']:.0f}" if peaks else ""),
            flush=True,
        )
        del paths
    return 0


if __name__ == "__main__":
    sys.exit(main())
