"""A swap variant, and the registry of them (see labkit.style.variants)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...registry import Registry


@dataclass
class Matched:
    """What a variant's swap scores by NCC, for the swap explorer to redraw one patch's scores:
    the query map (1, C, H, W), the style maps whose patches form the bank, the channel weights
    of the matching (or None), and how far the query and the maps were padded."""

    query: object
    maps: list
    weights: object = None
    pad: int = 0


def plain_match(cfg, content, style, context) -> Matched:
    """The content's patches against the style's, unweighted: argmax's, softmax's and assignment's."""
    return Matched(content, [style])


@dataclass(frozen=True)
class Variant:
    name: str
    summary: str
    swap: Callable  # (cfg, content map, style map, context) -> swap.SwapResult
    view: Callable  # (SwapLab, **options) -> RGB array: its notebook's own picture
    view_key: str  # the image key the view is logged under
    knobs: type | None = None  # the parameters it adds to StyleConfig (a frozen dataclass of knobs)
    decoder_kind: str = ""  # the decoder it needs, when only one kind will do
    prepare: Callable | None = None  # (cfg, encoder, images) -> context for swap
    fixed_layers: tuple[str, ...] = ()  # the layers it swaps, when not cfg.swap_layer
    matched: Callable = plain_match  # (cfg, content map, style map, context) -> Matched: what its swap scores

    @property
    def ablation(self) -> str:
        return f"swap_{self.name}"

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


VARIANTS: Registry[Variant] = Registry("swap variant", "labkit.variants")
register = VARIANTS.register


def by_ablation(ablation: str) -> Variant | None:
    """The variant of a swap_<name> ablation (None for any other)."""
    return next((v for v in VARIANTS if v.ablation == ablation), None)


def knob_sets() -> list[type]:
    """The parameter sets the variants add to StyleConfig."""
    return [v.knobs for v in VARIANTS if v.knobs is not None]
