"""Pictures of a run: sample grids, error heatmaps and FID curves, as uint8 arrays or figures."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def to_rgb_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] (N, C, H, W) -> (N, H, W, 3) uint8."""
    img = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if img.shape[1] == 1:
        img = img.expand(-1, 3, -1, -1)
    return img.permute(0, 2, 3, 1).numpy()


def sample_grid(columns: list[torch.Tensor], gap: int = 2) -> np.ndarray:
    """One row per sample, one column per tensor (e.g. photo | real sketch | generated)."""
    cols = [to_rgb_uint8(c) for c in columns]
    n, h, w, _ = cols[0].shape
    grid = np.full((n * h + (n - 1) * gap, len(cols) * w + (len(cols) - 1) * gap, 3), 255, np.uint8)
    for i in range(n):
        for j, col in enumerate(cols):
            grid[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = col[i]
    return grid


def figure_to_array(fig) -> np.ndarray:
    fig.canvas.draw()
    arr = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return arr


def error_heatmap(fake: torch.Tensor, real: torch.Tensor, titles: list[str] | None = None) -> np.ndarray:
    """|generated - real| per pixel (mean over channels, 0..1 of the full range), one panel per
    sample on a shared colour scale with its colour bar."""
    err = ((fake.float() - real.float()).abs().mean(1) / 2).cpu().numpy()
    n = len(err)
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n + 0.8, 2.4), squeeze=False, constrained_layout=True)
    for i, ax in enumerate(axes[0]):
        im = ax.imshow(err[i], cmap="inferno", vmin=0, vmax=1)
        ax.set_title(f"{titles[i] if titles else i}\nmean {err[i].mean():.3f}", fontsize=8)
        ax.axis("off")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="|generated - real|")
    return figure_to_array(fig)


def fid_curves(curves: dict[str, list[tuple[int, float]]], title: str = "FID over training", ylabel: str = "FID"):
    """One line per run or ablation: {label: [(epoch, fid), ...]}."""
    fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
    for label, points in curves.items():
        if points:
            xs, ys = zip(*sorted(points))
            ax.plot(xs, ys, marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def show(image: np.ndarray, title: str = "", width: float = 8.0):
    """Display an image array in a notebook."""
    h, w = image.shape[:2]
    fig, ax = plt.subplots(figsize=(width, width * h / w))
    ax.imshow(image)
    ax.set_title(title)
    ax.axis("off")
    plt.show()
