"""avatar: Avatar-Net's style decorator; its view shows the feature covariances it whitens and
colours, and where the whitened swap matched."""

from .variant import Matched, Variant, register


def swap(cfg, c, s, _):
    from ..swap import avatar_swap

    return avatar_swap(c, s, cfg.patch_size, chunk=cfg.chunk)


def matched(cfg, c, s, _):
    """The whitened content (reflect-padded) against the whitened style (zero-padded), as avatar_swap."""
    import torch.nn.functional as F

    from ..swap import zca

    pad = (cfg.patch_size - 1) // 2
    white_content, white_style = zca(c)[0], zca(s)[0]
    return Matched(F.pad(white_content, (pad,) * 4, mode="reflect"), [F.pad(white_style, (pad,) * 4)], pad=pad)


def _covariance(features, channels: int):
    """The covariance of the first `channels` channels of one map (1, C, H, W)."""
    x = features[0, :channels].flatten(1).double()
    x = x - x.mean(1, keepdim=True)
    return (x @ x.t() / x.shape[1]).cpu().numpy()


def view(lab, channels: int = 32):
    """What the style decorator does at the swap layer, on the first pair: the content's feature
    covariance before and after whitening (the identity), the style's, the decorated features'
    (coloured: near the style's), and where the whitened swap matched well."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ...viz import figure_to_array
    from ..swap import zca
    from ..views import first_pair, rgb

    name, _, _, c, s = first_pair(lab)
    layer = lab.variant.layers(lab.cfg)[0]
    result = lab.variant.swap(lab.cfg, c[layer], s[layer], lab.context)
    covariances = [_covariance(m, channels) for m in (c[layer], zca(c[layer])[0], s[layer], result.features)]
    fig, axes = plt.subplots(1, 6, figsize=(14.4, 2.9), constrained_layout=True)
    titles = ["content", "content whitened", "style", "decorated"]
    for ax, cov, title in zip(axes, covariances, titles):
        limit = float(np.abs(cov).max()) or 1.0
        fig.colorbar(ax.imshow(cov, cmap="RdBu_r", vmin=-limit, vmax=limit), ax=ax, shrink=0.7)
        ax.set_title(f"{title}: covariance", fontsize=8)
    fig.colorbar(
        axes[4].imshow(result.confidence[0].cpu().numpy(), cmap="viridis", vmin=-1, vmax=1), ax=axes[4], shrink=0.7
    )
    axes[4].set_title("match confidence (whitened)", fontsize=8)
    axes[5].imshow(rgb(lab.stylise(c, s)[0]))
    axes[5].set_title("output", fontsize=8)
    for ax in axes:
        ax.axis("off")
    gap = np.abs(covariances[3] - covariances[2]).mean() / max(np.abs(covariances[2]).mean(), 1e-12)
    fig.suptitle(
        f"Avatar-Net decorator at {layer} ({name}), first {channels} channels: "
        f"decorated vs style covariance differ by {gap:.0%} (mean |Δ| / mean |style|)",
        fontsize=9,
    )
    return figure_to_array(fig)


register(
    Variant(
        "avatar",
        "Avatar-Net's style decorator (Sheng et al.): content and style ZCA-whitened, the whitened "
        "content's 5x5 patches (reflect-padded) swapped for the best whitened style patches, the result "
        "coloured with the style's covariance and mean; decoded by Avatar-Net's hourglass decoder, its AdaIN "
        "skips taking the style's relu3_1 .. relu1_1 statistics.",
        swap,
        view,
        "decorator",
        decoder_kind="avatar",
        fixed_layers=("relu4_1",),
        matched=matched,
    )
)
