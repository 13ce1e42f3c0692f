"""A procedural face photo / sketch set, written to disk in the layout the real loader reads.

Each face is drawn from a seeded random face description (shape, pose offset, expression,
hair style, skin and hair colour, one of three subset styles named like CUFS's parts). The
photo is rendered with colour, shading, hair and a textured background; the sketch is drawn
as a pencil drawing of the same description (contours, hair strokes, hatching on the shaded
side). With `misalign` the sketch, and its parsing map with it, is deformed by a smooth field
that moves each region its own way (and the whole face a little), up to `misalign` px: the
misalignment +align corrects, with the true correcting field saved to score alignment by.

Layout (see labkit.data.layout): photos/NAME.png, sketches/NAME.png, masks/NAME.png and
masks_sketch/NAME.png (parsing labels of photo and sketch, labels.LABELS), landmarks.csv
(5 points, MTCNN order), split.csv, and with misalign alignment_true.npz (per name, the field
that brings the sketch back onto the photo, labkit.align.fields' convention, float16).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm.auto import tqdm

from ..paths import exclusive
from .labels import LABELS
from .layout import LANDMARK_COLUMNS
from .names import SUBSETS

WIDTH, HEIGHT = 200, 250  # CUFS image size
GENERATOR_VERSION = 2
TRUTH_FILE = "alignment_true.npz"

# Per subset: background colour, background texture strength, light direction (x), sketch
# line weight and hatching period, like the visibly different styles of CUFS's three parts.
STYLES = {
    "cuhk": dict(background=(214, 212, 205), texture=6.0, light=-0.5, line=2, hatch=5),
    "ar": dict(background=(150, 156, 170), texture=10.0, light=0.0, line=3, hatch=6),
    "xm2vts": dict(background=(60, 90, 160), texture=16.0, light=0.7, line=2, hatch=4),
}


@dataclass(frozen=True)
class Face:
    cx: float  # face centre
    cy: float
    half_w: float  # face ellipse half axes
    half_h: float
    eye_dx: float  # half distance between the eyes
    eye_y: float  # eye height relative to the centre
    eye_w: float
    eye_h: float
    nose_y: float
    mouth_y: float
    mouth_w: float
    smile: float  # mouth curvature, negative = frown
    brow_tilt: float
    hair_len: float  # 0 = short, 1 = shoulder-long
    skin: tuple
    hair: tuple
    lip: tuple

    def landmarks(self) -> np.ndarray:
        """Left eye, right eye, nose tip, left and right mouth corner (image left first)."""
        return np.array(
            [
                [self.cx - self.eye_dx, self.cy + self.eye_y],
                [self.cx + self.eye_dx, self.cy + self.eye_y],
                [self.cx, self.cy + self.nose_y],
                [self.cx - self.mouth_w / 2, self.cy + self.mouth_y],
                [self.cx + self.mouth_w / 2, self.cy + self.mouth_y],
            ],
            dtype=np.float64,
        )


def random_face(rng: np.random.Generator) -> Face:
    half_w = rng.uniform(50, 60)
    half_h = half_w * rng.uniform(1.22, 1.38)
    skin_tone = rng.uniform(0.0, 1.0)
    skin = tuple(int(v) for v in np.array([236, 196, 168]) * (1 - 0.35 * skin_tone) + rng.normal(0, 4, 3))
    hair_base = rng.choice([[30, 24, 20], [70, 45, 25], [120, 85, 50], [20, 20, 25], [150, 140, 130]])
    return Face(
        cx=WIDTH / 2 + rng.uniform(-7, 7),
        cy=HEIGHT * 0.52 + rng.uniform(-7, 7),
        half_w=half_w,
        half_h=half_h,
        eye_dx=half_w * rng.uniform(0.36, 0.44),
        eye_y=-half_h * rng.uniform(0.12, 0.2),
        eye_w=half_w * rng.uniform(0.18, 0.24),
        eye_h=half_w * rng.uniform(0.08, 0.12),
        nose_y=half_h * rng.uniform(0.15, 0.24),
        mouth_y=half_h * rng.uniform(0.45, 0.55),
        mouth_w=half_w * rng.uniform(0.6, 0.85),
        smile=rng.uniform(-0.3, 1.0),
        brow_tilt=rng.uniform(-0.15, 0.15),
        hair_len=float(rng.uniform() < 0.45),
        skin=skin,
        hair=tuple(int(v) for v in np.clip(hair_base + rng.normal(0, 8, 3), 0, 255)),
        lip=tuple(int(v) for v in np.clip(np.array(skin) * [0.8, 0.5, 0.5] + [20, 0, 0], 0, 255)),
    )


def deformation(mask: np.ndarray, rng: np.random.Generator, pixels: float) -> np.ndarray:
    """A smooth field (H, W, 2) that moves each region of the mask its own way (a shift and a
    stretch fading out around it) and the whole face by a small rotation, scaling and shift,
    scaled so that it moves no face pixel more than `pixels`."""
    from ..align.fields import affine_field
    from ..align.regions import regions

    h, w = mask.shape
    angle, scale = rng.uniform(-0.03, 0.03), 1 + rng.uniform(-0.03, 0.03)
    matrix = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([w / 2, h / 2])
    field = affine_field(matrix, centre - matrix @ centre + rng.uniform(-0.4, 0.4, 2) * pixels, (h, w))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for region in regions(mask):
        reach = region.radius + 6
        bump = np.exp(-((xs - region.centroid[0]) ** 2 + (ys - region.centroid[1]) ** 2) / (2 * reach**2))
        stretch = rng.uniform(-0.08, 0.08, (2, 2))
        local = (np.stack([xs, ys], -1) - region.centroid) @ stretch.T + rng.uniform(-1, 1, 2) * pixels
        field += bump[..., None] * local.astype(np.float32)
    face = mask != LABELS["background"]
    return field * (pixels / np.linalg.norm(field, axis=-1)[face].max())


def _ellipse(cx, cy, rx, ry):
    return [cx - rx, cy - ry, cx + rx, cy + ry]


def _mouth_points(face: Face, n=9, open_=0.0):
    xs = np.linspace(-face.mouth_w / 2, face.mouth_w / 2, n)
    curve = face.smile * 6 * (1 - (2 * xs / face.mouth_w) ** 2)
    upper = [(face.cx + x, face.cy + face.mouth_y + c - 2 - open_) for x, c in zip(xs, curve * 0.3)]
    lower = [(face.cx + x, face.cy + face.mouth_y + c + 3 + open_) for x, c in zip(xs[::-1], curve[::-1])]
    return upper, lower


def _brow(face: Face, side: int):
    ex = face.cx + side * face.eye_dx
    y = face.cy + face.eye_y - face.eye_h - 7
    w = face.eye_w * 1.2
    tilt = face.brow_tilt * w * side
    return [(ex - w, y + tilt), (ex, y - 3), (ex + w, y - tilt)]


def draw_mask(face: Face) -> np.ndarray:
    """Parsing labels (LABELS) for a face description."""
    img = Image.new("L", (WIDTH, HEIGHT), LABELS["background"])
    d = ImageDraw.Draw(img)
    _draw_hair_back(d, face, LABELS["hair"])
    d.rectangle(
        [face.cx - face.half_w * 0.45, face.cy + face.half_h * 0.6, face.cx + face.half_w * 0.45, HEIGHT],
        fill=LABELS["skin"],
    )
    d.ellipse(_ellipse(face.cx, face.cy, face.half_w, face.half_h), fill=LABELS["skin"])
    _draw_fringe(d, face, LABELS["hair"])
    for side in (-1, 1):
        d.line(_brow(face, side), fill=LABELS["brows"], width=4)
        d.ellipse(
            _ellipse(face.cx + side * face.eye_dx, face.cy + face.eye_y, face.eye_w, face.eye_h), fill=LABELS["eyes"]
        )
    ny = face.cy + face.nose_y
    d.polygon(
        [
            (face.cx - 3, ny - face.half_h * 0.3),
            (face.cx + 3, ny - face.half_h * 0.3),
            (face.cx + 9, ny + 3),
            (face.cx - 9, ny + 3),
        ],
        fill=LABELS["nose"],
    )
    upper, lower = _mouth_points(face)
    d.polygon(upper + lower, fill=LABELS["mouth"])
    return np.asarray(img)


def _draw_hair_back(d: ImageDraw.ImageDraw, face: Face, fill):
    top = face.cy - face.half_h * 1.18
    d.ellipse([face.cx - face.half_w * 1.18, top, face.cx + face.half_w * 1.18, face.cy + face.half_h * 0.4], fill=fill)
    if face.hair_len:
        d.rectangle(
            [
                face.cx - face.half_w * 1.2,
                face.cy - face.half_h * 0.2,
                face.cx + face.half_w * 1.2,
                face.cy + face.half_h * 1.1,
            ],
            fill=fill,
        )


def _draw_fringe(d: ImageDraw.ImageDraw, face: Face, fill):
    d.chord(
        [
            face.cx - face.half_w * 1.05,
            face.cy - face.half_h * 1.1,
            face.cx + face.half_w * 1.05,
            face.cy - face.half_h * 0.25,
        ],
        180,
        360,
        fill=fill,
    )


def _smooth_noise(rng, shape, scale):
    coarse = rng.normal(0, 1, (shape[0] // scale + 2, shape[1] // scale + 2)).astype(np.float32)
    img = Image.fromarray(coarse).resize((shape[1] + 2 * scale, shape[0] + 2 * scale), Image.BICUBIC)
    return np.asarray(img)[scale : scale + shape[0], scale : scale + shape[1]]


def _shading(face: Face, light: float) -> np.ndarray:
    """Lambert-like shading of an ellipsoid face lit from the side `light` (-1 left, +1 right)."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32) + 0.5
    u = np.clip((xx - face.cx) / (face.half_w * 1.3), -1, 1)
    v = np.clip((yy - face.cy) / (face.half_h * 1.3), -1, 1)
    nz = np.sqrt(np.clip(1 - u**2 - v**2, 0, 1))
    lx, lz = light * 0.8, 1.0
    return np.clip((u * lx + nz * lz - 0.25 * v) / np.hypot(lx, lz), 0.25, 1.0)


def render_photo(face: Face, style: dict, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    bg = np.array(style["background"], np.float32)
    photo = bg + _smooth_noise(rng, (HEIGHT, WIDTH), 8)[..., None] * style["texture"]
    photo += np.linspace(-12, 12, HEIGHT, dtype=np.float32)[:, None, None]
    colours = {
        LABELS["skin"]: face.skin,
        LABELS["hair"]: face.hair,
        LABELS["brows"]: face.hair,
        LABELS["nose"]: face.skin,
        LABELS["mouth"]: face.lip,
    }
    for label, colour in colours.items():
        photo[mask == label] = colour
    photo[mask == LABELS["eyes"]] = (235, 235, 230)
    hair = mask == LABELS["hair"]
    photo[hair] += (_smooth_noise(rng, (HEIGHT, WIDTH), 2)[hair] * 18)[:, None]
    img = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for side in (-1, 1):  # irises, pupils, nostrils
        ex, ey = face.cx + side * face.eye_dx, face.cy + face.eye_y
        r = face.eye_h * 0.95
        d.ellipse(_ellipse(ex, ey, r, r), fill=(70, 50, 35))
        d.ellipse(_ellipse(ex, ey, r * 0.45, r * 0.45), fill=(10, 10, 10))
        d.ellipse(_ellipse(face.cx + side * 5, face.cy + face.nose_y + 1, 2.5, 1.6), fill=(90, 60, 50))
    photo = np.asarray(img.filter(ImageFilter.GaussianBlur(0.8)), np.float32)
    face_region = np.isin(
        mask, [LABELS["skin"], LABELS["nose"], LABELS["mouth"], LABELS["eyes"], LABELS["hair"], LABELS["brows"]]
    )
    shade = np.where(face_region, _shading(face, style["light"]), 1.0)
    photo = photo * shade[..., None] + rng.normal(0, 2.5, photo.shape)
    return np.clip(photo, 0, 255).astype(np.uint8)


def draw_sketch(face: Face, style: dict, rng: np.random.Generator) -> np.ndarray:
    """A pencil drawing of the face: contours, strands of hair, hatching where the face is dark."""
    lw = style["line"]
    paper = Image.new("L", (WIDTH, HEIGHT), 255)
    d = ImageDraw.Draw(paper)
    mask = draw_mask(face)
    # hair: many short strokes inside the hair region, following its flow downwards
    hair_pts = np.argwhere(mask == LABELS["hair"])
    if len(hair_pts):
        for y, x in hair_pts[rng.choice(len(hair_pts), size=min(len(hair_pts), 260), replace=False)]:
            angle = np.pi / 2 + (x - face.cx) / face.half_w * 0.6 + rng.normal(0, 0.15)
            length = rng.uniform(6, 16)
            d.line(
                [(x, y), (x + np.cos(angle) * length, y + np.sin(angle) * length)],
                fill=int(rng.uniform(40, 110)),
                width=1,
            )
    # face contour and neck
    d.arc(_ellipse(face.cx, face.cy, face.half_w, face.half_h), 0, 180, fill=60, width=lw)
    d.line(
        [(face.cx - face.half_w * 0.45, face.cy + face.half_h * 0.88), (face.cx - face.half_w * 0.45, HEIGHT)],
        fill=90,
        width=lw,
    )
    d.line(
        [(face.cx + face.half_w * 0.45, face.cy + face.half_h * 0.88), (face.cx + face.half_w * 0.45, HEIGHT)],
        fill=90,
        width=lw,
    )
    for side in (-1, 1):
        ex, ey = face.cx + side * face.eye_dx, face.cy + face.eye_y
        d.line(_brow(face, side), fill=50, width=lw + 1)
        d.ellipse(_ellipse(ex, ey, face.eye_w, face.eye_h), outline=40, width=lw)
        r = face.eye_h * 0.9
        d.ellipse(_ellipse(ex, ey, r, r), fill=35)
        d.arc(_ellipse(face.cx + side * 5, face.cy + face.nose_y + 1, 4, 2.5), 0, 360, fill=60, width=1)
    d.line([(face.cx - 2, face.cy + face.eye_y + 4), (face.cx - 6, face.cy + face.nose_y)], fill=120, width=1)
    upper, lower = _mouth_points(face)
    d.line(upper, fill=70, width=lw)
    d.line(lower + [lower[0]], fill=55, width=lw)
    drawing = np.asarray(paper, np.float32)
    # hatching on the shaded side of the face, diagonal strokes like a pencil
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    strokes = ((xx + yy) % style["hatch"]) == 0
    dark = (_shading(face, style["light"]) < 0.62) & np.isin(mask, [LABELS["skin"], LABELS["nose"]])
    drawing = np.where(strokes & dark, np.minimum(drawing, 150), drawing)
    grain = rng.normal(0, 5, drawing.shape)  # paper grain
    return np.clip(drawing + grain, 0, 255).astype(np.uint8)


def make_face(seed: int, index: int, misalign: float = 0.0) -> dict:
    """One sample: photo (H, W, 3), sketch (H, W), mask and sketch_mask (H, W), landmarks
    (5, 2), subset, and `truth`: the field that undoes the misalignment (None without)."""
    from ..align.fields import invert, warp, warp_labels

    rng = np.random.default_rng([seed, index])
    subset = SUBSETS[index % len(SUBSETS)]
    style = STYLES[subset]
    face = random_face(rng)
    mask = draw_mask(face)
    photo = render_photo(face, style, mask, rng)
    sketch, sketch_mask, truth = draw_sketch(face, style, rng), mask, None
    if misalign > 0:
        moved = deformation(mask, np.random.default_rng([seed, index, 1]), misalign)
        sketch, sketch_mask, truth = warp(sketch, moved), warp_labels(mask, moved), invert(moved)
    return dict(
        photo=photo,
        sketch=sketch,
        mask=mask,
        sketch_mask=sketch_mask,
        landmarks=face.landmarks(),
        subset=subset,
        truth=truth,
    )


def write_synthetic_set(
    root: str | Path,
    count: int = 48,
    seed: int = 0,
    misalign: float = 0.0,
    test_fraction: float = 0.25,
    progress: bool = True,
) -> Path:
    """Write `count` faces under root; reuse the folder when it already holds the same set."""
    root = Path(root)
    manifest = dict(
        generator="labkit.synthetic",
        version=GENERATOR_VERSION,
        count=count,
        seed=seed,
        misalign=misalign,
        test_fraction=test_fraction,
        size=[WIDTH, HEIGHT],
        labels=LABELS,
    )
    manifest_path = root / "manifest.json"
    root.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(root.parent / f"{root.name}.lock"):  # notebooks started together write it once
        if not (manifest_path.is_file() and json.loads(manifest_path.read_text()) == manifest):
            _write(root, manifest, count, seed, misalign, test_fraction, progress)
    return root


def _write(
    root: Path, manifest: dict, count: int, seed: int, misalign: float, test_fraction: float, progress: bool
) -> None:
    manifest_path = root / "manifest.json"
    for sub in ("photos", "sketches", "masks", "masks_sketch"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    landmark_rows, split_rows, truths = [], [], {}
    for i in tqdm(range(count), desc="synthetic faces", disable=not progress):
        sample = make_face(seed, i, misalign)
        name = f"{sample['subset']}-{i:04d}"
        Image.fromarray(sample["photo"]).save(root / "photos" / f"{name}.png")
        Image.fromarray(sample["sketch"]).save(root / "sketches" / f"{name}.png")
        Image.fromarray(sample["mask"]).save(root / "masks" / f"{name}.png")
        Image.fromarray(sample["sketch_mask"]).save(root / "masks_sketch" / f"{name}.png")
        if sample["truth"] is not None:
            truths[name] = sample["truth"].astype(np.float16)
        landmark_rows.append([name, *np.round(sample["landmarks"].ravel(), 2), 1.0, "synthetic"])
        # every subset gets the same share of test faces
        split_rows.append(
            [name, sample["subset"], "test" if (i // len(SUBSETS)) % round(1 / test_fraction) == 0 else "train"]
        )
    with open(root / "landmarks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(LANDMARK_COLUMNS)
        w.writerows(landmark_rows)
    with open(root / "split.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "subset", "split"])
        w.writerows(split_rows)
    (root / "labels.json").write_text(json.dumps(LABELS, indent=1))
    if truths:
        np.savez_compressed(root / TRUTH_FILE, **truths)
    manifest_path.write_text(json.dumps(manifest, indent=1))  # last: marks the set complete
