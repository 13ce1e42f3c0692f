"""The sketches of a face data folder warped onto their photos' geometry, computed once per
(data fingerprint, mode, transform, smoothness) and kept under runs/align/.

Each folder holds sketches/NAME.png (the warped sketch, at the photo's size), fields.npz (per
name, the field, float16), scores.csv (per face: region IoU and Dice between the photo's
parsing map and the sketch's before and after, per region too, and on the synthetic set the
end-point error against the true field), check.png, and manifest.json, written last: a
folder without it was interrupted and is computed again.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..data.images import DataError, read_labels
from ..data.layout import FacePair, fingerprint, read_pair
from ..data.synthetic import TRUTH_FILE
from ..paths import exclusive, runs_dir
from .estimate import estimate
from .fields import end_point_error, warp, warp_labels
from .regions import means, overlap
from .views import check_sheet

VERSION = 2  # of the computation: a new one recomputes the cached folders
CHECK_FACES = 6  # faces shown in check.png
SCORES = ("iou", "dice", "epe")


@dataclass
class AlignedSketches:
    folder: Path
    mode: str
    scores: list[dict]  # one per face: name, subset, split, iou_before, iou_after, ...

    def path(self, name: str) -> Path:
        return self.folder / "sketches" / f"{name}.png"

    def warped(self, pairs: list[FacePair]) -> list[FacePair]:
        """The pairs with their sketches read from the warped copies."""
        return [replace(p, warped=self.path(p.name)) for p in pairs]

    def field(self, name: str) -> np.ndarray:
        with np.load(self.folder / "fields.npz") as fields:
            return fields[name].astype(np.float32)

    def summary(self, subset: str = "") -> dict[str, float]:
        """Means over the faces (of one subset): iou_before, iou_after, dice_..., epe_..."""
        rows = [r for r in self.scores if not subset or r["subset"] == subset]
        keys = [f"{s}_{w}" for s in SCORES for w in ("before", "after")]
        return {
            k: float(np.nanmean([float(r[k]) for r in rows])) for k in keys if any(r.get(k, "") != "" for r in rows)
        }

    def per_region(self) -> dict[str, dict[str, float]]:
        """Each region's mean IoU before and after: {name: {before, after}}."""
        out = {}
        for key in self.scores[0]:
            if key.startswith("iou_before."):
                name = key.split(".", 1)[1]
                out[name] = {
                    w: float(
                        np.nanmean([float(r[f"iou_{w}.{name}"]) for r in self.scores if r[f"iou_{w}.{name}"] != ""])
                    )
                    for w in ("before", "after")
                }
        return out

    def subsets(self) -> list[str]:
        return sorted({r["subset"] for r in self.scores})

    def report(self) -> str:
        """Before -> after per subset and overall, as the command prints it."""
        lines = []
        for subset in [*self.subsets(), ""]:
            s = self.summary(subset)
            n = sum(1 for r in self.scores if not subset or r["subset"] == subset)
            text = (
                f"  {subset or 'all':<8} ({n:>3} faces)  IoU {s['iou_before']:.3f} -> {s['iou_after']:.3f}"
                f"  Dice {s['dice_before']:.3f} -> {s['dice_after']:.3f}"
            )
            if "epe_before" in s:
                text += f"  end-point error {s['epe_before']:.2f} -> {s['epe_after']:.2f} px"
            lines.append(text)
        return "\n".join(lines)


def require_sketch_masks(root: Path, pairs: list[FacePair], mode: str) -> None:
    """+align reads both parsing maps of every face; refuse, naming what is missing, when not."""
    no_photo = [p.name for p in pairs if p.mask is None]
    no_sketch = [p.name for p in pairs if p.sketch_mask is None]
    if not no_photo and not no_sketch:
        return
    problems = []
    for what, names, where in (("photo", no_photo, "masks"), ("sketch", no_sketch, "masks_sketch")):
        if names:
            problems.append(
                f"{len(names)} of {len(pairs)} faces have no {what} parsing map in {root / where}/ "
                f"({', '.join(names[:5])}{' ...' if len(names) > 5 else ''})"
            )
    only_photo = not no_photo and len(no_sketch) == len(pairs)
    raise DataError(
        f"{root}: align_mode={mode!r} estimates the warp from the photo's and the sketch's parsing "
        f"maps; "
        + "; ".join(problems)
        + ". "
        + ("Only photo masks were found: +align needs the sketches' too. " if only_photo else "")
        + "Run the face parser on the sketches and save its maps as masks_sketch/NAME.png "
        "(the same ids as masks/, labels.json), or set align_mode='none'."
    )


def _labels(path: Path, lut: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    labels = lut[read_labels(path)].astype(np.uint8)
    if labels.shape != shape:
        labels = np.asarray(Image.fromarray(labels).resize(shape[::-1], Image.NEAREST))
    return labels


def _sketch_on_photo_frame(pair: FacePair) -> tuple[np.ndarray, np.ndarray]:
    """The photo and the sketch, the sketch at the photo's size (as the dataset places it),
    in its own colours (grayscale unless the file has colour)."""
    photo, sketch = read_pair(pair, 3)
    if sketch.shape[:2] != photo.shape[:2]:
        sketch = np.asarray(Image.fromarray(sketch).resize(photo.shape[1::-1], Image.BILINEAR))
    if (sketch[..., 0] == sketch[..., 1]).all() and (sketch[..., 1] == sketch[..., 2]).all():
        sketch = sketch[..., 0]
    return photo, sketch


def _truth(root: Path) -> dict[str, np.ndarray]:
    path = root / TRUTH_FILE
    if not path.is_file():
        return {}
    with np.load(path) as f:
        return {k: f[k].astype(np.float32) for k in f.files}


def _read(folder: Path, mode: str) -> AlignedSketches:
    with open(folder / "scores.csv", newline="", encoding="utf-8") as f:
        return AlignedSketches(folder, mode, list(csv.DictReader(f)))


def align_sketches(
    root: str | Path,
    pairs: list[FacePair],
    label_map: np.ndarray,
    mode: str,
    transform: str,
    smoothness: float,
    progress: bool = True,
) -> AlignedSketches:
    """Every pair's sketch warped onto its photo (computed once, then read from the cache)."""
    root = Path(root)
    require_sketch_masks(root, pairs, mode)
    key = f"{fingerprint(pairs)}-{mode}-{transform}-s{smoothness:g}-v{VERSION}"
    folder = runs_dir() / "align" / key
    with exclusive(folder.parent / f"{folder.name}.lock"):  # a second run on the same data waits, then reads
        if not (folder / "manifest.json").is_file():
            _compute(folder, root, pairs, label_map, mode, transform, smoothness, progress)
    return _read(folder, mode)


def _compute(
    folder: Path,
    root: Path,
    pairs: list[FacePair],
    label_map: np.ndarray,
    mode: str,
    transform: str,
    smoothness: float,
    progress: bool,
) -> None:
    shutil.rmtree(folder, ignore_errors=True)  # an interrupted computation
    (folder / "sketches").mkdir(parents=True)
    truth = _truth(root)
    scores, fields, shown = [], {}, []
    for pair in tqdm(pairs, desc=f"aligning sketches ({mode})", disable=not progress):
        photo, sketch = _sketch_on_photo_frame(pair)
        px = _labels(pair.mask, label_map, photo.shape[:2])
        py = _labels(pair.sketch_mask, label_map, photo.shape[:2])
        found = estimate(px, py, mode, transform, smoothness)
        warped, py_after = warp(sketch, found.field), warp_labels(py, found.field)
        Image.fromarray(warped).save(folder / "sketches" / f"{pair.name}.png")
        fields[pair.name] = found.field.astype(np.float16)
        row = {
            "name": pair.name,
            "subset": pair.subset,
            "split": pair.split,
            "regions": found.regions,
            "notes": "; ".join(found.notes),
        }
        before, after = overlap(px, py), overlap(px, py_after)
        for when, per_label in (("before", before), ("after", after)):
            row.update({f"{score}_{when}": value for score, value in means(per_label).items()})
        row["epe_before"] = row["epe_after"] = ""
        if pair.name in truth and truth[pair.name].shape[:2] == px.shape:
            face = px != 0
            row["epe_before"] = end_point_error(np.zeros_like(truth[pair.name]), truth[pair.name], face)
            row["epe_after"] = end_point_error(found.field, truth[pair.name], face)
        for name in sorted(set(before) | set(after)):
            row[f"iou_before.{name}"] = before.get(name, {}).get("iou", "")
            row[f"iou_after.{name}"] = after.get(name, {}).get("iou", "")
        scores.append(row)
        if len(shown) < CHECK_FACES:
            shown.append(dict(sketch=sketch, warped=warped, photo_labels=px, field=found.field))
    columns = list(dict.fromkeys(k for row in scores for k in row))
    with open(folder / "scores.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(scores)
    np.savez_compressed(folder / "fields.npz", **fields)
    Image.fromarray(check_sheet(shown)).save(folder / "check.png")
    (folder / "manifest.json").write_text(
        json.dumps(
            dict(
                root=str(root), mode=mode, transform=transform, smoothness=smoothness, faces=len(pairs), version=VERSION
            ),
            indent=1,
        )
    )
