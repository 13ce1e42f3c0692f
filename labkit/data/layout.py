"""Finding the photo / sketch pairs of a face data folder, with their subset and split.

The layout the lab reads (and the synthetic set writes):

    ROOT/photos/NAME.(png|jpg|...)      face photos
    ROOT/sketches/NAME[-sz1].(png|...)  the matching sketch, same name stem (optional suffix)
    ROOT/masks/NAME.png                 optional parsing labels (labels.json maps names to ids)
    ROOT/landmarks.csv                  optional: name, 5 points (MTCNN order), prob, source
    ROOT/split.csv                      optional: name, subset, split (train / test)

Without split.csv every fourth name (sorted) is a test face and the subset is read from the
name's prefix before the first '-'.
"""
from __future__ import annotations

import csv
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .images import IMAGE_SUFFIXES, DataError

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
SKETCH_SUFFIXES = ("", "-sz1", "_sz1", "-sketch", "_sketch")


@dataclass(frozen=True)
class FacePair:
    name: str
    subset: str
    split: str
    photo: Path
    sketch: Path
    mask: Path | None
    landmarks: np.ndarray | None  # (5, 2) in the original image's pixels


def _images_by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem.lower(): p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def read_landmarks(path: Path) -> dict[str, np.ndarray]:
    points = {}
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.DictReader(f), start=2):
            try:
                points[row["name"].lower()] = np.array(
                    [[float(row[f"{p}_x"]), float(row[f"{p}_y"])] for p in LANDMARK_NAMES])
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{path}:{line_no}: bad landmark row ({exc}); expected columns name, "
                                + ", ".join(f"{p}_x, {p}_y" for p in LANDMARK_NAMES)) from None
    return points


def read_split(path: Path) -> dict[str, tuple[str, str]]:
    table = {}
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.DictReader(f), start=2):
            split = (row.get("split") or "").strip().lower()
            if split not in ("train", "test"):
                raise DataError(f"{path}:{line_no}: split must be 'train' or 'test', got {split!r}")
            table[row["name"].lower()] = ((row.get("subset") or "").strip().lower(), split)
    return table


def find_pairs(root: str | Path, skip_missing: bool = False) -> list[FacePair]:
    """Every photo with its sketch. A photo without a sketch (or the reverse) is an error that
    lists them all, unless skip_missing, which warns with the same list and goes on."""
    root = Path(root)
    photos_dir, sketches_dir = root / "photos", root / "sketches"
    if not photos_dir.is_dir() or not sketches_dir.is_dir():
        found = sorted(p.name for p in root.iterdir()) if root.is_dir() else "nothing (no such folder)"
        raise DataError(f"{root}: expected folders photos/ and sketches/, found {found}")
    photos, sketches = _images_by_stem(photos_dir), _images_by_stem(sketches_dir)
    masks = _images_by_stem(root / "masks") if (root / "masks").is_dir() else {}
    landmarks = read_landmarks(root / "landmarks.csv") if (root / "landmarks.csv").is_file() else {}
    split = read_split(root / "split.csv") if (root / "split.csv").is_file() else None

    pairs, used_sketches, missing = [], set(), []
    for i, (stem, photo) in enumerate(sorted(photos.items())):
        sketch_key = next((stem + s for s in SKETCH_SUFFIXES if stem + s in sketches), None)
        if sketch_key is None:
            missing.append(f"photo {photo.name} has no sketch")
            continue
        used_sketches.add(sketch_key)
        subset, part = split.get(stem, ("", "")) if split is not None else ("", "")
        if split is not None and not part:
            missing.append(f"photo {photo.name} is not in split.csv")
            continue
        pairs.append(FacePair(
            name=photo.stem, subset=subset or stem.split("-")[0], split=part or ("test" if i % 4 == 0 else "train"),
            photo=photo, sketch=sketches[sketch_key], mask=masks.get(stem), landmarks=landmarks.get(stem)))
    missing += [f"sketch {sketches[k].name} has no photo" for k in sorted(set(sketches) - used_sketches)]
    if missing:
        listing = "\n  ".join(missing[:20]) + (f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else "")
        if not skip_missing:
            raise DataError(f"{root}: {len(missing)} unpaired file(s):\n  {listing}\n"
                            "Add the missing files, or pass skip_missing=True to leave these out.")
        warnings.warn(f"{root}: leaving out {len(missing)} unpaired file(s):\n  {listing}", stacklevel=2)
    if not pairs:
        raise DataError(f"{root}: no photo / sketch pairs found")
    return pairs


def fingerprint(pairs: list[FacePair]) -> str:
    """A short hash of every file's bytes and the split: equal data, equal fingerprint."""
    h = hashlib.sha256()
    for p in sorted(pairs, key=lambda p: p.name):
        h.update(f"{p.name}|{p.subset}|{p.split}|".encode())
        for path in (p.photo, p.sketch, p.mask):
            h.update(hashlib.sha256(path.read_bytes()).digest() if path else b"-")
        h.update(p.landmarks.round(3).tobytes() if p.landmarks is not None else b"-")
    return h.hexdigest()[:16]
