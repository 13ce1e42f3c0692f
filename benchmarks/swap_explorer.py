"""How long the swap explorer takes to answer a slider: each variant's swap and decode of one
pair at the explorer's size (labkit.style.explore.SIZE px on the short side; the pair's features
encoded once, as the explorer keeps them), and the redraw of its picture, with the full VGG19
(random weights cost what ImageNet's do) and an untrained decoder.

    .venv/bin/python benchmarks/swap_explorer.py [--size 96] [--repeats 5] [--device cpu]

Target: well under a second per slider move, on a CPU.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96, help="the explorer's size")
    parser.add_argument("--image-size", type=int, default=256, help="the lab's images, shrunk to --size")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from labkit.config import StyleConfig
    from labkit.speed import cpu_features
    from labkit.style import explore
    from labkit.style.decoder import Decoder
    from labkit.style.images import load_sets
    from labkit.style.swaprun import SwapLab
    from labkit.style.variants import VARIANTS
    from labkit.style.vgg import build_encoder

    device = torch.device(args.device)
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; {cpu_features()}")
    print(
        f"device {device}; images {args.image_size} px shrunk to {args.size}; median of {args.repeats} slider moves\n"
    )
    print(f"{'variant':18s} {'content px':>10s} {'swap+decode ms':>15s} {'+ redraw ms':>12s} {'one move ms':>12s}")
    for variant in VARIANTS:
        extra = dict(patch_size=5) if variant.name == "avatar" else {}
        cfg = StyleConfig(
            ablation=variant.ablation,
            vgg_weights="random-init",
            image_size=args.image_size,
            device=args.device,
            decoder_kind=variant.decoder_kind or "relu4_1",
            **extra,
        )
        content, style = load_sets(cfg)
        encoder = build_encoder(cfg, device)
        lab = SwapLab(cfg, None, content, style, encoder, Decoder(cfg.decoder_kind).to(device).eval())
        if variant.prepare is not None:
            lab.context = variant.prepare(cfg, encoder, [img for _, img in content + style])
        pair = [explore.shrink(img, args.size) for img in (content[0][1], style[0][1])]
        shape = " x ".join(map(str, pair[0].shape[1:]))
        swaps, draws, moves, encoded = [], [], [], {}
        for _ in range(args.repeats + 1):  # the first warms the kernels up
            started = time.perf_counter()
            swapped = explore.swap_pair(lab, cfg, lab.context, *pair, encoded)  # encoded once, as the explorer
            drawn = time.perf_counter()
            explore.probe_html(explore.probe(swapped, swapped.grid[0] // 2, swapped.grid[1] // 2))
            ended = time.perf_counter()
            swaps.append(swapped.seconds)
            draws.append(ended - drawn)
            moves.append(ended - started)
        ms = lambda values: 1000 * statistics.median(values[1:])  # noqa: E731
        print(f"{variant.name:18s} {shape:>10s} {ms(swaps):15.0f} {ms(draws):12.0f} {ms(moves):12.0f}")


if __name__ == "__main__":
    main()
