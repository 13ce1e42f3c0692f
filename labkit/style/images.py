"""Content and style images: RGB [0, 1] tensors, from folders or scikit-image's real photos."""

from __future__ import annotations

from collections.abc import Sequence
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


class ImageFolder(Sequence):
    """The images under a folder and its subfolders (MSCOCO's train2014/ holds them flat, WikiArt
    a folder per style): (name, (3, H, W) RGB [0, 1]) with the short side at `size`, each read
    from disk when asked for, so a set of 80,000 images is never in memory at once."""

    def __init__(self, folder: str, size: int):
        root = Path(folder).expanduser()
        self.paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.paths:
            raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found in it or its subfolders")
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        path = self.paths[index]
        return path.stem, resize_short(to_tensor(read_image(path, 3)), self.size)

    def __add__(self, other: Sequence) -> list:  # content + style, as lists add: every picture read
        return list(self) + list(other)

    def __radd__(self, other: Sequence) -> list:
        return list(other) + list(self)


def load_images(folder: str, defaults: tuple[str, ...], size: int) -> Sequence:
    """[(name, (3, H, W) RGB [0, 1])] from a folder (read as used: ImageFolder), or scikit-image's
    images when folder is empty."""
    if not folder:
        return [(name, resize_short(to_tensor(_skimage(name)), size)) for name in defaults]
    return ImageFolder(folder, size)


class Pictures(Sequence):
    """The pictures of several (name, picture) sets one after another, on a device: copied there
    once when there are few (`keep`), else read and copied at each use."""

    def __init__(self, sets: list[Sequence], device: torch.device, keep: int = 256):
        self.sets, self.device = sets, device
        total = sum(len(s) for s in sets)
        self.kept = [img.to(device) for s in sets for _, img in s] if total <= keep else None

    def __len__(self) -> int:
        return sum(len(s) for s in self.sets)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self.kept is not None:
            return self.kept[index]
        for pictures in self.sets:
            if index < len(pictures):
                return pictures[index][1].to(self.device)
            index -= len(pictures)
        raise IndexError(index)


def load_sets(cfg) -> tuple[list, list]:
    """(content, style) of a style config: [(name, (3, H, W) RGB [0, 1])] each."""
    return (
        load_images(cfg.content_dir, DEFAULT_CONTENT, cfg.image_size),
        load_images(cfg.style_dir, DEFAULT_STYLE, cfg.image_size),
    )


def random_crops(images: Sequence[torch.Tensor], count: int, size: int, generator: torch.Generator) -> torch.Tensor:
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
