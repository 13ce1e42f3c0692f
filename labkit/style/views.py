"""Pictures of a swap run, as RGB arrays: the heatmaps every variant gets, and each variant's
own view of what it does differently (on the first content image and the first style image).

argmax            where each content patch came from on the style image, by colour
softmax           the output over a strip of temperatures, argmax first
frequency         the content's low / high split, and what swapping only the low part gives
assignment        how often each style patch is used, against argmax
channel_weighted  the channel weights of the matching
gram              the output as the query shifts towards the style's mean, with the share of moved matches
multiscale        which scale each content location took its patch from
multilayer        the match confidence at both layers, and relu4_1 alone against both
avatar            the feature covariance before and after whitening and after colouring, and the
                  match confidence of the whitened swap
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..viz import figure_to_array
from .swap import low_pass, swap, zca


def _rgb(img: torch.Tensor) -> np.ndarray:
    return img.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy()


def _first_pair(lab):
    (c_name, c_img), (s_name, s_img) = lab.content[0], lab.style[0]
    return f"{c_name} × {s_name}", c_img, s_img, lab.features(c_img), lab.features(s_img)


def _panels(images: list, titles: list[str], suptitle: str, cmaps=None) -> np.ndarray:
    fig, axes = plt.subplots(1, len(images), figsize=(2.4 * len(images), 2.8), squeeze=False, constrained_layout=True)
    for i, (ax, image, title) in enumerate(zip(axes[0], images, titles)):
        cmap = (cmaps or {}).get(i)
        im = ax.imshow(image, cmap=cmap)
        if cmap:
            fig.colorbar(im, ax=ax, shrink=0.7)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.suptitle(suptitle, fontsize=9)
    return figure_to_array(fig)


def swap_heatmaps(pairs: list[dict]) -> np.ndarray:
    """One row per pair: content, output, match confidence, style patches used (on the style
    image), how much each location changed."""
    cols = ["content", "stylised", "match confidence", "style patches used", "change"]
    fig, axes = plt.subplots(
        len(pairs), len(cols), figsize=(2.3 * len(cols), 2.4 * len(pairs)), squeeze=False, constrained_layout=True
    )
    for row, p in zip(axes, pairs):
        row[0].imshow(_rgb(p["content"]))
        row[1].imshow(_rgb(p["output"]))
        fig.colorbar(row[2].imshow(p["confidence"], cmap="viridis", vmin=-1, vmax=1), ax=row[2], shrink=0.7)
        row[3].imshow(_rgb(p["style"]))
        usage = row[3].imshow(
            p["usage"], cmap="magma", alpha=0.6, extent=(0, p["style"].shape[2], p["style"].shape[1], 0)
        )
        fig.colorbar(usage, ax=row[3], shrink=0.7)
        fig.colorbar(row[4].imshow(p["change"], cmap="inferno"), ax=row[4], shrink=0.7)
        for ax, title in zip(row, cols):
            ax.set_title(f"{p['name']}\n{title}" if title == "content" else title, fontsize=8)
            ax.axis("off")
    return figure_to_array(fig)


def correspondence(lab) -> np.ndarray:
    """argmax: each content location coloured by where its style patch sits (red: across,
    green: down), beside the style image under the same colour key."""
    name, c_img, s_img, c, s = _first_pair(lab)
    out, _, result = lab.stylise(c, s)
    rows, cols = result.bank[0]
    index = result.index[0].cpu()
    key = np.stack([*np.meshgrid(np.linspace(0, 1, cols), np.linspace(0, 1, rows)), np.full((rows, cols), 0.4)], -1)
    source = key.reshape(-1, 3)[index.flatten().numpy()].reshape(*index.shape, 3)
    return _panels(
        [_rgb(c_img), source, key, _rgb(s_img), _rgb(out)],
        ["content", "source of each patch", "colour key (style grid)", "style", "output"],
        f"argmax: where the patches came from ({name})",
    )


def temperature_strip(lab, temperatures=(0.01, 0.05, 0.2, 1.0)) -> np.ndarray:
    """softmax: the output at each temperature, after argmax (the limit of small temperatures)."""
    name, c_img, _, c, s = _first_pair(lab)
    argmax = swap(c[lab.cfg.swap_layer], s[lab.cfg.swap_layer], lab.cfg.patch_size, chunk=lab.cfg.chunk)
    with torch.no_grad():
        first = lab.decoder({**c, lab.cfg.swap_layer: argmax.features}, s).clamp(0, 1)[0]
    outs = [lab.stylise(c, s, temperature=t)[0] for t in temperatures]
    return _panels(
        [_rgb(c_img), _rgb(first), *map(_rgb, outs)],
        ["content", "argmax", *[f"T = {t:g}" for t in temperatures]],
        f"softmax over temperatures ({name})",
    )


def frequency_split(lab) -> np.ndarray:
    """frequency: how the content's features split into the low-pass part (swapped) and the
    high-frequency residual (kept), and the output against swapping everything (cutoff 0)."""
    name, c_img, _, c, s = _first_pair(lab)
    layer = lab.cfg.swap_layer
    low = low_pass(c[layer], lab.cfg.cutoff)
    energy = lambda f: f.abs().mean(1)[0].cpu().numpy()  # noqa: E731
    kept, all_swapped = lab.stylise(c, s)[0], lab.stylise(c, s, cutoff=0.0)[0]
    return _panels(
        [_rgb(c_img), energy(low), energy(c[layer] - low), _rgb(kept), _rgb(all_swapped)],
        [
            "content",
            f"low-pass (sigma {lab.cfg.cutoff:g}): swapped",
            "high residual: kept",
            "output",
            "cutoff 0: all swapped",
        ],
        f"frequency-separated swap ({name})",
        cmaps={1: "magma", 2: "magma"},
    )


def usage_histogram(lab) -> np.ndarray:
    """assignment: how many style patches are used 0, 1, 2, ... times, against plain argmax."""
    name, _, _, c, s = _first_pair(lab)
    layer = lab.cfg.swap_layer
    capped = lab.stylise(c, s)[2].usage().cpu().numpy()
    greedy = swap(c[layer], s[layer], lab.cfg.patch_size, chunk=lab.cfg.chunk).usage().cpu().numpy()
    top = int(max(capped.max(), greedy.max()))
    bins = np.arange(top + 2)
    fig, ax = plt.subplots(figsize=(6, 3), constrained_layout=True)
    ax.hist([greedy, capped], bins=bins - 0.5, label=["argmax (greedy)", f"assignment (limit {lab.cfg.usage_limit})"])
    ax.set_yscale("log")
    ax.set_xlabel("times a style patch is used")
    ax.set_ylabel("style patches")
    ax.set_title(f"style patch usage ({name})", fontsize=9)
    ax.legend(fontsize=8)
    return figure_to_array(fig)


def channel_weights(lab) -> np.ndarray:
    """channel_weighted: the weight of every channel in the matching, sorted (0: colour-driven)."""
    weights = lab.context.cpu().numpy()
    fig, ax = plt.subplots(figsize=(6, 3), constrained_layout=True)
    ax.bar(np.arange(len(weights)), np.sort(weights), width=1.0, color="tab:blue")
    ax.set_xlabel(f"{lab.cfg.swap_layer} channels, sorted by weight")
    ax.set_ylabel("matching weight")
    ax.set_title(
        f"channel weights: {int((weights < 0.5).sum())} of {len(weights)} below 0.5 (most colour-driven)", fontsize=9
    )
    return figure_to_array(fig)


def query_shift(lab, betas=(0.0, 0.5, 1.0, 2.0)) -> np.ndarray:
    """gram: the output as the query moves towards the style's mean feature, with the share of
    content locations whose match moved away from the plain swap (beta 0)."""
    name, c_img, _, c, s = _first_pair(lab)
    runs = [lab.stylise(c, s, beta=b) for b in betas]
    plain = runs[0][2].index
    moved = [float((r[2].index != plain).float().mean()) for r in runs]
    return _panels(
        [_rgb(c_img), *[_rgb(r[0]) for r in runs]],
        ["content", *[f"beta {b:g}: {m:.0%} moved" for b, m in zip(betas, moved)]],
        f"Gram-aware query shift ({name})",
    )


def scale_map(lab) -> np.ndarray:
    """multiscale: which scale of the style each content location took its patch from."""
    from .variants import scales

    name, c_img, _, c, s = _first_pair(lab)
    out, _, result = lab.stylise(c, s)
    source = result.source_map()[0].cpu().numpy()
    levels = scales(lab.cfg)
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.8), constrained_layout=True)
    axes[0].imshow(_rgb(c_img))
    axes[0].set_title("content", fontsize=8)
    im = axes[1].imshow(source, cmap="viridis", vmin=0, vmax=len(levels) - 1)
    bar = fig.colorbar(im, ax=axes[1], ticks=range(len(levels)), shrink=0.8)
    bar.ax.set_yticklabels([f"x{v:g}" for v in levels])
    axes[1].set_title("scale of each patch", fontsize=8)
    axes[2].imshow(_rgb(out))
    axes[2].set_title("output", fontsize=8)
    for ax in axes:
        ax.axis("off")
    shares = ", ".join(f"x{v:g} {float((source == i).mean()):.0%}" for i, v in enumerate(levels))
    fig.suptitle(f"multi-scale swap ({name}): {shares}", fontsize=9)
    return figure_to_array(fig)


def both_layers(lab) -> np.ndarray:
    """multilayer: match confidence at relu4_1 and relu3_1, and relu4_1 swapped alone against
    both swapped together."""
    name, _, _, c, s = _first_pair(lab)
    results = {layer: lab.variant.swap(lab.cfg, c[layer], s[layer], lab.context) for layer in ("relu4_1", "relu3_1")}
    with torch.no_grad():
        deep_only = lab.decoder({**c, "relu4_1": results["relu4_1"].features}, s).clamp(0, 1)[0]
    both = lab.stylise(c, s)[0]
    return _panels(
        [
            results["relu4_1"].confidence[0].cpu().numpy(),
            results["relu3_1"].confidence[0].cpu().numpy(),
            _rgb(deep_only),
            _rgb(both),
        ],
        ["confidence at relu4_1", "confidence at relu3_1", "relu4_1 swapped alone", "both swapped"],
        f"multi-layer swap ({name})",
        cmaps={0: "viridis", 1: "viridis"},
    )


def _covariance(features: torch.Tensor, channels: int) -> np.ndarray:
    """The covariance of the first `channels` channels of one map (1, C, H, W)."""
    x = features[0, :channels].flatten(1).double()
    x = x - x.mean(1, keepdim=True)
    return (x @ x.t() / x.shape[1]).cpu().numpy()


def decorator(lab, channels: int = 32) -> np.ndarray:
    """avatar: what the style decorator does at the swap layer, on the first pair: the content's
    feature covariance before and after whitening (the identity), the style's, the decorated
    features' (coloured: near the style's), and where the whitened swap matched well."""
    name, _, _, c, s = _first_pair(lab)
    layer = lab.variant.layers(lab.cfg)[0]
    result = lab.variant.swap(lab.cfg, c[layer], s[layer], lab.context)
    covariances = [_covariance(m, channels) for m in (c[layer], zca(c[layer])[0], s[layer], result.features)]
    fig, axes = plt.subplots(1, 6, figsize=(14.4, 2.9), constrained_layout=True)
    titles = ["content", "content whitened", "style", "decorated"]
    for ax, cov, title in zip(axes, covariances, titles):
        limit = float(np.abs(cov).max()) or 1.0
        fig.colorbar(ax.imshow(cov, cmap="RdBu_r", vmin=-limit, vmax=limit), ax=ax, shrink=0.7)
        ax.set_title(f"{title}: covariance", fontsize=8)
    fig.colorbar(
        axes[4].imshow(result.confidence[0].cpu().numpy(), cmap="viridis", vmin=-1, vmax=1), ax=axes[4], shrink=0.7
    )
    axes[4].set_title("match confidence (whitened)", fontsize=8)
    axes[5].imshow(_rgb(lab.stylise(c, s)[0]))
    axes[5].set_title("output", fontsize=8)
    for ax in axes:
        ax.axis("off")
    gap = np.abs(covariances[3] - covariances[2]).mean() / max(np.abs(covariances[2]).mean(), 1e-12)
    fig.suptitle(
        f"Avatar-Net decorator at {layer} ({name}), first {channels} channels: "
        f"decorated vs style covariance differ by {gap:.0%} (mean |Δ| / mean |style|)",
        fontsize=9,
    )
    return figure_to_array(fig)
