"""Face photo / sketch pairs as a torch Dataset, and the one call a notebook makes to get them."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..paths import runs_dir
from .geometry import Jitter, Placement
from .images import DataError, read_image, read_labels, to_tensor
from .labels import read_label_map
from .layout import FacePair, find_pairs, fingerprint
from .synthetic import write_synthetic_set


def read_pair(pair: FacePair, sketch_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo (H, W, 3) and sketch (H, W[, 3]) of a pair, from two files or one aligned file."""
    if not pair.aligned:
        return read_image(pair.photo, 3), read_image(pair.sketch, sketch_channels)
    both = read_image(pair.photo, 3)
    half = both.shape[1] // 2
    sketch = both[:, half:2 * half]
    if sketch_channels == 1:
        sketch = np.asarray(Image.fromarray(sketch).convert("L"))
    return both[:, :half], sketch


class FaceDataset(Dataset):
    """Pairs loaded once and placed on the size x size canvas; training samples get a fresh
    pad-crop-flip drawn from (seed, epoch, index), so a resumed run sees the same batches.
    With skip_bad, unreadable pairs are listed in a warning and left out; else they raise."""

    def __init__(self, pairs: list[FacePair], size: int, sketch_channels: int = 1, train: bool = False,
                 seed: int = 0, label_map: np.ndarray | None = None, skip_bad: bool = False, progress: bool = True):
        self.size, self.train, self.seed, self.epoch = size, train, seed, 0
        self.label_map = np.arange(256) if label_map is None else label_map
        self.pairs, self.items, bad = [], [], []
        for pair in tqdm(pairs, desc=f"loading {'train' if train else 'test'} faces", disable=not progress,
                         leave=False):
            try:
                self.items.append(self._load(pair, sketch_channels))
                self.pairs.append(pair)
            except DataError as exc:
                if not skip_bad:
                    raise
                bad.append(str(exc))
        if bad:
            warnings.warn(f"left out {len(bad)} unreadable face(s):\n  " + "\n  ".join(bad), stacklevel=2)

    def _load(self, pair: FacePair, sketch_channels: int) -> dict:
        photo, sketch = read_pair(pair, sketch_channels)
        place = Placement.for_image(photo.shape[1], photo.shape[0], self.size, source=str(pair.photo))
        if sketch.shape[:2] != photo.shape[:2]:
            # sketches drawn at another size are brought onto the photo's frame
            sketch = torch.nn.functional.interpolate(to_tensor(sketch, -1.0, 1.0)[None], size=photo.shape[:2],
                                                     mode="bilinear",
                                                     align_corners=False, antialias=True)[0]
        else:
            sketch = to_tensor(sketch, -1.0, 1.0)
        mask = torch.full((self.size, self.size), -1, dtype=torch.long)
        if pair.mask is not None:
            labels = read_labels(pair.mask)
            if labels.shape != photo.shape[:2]:
                raise DataError(f"{pair.mask}: mask is {labels.shape[1]} x {labels.shape[0]}, "
                                f"photo is {photo.shape[1]} x {photo.shape[0]}")
            mask = place.labels(torch.from_numpy(self.label_map[labels]))
        points = place.points(pair.landmarks) if pair.landmarks is not None else np.full((5, 2), np.nan)
        return dict(photo=place.image(to_tensor(photo, -1.0, 1.0)), sketch=place.image(sketch), mask=mask,
                    landmarks=points.astype(np.float32), name=pair.name, subset=pair.subset)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        if not self.train:
            return dict(item, landmarks=torch.from_numpy(item["landmarks"]))
        jitter = Jitter.draw(self.size, np.random.default_rng([self.seed, self.epoch, index]))
        return dict(item, photo=jitter.image(item["photo"]), sketch=jitter.image(item["sketch"]),
                    mask=jitter.labels(item["mask"]),
                    landmarks=torch.from_numpy(jitter.points(item["landmarks"], self.size).astype(np.float32)))


@dataclass
class FaceData:
    root: Path
    train: FaceDataset
    test: FaceDataset
    fingerprint: str
    synthetic: bool

    def summary(self) -> str:
        subsets = {}
        for p in self.train.pairs + self.test.pairs:
            subsets.setdefault(p.subset, [0, 0])[p.split == "test"] += 1
        parts = ", ".join(f"{s}: {a} train / {b} test" for s, (a, b) in sorted(subsets.items()))
        kind = "synthetic face set" if self.synthetic else "face data"
        return f"{kind} at {self.root} ({parts}); fingerprint {self.fingerprint}"


def synthetic_root(count: int, misalign: float) -> Path:
    return runs_dir() / "data" / f"synthetic-n{count}-m{misalign:g}"


def load_faces(cfg, progress: bool = True) -> FaceData:
    """The train and test sets a config asks for: data_root, or the synthetic set (made on
    first use under runs/data/)."""
    synthetic = not cfg.data_root
    root = Path(cfg.data_root).expanduser() if cfg.data_root else write_synthetic_set(
        synthetic_root(cfg.synthetic_count, cfg.synthetic_misalign), count=cfg.synthetic_count,
        misalign=cfg.synthetic_misalign, progress=progress)
    pairs = find_pairs(root, skip_missing=cfg.skip_bad_files)
    label_map = read_label_map(root)
    common = dict(size=cfg.image_size, sketch_channels=cfg.sketch_channels, label_map=label_map,
                  skip_bad=cfg.skip_bad_files, progress=progress)
    train = FaceDataset([p for p in pairs if p.split == "train"], train=True, seed=cfg.seed, **common)
    test = FaceDataset([p for p in pairs if p.split == "test"], **common)
    if not len(train) or not len(test):
        raise DataError(f"{root}: need both train and test faces, found {len(train)} train / {len(test)} test")
    return FaceData(root=root, fingerprint=fingerprint(train.pairs + test.pairs), synthetic=synthetic,
                    train=train, test=test)
