"""Face photo / sketch pairs as a torch Dataset, and the one call a notebook makes to get them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from ..paths import runs_dir
from .geometry import Jitter, Placement
from .images import DataError, read_image, read_labels
from .layout import FacePair, find_pairs, fingerprint
from .synthetic import write_synthetic_set


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W[, C]) -> float (C, H, W) in [-1, 1]."""
    t = torch.from_numpy(img).float().div_(127.5).sub_(1.0)
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1)


class FaceDataset(Dataset):
    """Pairs loaded once and placed on the size x size canvas; training samples get a fresh
    pad-crop-flip drawn from (seed, epoch, index), so a resumed run sees the same batches."""

    def __init__(self, pairs: list[FacePair], size: int, sketch_channels: int = 1, train: bool = False,
                 seed: int = 0, progress: bool = True):
        self.pairs, self.size, self.train, self.seed, self.epoch = pairs, size, train, seed, 0
        self.items = [self._load(p, sketch_channels) for p in tqdm(
            pairs, desc=f"loading {'train' if train else 'test'} faces", disable=not progress, leave=False)]

    def _load(self, pair: FacePair, sketch_channels: int) -> dict:
        photo = read_image(pair.photo, 3)
        sketch = read_image(pair.sketch, sketch_channels)
        place = Placement.for_image(photo.shape[1], photo.shape[0], self.size, source=str(pair.photo))
        if sketch.shape[:2] != photo.shape[:2]:
            # sketches drawn at another size are brought onto the photo's frame
            sketch = torch.nn.functional.interpolate(to_tensor(sketch)[None], size=photo.shape[:2], mode="bilinear",
                                                     align_corners=False, antialias=True)[0]
        else:
            sketch = to_tensor(sketch)
        mask = torch.full((self.size, self.size), -1, dtype=torch.long)
        if pair.mask is not None:
            mask = place.labels(torch.from_numpy(read_labels(pair.mask)).long())
        points = place.points(pair.landmarks) if pair.landmarks is not None else np.full((5, 2), np.nan)
        return dict(photo=place.image(to_tensor(photo)), sketch=place.image(sketch), mask=mask,
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
    pairs = find_pairs(root)
    train = [p for p in pairs if p.split == "train"]
    test = [p for p in pairs if p.split == "test"]
    if not train or not test:
        raise DataError(f"{root}: need both train and test faces, found {len(train)} train / {len(test)} test")
    return FaceData(root=root, fingerprint=fingerprint(pairs), synthetic=synthetic,
                    train=FaceDataset(train, cfg.image_size, cfg.sketch_channels, train=True, seed=cfg.seed,
                                      progress=progress),
                    test=FaceDataset(test, cfg.image_size, cfg.sketch_channels, progress=progress))
