"""Networks."""

from .pix2pix import PatchDiscriminator, UnetGenerator, as_upstream_tests, init_weights, without_dropout

__all__ = ["PatchDiscriminator", "UnetGenerator", "as_upstream_tests", "init_weights", "without_dropout"]
