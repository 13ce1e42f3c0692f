"""The style-swap lab: VGG19 encoder with an explicit input convention (vgg), decoders
(decoder) and their training (training), swap functions on feature maps (swap) and the
registry of variants built on them (variants), the measured swap run (swaprun) with its
pictures (views), and folder stylisation (stylize)."""

from ..lazy import lazy_getattr


def start(namespace: dict):
    """A style notebook's first cell: its config and run (labkit.start), then the SwapLab it
    works with: images, encoder and, for a swap variant, its decoder (decoder_run's, when set)."""
    from .. import track
    from .swaprun import setup

    cfg, run = track.start(namespace)
    return setup(cfg, run, track.run_id_of(cfg.decoder_run) if cfg.decoder_run else "")


# the submodules load on first use (labkit.style.training in a notebook)
_SUBMODULES = ("decoder", "images", "losses", "stylize", "swap", "swaprun", "training", "variants", "vgg", "views")
__getattr__ = lazy_getattr(__name__, dict.fromkeys(_SUBMODULES, ""))
