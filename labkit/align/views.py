"""Pictures of an alignment: the photo's region outlines over the sketch before and after,
the field as a colour wheel, and the regions' overlap before and after."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import hsv_to_rgb
from scipy import ndimage

from .regions import PARTS

# one colour per label (skin, hair, brows, eyes, nose, mouth), as the legend of the figures
COLOURS = {1: (255, 140, 0), 2: (150, 60, 220), 3: (0, 160, 255), 4: (0, 200, 80), 5: (255, 0, 120), 6: (230, 30, 30)}


def outlines(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """An image (H, W[, 3]) as RGB with each label's outline drawn over it in its colour."""
    rgb = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image.copy()
    rgb = (0.35 * 255 + 0.65 * rgb.astype(np.float32)).astype(np.uint8)  # paled, so the outlines stand out
    for label, colour in COLOURS.items():
        region = labels == label
        rgb[region & ~ndimage.binary_erosion(region)] = colour
    return rgb


def colour_wheel(field: np.ndarray, scale: float | None = None) -> np.ndarray:
    """The field as colour (RGB uint8): hue the direction, brightness the length (white: no
    movement), full at `scale` px (default the field's largest)."""
    length = np.linalg.norm(field, axis=-1)
    scale = scale or max(float(length.max()), 1e-6)
    hue = (np.arctan2(field[..., 1], field[..., 0]) / (2 * np.pi)) % 1.0
    hsv = np.stack([hue, np.clip(length / scale, 0, 1), np.ones_like(hue)], -1)
    return (hsv_to_rgb(hsv) * 255).astype(np.uint8)


def check_sheet(faces: list[dict], gap: int = 4) -> np.ndarray:
    """One row per face: the photo's outlines over the sketch before | after | the field.
    Each face: sketch, warped, photo_labels, field."""
    rows = []
    for f in faces:
        scale = max(float(np.linalg.norm(f["field"], axis=-1).max()), 1e-6)
        tiles = [
            outlines(f["sketch"], f["photo_labels"]),
            outlines(f["warped"], f["photo_labels"]),
            colour_wheel(f["field"], scale),
        ]
        h = max(t.shape[0] for t in tiles)
        row = np.full((h, sum(t.shape[1] for t in tiles) + gap * 2, 3), 255, np.uint8)
        x = 0
        for t in tiles:
            row[: t.shape[0], x : x + t.shape[1]] = t
            x += t.shape[1] + gap
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    sheet = np.full((sum(r.shape[0] for r in rows) + gap * (len(rows) - 1), width, 3), 255, np.uint8)
    y = 0
    for r in rows:
        sheet[y : y + r.shape[0], : r.shape[1]] = r
        y += r.shape[0] + gap
    return sheet


def overlap_figure(per_region: dict[str, dict[str, float]], title: str = "region IoU, photo vs sketch"):
    """Bars of each region's IoU before and after alignment: {name: {before, after}}."""
    import matplotlib.pyplot as plt

    names = [n for n in PARTS.values() if n in per_region]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    ax.bar(x - 0.2, [per_region[n]["before"] for n in names], 0.4, label="before", color="#bbbbbb")
    ax.bar(x + 0.2, [per_region[n]["after"] for n in names], 0.4, label="after", color="#2a7ab9")
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
