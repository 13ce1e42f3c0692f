"""FID / KID of generated sketches against a test set, with the reference features cached."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import torch

from ..paths import cache_dir
from .backbone import Backbone
from .fid import features, fid_from_features, kid_from_features, to_uint8


class FidEvaluator:
    """Reference features of the real test sketches are computed once per (data fingerprint,
    split, size, channels, backbone) and kept under runs/cache/fid/. With `subsets` (one name
    per sketch) every evaluation also scores each subset on its own."""

    def __init__(self, real_sketches: torch.Tensor, backbone: Backbone, data_fingerprint: str,
                 subsets: list[str] | None = None, split: str = "test", batch_size: int = 50,
                 cache: Path | None = None):
        self.backbone, self.batch_size = backbone, batch_size
        self.subsets = np.array(subsets if subsets is not None else [""] * len(real_sketches))
        size, channels = real_sketches.shape[-1], real_sketches.shape[1]
        key = f"{data_fingerprint}-{split}-s{size}-c{channels}-{backbone.key}"
        path = (cache or cache_dir("fid")) / f"{key}.npz"
        if path.is_file():
            self.real = np.load(path)["features"]
        else:
            self.real = features(to_uint8(real_sketches), backbone, batch_size)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, features=self.real)
            tmp.replace(path)
        self.cache_path = path

    @property
    def subset_names(self) -> list[str]:
        names = sorted(set(self.subsets.tolist()))
        return names if len(names) > 1 else []

    def evaluate(self, fake_sketches: torch.Tensor) -> dict:
        """fid, kid, n_real, n_fake overall, and per_subset {name: {fid, kid, n}}; fakes are in
        the order of the real sketches (the generator's output for each test photo)."""
        fake = features(to_uint8(fake_sketches), self.backbone, self.batch_size)
        per_subset = {}
        for name in self.subset_names:
            pick = self.subsets == name
            per_subset[name] = dict(fid=fid_from_features(self.real[pick], fake[pick]),
                                    kid=kid_from_features(self.real[pick], fake[pick]), n=int(pick.sum()))
        return dict(fid=fid_from_features(self.real, fake), kid=kid_from_features(self.real, fake),
                    n_real=len(self.real), n_fake=len(fake), per_subset=per_subset)

    def provenance(self) -> dict:
        """Run tags that say what an FID value means."""
        return {
            "fid.library": f"pytorch-fid {importlib.metadata.version('pytorch-fid')}",
            "fid.backbone": self.backbone.name,
            "fid.weights_sha256": self.backbone.weights_sha256,
            "fid.dims": str(self.backbone.dims),
            "fid.n_real": str(len(self.real)),
            **{f"fid.n_real/{name}": str(int((self.subsets == name).sum())) for name in self.subset_names},
            "fid.resize": "bilinear to 299 inside InceptionV3 (pytorch-fid), uint8 input",
            "fid.comparable": "yes" if self.backbone.is_real else "NO: random-init smoke backbone",
        }
