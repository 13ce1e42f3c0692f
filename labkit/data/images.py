"""Reading images from disk into uint8 arrays, whatever mode they were saved in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class DataError(ValueError):
    """Bad or missing data; the message names the file(s) and what to do."""


def read_image(path: str | Path, channels: int) -> np.ndarray:
    """(H, W, 3) or (H, W) uint8. Palette, RGBA (on white), CMYK, 16-bit and grayscale
    files are converted; an unreadable file raises DataError naming it."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit: scale the full range to 8 bits rather than clipping at 255
                arr = np.asarray(img, dtype=np.float64)
                top = 65535.0 if arr.max() > 255 else 255.0
                img = Image.fromarray(np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8))
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, rgba)
            img = img.convert("RGB" if channels == 3 else "L")
            return np.asarray(img).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot read this image ({exc}). Replace or remove the file.") from None


def to_tensor(img: np.ndarray, low: float = 0.0, high: float = 1.0):
    """uint8 (H, W[, C]) -> float (C, H, W) scaled to [low, high]: [0, 1] for the style lab,
    [-1, 1] for the face networks (tanh outputs)."""
    import torch  # here: the command line imports this module (DataError) without torch

    t = torch.from_numpy(np.ascontiguousarray(img)).float().div_(255.0 / (high - low)).add_(low)
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1)


def read_labels(path: str | Path) -> np.ndarray:
    """A parsing mask: one label per pixel (mode L or P), never interpolated or converted."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("L", "P"):
                raise DataError(f"{path}: a label image must be 8-bit single channel (L or P), got {img.mode}")
            return np.asarray(img).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read this label image ({exc})") from None
