"""APDrawingGAN's local networks (yiranran/APDrawingGAN, models/apdrawing_gan_model.py and
networks.py): six local generators, their combination, the fusion network and six local
discriminators.

- Face parts (left eye, right eye, nose, mouth): a 3-level U-Net each (upstream `partunet`,
  widths ngf, 2ngf, 4ngf) on the photo's crop of the part box.
- Hair and background: a 4-level U-Net each (upstream `partunet2`, widths ngf, 2ngf, 2ngf, 2ngf,
  dropout in its middle level) on the whole photo masked to its region, black elsewhere.
  Hair is the foreground outside the four part boxes, background the rest (upstream:
  `mask * mask2` and `1 - mask2`). The foreground is every pixel the parsing map does not label
  background; a face without a parsing map counts wholly as foreground (hair is then everything
  outside the part boxes and the background region is empty), and the run says so.
- The six outputs are combined by minimum on white (dark strokes win, as pencil on paper):
  upstream's `partCombiner2_bg` with `comb_op` 1.
- Fusion: upstream's `combiner` by default; the variants in labkit.models.fusion.
- Discriminators: a PatchGAN per local region on cat(photo, sketch), cropped to the part box or
  masked to the region (upstream's `getLocalParts`).
All at ngf / ndf of the global networks, as upstream (`opt.ngf`, `opt.ndf`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.labels import LABELS
from ..data.parts import PART_SIZES, part_boxes, part_size
from .fusion import fusion_net
from .pix2pix import PatchDiscriminator, UnetGenerator

FACE_PARTS = tuple(PART_SIZES)  # left_eye, right_eye, nose, mouth
REGIONS = ("hair", "background")  # whole-image regions
LOCAL_PARTS = FACE_PARTS + REGIONS  # the six local generators and discriminators
REGION_DEPTH = 4  # upstream's partunet2 is built with nnG 4


def boxes_for(landmarks: torch.Tensor, size: int) -> dict[str, list[tuple[int, int, int, int]]]:
    """{part: [(x0, y0, w, h) per sample]} from (N, 5, 2) landmarks on the size x size canvas."""
    if torch.isnan(landmarks).any():
        raise ValueError(
            "the local networks need the 5 landmarks of every face; run `labkit landmarks DATA_ROOT` "
            "(or add landmarks_manual.csv rows) for the faces without them"
        )
    per_sample = [part_boxes(lm.cpu().numpy(), size) for lm in landmarks]
    return {part: [b[part] for b in per_sample] for part in FACE_PARTS}


def crop(images: torch.Tensor, boxes: list[tuple[int, int, int, int]]) -> torch.Tensor:
    return torch.stack([img[:, y : y + h, x : x + w] for img, (x, y, w, h) in zip(images, boxes)])


def placed(
    parts: torch.Tensor, boxes: list[tuple[int, int, int, int]], height: int, width: int, around: float = 1.0
) -> torch.Tensor:
    """Each part on a height x width canvas at its box, `around` elsewhere (white: +1, the
    largest value a tanh output takes)."""
    return torch.stack(
        [F.pad(part, (x, width - x - w, y, height - y - h), value=around) for part, (x, y, w, h) in zip(parts, boxes)]
    )


def paste_min(canvas: torch.Tensor, parts: torch.Tensor, boxes: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """Each part's pixels combined with the canvas under it by minimum; white around a part
    leaves the canvas there as it is."""
    return torch.minimum(canvas, placed(parts, boxes, *canvas.shape[-2:]))


def known_foreground(mask: torch.Tensor) -> torch.Tensor:
    """(N,) True where a face has a parsing map (labels -1 mark a face without one)."""
    return ~(mask < 0).flatten(1).any(1)


def region_masks(mask: torch.Tensor | None, boxes: dict, photo: torch.Tensor) -> dict[str, torch.Tensor]:
    """{'hair', 'background'}: (N, 1, H, W) 0/1 masks. Hair is the foreground outside the part
    boxes; background is where the parsing map says background (nothing for a face without one)."""
    n, _, height, width = photo.shape
    outside = torch.ones(n, 1, height, width, device=photo.device, dtype=photo.dtype)
    for part in FACE_PARTS:
        for i, (x, y, w, h) in enumerate(boxes[part]):
            outside[i, :, y : y + h, x : x + w] = 0
    foreground = torch.ones_like(outside)
    if mask is not None:
        labelled = known_foreground(mask).to(photo.device)[:, None, None, None]
        not_background = (mask != LABELS["background"])[:, None].to(photo.device, photo.dtype)
        foreground = torch.where(labelled, not_background, foreground)
    return {"hair": outside * foreground, "background": 1 - foreground}


def masked(images: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Images kept inside the region, black (-1) elsewhere: upstream's `masked`."""
    return images * region - (1 - region)


def on_white(images: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Images kept inside the region, white (+1) elsewhere: upstream's `addone_with_mask`."""
    return images * region + (1 - region)


def _part_depth(size: int) -> int:
    """3 levels (upstream) where every part box divides by 8; 2 for the small boxes of tiny images."""
    return 3 if all(d % 8 == 0 for part in FACE_PARTS for d in part_size(part, size)) else 2


def part_net(input_nc: int, output_nc: int, size: int, ngf: int) -> UnetGenerator:
    """Upstream's `partunet`: widths ngf, 2ngf, 4ngf."""
    return UnetGenerator(input_nc, output_nc, ngf=ngf, num_downs=_part_depth(size), max_mult=4)


def region_net(input_nc: int, output_nc: int, ngf: int) -> UnetGenerator:
    """Upstream's `partunet2`: widths ngf, 2ngf, 2ngf, 2ngf, dropout in the level between two 2ngf."""
    return UnetGenerator(input_nc, output_nc, ngf=ngf, num_downs=REGION_DEPTH, max_mult=2)


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def control_width(input_nc: int, output_nc: int, image_size: int, ngf: int) -> int:
    """The global U-Net width whose parameter count is nearest that of the whole combiner model
    (global U-Net, six local networks, fusion): fusion `none`'s generator."""
    with torch.device("meta"):  # counted without allocating
        target = _count(LocalGenerator(input_nc, output_nc, image_size, ngf, "combiner"))
        width, gap = ngf, None
        while True:
            size = _count(UnetGenerator(input_nc, output_nc, image_size, width))
            if gap is not None and abs(size - target) > gap:
                return width - 1
            if size >= target:
                return width
            width, gap = width + 1, abs(size - target)


class LocalGenerator(nn.Module):
    """Global U-Net + six local U-Nets + fusion. forward returns the fused sketch and its pieces.
    With fusion `none`, only a wider global U-Net (see labkit.models.fusion)."""

    def __init__(self, input_nc: int, output_nc: int, image_size: int, ngf: int = 64, fusion: str = "combiner"):
        super().__init__()
        self.size = image_size
        control = fusion == "none"
        width = control_width(input_nc, output_nc, image_size, ngf) if control else ngf
        self.global_net = UnetGenerator(input_nc, output_nc, image_size, width)
        self.parts = (
            nn.ModuleDict()
            if control
            else nn.ModuleDict({p: part_net(input_nc, output_nc, image_size, ngf) for p in FACE_PARTS})
        )
        self.regions = (
            nn.ModuleDict() if control else nn.ModuleDict({r: region_net(input_nc, output_nc, ngf) for r in REGIONS})
        )
        self.fusion = fusion_net(fusion, output_nc, ngf)

    def forward(self, photo: torch.Tensor, landmarks: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
        """{'fake', 'global_out', 'composite', 'parts' (face part outputs), 'regions' (hair and
        background outputs, black outside their region), 'weights' (blend and attention: the
        fusion's per-pixel weights), and for the local discriminators 'areas' (the regions'
        masks) and 'boxes'}."""
        boxes = boxes_for(landmarks, self.size)
        areas = region_masks(mask, boxes, photo)
        global_out = self.global_net(photo)
        if self.fusion is None:
            return dict(fake=global_out, global_out=global_out, parts={}, regions={}, areas=areas, boxes=boxes)
        parts = {p: net(crop(photo, boxes[p])) for p, net in self.parts.items()}
        regions = {r: masked(net(masked(photo, areas[r])), areas[r]) for r, net in self.regions.items()}
        composite = torch.minimum(*(on_white(regions[r], areas[r]) for r in REGIONS))
        for p, out in parts.items():
            composite = paste_min(composite, out, boxes[p])
        # each output on the canvas with where it lies: only the attention fusion weighs them apart
        sources = (
            {
                "global": (global_out, torch.ones_like(global_out[:, :1])),
                **{
                    p: (
                        placed(out, boxes[p], self.size, self.size),
                        placed(torch.ones_like(out[:, :1]), boxes[p], self.size, self.size, around=0.0),
                    )
                    for p, out in parts.items()
                },
                **{r: (out, areas[r]) for r, out in regions.items()},
            }
            if self.fusion.needs_sources
            else None
        )
        fused = self.fusion(global_out, composite, sources)
        return dict(
            fused, global_out=global_out, composite=composite, parts=parts, regions=regions, areas=areas, boxes=boxes
        )


def local_pairs(photo: torch.Tensor, sketch: torch.Tensor, out: dict) -> dict[str, torch.Tensor]:
    """cat(photo, sketch) as each local discriminator sees it: cropped to a face part's box, or
    masked (black) to the hair or background region."""
    pair = torch.cat([photo, sketch], 1)
    return {
        **{p: crop(pair, out["boxes"][p]) for p in FACE_PARTS},
        **{r: masked(pair, out["areas"][r]) for r in REGIONS},
    }


class LocalDiscriminators(nn.Module):
    """A PatchGAN per local region (upstream's `basic` D, 3 layers); a 1-layer one for the part
    boxes of tiny images, whose sides are under 32 px."""

    def __init__(self, input_nc: int, image_size: int, ndf: int = 64):
        super().__init__()
        sides = {**{p: min(part_size(p, image_size)) for p in FACE_PARTS}, **dict.fromkeys(REGIONS, image_size)}
        self.nets = nn.ModuleDict(
            {name: PatchDiscriminator(input_nc, ndf, n_layers=3 if side >= 32 else 1) for name, side in sides.items()}
        )

    def forward(self, name: str, pair: torch.Tensor) -> torch.Tensor:
        return self.nets[name](pair)
