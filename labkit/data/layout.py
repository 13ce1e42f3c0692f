"""Finding the photo / sketch pairs of a face data folder, whatever layout it circulates in.

Three layouts are recognised, detected automatically:

`pairs`    ROOT/photos/NAME.png and ROOT/sketches/NAME[-sz1].png (the synthetic set's layout)
`aligned`  pix2pix's "aligned" images: ROOT/train/NAME.jpg and ROOT/test/NAME.jpg, each the
           photo (left half) and the sketch (right half) side by side
`cufs`     CUFS as distributed: folders whose names say photo or sketch (and train / test,
           and the subset: `CUHK training photo`, `AR sketch`, `XM2VTS/photos` ...), sketches
           matched to photos by CUFS's naming rules (see names.py)

Beside the images, in ROOT, all layouts may have:
    masks/NAME.png          parsing labels (labels.json maps label names to the file's ids)
    masks_sketch/NAME.png   the sketch's parsing labels, same ids (what +align needs)
    landmarks.csv           name, 5 points in MTCNN order, prob, source (`labkit landmarks`)
    landmarks_manual.csv    hand-placed points: always override landmarks.csv
    split.csv               name, subset, split (train / test): overrides the default split
Without split.csv, train / test folders decide, else the papers' CUFS split (names.py).
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .images import IMAGE_SUFFIXES, DataError, read_image
from .names import is_sketch_name, pair_key, split_from_folders, subset_of, usual_split

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
LANDMARK_COLUMNS = ["name", *[f"{p}_{a}" for p in LANDMARK_NAMES for a in "xy"], "prob", "source"]
LAYOUT_HELP = (
    "expected one of: photos/ + sketches/ folders; pix2pix aligned train/ + test/ folders of "
    "photo|sketch images; or CUFS's folders whose names say photo and sketch"
)


@dataclass(frozen=True)
class FacePair:
    name: str
    subset: str
    split: str
    photo: Path
    sketch: Path  # the same file as photo in the aligned layout
    mask: Path | None
    landmarks: np.ndarray | None  # (5, 2) in the photo's pixels
    aligned: bool = False  # photo | sketch side by side in one file
    landmark_source: str = ""
    sketch_mask: Path | None = None  # the sketch's parsing labels (+align)
    warped: Path | None = None  # the sketch warped onto the photo's geometry (+align), read instead


def _images(folder: Path, recursive: bool = False) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _subfolder(root: Path, name: str) -> Path | None:
    for child in root.iterdir():
        if child.is_dir() and child.name.lower() == name:
            return child
    return None


def detect_layout(root: Path) -> str:
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    if _subfolder(root, "photos") and _subfolder(root, "sketches"):
        return "pairs"
    folders = [p.relative_to(root).as_posix().lower() for p in root.rglob("*") if p.is_dir()]
    if any("photo" in f for f in folders) and any("sketch" in f for f in folders):
        return "cufs"
    if (_subfolder(root, "train") or _subfolder(root, "test")) and any(
        _images(f) for f in (_subfolder(root, "train"), _subfolder(root, "test")) if f
    ):
        return "aligned"
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:30]
    raise DataError(f"{root}: no face data layout recognised ({LAYOUT_HELP}); found {found or 'an empty folder'}")


def _read_landmark_file(path: Path, source: str) -> dict[str, tuple[np.ndarray, str]]:
    points = {}
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.DictReader(f), start=2):
            if not any((row.get(c) or "").strip() for c in LANDMARK_COLUMNS[1:11]):
                continue  # a template row not filled in yet
            try:
                pts = np.array([[float(row[f"{p}_x"]), float(row[f"{p}_y"])] for p in LANDMARK_NAMES])
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(
                    f"{path}:{line_no}: bad landmark row ({exc}); expected columns " + ", ".join(LANDMARK_COLUMNS)
                ) from None
            points[pair_key(row["name"])] = (pts, row.get("source") or source)
    return points


def read_landmarks(root: Path) -> dict[str, tuple[np.ndarray, str]]:
    """Detected points, with the hand-placed ones of landmarks_manual.csv taking precedence."""
    points = {}
    for name, source in (("landmarks.csv", "file"), ("landmarks_manual.csv", "manual")):
        if (root / name).is_file():
            points.update(_read_landmark_file(root / name, source))
    return points


def read_split(path: Path) -> dict[str, tuple[str, str]]:
    table = {}
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.DictReader(f), start=2):
            split = (row.get("split") or "").strip().lower()
            if split not in ("train", "test"):
                raise DataError(f"{path}:{line_no}: split must be 'train' or 'test', got {split!r}")
            table[pair_key(row["name"])] = ((row.get("subset") or "").strip().lower(), split)
    return table


@dataclass
class _Found:
    key: str
    photo: Path
    sketch: Path
    folders: tuple[str, ...]  # folder names on the photo's path, for subset and split
    aligned: bool = False


def _match(photos: list[Path], sketches: list[Path], root: Path) -> tuple[list[_Found], list[str]]:
    """Photos and sketches paired by key; everything left over is listed by name."""
    by_key: dict[str, Path] = {}
    problems = []
    for sketch in sketches:
        key = pair_key(sketch.stem)
        if key in by_key:
            problems.append(f"sketches {by_key[key].name} and {sketch.name} both match photo {key}")
        by_key[key] = sketch
    found, used = [], set()
    for photo in photos:
        key = pair_key(photo.stem)
        if key not in by_key:
            problems.append(f"photo {photo.relative_to(root)} has no sketch")
            continue
        used.add(key)
        found.append(_Found(key, photo, by_key[key], photo.relative_to(root).parent.parts))
    problems += [f"sketch {by_key[k].relative_to(root)} has no photo" for k in sorted(set(by_key) - used)]
    return found, problems


def _pairs_layout(root: Path):
    return _match(_images(_subfolder(root, "photos")), _images(_subfolder(root, "sketches")), root)


def _cufs_layout(root: Path):
    photos, sketches = [], []
    for path in _images(root, recursive=True):
        folders = " ".join(path.relative_to(root).parent.parts).lower()
        if "sketch" in folders or ("photo" not in folders and is_sketch_name(path.stem)):
            sketches.append(path)
        elif "photo" in folders:
            photos.append(path)
    return _match(photos, sketches, root)


def _aligned_layout(root: Path):
    found = []
    for part in ("train", "test"):
        folder = _subfolder(root, part)
        for path in _images(folder) if folder else []:
            found.append(_Found(pair_key(path.stem), path, path, (part,), aligned=True))
    return found, []


def find_pairs(root: str | Path, skip_missing: bool = False) -> list[FacePair]:
    """Every photo with its sketch. Unpaired files are an error that lists them all, unless
    skip_missing, which warns with the same list and goes on without them."""
    root = Path(root).expanduser()
    layout = detect_layout(root)
    found, problems = {"pairs": _pairs_layout, "cufs": _cufs_layout, "aligned": _aligned_layout}[layout](root)
    split_file = read_split(root / "split.csv") if (root / "split.csv").is_file() else None
    landmarks = read_landmarks(root)
    masks, sketch_masks = (
        {pair_key(p.stem): p for p in _images(folder)} if folder else {}
        for folder in (_subfolder(root, "masks"), _subfolder(root, "masks_sketch"))
    )

    subsets = {f.key: subset_of(f.key, f.folders) for f in found}
    folder_split = {f.key: split_from_folders(f.folders) for f in found}
    keys_without_split = {}
    for f in found:
        if not folder_split[f.key]:
            keys_without_split.setdefault(subsets[f.key], []).append(f.key)
    default_split = usual_split(keys_without_split)

    pairs = []
    for f in found:
        subset, split = subsets[f.key], folder_split[f.key] or default_split.get(f.key, "")
        if split_file is not None:
            if f.key not in split_file:
                problems.append(f"photo {f.photo.name} is not in split.csv")
                continue
            file_subset, split = split_file[f.key]
            subset = file_subset or subset
        points, source = landmarks.get(f.key, (None, ""))
        pairs.append(
            FacePair(
                name=f.photo.stem,
                subset=subset,
                split=split,
                photo=f.photo,
                sketch=f.sketch,
                mask=masks.get(f.key),
                landmarks=points,
                aligned=f.aligned,
                landmark_source=source,
                sketch_mask=sketch_masks.get(f.key),
            )
        )
    if problems:
        listing = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        if not skip_missing:
            raise DataError(
                f"{root} ({layout} layout): {len(problems)} unpaired file(s):\n  {listing}\n"
                "Add the missing files, or set skip_bad_files to leave these out."
            )
        warnings.warn(f"{root}: leaving out {len(problems)} unpaired file(s):\n  {listing}", stacklevel=2)
    if not pairs:
        raise DataError(f"{root} ({layout} layout): no photo / sketch pairs found")
    return sorted(pairs, key=lambda p: p.name)


def unreadable(path: Path) -> str:
    """Why an image file cannot be read as a face ('' when it can): empty, not an image, damaged
    or truncated, or larger than PIL opens (a decompression bomb)."""
    if path.stat().st_size == 0:
        return "an empty file (0 bytes)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        return f"too large ({exc})"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"cannot read this image ({exc})"
    return ""


def check_folder(root: str | Path, skip_bad: bool = False) -> list[str]:
    """What a run would stop on in this data folder, found before it starts (seconds, not a
    failed run): no layout, unpaired files, and image files that are empty, damaged or too large.
    With skip_bad the run lists and leaves those out, so they are no problem here."""
    try:
        pairs = find_pairs(root, skip_missing=skip_bad)
    except DataError as exc:
        return [str(exc)]
    if skip_bad:
        return []
    files = sorted({f for p in pairs for f in (p.photo, p.sketch, p.mask, p.sketch_mask) if f is not None})
    bad = [f"{f}: {why}" for f in files if (why := unreadable(f))]
    if not bad:
        return []
    listing = "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
    return [
        f"{root}: {len(bad)} image file(s) a run cannot read:\n  {listing}\n"
        "Replace or remove them, or set skip_bad_files to leave them out."
    ]


def fingerprint(pairs: list[FacePair]) -> str:
    """A short hash of every file's bytes, the split and the landmarks: equal data, equal fingerprint."""
    h = hashlib.sha256()
    for p in sorted(pairs, key=lambda p: p.name):
        h.update(f"{p.name}|{p.subset}|{p.split}|{p.aligned}|".encode())
        for path in (p.photo, p.sketch, p.mask):
            h.update(hashlib.sha256(path.read_bytes()).digest() if path else b"-")
        h.update(p.landmarks.round(3).tobytes() if p.landmarks is not None else b"-")
        if p.sketch_mask is not None:
            h.update(hashlib.sha256(p.sketch_mask.read_bytes()).digest())
    return h.hexdigest()[:16]


def hold_out(pairs: list[FacePair], fraction: float) -> tuple[list[FacePair], list[FacePair]]:
    """(train, validation): `fraction` of each subset's training pairs held out, the same ones
    whatever the seed or ablation (chosen by a hash of their names), so every run of a study
    picks its best epoch on the same faces."""
    if not fraction:
        return pairs, []
    held = set()
    for subset in sorted({p.subset for p in pairs}):
        members = sorted(
            (p for p in pairs if p.subset == subset), key=lambda p: hashlib.sha256(p.name.encode()).hexdigest()
        )
        held.update(p.name for p in members[: round(fraction * len(members))])
    return [p for p in pairs if p.name not in held], [p for p in pairs if p.name in held]


def read_pair(pair: FacePair, sketch_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo (H, W, 3) and sketch (H, W[, 3]) of a pair, from two files or one aligned file
    (the sketch from its warped copy when +align made one)."""
    if not pair.aligned:
        photo, sketch = read_image(pair.photo, 3), read_image(pair.sketch, sketch_channels)
    else:
        both = read_image(pair.photo, 3)
        half = both.shape[1] // 2
        photo, sketch = both[:, :half], both[:, half : 2 * half]
        if sketch_channels == 1:
            sketch = np.asarray(Image.fromarray(sketch).convert("L"))
    if pair.warped is not None:
        sketch = read_image(pair.warped, sketch_channels)
    return photo, sketch
