"""The Inception network FID is computed with: pytorch-fid's, with its weights or a smoke stand-in.

`inception`   pytorch-fid's FID Inception with pt_inception-2015-12-05-6726825d.pth from the
              torch hub cache (downloaded there when a network is reachable). Without it the
              run stops with an error naming the file and where to put it.
`random-init` the same architecture, Kaiming-normal initialised from a fixed seed: it gives
              informative (non-vanishing) features for smoke runs on machines without the
              weights. Its numbers are tagged `random-init` and never compared with real FIDs.
`auto`        `inception` when the weights can be had, else `random-init`, said loudly.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from pytorch_fid import inception as fid_inception
from torch import nn

from ..weights import FID_INCEPTION_URL, cached, ensure_fid_inception, kaiming_normal_, resolve_auto, sha256

RANDOM_INIT_SEED = 0


@dataclass
class Backbone:
    model: nn.Module
    name: str  # "inception" or "random-init"
    weights_sha256: str
    dims: int

    @property
    def is_real(self) -> bool:
        return self.name == "inception"

    @property
    def key(self) -> str:
        """Identifies the features: same key, comparable numbers."""
        return f"{self.name}-{self.weights_sha256[:12]}-d{self.dims}"


def weights_path() -> Path:
    return cached(FID_INCEPTION_URL)


def _kaiming_fid_inception() -> nn.Module:
    """pytorch-fid's FID Inception architecture, Kaiming-normal initialised from a fixed seed."""
    inception = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    for name, block in [
        ("Mixed_5b", fid_inception.FIDInceptionA(192, pool_features=32)),
        ("Mixed_5c", fid_inception.FIDInceptionA(256, pool_features=64)),
        ("Mixed_5d", fid_inception.FIDInceptionA(288, pool_features=64)),
        ("Mixed_6b", fid_inception.FIDInceptionC(768, channels_7x7=128)),
        ("Mixed_6c", fid_inception.FIDInceptionC(768, channels_7x7=160)),
        ("Mixed_6d", fid_inception.FIDInceptionC(768, channels_7x7=160)),
        ("Mixed_6e", fid_inception.FIDInceptionC(768, channels_7x7=192)),
        ("Mixed_7b", fid_inception.FIDInceptionE_1(1280)),
        ("Mixed_7c", fid_inception.FIDInceptionE_2(2048)),
    ]:
        setattr(inception, name, block)
    return kaiming_normal_(inception, RANDOM_INIT_SEED)


@contextlib.contextmanager
def _inception_built_by(builder):
    """pytorch-fid's InceptionV3 wrapper always builds its network with fid_inception_v3();
    swap in another builder for the time of one construction."""
    original = fid_inception.fid_inception_v3
    fid_inception.fid_inception_v3 = builder
    try:
        yield
    finally:
        fid_inception.fid_inception_v3 = original


def _state_sha256(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_backbone(name: str = "inception", dims: int = 2048, device: str | torch.device = "cpu") -> Backbone:
    block = fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM.get(dims)
    if block is None:
        raise ValueError(f"fid_dims={dims}: pytorch-fid offers {sorted(fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM)}")
    name = resolve_auto(name, "inception", ensure_fid_inception, "FID BACKBONE")
    if name == "inception":
        sha = sha256(ensure_fid_inception())
        model = fid_inception.InceptionV3([block])  # loads the cached weights through pytorch-fid itself
    elif name == "random-init":
        with _inception_built_by(_kaiming_fid_inception):
            model = fid_inception.InceptionV3([block])
        sha = _state_sha256(model)
    else:
        raise ValueError(f"fid_backbone={name!r}: use 'inception', 'random-init' or 'auto'")
    return Backbone(model=model.eval().to(device), name=name, weights_sha256=sha, dims=dims)
