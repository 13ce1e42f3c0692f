"""Training: the pix2pix model, checkpoints and the loop. Names load on first use, so torchrun's
launcher (labkit.train.worker) starts without the loop's imports."""

from ..lazy import lazy_getattr

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

__getattr__ = lazy_getattr(__name__, _WHERE)
