"""A run's checkpoints: everything it needs to continue exactly where it stopped.

    runs/checkpoints/<run id>/<kind>.pt        the newest (kind: `model` for faces, `decoder` for style)
    runs/checkpoints/<run id>/<kind>.prev.pt   the one before it
    runs/checkpoints/<run id>/<kind>.best.pt   the lowest FID so far (face runs)

Each is written to a temporary file named after its writer (host and pid) and renamed into
place, so a kill or a full disk mid-write never leaves a half file under a real name, and two
writers never share a temporary file. A newest file that cannot be read falls back to the one
before, saying so. Files load with `weights_only=True`: tensors, numbers, strings and plain
containers, never code (a crafted checkpoint cannot run anything).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import keys
from ..paths import checkpoint_dir


class CheckpointError(RuntimeError):
    """No readable checkpoint where one was expected; the message names the files."""


def rng_state() -> dict:
    """Every random generator's state, as tensors and plain values (loadable without code)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # the GPU this process trains on, only
        state["cuda"] = torch.cuda.get_rng_state(torch.cuda.current_device())
    return state


def cuda_rng_to_restore(saved, visible: int) -> torch.Tensor | None:
    """The CUDA generator state to give the GPU this process trains on: the one saved (older
    checkpoints saved every visible GPU's, a list: the first, the one a single-GPU run drew from),
    or None where no GPU is visible or none was saved (a run resumed on another machine draws
    its dropout masks anew there; the CPU generators are restored all the same)."""
    if saved is None or not visible:
        return None
    return saved[0] if isinstance(saved, (list, tuple)) else saved


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    cuda = cuda_rng_to_restore(state.get("cuda"), torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, torch.cuda.current_device())


def _writer_alive(tmp: Path) -> bool:
    """Whether the process that named this temporary file (`...<host>.<pid>.tmp`) still runs."""
    head, _, pid = tmp.name.removesuffix(".tmp").rpartition(".")
    if not pid.isdigit() or not head.endswith("." + socket.gethostname()):
        return True  # another host's, or not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class Checkpoints:
    def __init__(self, run_id: str, kind: str = "model"):
        self.folder = checkpoint_dir(run_id)
        self.kind = kind
        self.path = self.folder / f"{kind}.pt"
        self.prev = self.folder / f"{kind}.prev.pt"
        self.best = self.folder / f"{kind}.best.pt"

    def _tmp(self, role: str = "new") -> Path:
        return self.folder / f".{self.kind}.{role}.{socket.gethostname()}.{os.getpid()}.tmp"

    def clean_stale(self) -> list[Path]:
        """Remove temporary files left by writers that died; returns what was removed."""
        removed = []
        for tmp in self.folder.glob(f".{self.kind}.*.tmp") if self.folder.is_dir() else []:
            if not _writer_alive(tmp):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
        return removed

    def save(self, state: dict, best: bool = False) -> Path:
        """Write state (with the RNG states) as the newest checkpoint; the newest so far becomes
        the previous one. With best, also keep it as the best one. Nothing is replaced unless the
        new file was written whole: a full disk raises OSError and leaves the old files as they were."""
        tmp, best_tmp = self._tmp(), self._tmp("best")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            torch.save({**state, "rng": rng_state()}, tmp)
            if self.path.is_file():
                self.path.replace(self.prev)
            tmp.replace(self.path)
            if best:
                try:
                    os.link(self.path, best_tmp)
                except OSError:  # a file system without hard links
                    shutil.copyfile(self.path, best_tmp)
                best_tmp.replace(self.best)
        except (OSError, RuntimeError) as exc:  # torch reports a failed write as a RuntimeError
            free = shutil.disk_usage(next(p for p in (self.folder, *self.folder.parents) if p.is_dir())).free / 2**20
            raise CheckpointError(
                f"cannot write a checkpoint in {self.folder} ({str(exc).splitlines()[0][:200]}; "
                f"{free:.0f} MiB free there). The checkpoints already there are untouched: free "
                "space (or move runs/ with LABKIT_RUNS), then rerun to resume."
            ) from None
        finally:
            for leftover in (tmp, best_tmp):
                try:
                    leftover.unlink(missing_ok=True)
                except OSError:  # no folder to clean (it could not be made)
                    pass
        return self.path

    @staticmethod
    def read(path: Path) -> dict:
        """One checkpoint file, without running anything it might carry."""
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, foreign, or holding objects that would run code
            reason = str(exc).splitlines()[0][:300]
            if "Weights only load failed" in reason:  # torch's own text goes on to advise loading it unsafely
                reason = "it holds objects that would run code when loaded; it was not loaded"
            raise CheckpointError(f"{path}: cannot read this checkpoint ({reason})") from None

    def load(self) -> dict | None:
        """The newest readable checkpoint, or None when the run has none yet. A corrupt newest
        file falls back to the previous one with a warning; when neither reads, an error."""
        problems = []
        for path in (self.path, self.prev):
            if not path.is_file():
                continue
            try:
                state = self.read(path)
            except CheckpointError as exc:
                problems.append(str(exc))
                continue
            if problems:
                warnings.warn(
                    f"{problems[0]}\n{keys.CHECKPOINT_FALLBACK} {path} "
                    f"(epoch {state.get('epoch', '?')}, step {state.get('step', '?')})",
                    stacklevel=2,
                )
            return state
        if problems:
            raise CheckpointError(
                "\n".join(problems) + "\nno readable checkpoint is left: move these files away to start the run over"
            )
        return None

    def resume(self, cfg) -> dict | None:
        """What a run resumes from: stale temporary files cleaned, the newest readable checkpoint,
        refused when it was written with other settings than cfg's (one identity decides)."""
        self.clean_stale()
        state = self.load()
        changed = cfg.differences(state["config"]) if state is not None else []
        if changed:
            raise RuntimeError(
                f"{self.path} was written with other settings ({'; '.join(changed)}); "
                "start a fresh run instead of resuming this one"
            )
        return state

    def describe(self) -> str:
        """Where the run would resume from, for messages (names only files that exist)."""
        for path in (self.path, self.prev):
            if path.is_file():
                return f"the last checkpoint is kept at {path}"
        return "no checkpoint was written yet: a rerun starts from the beginning"
