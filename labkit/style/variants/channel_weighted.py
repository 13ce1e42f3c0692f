"""channel_weighted: matching with per-channel weights that play down colour-driven channels;
its view shows the weights."""

from .variant import Matched, Variant, register


def colour_channel_weights(cfg, encoder, images: list):
    """(C,) matching weights that play down colour-driven channels: a channel whose mean response
    changes most between a colour image and its grayscale version gets weight 0, one that does
    not change gets 1 (the journal's 12/27 idea)."""
    import torch

    device = next(encoder.parameters()).device
    change, total = 0.0, 0.0
    with torch.no_grad():
        for img in images:
            colour = img[None].to(device)
            gray = (0.299 * colour[:, :1] + 0.587 * colour[:, 1:2] + 0.114 * colour[:, 2:]).expand_as(colour)
            fc = encoder.encode(colour, (cfg.swap_layer,))[cfg.swap_layer].mean((0, 2, 3))
            fg = encoder.encode(gray, (cfg.swap_layer,))[cfg.swap_layer].mean((0, 2, 3))
            change = change + (fc - fg).abs()
            total = total + fc.abs() + fg.abs()
    sensitivity = change / (total + 1e-8)
    return 1.0 - sensitivity / sensitivity.max().clamp_min(1e-8)


def swap(cfg, c, s, weights):
    from ..swap import swap

    return swap(c, s, cfg.patch_size, chunk=cfg.chunk, channel_weights=weights)


def matched(cfg, c, s, weights):
    return Matched(c, [s], weights)


def view(lab):
    """The weight of every channel in the matching, sorted (0: colour-driven)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ...viz import figure_to_array

    weights = lab.context.cpu().numpy()
    fig, ax = plt.subplots(figsize=(6, 3), constrained_layout=True)
    ax.bar(np.arange(len(weights)), np.sort(weights), width=1.0, color="tab:blue")
    ax.set_xlabel(f"{lab.cfg.swap_layer} channels, sorted by weight")
    ax.set_ylabel("matching weight")
    ax.set_title(
        f"channel weights: {int((weights < 0.5).sum())} of {len(weights)} below 0.5 (most colour-driven)", fontsize=9
    )
    return figure_to_array(fig)


register(
    Variant(
        "channel_weighted",
        "Matching with per-channel weights that play down colour-driven channels, found by "
        "comparing colour and grayscale responses (journal 12/27).",
        swap,
        view,
        "channel_weights",
        prepare=colour_channel_weights,
        matched=matched,
    )
)
