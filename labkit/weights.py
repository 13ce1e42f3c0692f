"""Pretrained weight files in the torch hub cache: found there, fetched there when a network
is reachable, or an error that names the file, where it comes from and where to put it."""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .console import banner


class WeightsUnavailable(RuntimeError):
    pass


# torch is imported where it is used: the command line checks a params file's weights without it.
# The files' addresses are pytorch-fid's and torchvision's own (tests/test_config.py compares them).
FID_INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def hub_path(filename: str) -> Path:
    """Where torch.hub keeps a downloaded file: its own answer once torch is loaded (set_dir may
    have moved it), else the same rule read from the environment."""
    if "torch" in sys.modules:
        hub = sys.modules["torch"].hub.get_dir()
    else:
        cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
        hub = os.path.join(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch"))), "hub")
    return Path(hub) / "checkpoints" / filename


def cached(url: str) -> Path:
    """Where the hub cache keeps the file at url."""
    return hub_path(url.rsplit("/", 1)[-1])


def _download(url: str, dest: Path, timeout: float = 30.0) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as f:
        while chunk := response.read(1 << 20):
            f.write(chunk)
    partial.replace(dest)


def ensure(url: str, what: str, instead: str) -> Path:
    """The cached file for url, downloaded if missing and reachable; `instead` says what the
    user can do without it."""
    path = cached(url)
    if path.is_file():
        return path
    try:
        _download(url, path)
    except OSError as exc:
        raise WeightsUnavailable(
            f"The {what} weights are not in the torch hub cache and could not be downloaded ({exc}).\n"
            f"  file:  {path.name}\n  from:  {url}\n  put it at: {path}\n"
            f"  (TORCH_HOME moves the cache.) {instead}"
        ) from None
    return path


def ensure_fid_inception() -> Path:
    """The FID Inception weights file, fetched into the hub cache if missing and reachable."""
    return ensure(
        FID_INCEPTION_URL,
        "FID Inception",
        "Or set fid_backbone to 'random-init' for a smoke run whose FID is not comparable with real ones.",
    )


def ensure_vgg19() -> Path:
    return ensure(VGG19_URL, "VGG19 (torchvision)", "Or set vgg_weights to 'random-init' for a smoke run.")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def resolve_auto(choice: str, real: str, ensure: Callable[[], Path], what: str) -> str:
    """`auto` becomes `real` when ensure() can provide the weights file, else `random-init`,
    with a banner that says the numbers are smoke numbers; any other choice is kept."""
    if choice != "auto":
        return choice
    try:
        ensure()
        return real
    except WeightsUnavailable as exc:
        # said once, as output: the fallback is expected offline (a warning would draw it as an error)
        print(
            banner(f"{what} FALLBACK: random-init weights (smoke run: numbers NOT comparable with real ones)", str(exc))
        )
        return "random-init"


def kaiming_normal_(net, seed: int):
    """Kaiming-normal conv weights from a fixed seed, zero biases: a random network whose
    activations keep their scale through many layers (PyTorch's default init lets them
    vanish, and every distance between features comes out near 0)."""
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data = torch.randn(m.weight.shape, generator=generator) * (2.0 / m.weight[0].numel()) ** 0.5
            if m.bias is not None:
                m.bias.data.zero_()
    return net
