"""`labkit landmarks DATA_ROOT`: 5 facial landmarks on every photo with MTCNN.

facenet-pytorch's MTCNN (its weights ship in the package) runs batched over the photos, on the
GPU when there is one. The result, DATA_ROOT/landmarks.csv, holds the points (MTCNN order:
left eye, right eye, nose, left and right mouth corner, image left first), the detection
probability and the source of each face. Faces MTCNN misses are listed and written to
DATA_ROOT/landmarks_missing.csv, a template to fill in by hand and save as
landmarks_manual.csv: hand-placed points always override detection. A picture of photos with
their points and the part boxes +local crops is written for checking by eye.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from .data.geometry import BASE_SIZE
from .data.layout import LANDMARK_COLUMNS, find_pairs, read_landmarks, read_pair
from .data.names import pair_key
from .data.parts import part_boxes
from .provenance import pick_device

POINT_COLOURS = [(255, 40, 40), (40, 120, 255), (40, 200, 40), (255, 160, 0), (200, 0, 200)]


@dataclass
class Detection:
    name: str
    points: np.ndarray | None  # (5, 2)
    prob: float
    source: str  # mtcnn, manual or missing


def detect(
    photos: list[np.ndarray], device: str = "auto", batch_size: int = 16, progress: bool = True
) -> list[tuple[np.ndarray | None, float]]:
    """(points, probability) for the most prominent face of each photo; (None, 0) when none."""
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=False, device=pick_device(device))
    results: list[tuple[np.ndarray | None, float]] = [(None, 0.0)] * len(photos)
    # MTCNN batches images of one size together
    by_size: dict[tuple, list[int]] = {}
    for i, photo in enumerate(photos):
        by_size.setdefault(photo.shape, []).append(i)
    bar = tqdm(total=len(photos), desc="MTCNN landmarks", disable=not progress)
    for indices in by_size.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            _, probs, points = mtcnn.detect([Image.fromarray(photos[i]) for i in chunk], landmarks=True)
            for i, prob, pts in zip(chunk, probs, points):
                if pts is not None and len(pts):
                    results[i] = (np.asarray(pts[0], dtype=np.float64), float(np.ravel(prob)[0]))
            bar.update(len(chunk))
    bar.close()
    return results


def _write_rows(path: Path, rows: list[list]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([LANDMARK_COLUMNS, *rows])
    tmp.replace(path)


def check_picture(photos: list[np.ndarray], detections: list[Detection], columns: int = 6) -> Image.Image:
    """Photos with their points (coloured in MTCNN order) and the part boxes, missed faces first."""
    order = sorted(range(len(detections)), key=lambda i: detections[i].source != "missing")
    tiles = []
    for i in order:
        tile = Image.fromarray(photos[i]).convert("RGB")
        d = ImageDraw.Draw(tile)
        det = detections[i]
        if det.points is None:
            d.rectangle([0, 0, tile.width - 1, tile.height - 1], outline=(255, 0, 0), width=4)
            d.text((6, 6), "MISSED", fill=(255, 0, 0))
        else:
            for x0, y0, w, h in part_boxes(det.points, BASE_SIZE, tile.width, tile.height).values():
                d.rectangle([x0, y0, x0 + w, y0 + h], outline=(255, 255, 0), width=1)
            for (x, y), colour in zip(det.points, POINT_COLOURS):
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            d.text((4, 4), f"{det.name} {det.source} {det.prob:.2f}", fill=(255, 255, 255))
        tiles.append(tile)
    w, h = max(t.width for t in tiles), max(t.height for t in tiles)
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (min(columns, len(tiles)) * w, rows * h), (255, 255, 255))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % columns) * w, (k // columns) * h))
    return sheet


def run(
    root: str | Path, device: str = "auto", batch_size: int = 16, check_count: int = 24, progress: bool = True
) -> list[Detection]:
    """Detect, merge the manual file, write landmarks.csv, landmarks_missing.csv and the check picture."""
    root = Path(root)
    pairs = find_pairs(root, skip_missing=True)
    photos = [read_pair(p, 1)[0] for p in pairs]
    manual = {k: v for k, v in read_landmarks(root).items() if v[1] == "manual"}
    found = detect(photos, device, batch_size, progress)
    detections = []
    for pair, (points, prob) in zip(pairs, found):
        key = pair_key(pair.name)
        if key in manual:
            detections.append(Detection(pair.name, manual[key][0], 1.0, "manual"))
        elif points is not None:
            detections.append(Detection(pair.name, points, prob, "mtcnn"))
        else:
            detections.append(Detection(pair.name, None, 0.0, "missing"))
    _write_rows(
        root / "landmarks.csv",
        [
            [d.name, *np.round(d.points.ravel(), 2), round(d.prob, 4), d.source]
            for d in detections
            if d.points is not None
        ],
    )
    missing = [d.name for d in detections if d.source == "missing"]
    missing_file = root / "landmarks_missing.csv"
    if missing:
        _write_rows(missing_file, [[name, *[""] * 10, "", "manual"] for name in missing])
    elif missing_file.exists():
        missing_file.unlink()
    shown = sorted(range(len(detections)), key=lambda i: detections[i].source != "missing")[:check_count]
    check_picture([photos[i] for i in shown], [detections[i] for i in shown]).save(root / "landmarks_check.png")
    return detections
