"""Face photo / sketch pairs as a torch Dataset, and the one call a notebook makes to get them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..paths import runs_dir
from .geometry import Jitter, Placement, jitter_batch, jitter_points_batch
from .images import DataError, read_labels, to_tensor
from .labels import read_label_map
from .layout import FacePair, find_pairs, fingerprint, hold_out, read_pair
from .synthetic import write_synthetic_set


def quantize(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8, as an image file stores it (exact for images that were uint8)."""
    return ((images + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def dequantize(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> [-1, 1] float, as to_tensor reads a file."""
    return images.float().div_(127.5).sub_(1.0)


class FaceDataset(Dataset):
    """Pairs loaded once, placed on the size x size canvas and kept as uint8 tensors (a quarter
    of float's memory: CUFS's 606 pairs at 256 px take 160 MB), copied once to the device that
    trains on them. A training batch is padded, cropped and flipped there, all faces at once
    (`batch`), each face by the jitter drawn from (seed, epoch, index): the same jitter as
    `__getitem__` gives one face on the CPU, so a resumed run sees the same batches. With
    skip_bad, unreadable pairs are listed in a warning and left out; else they raise."""

    def __init__(
        self,
        pairs: list[FacePair],
        size: int,
        sketch_channels: int = 1,
        train: bool = False,
        seed: int = 0,
        label_map: np.ndarray | None = None,
        skip_bad: bool = False,
        progress: bool = True,
        crop: bool = True,
    ):
        self.size, self.train, self.seed, self.epoch, self.crop = size, train, seed, 0, crop
        self.label_map = np.arange(256) if label_map is None else label_map
        self.pairs, loaded, bad = [], [], []
        for pair in tqdm(
            pairs, desc=f"loading {'train' if train else 'test'} faces", disable=not progress, leave=False
        ):
            try:
                loaded.append(self._load(pair, sketch_channels))
                self.pairs.append(pair)
            except DataError as exc:
                if not skip_bad:
                    raise
                bad.append(str(exc))
        if bad:
            warnings.warn(f"left out {len(bad)} unreadable face(s):\n  " + "\n  ".join(bad), stacklevel=2)
        self.bank = {
            k: torch.stack([item[k] for item in loaded]) if loaded else torch.zeros(0)
            for k in ("photo", "sketch", "mask", "landmarks")
        }
        # where each face lies on the canvas, (top, left, height, width): what FID sees with fid_region face
        self.boxes = [item["box"] for item in loaded]
        self._on: dict[str, dict] = {}

    def _load(self, pair: FacePair, sketch_channels: int) -> dict:
        photo, sketch = read_pair(pair, sketch_channels)
        place = Placement.for_image(photo.shape[1], photo.shape[0], self.size, source=str(pair.photo))
        if sketch.shape[:2] != photo.shape[:2]:
            # sketches drawn at another size are brought onto the photo's frame
            sketch = torch.nn.functional.interpolate(
                to_tensor(sketch, -1.0, 1.0)[None],
                size=photo.shape[:2],
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )[0]
        else:
            sketch = to_tensor(sketch, -1.0, 1.0)
        mask = torch.full((self.size, self.size), -1, dtype=torch.int8)
        if pair.mask is not None:
            labels = read_labels(pair.mask)
            if labels.shape != photo.shape[:2]:
                raise DataError(
                    f"{pair.mask}: mask is {labels.shape[1]} x {labels.shape[0]}, "
                    f"photo is {photo.shape[1]} x {photo.shape[0]}"
                )
            mask = place.labels(torch.from_numpy(self.label_map[labels])).to(torch.int8)
        points = place.points(pair.landmarks) if pair.landmarks is not None else np.full((5, 2), np.nan)
        return dict(
            photo=quantize(place.image(to_tensor(photo, -1.0, 1.0))),
            sketch=quantize(place.image(sketch)),
            mask=mask,
            landmarks=torch.from_numpy(points.astype(np.float32)),
            box=(place.top, place.left, place.height, place.width),
        )

    def item(self, index: int) -> dict:
        """One face as float tensors in [-1, 1] (mask as labels, -1 where unknown), untouched."""
        b = self.bank
        return dict(
            photo=dequantize(b["photo"][index]),
            sketch=dequantize(b["sketch"][index]),
            mask=b["mask"][index].long(),
            landmarks=b["landmarks"][index].numpy(),
            name=self.pairs[index].name,
            subset=self.pairs[index].subset,
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def _jitter(self, index: int) -> Jitter:
        return Jitter.draw(self.size, np.random.default_rng([self.seed, self.epoch, index]), self.crop)

    def __getitem__(self, index: int) -> dict:
        item = self.item(index)
        if not self.train:
            return dict(item, landmarks=torch.from_numpy(item["landmarks"]))
        jitter = self._jitter(index)
        return dict(
            item,
            photo=jitter.image(item["photo"]),
            sketch=jitter.image(item["sketch"]),
            mask=jitter.labels(item["mask"]),
            landmarks=torch.from_numpy(jitter.points(item["landmarks"], self.size).astype(np.float32)),
        )

    def on(self, device: torch.device) -> dict:
        """The uint8 faces on a device (copied there once); landmarks stay on the CPU, where the
        part boxes are computed from them."""
        key = str(device)
        if key not in self._on:
            self._on[key] = {k: v if k == "landmarks" else v.to(device) for k, v in self.bank.items()}
        return self._on[key]

    def faces(self, device: torch.device) -> dict:
        """Every face as float tensors on the device (for evaluation), untouched."""
        b = self.on(device)
        return dict(
            photo=dequantize(b["photo"]),
            sketch=dequantize(b["sketch"]),
            mask=b["mask"].long(),
            landmarks=b["landmarks"],
        )

    def batch(self, indices: list[int], device: torch.device) -> dict:
        """Training faces at these indices, each jittered as __getitem__ jitters it, built on the
        device in one go."""
        b, jitters = self.on(device), [self._jitter(i) for i in indices]
        # what the batch is made of, as one small host tensor copied once without waiting (pinned
        # memory): a blocking copy per list would make the host wait for the GPU every step
        plan = torch.tensor([[i, j.y, j.x, j.flip] for i, j in zip(indices, jitters)], dtype=torch.long)
        at, y, x, flip = to_device(plan, device).unbind(1)
        moved = lambda images, fill: jitter_batch(images[at], jitters[0].pad, y, x, flip, fill)  # noqa: E731
        return dict(
            photo=dequantize(moved(b["photo"], 255)),
            sketch=dequantize(moved(b["sketch"], 255)),
            mask=moved(b["mask"][:, None], 0)[:, 0].long(),
            landmarks=jitter_points_batch(b["landmarks"][list(indices)], jitters, self.size),
        )


def to_device(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on the device without the host waiting: from pinned memory on CUDA."""
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)


@dataclass
class FaceData:
    root: Path
    train: FaceDataset
    test: FaceDataset
    fingerprint: str
    synthetic: bool
    val: FaceDataset | None = None  # held out of train to pick the best epoch on (val_fraction)
    alignment: object | None = None  # labkit.align.AlignedSketches (+align): train on warped sketches
    test_aligned: FaceDataset | None = None  # the test faces with warped sketches: a second, labelled FID

    def summary(self) -> str:
        subsets = {}
        for where, ds in enumerate((self.train, self.val, self.test)):
            for p in ds.pairs if ds is not None else []:
                subsets.setdefault(p.subset, [0, 0, 0])[where] += 1
        parts = ", ".join(
            f"{s}: {a} train / " + (f"{v} validation / " if self.val is not None else "") + f"{b} test"
            for s, (a, v, b) in sorted(subsets.items())
        )
        kind = "synthetic face set" if self.synthetic else "face data"
        aligned = f"; training sketches aligned ({self.alignment.mode})" if self.alignment is not None else ""
        return f"{kind} at {self.root} ({parts}); fingerprint {self.fingerprint}{aligned}"


def synthetic_root(count: int, misalign: float) -> Path:
    return runs_dir() / "data" / f"synthetic-n{count}-m{misalign:g}"


def load_faces(cfg, progress: bool = True) -> FaceData:
    """The train and test sets a config asks for: data_root, or the synthetic set (made on
    first use under runs/data/)."""
    synthetic = not cfg.data_root
    root = (
        Path(cfg.data_root).expanduser()
        if cfg.data_root
        else write_synthetic_set(
            synthetic_root(cfg.synthetic_count, cfg.synthetic_misalign),
            count=cfg.synthetic_count,
            misalign=cfg.synthetic_misalign,
            progress=progress,
        )
    )
    pairs = find_pairs(root, skip_missing=cfg.skip_bad_files)
    label_map = read_label_map(root)
    common = dict(
        size=cfg.image_size,
        sketch_channels=cfg.sketch_channels,
        label_map=label_map,
        skip_bad=cfg.skip_bad_files,
        progress=progress,
    )
    train_pairs, val_pairs = hold_out([p for p in pairs if p.split == "train"], cfg.val_fraction)
    if cfg.val_fraction and len(val_pairs) < 2:
        raise DataError(
            f"{root}: val_fraction={cfg.val_fraction} holds out {len(val_pairs)} of the "
            f"{len(train_pairs) + len(val_pairs)} training faces; FID needs at least 2: raise it"
        )
    test_pairs, alignment = [p for p in pairs if p.split == "test"], None
    if cfg.align_mode != "none":
        from ..align import align_sketches

        alignment = align_sketches(
            root, pairs, label_map, cfg.align_mode, cfg.align_transform, cfg.align_smoothness, progress
        )
        train_pairs = alignment.warped(train_pairs)
    train = FaceDataset(train_pairs, train=True, seed=cfg.seed, crop=cfg.crop_jitter, **common)
    # the headline FID is against the real test sketches, as drawn, whatever the training saw
    test = FaceDataset(test_pairs, **common)
    val = FaceDataset(val_pairs, **common) if val_pairs else None
    if not len(train) or not len(test):
        raise DataError(f"{root}: need both train and test faces, found {len(train)} train / {len(test)} test")
    # the fingerprint of every pair as in the data folder: holding some out, or training on
    # warped sketches, is a parameter of the run, not other data
    return FaceData(
        root=root,
        fingerprint=fingerprint(train.pairs + (val.pairs if val else []) + test.pairs),
        synthetic=synthetic,
        train=train,
        test=test,
        val=val,
        alignment=alignment,
        test_aligned=FaceDataset(alignment.warped(test.pairs), **common) if alignment else None,
    )
