"""Training: the pix2pix model, checkpoints, the runner every training loop shares and the face
loop. Names load on first use, so torchrun's launcher (labkit.train.worker) starts without the
loop's imports."""

from ..lazy import lazy_getattr

_WHERE = {
    "CheckpointError": "checkpoint",
    "Checkpoints": "checkpoint",
    "Diverged": "runner",
    "Evaluation": "loop",
    "NonFiniteLoss": "runner",
    "Training": "loop",
    "fit": "loop",
    "Pix2Pix": "pix2pix",
}
__all__ = list(_WHERE)

__getattr__ = lazy_getattr(__name__, _WHERE)
