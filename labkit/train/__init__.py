"""Training: the pix2pix model, checkpoints and the loop."""
from .checkpoint import CheckpointError, Checkpoints
from .loop import Diverged, Evaluation, NonFiniteLoss, Training, fit
from .pix2pix import Pix2Pix

__all__ = ["CheckpointError", "Checkpoints", "Diverged", "Evaluation", "NonFiniteLoss", "Training", "fit", "Pix2Pix"]
