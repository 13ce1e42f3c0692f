"""The swap variants, in one registry: each one's swap, the parameters it reads, the view its
notebook shows, and the decoder it needs. The ablation names (`swap_<name>`), the choices of
`labkit stylize --variant`, the demo's list and the dispatch of a swap run all come from here.

A variant's `swap(cfg, content, style, context)` takes one layer's content and style feature
maps and returns a SwapResult; the run swaps every layer in `layers(cfg)` and hands the
decoder the swapped maps. `prepare(cfg, encoder, images)`, when a variant has one, computes
what its swap needs from the images first (the channel weights of channel_weighted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


def _swaps():
    """labkit.style.swap, imported when a swap runs: the registry itself is read by the command
    line, which should not wait for torch to load."""
    from . import swap

    return swap


def scales(cfg) -> tuple[float, ...]:
    return tuple(float(x) for x in cfg.scales.split(","))


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


# Each variant's swap of one layer: (config, content map, style map, what prepare made) -> SwapResult.
def argmax(cfg, c, s, _):
    return _swaps().swap(c, s, cfg.patch_size, chunk=cfg.chunk)


def softmax(cfg, c, s, _):
    return _swaps().swap(c, s, cfg.patch_size, mode="softmax", temperature=cfg.temperature, chunk=cfg.chunk)


def frequency(cfg, c, s, _):
    return _swaps().frequency_swap(c, s, cfg.cutoff, k=cfg.patch_size, chunk=cfg.chunk)


def assignment(cfg, c, s, _):
    return _swaps().assignment_swap(c, s, cfg.patch_size, limit=cfg.usage_limit)


def channel_weighted(cfg, c, s, weights):
    return _swaps().swap(c, s, cfg.patch_size, chunk=cfg.chunk, channel_weights=weights)


def gram(cfg, c, s, _):
    return _swaps().gram_aware_swap(c, s, cfg.beta, k=cfg.patch_size, chunk=cfg.chunk)


def multiscale(cfg, c, s, _):
    return _swaps().swap(c, _swaps().multiscale_style(s, scales(cfg)), cfg.patch_size, chunk=cfg.chunk)


def avatar(cfg, c, s, _):
    return _swaps().avatar_swap(c, s, cfg.patch_size, chunk=cfg.chunk)


@dataclass(frozen=True)
class Variant:
    name: str
    summary: str
    params: tuple[str, ...]  # the StyleConfig fields it reads beyond patch_size and chunk
    swap: Callable  # (cfg, content map, style map, context) -> swap.SwapResult
    view: str  # its notebook's own picture: a function of labkit.style.views
    decoder_kind: str = ""  # the decoder it needs, when only one kind will do
    prepare: Callable | None = None  # (cfg, encoder, images) -> context for swap
    fixed_layers: tuple[str, ...] = ()  # the layers it swaps, when not cfg.swap_layer

    @property
    def ablation(self) -> str:
        return f"swap_{self.name}"

    def show(self, lab, **options):
        """This variant's own view of a SwapLab, as an RGB array."""
        from . import views

        return getattr(views, self.view)(lab, **options)

    def layers(self, cfg) -> tuple[str, ...]:
        return self.fixed_layers or (cfg.swap_layer,)

    def apply(self, cfg, content: dict, style: dict, context=None) -> tuple[dict, object]:
        """Decoder inputs after this variant's swap (every layer it swaps), and the result at its
        first layer."""
        inputs, first = dict(content), None
        for layer in self.layers(cfg):
            result = self.swap(cfg, content[layer], style[layer], context)
            inputs[layer] = result.features
            first = first or result
        return inputs, first


VARIANTS = {
    v.name: v
    for v in (
        Variant(
            "argmax",
            "Chen & Schmidt's swap: each 3x3 content patch takes the style patch of highest normalised "
            "cross-correlation; overlaps are averaged.",
            ("swap_layer",),
            argmax,
            "correspondence",
        ),
        Variant(
            "softmax",
            "Weights softmax(NCC / temperature) over all style patches instead of the single best "
            "(journal 10/9): small temperatures approach argmax, large ones average the style's colours.",
            ("swap_layer", "temperature"),
            softmax,
            "temperature_strip",
        ),
        Variant(
            "frequency",
            "Only the Gaussian low-pass of the content (sigma `cutoff` feature px) is swapped; the "
            "high-frequency residual is kept, preserving the content's detail (journal 10/8).",
            ("swap_layer", "cutoff"),
            frequency,
            "frequency_split",
        ),
        Variant(
            "assignment",
            "Globally matched: each style patch may be used at most `usage_limit` times (exact "
            "assignment, or Sinkhorn with capacities), instead of greedy best matches (journal 11/11).",
            ("swap_layer", "usage_limit"),
            assignment,
            "usage_histogram",
        ),
        Variant(
            "channel_weighted",
            "Matching with per-channel weights that play down colour-driven channels, found by "
            "comparing colour and grayscale responses (journal 12/27).",
            ("swap_layer",),
            channel_weighted,
            "channel_weights",
            prepare=colour_channel_weights,
        ),
        Variant(
            "gram",
            "Gram-aware: the query is content + beta x the style's mean feature, pulling matches towards "
            "patches typical of the style (journal 01/06).",
            ("swap_layer", "beta"),
            gram,
            "query_shift",
        ),
        Variant(
            "multiscale",
            "Style patches taken at several scales (`scales`), so textures of another size can match (journal 10/12).",
            ("swap_layer", "scales"),
            multiscale,
            "scale_map",
        ),
        Variant(
            "multilayer",
            "relu4_1 and relu3_1 swapped together and decoded by the decoder with a relu3_1 "
            "entrance: colour and large texture from relu4_1, small texture from relu3_1 (journal 10/11).",
            (),
            argmax,
            "both_layers",
            decoder_kind="relu4_1+relu3_1",
            fixed_layers=("relu4_1", "relu3_1"),
        ),
        Variant(
            "avatar",
            "Avatar-Net's style decorator (Sheng et al.): content and style ZCA-whitened, the whitened "
            "content's 5x5 patches (reflect-padded) swapped for the best whitened style patches, the result "
            "coloured with the style's covariance and mean; decoded by Avatar-Net's hourglass decoder, its AdaIN "
            "skips taking the style's relu3_1 .. relu1_1 statistics.",
            (),
            avatar,
            "decorator",
            decoder_kind="avatar",
            fixed_layers=("relu4_1",),
        ),
    )
}
BY_ABLATION = {v.ablation: v for v in VARIANTS.values()}
