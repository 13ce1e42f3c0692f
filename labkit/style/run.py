"""A swap-variant run: every content image against every style image, decoded, measured, and
shown with its heatmaps (match confidence, style patches used, where the content changed)."""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import viz
from .losses import style_loss, tv
from .swap import (SwapResult, assignment_swap, frequency_swap, gram_aware_swap, multiscale_style, swap)
from .train import STYLE_LAYERS, encoder_tags


def colour_channel_weights(encoder, images: list[torch.Tensor], layer: str) -> torch.Tensor:
    """(C,) matching weights that play down colour-driven channels: a channel whose mean response
    changes most between a colour image and its grayscale version gets weight 0, one that
    does not change gets 1 (the journal's 12/27 idea)."""
    device = next(encoder.parameters()).device
    change, total = 0.0, 0.0
    with torch.no_grad():
        for img in images:
            colour = img[None].to(device)
            gray = (0.299 * colour[:, :1] + 0.587 * colour[:, 1:2] + 0.114 * colour[:, 2:]).expand_as(colour)
            fc, fg = encoder.encode(colour, (layer,))[layer].mean((0, 2, 3)), encoder.encode(gray, (layer,))[layer].mean(
                (0, 2, 3))
            change = change + (fc - fg).abs()
            total = total + fc.abs() + fg.abs()
    sensitivity = change / (total + 1e-8)
    return 1.0 - sensitivity / sensitivity.max().clamp_min(1e-8)


def swap_setup(cfg, encoder, decoder, images: list[torch.Tensor]) -> tuple[tuple[str, ...], torch.Tensor | None]:
    """The VGG layers a swap run needs, and the variant's channel weights (channel_weighted only)."""
    if cfg.variant == "multilayer" and decoder.kind != "relu4_1+relu3_1":
        raise ValueError("the multilayer variant decodes relu4_1 and relu3_1 together: set decoder_kind "
                         "to 'relu4_1+relu3_1'")
    layers = tuple(sorted(set(STYLE_LAYERS) | set(decoder.inputs) | {cfg.swap_layer}, key=STYLE_LAYERS.index))
    weights = colour_channel_weights(encoder, images, cfg.swap_layer) if cfg.variant == "channel_weighted" else None
    return layers, weights


def _scales(cfg) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in cfg.scales.split(","))
    except ValueError:
        raise ValueError(f"scales={cfg.scales!r}: write scales as numbers separated by commas, e.g. '0.5,1,2'") from None


def apply_variant(cfg, content: dict, style: dict, weights: torch.Tensor | None = None) -> tuple[dict, SwapResult]:
    """Decoder inputs after the variant's swap, and the swap's result at cfg.swap_layer."""
    layer, k = cfg.swap_layer, cfg.patch_size
    c, s = content[layer], style[layer]
    if cfg.variant == "argmax":
        result = swap(c, s, k, chunk=cfg.chunk)
    elif cfg.variant == "softmax":
        result = swap(c, s, k, mode="softmax", temperature=cfg.temperature, chunk=cfg.chunk)
    elif cfg.variant == "frequency":
        result = frequency_swap(c, s, cfg.cutoff, k=k, chunk=cfg.chunk)
    elif cfg.variant == "assignment":
        result = assignment_swap(c, s, k, limit=cfg.usage_limit)
    elif cfg.variant == "channel_weighted":
        result = swap(c, s, k, chunk=cfg.chunk, channel_weights=weights)
    elif cfg.variant == "gram":
        result = gram_aware_swap(c, s, cfg.beta, k=k, chunk=cfg.chunk)
    elif cfg.variant == "multiscale":
        result = swap(c, multiscale_style(s, _scales(cfg)), k, chunk=cfg.chunk)
    else:  # multilayer: relu3_1 and relu4_1 swapped together
        result = swap(content["relu4_1"], style["relu4_1"], k, chunk=cfg.chunk)
        low = swap(content["relu3_1"], style["relu3_1"], k, chunk=cfg.chunk)
        return {**content, "relu4_1": result.features, "relu3_1": low.features}, result
    return {**content, layer: result.features}, result


@dataclass
class SwapOutcome:
    grid: np.ndarray
    heatmaps: np.ndarray
    metrics: dict


def _heatmaps(pairs: list[dict]) -> np.ndarray:
    import matplotlib.pyplot as plt
    cols = ["content", "stylised", "match confidence", "style patches used", "change"]
    fig, axes = plt.subplots(len(pairs), len(cols), figsize=(2.3 * len(cols), 2.4 * len(pairs)), squeeze=False,
                             constrained_layout=True)
    for row, p in zip(axes, pairs):
        row[0].imshow(p["content"].permute(1, 2, 0).numpy())
        row[1].imshow(p["output"].permute(1, 2, 0).numpy())
        im = row[2].imshow(p["confidence"], cmap="viridis", vmin=-1, vmax=1)
        fig.colorbar(im, ax=row[2], shrink=0.7)
        row[3].imshow(p["style"].permute(1, 2, 0).numpy())
        im = row[3].imshow(p["usage"], cmap="magma", alpha=0.6, extent=(0, p["style"].shape[2], p["style"].shape[1], 0))
        fig.colorbar(im, ax=row[3], shrink=0.7)
        im = row[4].imshow(p["change"], cmap="inferno")
        fig.colorbar(im, ax=row[4], shrink=0.7)
        for ax, title in zip(row, cols):
            ax.set_title(f"{p['name']}\n{title}" if title == "content" else title, fontsize=8)
            ax.axis("off")
    return viz.figure_to_array(fig)


def run_swap(cfg, encoder, decoder, content: list, style: list, run) -> SwapOutcome:
    """Every content x style pair through the variant; metrics averaged over pairs and logged."""
    device = next(encoder.parameters()).device
    run.set_tags(encoder_tags(encoder))
    layers, weights = swap_setup(cfg, encoder, decoder, [img for _, img in content + style])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    measures, rows, pairs = [], [], []
    for c_name, c_img in content:
        row = []
        with torch.no_grad():
            c_feats = encoder.encode(c_img[None].to(device), layers)
            for j, (s_name, s_img) in enumerate(style):
                s_feats = encoder.encode(s_img[None].to(device), layers)
                started = time.time()
                inputs, result = apply_variant(cfg, c_feats, s_feats, weights)
                seconds = time.time() - started
                out = decoder(inputs).clamp(0, 1)
                out_feats = encoder.encode(out, layers)
                measures.append({
                    "content_loss": float(F.mse_loss(out_feats[cfg.swap_layer], c_feats[cfg.swap_layer])),
                    "style_loss": float(style_loss({n: out_feats[n] for n in STYLE_LAYERS},
                                                   {n: s_feats[n] for n in STYLE_LAYERS})),
                    "distinct_patches": result.distinct_share(), "tv": float(tv(out)), "swap_seconds": seconds})
                row.append(out[0].cpu())
                if j == 0:  # one heatmap row per content image, with the first style
                    grid_h, grid_w = s_feats[cfg.swap_layer].shape[2] - cfg.patch_size + 1, \
                        s_feats[cfg.swap_layer].shape[3] - cfg.patch_size + 1
                    offset = 0
                    if cfg.variant == "multiscale":  # the bank starts with the scales below 1
                        for m in multiscale_style(s_feats[cfg.swap_layer], _scales(cfg)):
                            if m.shape == s_feats[cfg.swap_layer].shape:
                                break
                            offset += (m.shape[2] - cfg.patch_size + 1) * (m.shape[3] - cfg.patch_size + 1)
                    usage = result.usage()[offset:offset + grid_h * grid_w].view(grid_h, grid_w).float().cpu().numpy()
                    change = (inputs[cfg.swap_layer] - c_feats[cfg.swap_layer]).abs().mean(1)[0].cpu().numpy()
                    pairs.append(dict(name=f"{c_name} × {s_name}", content=c_img, output=out[0].cpu(), style=s_img,
                                      confidence=result.confidence[0].cpu().numpy(), usage=usage, change=change))
        rows.append(row)
    metrics = {k: float(np.mean([m[k] for m in measures])) for k in measures[0]}
    metrics["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        metrics["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    run.log_metrics(metrics)
    size = min(min(img.shape[-2:]) for _, img in content + style)
    square = lambda img: F.interpolate(img[None], size=(size, size), mode="bilinear", align_corners=False)[0]  # noqa
    columns = [torch.stack([square(img) for _, img in content]) * 2 - 1] + [
        torch.stack([square(rows[i][j]) for i in range(len(content))]) * 2 - 1 for j in range(len(style))]
    grid = viz.titled(viz.sample_grid(columns), ["content"] + [name for name, _ in style])
    heatmaps = _heatmaps(pairs)
    run.log_image(grid, "stylised", step=0)
    run.log_image(heatmaps, "swap_heatmaps", step=0)
    return SwapOutcome(grid, heatmaps, metrics)
