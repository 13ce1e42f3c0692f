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
    split, size, channels, backbone) and kept under runs/cache/fid/."""

    def __init__(self, real_sketches: torch.Tensor, backbone: Backbone, data_fingerprint: str,
                 split: str = "test", batch_size: int = 50, cache: Path | None = None):
        self.backbone, self.batch_size = backbone, batch_size
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

    def evaluate(self, fake_sketches: torch.Tensor) -> dict:
        fake = features(to_uint8(fake_sketches), self.backbone, self.batch_size)
        return dict(fid=fid_from_features(self.real, fake), kid=kid_from_features(self.real, fake),
                    n_real=len(self.real), n_fake=len(fake))

    def provenance(self) -> dict:
        """Run tags that say what an FID value means."""
        return {
            "fid.library": f"pytorch-fid {importlib.metadata.version('pytorch-fid')}",
            "fid.backbone": self.backbone.name,
            "fid.weights_sha256": self.backbone.weights_sha256,
            "fid.dims": str(self.backbone.dims),
            "fid.n_real": str(len(self.real)),
            "fid.resize": "bilinear to 299 inside InceptionV3 (pytorch-fid), uint8 input",
            "fid.comparable": "yes" if self.backbone.is_real else "NO: random-init smoke backbone",
        }
