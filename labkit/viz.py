"""Pictures of a run: sample grids, error heatmaps and FID curves, as uint8 arrays or figures."""

from __future__ import annotations

import base64
import io
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from .metrics.fid import to_uint8


def to_rgb_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] (N, C, H, W) -> (N, H, W, 3) uint8, quantised as FID sees them."""
    return to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()


def sample_grid(columns: list[torch.Tensor], gap: int = 2) -> np.ndarray:
    """One row per sample, one column per tensor (e.g. photo | real sketch | generated)."""
    cols = [to_rgb_uint8(c) for c in columns]
    n, h, w, _ = cols[0].shape
    grid = np.full((n * h + (n - 1) * gap, len(cols) * w + (len(cols) - 1) * gap, 3), 255, np.uint8)
    for i in range(n):
        for j, col in enumerate(cols):
            grid[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = col[i]
    return grid


HEADER_PX = 28  # the title band over a titled grid


MIN_TILE_PX = 110  # narrower columns (a 32-px model's) are enlarged, whole pixels, so titles fit


def titled_figure(grid: np.ndarray, titles: list[str], gap: int = 2, dpi: int = 100):
    """A grid from sample_grid with a title over each column, as a figure one image pixel per
    figure pixel (the model's own resolution; a small model's pixels repeated a whole number of
    times, never interpolated) with the titles in a real font."""
    scale = max(1, math.ceil(MIN_TILE_PX / ((grid.shape[1] + gap) / len(titles))))
    grid, gap = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1), gap * scale
    h, w = grid.shape[:2]
    fig = plt.figure(figsize=(w / dpi, (h + HEADER_PX) / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, h / (h + HEADER_PX)))
    ax.imshow(grid, interpolation="nearest")
    ax.axis("off")
    tile = (w + gap) / len(titles)  # tiles are evenly spaced, gap included
    for i, title in enumerate(titles):
        fig.text((i + 0.5) * tile / w, 1 - HEADER_PX / 2 / (h + HEADER_PX), title, ha="center", va="center", fontsize=8)
    return fig


def titled(grid: np.ndarray, titles: list[str]) -> np.ndarray:
    """titled_figure as an RGB array, for logging."""
    return figure_to_array(titled_figure(grid, titles))


def grid_columns(grid: np.ndarray, n_columns: int, gap: int = 2) -> list[np.ndarray]:
    """The columns of a sample_grid image (e.g. photo, real sketch, generated), each (H, w, 3)."""
    width = (grid.shape[1] - (n_columns - 1) * gap) // n_columns
    return [grid[:, j * (width + gap) : j * (width + gap) + width] for j in range(n_columns)]


def side_by_side(columns: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Columns of one height (from grid_columns) as one grid, white gaps between them."""
    white = np.full((columns[0].shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([part for c in columns for part in (c, white)][:-1], axis=1)


def png_data(image: np.ndarray) -> str:
    """An RGB array (uint8, or floats in [0, 1]) as a base64 PNG, for an <img src="data:...">."""
    from PIL import Image

    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG", compress_level=1)
    return base64.b64encode(out.getvalue()).decode()


def figure_png_data(fig) -> str:
    """A figure as a base64 PNG (closed after), for an <img src="data:...">."""
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return base64.b64encode(out.getvalue()).decode()


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


def fid_curves(
    curves: dict[str, list[tuple[int, float]]],
    title: str = "FID over training",
    ylabel: str = "FID (lower is better)",
    bands: dict[str, list[tuple[int, float, float]]] | None = None,
):
    """One line per run or ablation: {label: [(epoch, fid), ...]}; a log axis only where the
    values span a factor of 5 or more (early epochs far above the end), so that close curves near
    their end stay apart; `bands` shades a label's 95% interval per epoch, outlined in its colour
    so that overlapping bands stay told apart."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=150, constrained_layout=True)
    values = [y for points in curves.values() for _, y in points if y > 0]
    for label, points in curves.items():
        if points:
            xs, ys = zip(*sorted(points))
            (line,) = ax.plot(xs, ys, marker="o", label=label)
            band = sorted((bands or {}).get(label, []))
            if band:
                steps, low, high = zip(*band)
                ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.1, linewidth=0)
                for edge in (low, high):
                    ax.plot(steps, edge, color=line.get_color(), linewidth=0.6, linestyle=":")
    if values and max(values) / min(values) >= 5:
        ax.set_yscale("log")
        ylabel += ", log scale"
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole
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


def show_training(result) -> None:
    """A face run's views in a notebook: FID over training, the sample grid (photo | real sketch
    | generated) and where the generated sketches differ from the real ones."""
    label = result.cfg.ablation
    fid_curves(
        {label: [(e.epoch, e.fid) for e in result.history]},
        title=f"FID over training ({result.backbone} backbone; band: 95% interval over the test faces)",
        bands={label: [(e.epoch, *e.fid_ci) for e in result.history if not np.isnan(e.fid_ci[0])]},
    )
    plt.show()
    show(result.last_grid, "photo | real sketch | generated")
    show(result.last_heatmap, "|generated - real|")
    last, best = result.history[-1], result.best
    interval = "" if np.isnan(last.fid_ci[0]) else f" [{last.fid_ci[0]:.2f}, {last.fid_ci[1]:.2f}]"
    picked = "on the validation faces" if not np.isnan(best.fid_val) else "on the test set itself: optimistic"
    print(
        f"FID at the end {last.fid:.2f}{interval} (95% interval over the test faces); best FID {best.fid:.2f} "
        f"at epoch {best.epoch} (picked {picked}); mean FID {result.fid_mean():.2f}"
    )


def _gray(t: torch.Tensor) -> np.ndarray:
    return ((t.float().mean(0) + 1) / 2).clamp(0, 1).cpu().numpy()


def glad_views(fake: torch.Tensor, real: torch.Tensor, names: list[str]) -> np.ndarray:
    """Per face: real and generated sketch, their gradient magnitudes over the four directions
    glad compares, and where the gradients disagree (the glad error, per pixel)."""
    from .losses import directional_gradients, luminance

    gf, gr = directional_gradients(luminance(fake.float())), directional_gradients(luminance(real.float()))
    mag = lambda grads: torch.sqrt(sum(g * g for g in grads))[:, 0]  # noqa: E731
    err = (sum((a - b).abs() for a, b in zip(gf, gr)) / len(gf))[:, 0]
    cols = [
        ("real sketch", lambda i: _gray(real[i]), "gray", 0, 1),
        ("generated", lambda i: _gray(fake[i]), "gray", 0, 1),
        ("|∇ real|", lambda i: mag(gr)[i].numpy(), "magma", 0, None),
        ("|∇ generated|", lambda i: mag(gf)[i].numpy(), "magma", 0, None),
        ("glad error", lambda i: err[i].numpy(), "inferno", 0, None),
    ]
    n = len(fake)
    fig, axes = plt.subplots(n, len(cols), figsize=(2.1 * len(cols), 2.2 * n), squeeze=False, constrained_layout=True)
    vmax = float(max(mag(gr).max(), mag(gf).max()))
    emax = float(err.max()) or 1.0
    for i in range(n):
        for j, (title, get, cmap, vmin, top) in enumerate(cols):
            ax = axes[i][j]
            im = ax.imshow(get(i), cmap=cmap, vmin=vmin, vmax=top if top is not None else (emax if j == 4 else vmax))
            ax.set_title(f"{names[i]}\n{title}" if j == 0 else title, fontsize=8)
            ax.axis("off")
        fig.colorbar(im, ax=axes[i][-1], shrink=0.8)
    return figure_to_array(fig)


def chamfer_views(fake: torch.Tensor, real: torch.Tensor, names: list[str]) -> np.ndarray:
    """Per face: real and generated sketch, then what the distance-transform loss charges on the
    dark pixels: each of real's strokes by its distance to the generated strokes (missing strokes,
    d_CM(real, fake)), each generated stroke by its distance to real's (extra strokes, d_CM(fake,
    real)); as fractions of each image's largest distance, as the loss counts them."""
    from .losses import luminance, stroke_distance

    f, r = luminance(fake.float())[:, 0], luminance(real.float())[:, 0]
    with torch.no_grad():
        missing = torch.where(r < 0, stroke_distance(f, dark=True), torch.nan)
        extra = torch.where(f < 0, stroke_distance(r, dark=True), torch.nan)
    cols = [
        ("real sketch", lambda i: _gray(real[i]), "gray"),
        ("generated", lambda i: _gray(fake[i]), "gray"),
        ("missing: real strokes,\nfar from generated", lambda i: missing[i].numpy(), "turbo"),
        ("extra: generated strokes,\nfar from real", lambda i: extra[i].numpy(), "turbo"),
    ]
    n = len(fake)
    top = float(torch.nan_to_num(torch.stack([missing, extra]), nan=0).max()) or 1.0  # one scale for the figure
    fig, axes = plt.subplots(n, len(cols), figsize=(2.1 * len(cols), 2.3 * n), squeeze=False, constrained_layout=True)
    for i in range(n):
        for j, (title, get, cmap) in enumerate(cols):
            ax = axes[i][j]
            if cmap == "gray":
                ax.imshow(get(i), cmap=cmap, vmin=0, vmax=1)
            else:  # the strokes on white (nan), coloured by their distance
                im = ax.imshow(get(i), cmap=cmap, vmin=0, vmax=top)
            ax.set_title(f"{names[i]}\n{title}" if j == 0 else title, fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
        fig.colorbar(im, ax=axes[i][-1], shrink=0.8, label="distance / largest")
    return figure_to_array(fig)


def local_views(pieces: dict, photos: torch.Tensor, names: list[str]) -> np.ndarray:
    """Per face: the photo with its part boxes, each local network's output (hair and background
    black outside their region), the composite of all six, the global output, the fused result
    and, for the blend and attention fusions, the local outputs' share of each pixel (attention:
    also which output weighs most there)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch, Rectangle

    locals_ = [(pieces["parts"], p) for p in pieces["parts"]] + [(pieces["regions"], r) for r in pieces["regions"]]
    shown = [
        (key, title)
        for key, title in [("composite", "local composite"), ("global_out", "global U-Net"), ("fake", "fused")]
        if key in pieces
    ]
    weights = pieces.get("weights", {})
    n = len(photos)
    ncols = 1 + len(locals_) + len(shown) + (1 if weights else 0) + (1 if len(weights) > 1 else 0)
    fig, axes = plt.subplots(n, ncols, figsize=(1.9 * ncols, 2.1 * n), squeeze=False, constrained_layout=True)
    sources = list(weights)
    palette = ListedColormap(plt.get_cmap("tab10").colors[: max(len(sources), 1)])
    for i in range(n):
        row = axes[i]
        row[0].imshow(to_rgb_uint8(photos[i : i + 1])[0])
        for x, y, w, h in (pieces["boxes"][p][i] for p in pieces["boxes"]):
            row[0].add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="yellow", linewidth=1))
        row[0].set_title(f"{names[i]}\nphoto + parts", fontsize=8)
        j = 1
        for outputs, name in locals_:
            row[j].imshow(_gray(outputs[name][i]), cmap="gray", vmin=0, vmax=1)
            row[j].set_title(name, fontsize=8)
            j += 1
        for key, title in shown:
            row[j].imshow(_gray(pieces[key][i]), cmap="gray", vmin=0, vmax=1)
            row[j].set_title(title, fontsize=8)
            j += 1
        if weights:
            share = weights["local"][i, 0] if "local" in weights else 1 - weights["global"][i]
            im = row[j].imshow(share.numpy(), cmap="viridis", vmin=0, vmax=1)
            row[j].set_title("local outputs' weight", fontsize=8)
            fig.colorbar(im, ax=row[j], shrink=0.7)
            j += 1
        if len(weights) > 1:
            strongest = torch.stack([weights[s][i] for s in sources]).argmax(0)
            row[j].imshow(strongest.numpy(), cmap=palette, vmin=-0.5, vmax=len(sources) - 0.5, interpolation="nearest")
            row[j].set_title("strongest output", fontsize=8)
        for ax in row:
            ax.axis("off")
    if len(weights) > 1:
        fig.legend(
            handles=[Patch(color=palette(k), label=s) for k, s in enumerate(sources)],
            loc="outside lower center",
            ncols=len(sources),
            fontsize=7,
        )
    return figure_to_array(fig)


def show_alignment(result) -> None:
    """An +align run's views, logged to its run: the photo's region outlines over the sketch
    before | after | the field (colour: direction, strength: length), and each region's IoU
    before and after."""
    from PIL import Image

    from . import keys
    from .align.views import overlap_figure

    alignment = result.data.alignment
    sheet = np.asarray(Image.open(alignment.folder / "check.png").convert("RGB"))
    result.run.log_image(sheet, keys.ALIGN_VIEWS, step=0)
    show(sheet, f"photo's regions over the sketch: before | after ({alignment.mode}) | the field", width=9)
    bars = figure_to_array(overlap_figure(alignment.per_region()))
    result.run.log_image(bars, keys.ALIGN_OVERLAP, step=0)
    show(bars, "", width=8)
    last = result.history[-1]
    print(
        f"FID against the real test sketches {last.fid:.2f} (the headline number); against the aligned test "
        f"sketches {last.fid_aligned:.2f}"
    )
