"""Face part boxes around the 5 landmarks, at APDrawingGAN's sizes.

At 256 px, as APDrawingGAN's data/aligned_dataset.py places them: eyes 40 x 56 (height x
width) centred 4 px above the eye landmark, nose 48 x 48 centred 8 px above the nose tip
(upstream: tip - NOSE_H / 2 + 16), mouth 40 x 64 on the midpoint of the mouth corners. Shifts
and sizes scale with size / 256, sizes rounded to multiples of 4 (at least 8) so a part U-Net
can halve them twice. Boxes are clamped inside the image so a crop always has the full size.
"""

from __future__ import annotations

import numpy as np

PART_SIZES = {"left_eye": (40, 56), "right_eye": (40, 56), "nose": (48, 48), "mouth": (40, 64)}
EYE_SHIFT_UP = 4
NOSE_SHIFT_UP = PART_SIZES["nose"][0] / 2 - 16


def part_centres(landmarks: np.ndarray, scale: float = 1.0) -> dict[str, np.ndarray]:
    lm = np.asarray(landmarks, dtype=np.float64)
    up = np.array([0.0, -scale])
    return {
        "left_eye": lm[0] + EYE_SHIFT_UP * up,
        "right_eye": lm[1] + EYE_SHIFT_UP * up,
        "nose": lm[2] + NOSE_SHIFT_UP * up,
        "mouth": (lm[3] + lm[4]) / 2,
    }


def part_size(part: str, size: int) -> tuple[int, int]:
    """(height, width) of a part's crop on a size x size canvas."""
    return tuple(max(8, 4 * round(v * size / 256 / 4)) for v in PART_SIZES[part])


def part_boxes(
    landmarks: np.ndarray, size: int, width: int | None = None, height: int | None = None
) -> dict[str, tuple[int, int, int, int]]:
    """{part: (x0, y0, w, h)} on an image of width x height (default size x size) whose parts
    are scaled for a size x size canvas."""
    scale = size / 256
    width, height = width or size, height or size
    boxes = {}
    for part, centre in part_centres(landmarks, scale).items():
        h, w = part_size(part, size)
        x0 = int(np.clip(round(centre[0] - w / 2), 0, max(0, width - w)))
        y0 = int(np.clip(round(centre[1] - h / 2), 0, max(0, height - h)))
        boxes[part] = (x0, y0, w, h)
    return boxes
