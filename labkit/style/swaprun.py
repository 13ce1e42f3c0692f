"""A swap-variant run: every content image against every style image, decoded, measured, and
shown with its heatmaps (match confidence, style patches used, where the content changed).

`setup` gathers what a style notebook works with into a SwapLab (config, run, images, encoder,
decoder, the variant and what it prepared); `run_swap` is the measured run over every pair;
the variants' own views (labkit.style.variants) take the same SwapLab.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import keys, viz
from ..provenance import pick_device
from .decoder import Decoder
from .images import load_sets
from .losses import style_loss, tv
from .swap import SwapResult
from .training import train_decoder, trained_decoder
from .vgg import STYLE_LAYERS, build_encoder, encoder_tags


@dataclass
class SwapLab:
    cfg: object
    run: object
    content: list  # [(name, (3, H, W) RGB [0, 1])]
    style: list
    encoder: torch.nn.Module
    decoder: Decoder | None
    context: object = None  # what the variant prepared (channel weights)

    @property
    def variant(self):
        return self.cfg.variant

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    @property
    def layers(self) -> tuple[str, ...]:
        needed = set(STYLE_LAYERS) | set(self.decoder.inputs) | set(self.variant.layers(self.cfg))
        return tuple(sorted(needed, key=STYLE_LAYERS.index))

    def features(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self.encoder.encode(img[None].to(self.device), self.layers)

    def stylise(self, content: dict, style: dict, **changes) -> tuple[torch.Tensor, dict, SwapResult]:
        """(image (3, H, W), decoder inputs, swap result) of one pair's features; with changes
        (e.g. temperature=0.2), under a config with those values."""
        cfg = dataclasses.replace(self.cfg, **changes) if changes else self.cfg
        with torch.no_grad():
            inputs, result = self.variant.apply(cfg, content, style, self.context)
            return self.decoder(inputs, style).clamp(0, 1)[0], inputs, result

    def log_view(self, image: np.ndarray, key: str, title: str = "") -> None:
        """Log a picture to the run (key, step 0) and display it in the notebook."""
        self.run.log_image(image, key, step=0)
        viz.show(image, title or key)

    def show_view(self, **options) -> None:
        """The variant's own view (its module's `view`, with these options), logged and shown."""
        self.log_view(self.variant.view(self, **options), self.variant.view_key)

    def explore(self, size: int = 96):
        """The swap under the cursor (labkit.style.explore): choose a pair and a content position,
        see the patch taken, its NCC scores over the style and the alternatives; sliders re-run
        the swap at `size` px with the variant's knobs."""
        from .explore import SwapExplorer

        if self.variant is None:
            raise ValueError(
                f"explore() shows a swap: ablation '{self.cfg.ablation}' has none (open a swap_* notebook)"
            )
        return SwapExplorer(self, size)

    def swap_all(self) -> SwapOutcome:
        """run_swap over every pair (measured and logged), its grid and heatmaps shown."""
        outcome = run_swap(self)
        viz.show(outcome.grid, f"{self.cfg.ablation}: every content image with every style")
        viz.show(outcome.heatmaps, "match confidence | style patches used | change", width=12)
        return outcome


def setup(cfg, run, decoder_run_id: str = "") -> SwapLab:
    """Images, encoder and, for a swap variant, its decoder (run decoder_run_id's, or trained
    here first) and what the variant prepares from the images."""
    content, style = load_sets(cfg)
    encoder = build_encoder(cfg, pick_device(cfg.device))
    run.set_tags(encoder_tags(encoder))
    print(
        f"VGG19 weights: {encoder.weights}, convention: {cfg.vgg_convention}; {len(content)} content x "
        f"{len(style)} style images"
    )
    lab = SwapLab(cfg, run, content, style, encoder, None)
    variant = cfg.variant
    if variant is None:  # decoder training: the notebook trains it
        return lab
    if variant.decoder_kind and cfg.decoder_kind != variant.decoder_kind:
        raise ValueError(f"the {variant.name} variant decodes with decoder_kind '{variant.decoder_kind}': set it so")
    lab.decoder = (
        trained_decoder(cfg, decoder_run_id, lab.device)
        if decoder_run_id
        else train_decoder(cfg, encoder, content, style, run).decoder
    )
    if variant.prepare is not None:
        lab.context = variant.prepare(cfg, encoder, [img for _, img in content + style])
    return lab


@dataclass
class SwapOutcome:
    grid: np.ndarray
    heatmaps: np.ndarray
    metrics: dict


def _measures(lab: SwapLab, c_feats: dict, s_feats: dict, out: torch.Tensor, seconds: float, result) -> dict:
    layer = lab.variant.layers(lab.cfg)[0]
    with torch.no_grad():
        out_feats = lab.encoder.encode(out[None], lab.layers)
    return {
        keys.CONTENT_LOSS: float(F.mse_loss(out_feats[layer], c_feats[layer])),
        keys.STYLE_LOSS: float(
            style_loss({n: out_feats[n] for n in STYLE_LAYERS}, {n: s_feats[n] for n in STYLE_LAYERS})
        ),
        keys.DISTINCT_PATCHES: result.distinct_share(),
        keys.TV: float(tv(out[None])),
        keys.SWAP_SECONDS: seconds,
    }


def run_swap(lab: SwapLab) -> SwapOutcome:
    """Every content x style pair through the variant; metrics averaged over pairs and logged,
    the grid of all outputs and one heatmap row per content image (with the first style)."""
    from .views import swap_heatmaps

    if lab.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(lab.device)
    layer = lab.variant.layers(lab.cfg)[0]
    measures, rows, pairs = [], [], []
    style_feats = [lab.features(img) for _, img in lab.style]
    for c_name, c_img in lab.content:
        c_feats = lab.features(c_img)
        row = []
        for j, ((s_name, s_img), s_feats) in enumerate(zip(lab.style, style_feats)):
            lab.run.beat(len(measures), "evaluate", force=True)  # a big swap takes a while: alive, not hung
            started = time.perf_counter()
            out, inputs, result = lab.stylise(c_feats, s_feats)
            if lab.device.type == "cuda":  # the GPU's work, not its launch: wait for it before the clock stops
                torch.cuda.synchronize(lab.device)
            measures.append(_measures(lab, c_feats, s_feats, out, time.perf_counter() - started, result))
            row.append(out.cpu())
            if j == 0:
                k = lab.cfg.patch_size
                grid = (s_feats[layer].shape[2] - k + 1, s_feats[layer].shape[3] - k + 1)
                own = result.bank.index(grid) if grid in result.bank else 0  # multiscale: the style at its own size
                pairs.append(
                    dict(
                        name=f"{c_name} × {s_name}",
                        content=c_img,
                        output=out.cpu(),
                        style=s_img,
                        confidence=result.confidence[0].cpu().numpy(),
                        usage=result.usage_map(own).float().cpu().numpy(),
                        change=(inputs[layer] - c_feats[layer]).abs().mean(1)[0].cpu().numpy(),
                    )
                )
        rows.append(row)
    metrics = {k: float(np.mean([m[k] for m in measures])) for k in measures[0]}
    metrics[keys.PEAK_RSS_MB] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if lab.device.type == "cuda":
        metrics[keys.PEAK_CUDA_MB] = torch.cuda.max_memory_allocated(lab.device) / 2**20
    lab.run.log_metrics(metrics)
    size = min(min(img.shape[-2:]) for _, img in lab.content + lab.style)
    square = lambda img: F.interpolate(img[None], size=(size, size), mode="bilinear", align_corners=False)[0]  # noqa
    columns = [torch.stack([square(img) for _, img in lab.content]) * 2 - 1] + [
        torch.stack([square(rows[i][j]) for i in range(len(lab.content))]) * 2 - 1 for j in range(len(lab.style))
    ]
    grid = viz.titled(viz.sample_grid(columns), ["content"] + [name for name, _ in lab.style])
    heatmaps = swap_heatmaps(pairs)
    lab.run.log_image(grid, keys.STYLISED, step=0)
    lab.run.log_image_file(grid, keys.LAST_SAMPLES)
    lab.run.log_image(heatmaps, keys.SWAP_HEATMAPS, step=0)
    return SwapOutcome(grid, heatmaps, metrics)
