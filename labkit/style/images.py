"""Content and style images: RGB [0, 1] tensors, from folders or scikit-image's real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.images import IMAGE_SUFFIXES, DataError, read_image, to_tensor

DEFAULT_CONTENT = ("astronaut", "coffee", "chelsea")
DEFAULT_STYLE = ("brick", "grass", "gravel")


def _skimage(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    return np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]


def resize_short(img: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) with its short side = size, then cropped to multiples of 8 (VGG halves 3 times)."""
    h, w = img.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(8, round(h * scale)), max(8, round(w * scale))
    out = F.interpolate(img[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)[0]
    return out[:, : nh - nh % 8, : nw - nw % 8]


def load_images(folder: str, defaults: tuple[str, ...], size: int) -> list[tuple[str, torch.Tensor]]:
    """[(name, (3, H, W) RGB [0, 1])] from a folder, or scikit-image's images when folder is empty."""
    if not folder:
        return [(name, resize_short(to_tensor(_skimage(name)), size)) for name in defaults]
    paths = sorted(p for p in Path(folder).expanduser().iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return [(p.stem, resize_short(to_tensor(read_image(p, 3)), size)) for p in paths]


def load_sets(cfg) -> tuple[list, list]:
    """(content, style) of a style config: [(name, (3, H, W) RGB [0, 1])] each."""
    return (
        load_images(cfg.content_dir, DEFAULT_CONTENT, cfg.image_size),
        load_images(cfg.style_dir, DEFAULT_STYLE, cfg.image_size),
    )


def random_crops(images: list[torch.Tensor], count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """count random size x size crops, each from a randomly chosen image."""
    out = []
    for _ in range(count):
        img = images[int(torch.randint(len(images), (1,), generator=generator))]
        h, w = img.shape[-2:]
        y = int(torch.randint(h - size + 1, (1,), generator=generator)) if h > size else 0
        x = int(torch.randint(w - size + 1, (1,), generator=generator)) if w > size else 0
        crop = img[:, y : y + size, x : x + size]
        if crop.shape[-2:] != (size, size):
            crop = F.interpolate(crop[None], size=(size, size), mode="bilinear", align_corners=False)[0]
        out.append(crop)
    return torch.stack(out)
