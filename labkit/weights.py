"""Pretrained weight files in the torch hub cache: found there, fetched there when a network
is reachable, or an error that names the file, where it comes from and where to put it."""
from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

import torch


class WeightsUnavailable(RuntimeError):
    pass


def hub_path(filename: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


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
    path = hub_path(url.rsplit("/", 1)[-1])
    if path.is_file():
        return path
    try:
        _download(url, path)
    except OSError as exc:
        raise WeightsUnavailable(
            f"The {what} weights are not in the torch hub cache and could not be downloaded ({exc}).\n"
            f"  file:  {path.name}\n  from:  {url}\n  put it at: {path}\n"
            f"  (TORCH_HOME moves the cache.) {instead}") from None
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()
