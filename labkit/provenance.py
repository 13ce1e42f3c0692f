"""What a run was made with: code version, packages, machine."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

PACKAGES = ("labkit", "torch", "torchvision", "numpy", "mlflow", "papermill", "pytorch-fid", "facenet-pytorch")


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(root: Path) -> dict:
    """commit, dirty flag and the uncommitted diff (tracked files) of the project."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "diff": ""}
    status = _git(root, "status", "--porcelain", "--untracked-files=no") or ""
    return {"commit": commit.strip(), "dirty": bool(status.strip()), "diff": _git(root, "diff", "HEAD") or ""}


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# torch is imported where a device is asked about: the runner, which records provenance, imports
# it only when there may be GPUs to hand out (2 CPU-s of every runner process otherwise)


def gpu_count() -> int:
    """The GPUs torch sees here; 0 without a GPU driver, found without importing torch."""
    if not (Path("/proc/driver/nvidia").exists() or Path("/dev/kfd").exists()):
        return 0
    import torch

    return torch.cuda.device_count()


def device_description(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{device.index or 0} {torch.cuda.get_device_name(device)}"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def pick_device(name: str):
    """'auto' is the first GPU when there is one, else the CPU; an unavailable choice is refused."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} but no CUDA device is visible here; use device='auto' or 'cpu'")
    return device
