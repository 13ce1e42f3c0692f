"""Peak extra memory and time of the chunked style swap against the plain conv2d /
conv_transpose2d formulation, at relu3_1 (256 channels at SIZE/4) or relu4_1 (512 at SIZE/8)
of two SIZE x SIZE images.

    .venv/bin/python benchmarks/swap_memory.py --size 512 [--layer relu4_1] [--device cuda] [--chunk 2048]

Each method runs in a fresh process so its peak is its own: on CUDA the allocator's peak,
on the CPU the growth of the process's maximum resident set over the inputs. Prints one
line per method with its achieved TFLOP/s against the swap's GEMM count (the patch
correlation, 2 * H' * W' * N * C * k^2 for N style patches of C x k x k; the argmax rebuild is
a gather), and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def gemm_flops(side: int, channels: int = 256, k: int = 3) -> int:
    """Multiply-adds x 2 of correlating every content patch with every style patch."""
    grid = side - k + 1
    return 2 * grid * grid * grid * grid * channels * k * k


LAYERS = {"relu3_1": (256, 4), "relu4_1": (512, 8)}  # channels, and how much smaller than the image


def measure(method: str, size: int, chunk: int, device: str, layer: str = "relu3_1") -> dict:
    import torch

    from labkit.style.swap import swap, swap_plain

    torch.manual_seed(0)
    channels, shrink = LAYERS[layer]
    small = torch.rand(1, channels, 8, 8, device=device)
    swap_plain(small, small) if method == "plain" else swap(small, small, chunk=chunk)  # load the kernels first
    side = size // shrink
    content = torch.rand(1, channels, side, side, device=device)
    style = torch.rand(1, channels, side, side, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    with torch.no_grad():
        out = swap_plain(content, style) if method == "plain" else swap(content, style, chunk=chunk).features
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {
        "method": method,
        "seconds": time.perf_counter() - started,
        "peak_extra_mb": peak / 2**20,
        "checksum": float(out.double().sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--layer", choices=sorted(LAYERS), default="relu3_1")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.size, args.chunk, args.device, args.layer)))
        return
    channels, shrink = LAYERS[args.layer]
    side = args.size // shrink
    from labkit.speed import cpu_features

    print(f"CPU: {cpu_features()}")
    print(
        f"{args.layer} of {args.size}x{args.size} images: {channels} x {side} x {side} features, "
        f"{(side - 2) ** 2} style patches, device {args.device}, chunk {args.chunk}, "
        f"{gemm_flops(side, channels) / 1e9:.1f} GFLOP of correlation"
    )
    results = {}
    for method in ("plain", "chunked"):
        line = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                method,
                "--size",
                str(args.size),
                "--chunk",
                str(args.chunk),
                "--device",
                args.device,
                "--layer",
                args.layer,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[method] = json.loads(line.stdout.strip().splitlines()[-1])
        r = results[method]
        tflops = gemm_flops(side, channels) / r["seconds"] / 1e12
        print(
            f"  {method:8} {r['seconds']:8.2f} s   peak extra memory {r['peak_extra_mb']:9.1f} MiB   "
            f"{tflops:7.3f} TFLOP/s"
        )
    p, c = results["plain"], results["chunked"]
    print(
        f"  chunked / plain: memory {c['peak_extra_mb'] / max(p['peak_extra_mb'], 1e-9):.3f}, "
        f"time {c['seconds'] / p['seconds']:.2f}; outputs agree: "
        f"{abs(c['checksum'] - p['checksum']) <= 1e-4 * abs(p['checksum'])}"
    )


if __name__ == "__main__":
    main()
