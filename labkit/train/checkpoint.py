"""Checkpoints that hold everything a run needs to continue exactly where it stopped."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpoints:
    """One checkpoint file (last.pt) in a run's checkpoint folder, replaced atomically so a kill
    mid-write loses nothing."""

    def __init__(self, folder: Path, name: str = "last.pt"):
        self.folder = Path(folder)
        self.path = self.folder / name

    def save(self, state: dict) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({**state, "rng": rng_state()}, tmp)
        tmp.replace(self.path)
        return self.path

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            return torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a truncated or foreign file: say which and how to go on
            raise RuntimeError(f"{self.path}: cannot read this checkpoint ({exc}); move it away to restart "
                               "the run from scratch") from None
