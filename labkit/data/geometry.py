"""The geometry of a face sample: pad to a square, pad-crop-flip for training.

The lab's setting at 256 px: CUFS's 200 x 250 images are padded (not resized) to 256 x 256;
training pads further to 286 and random-crops 256, with a random flip; test images are only
padded. At other sizes everything scales by size / 256 (so a 64 px run sees 50 x 62 faces
padded to 64, and a 72 px training pad).

Images are (C, H, W) tensors in [-1, 1], padded with white (+1, the paper of a sketch);
masks are (H, W) label tensors padded with background (0) and never interpolated. Landmarks
are (5, 2) x, y in continuous pixel coordinates (pixel i spans [i, i + 1)), in MTCNN order;
a flip mirrors x and swaps left / right eye and mouth corners.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .images import DataError

BASE_SIZE, BASE_TRAIN_PAD = 256, 286
FLIP_ORDER = [1, 0, 2, 4, 3]  # left eye <-> right eye, mouth left <-> mouth right
WHITE = 1.0


@dataclass(frozen=True)
class Placement:
    """How an original W x H image lands on the size x size canvas."""

    size: int
    scale_x: float
    scale_y: float
    left: int
    top: int
    width: int
    height: int

    @classmethod
    def for_image(cls, width: int, height: int, size: int, source: str = "image") -> Placement:
        s = size / BASE_SIZE
        w, h = max(1, round(width * s)), max(1, round(height * s))
        if w > size or h > size:
            raise DataError(
                f"{source}: {width} x {height} does not fit a {BASE_SIZE} x {BASE_SIZE} canvas "
                f"(it is padded, never shrunk, as in the paper setting); crop or resize it first"
            )
        return cls(size, w / width, h / height, (size - w) // 2, (size - h) // 2, w, h)

    def image(self, img: torch.Tensor) -> torch.Tensor:
        if (img.shape[-1], img.shape[-2]) != (self.width, self.height):
            img = F.interpolate(
                img[None], size=(self.height, self.width), mode="bilinear", align_corners=False, antialias=True
            )[0]
        return _pad(
            img, self.left, self.size - self.width - self.left, self.top, self.size - self.height - self.top, WHITE
        )

    def labels(self, mask: torch.Tensor) -> torch.Tensor:
        if (mask.shape[-1], mask.shape[-2]) != (self.width, self.height):
            mask = F.interpolate(mask[None, None].float(), size=(self.height, self.width), mode="nearest")[0, 0].long()
        return _pad(
            mask, self.left, self.size - self.width - self.left, self.top, self.size - self.height - self.top, 0
        )

    def points(self, pts: np.ndarray) -> np.ndarray:
        return pts * [self.scale_x, self.scale_y] + [self.left, self.top]


def _pad(t: torch.Tensor, left: int, right: int, top: int, bottom: int, value: float) -> torch.Tensor:
    return F.pad(t, (left, right, top, bottom), mode="constant", value=value)


def train_pad(size: int) -> int:
    """Extra pixels of the training pad at this size (30 at 256, 8 at 64)."""
    return round((BASE_TRAIN_PAD - BASE_SIZE) * size / BASE_SIZE)


@dataclass(frozen=True)
class Jitter:
    """One random pad-crop-flip: offsets into the padded canvas and whether to mirror."""

    pad: int
    x: int
    y: int
    flip: bool

    @classmethod
    def draw(cls, size: int, rng: np.random.Generator, crop: bool = True) -> Jitter:
        """A flip and, with crop, a pad-crop offset (pix2pix's; APDrawingGAN's local training has
        none): the same random numbers drawn either way."""
        pad = train_pad(size) if crop else 0
        return cls(pad, int(rng.integers(0, pad + 1)), int(rng.integers(0, pad + 1)), bool(rng.random() < 0.5))

    def image(self, img: torch.Tensor, fill: float = WHITE) -> torch.Tensor:
        size = img.shape[-1]
        half = self.pad // 2
        padded = _pad(img, half, self.pad - half, half, self.pad - half, fill)
        out = padded[..., self.y : self.y + size, self.x : self.x + size]
        return out.flip(-1) if self.flip else out

    def labels(self, mask: torch.Tensor) -> torch.Tensor:
        return self.image(mask, fill=0)

    def points(self, pts: np.ndarray, size: int) -> np.ndarray:
        out = pts + (self.pad // 2) - np.array([self.x, self.y])
        if self.flip:
            out = out[FLIP_ORDER] * [-1, 1] + [size, 0]
        return out


def jitter_batch(images: torch.Tensor, pad: int, y: torch.Tensor, x: torch.Tensor, flip: torch.Tensor, fill: float):
    """Each image (B, C, S, S) padded by `pad`, cropped at its (y, x) and flipped where `flip`,
    all at once on the images' device (y, x, flip: (B,) tensors there, one Jitter's fields per
    image): the same result as jitter.image per image."""
    b, c, size, _ = images.shape
    padded = _pad(images, pad // 2, pad - pad // 2, pad // 2, pad - pad // 2, fill)
    device = images.device
    steps = torch.arange(size, device=device)
    ys = y[:, None] + steps
    xs = x[:, None] + steps
    xs = torch.where(flip.bool()[:, None], xs.flip(1), xs)
    return padded[
        torch.arange(b, device=device)[:, None, None, None],
        torch.arange(c, device=device)[None, :, None, None],
        ys[:, None, :, None],
        xs[:, None, None, :],
    ]


def jitter_points_batch(points: torch.Tensor, jitters: list[Jitter], size: int) -> torch.Tensor:
    """(B, 5, 2) landmarks moved as jitter_batch moves their images (jitter.points per face)."""
    return torch.stack(
        [torch.from_numpy(j.points(p.numpy(), size).astype(np.float32)) for j, p in zip(jitters, points)]
    )
