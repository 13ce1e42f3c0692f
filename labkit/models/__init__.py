"""Networks."""
from .pix2pix import PatchDiscriminator, UnetGenerator, init_weights

__all__ = ["PatchDiscriminator", "UnetGenerator", "init_weights"]
