"""APDrawingGAN-style local networks: part generators, their fusion with the global output,
and part discriminators.

Each part (left eye, right eye, nose, mouth; with parsing masks also hair and background) has
a small U-Net that draws the sketch of its crop of the photo. The parts are pasted on a white
canvas and combined by minimum (dark strokes win, as pencil on paper); hair and background
fill their mask regions of the canvas first. A fusion network (7x7 conv, two residual blocks,
7x7 conv, tanh) combines that composite with the global U-Net's output into the final sketch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.labels import LABELS
from ..data.parts import PART_SIZES, part_boxes, part_size
from .pix2pix import PatchDiscriminator, UnetGenerator

FACE_PARTS = tuple(PART_SIZES)          # left_eye, right_eye, nose, mouth
MASK_PARTS = ("hair", "background")


def boxes_for(landmarks: torch.Tensor, size: int) -> dict[str, list[tuple[int, int, int, int]]]:
    """{part: [(x0, y0, w, h) per sample]} from (N, 5, 2) landmarks on the size x size canvas."""
    if torch.isnan(landmarks).any():
        raise ValueError("the local networks need the 5 landmarks of every face; run `labkit landmarks DATA_ROOT` "
                         "(or add landmarks_manual.csv rows) for the faces without them")
    per_sample = [part_boxes(lm.cpu().numpy(), size) for lm in landmarks]
    return {part: [b[part] for b in per_sample] for part in FACE_PARTS}


def crop(images: torch.Tensor, boxes: list[tuple[int, int, int, int]]) -> torch.Tensor:
    return torch.stack([img[:, y:y + h, x:x + w] for img, (x, y, w, h) in zip(images, boxes)])


def paste_min(canvas: torch.Tensor, parts: torch.Tensor, boxes: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """Each part's pixels combined with the canvas under it by minimum. Parts are padded with
    white (+1, the largest value a tanh output takes), which leaves the canvas elsewhere as it is."""
    height, width = canvas.shape[-2:]
    placed = torch.stack([F.pad(part, (x, width - x - w, y, height - y - h), value=1.0)
                          for part, (x, y, w, h) in zip(parts, boxes)])
    return torch.minimum(canvas, placed)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(True), nn.ReflectionPad2d(1),
                                  nn.Conv2d(channels, channels, 3, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        return x + self.body(x)


class Fusion(nn.Module):
    def __init__(self, channels: int, ngf: int = 32):
        super().__init__()
        self.model = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(2 * channels, ngf, 7, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            ResidualBlock(ngf), ResidualBlock(ngf),
            nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh())

    def forward(self, global_out: torch.Tensor, composite: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat([global_out, composite], 1))


def _part_depth(size: int) -> int:
    return 3 if all(d % 8 == 0 for part in FACE_PARTS for d in part_size(part, size)) else 2


class LocalGenerator(nn.Module):
    """Global U-Net + part U-Nets + fusion. forward returns the fused sketch and its pieces."""

    def __init__(self, input_nc: int, output_nc: int, image_size: int, ngf: int = 64, ngf_local: int = 32,
                 hair_background: bool = False):
        super().__init__()
        self.size = image_size
        self.global_net = UnetGenerator(input_nc, output_nc, image_size, ngf)
        depth = _part_depth(image_size)
        self.parts = nn.ModuleDict({p: UnetGenerator(input_nc, output_nc, ngf=ngf_local, num_downs=depth)
                                    for p in FACE_PARTS})
        self.mask_parts = nn.ModuleDict({p: UnetGenerator(input_nc, output_nc, image_size, ngf_local)
                                         for p in MASK_PARTS}) if hair_background else nn.ModuleDict()
        self.fusion = Fusion(output_nc, ngf_local)

    def forward(self, photo: torch.Tensor, landmarks: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
        boxes = boxes_for(landmarks, self.size)
        global_out = self.global_net(photo)
        canvas = torch.ones_like(global_out)
        if len(self.mask_parts) and mask is not None and (mask >= 0).all():
            regions = {"hair": mask == LABELS["hair"], "background": mask == LABELS["background"]}
            for name, net in self.mask_parts.items():
                canvas = torch.where(regions[name][:, None], net(photo), canvas)
        parts = {p: net(crop(photo, boxes[p])) for p, net in self.parts.items()}
        composite = canvas
        for p, out in parts.items():
            composite = paste_min(composite, out, boxes[p])
        return dict(fake=self.fusion(global_out, composite), global_out=global_out, composite=composite,
                    parts=parts, boxes=boxes)


class PartDiscriminators(nn.Module):
    """A PatchGAN per face part, on cat(photo crop, sketch crop); fewer layers for small crops."""

    def __init__(self, input_nc: int, image_size: int, ndf: int = 64):
        super().__init__()
        self.nets = nn.ModuleDict({p: PatchDiscriminator(input_nc, ndf, n_layers=3 if min(part_size(p, image_size)) >= 32
                                                         else 1) for p in FACE_PARTS})

    def forward(self, part: str, pair: torch.Tensor) -> torch.Tensor:
        return self.nets[part](pair)
