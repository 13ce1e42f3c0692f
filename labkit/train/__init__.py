"""Training: the pix2pix model, checkpoints and the loop."""
from .loop import Evaluation, FitResult, fit
from .pix2pix import NonFiniteLoss, Pix2Pix

__all__ = ["Evaluation", "FitResult", "fit", "NonFiniteLoss", "Pix2Pix"]

