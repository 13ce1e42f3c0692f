"""Pictures of a swap run, as RGB arrays: the heatmaps every variant gets, and the panels the
variants' own views (labkit.style.variants) are drawn with.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..viz import figure_to_array


def rgb(img: torch.Tensor) -> np.ndarray:
    return img.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy()


def first_pair(lab):
    (c_name, c_img), (s_name, s_img) = lab.content[0], lab.style[0]
    return f"{c_name} × {s_name}", c_img, s_img, lab.features(c_img), lab.features(s_img)


def panels(images: list, titles: list[str], suptitle: str, cmaps=None) -> np.ndarray:
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
        row[0].imshow(rgb(p["content"]))
        row[1].imshow(rgb(p["output"]))
        fig.colorbar(row[2].imshow(p["confidence"], cmap="viridis", vmin=-1, vmax=1), ax=row[2], shrink=0.7)
        row[3].imshow(rgb(p["style"]))
        usage = row[3].imshow(
            p["usage"], cmap="magma", alpha=0.6, extent=(0, p["style"].shape[2], p["style"].shape[1], 0)
        )
        fig.colorbar(usage, ax=row[3], shrink=0.7)
        fig.colorbar(row[4].imshow(p["change"], cmap="inferno"), ax=row[4], shrink=0.7)
        for ax, title in zip(row, cols):
            ax.set_title(f"{p['name']}\n{title}" if title == "content" else title, fontsize=8)
            ax.axis("off")
    return figure_to_array(fig)
