"""Training: the pix2pix model, checkpoints and the loop. Names load on first use, so torchrun's
launcher (labkit.train.worker) starts without the loop's imports."""

import importlib

_WHERE = {
    "CheckpointError": "checkpoint",
    "Checkpoints": "checkpoint",
    "Diverged": "loop",
    "Evaluation": "loop",
    "NonFiniteLoss": "loop",
    "Training": "loop",
    "fit": "loop",
    "Pix2Pix": "pix2pix",
}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'labkit.train' has no attribute '{name}'")
