"""Networks."""

from .pix2pix import PatchDiscriminator, UnetGenerator, init_weights, without_dropout

__all__ = ["PatchDiscriminator", "UnetGenerator", "init_weights", "without_dropout"]
