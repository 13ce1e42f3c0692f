"""multilayer: relu4_1 and relu3_1 swapped together; its view sets the two layers' matches and
relu4_1 alone beside both."""

from .argmax import swap
from .variant import Variant, register


def view(lab):
    """Match confidence at relu4_1 and relu3_1, and relu4_1 swapped alone against both swapped
    together."""
    import torch

    from ..views import first_pair, panels, rgb

    name, _, _, c, s = first_pair(lab)
    results = {layer: lab.variant.swap(lab.cfg, c[layer], s[layer], lab.context) for layer in ("relu4_1", "relu3_1")}
    with torch.no_grad():
        deep_only = lab.decoder({**c, "relu4_1": results["relu4_1"].features}, s).clamp(0, 1)[0]
    both = lab.stylise(c, s)[0]
    return panels(
        [
            results["relu4_1"].confidence[0].cpu().numpy(),
            results["relu3_1"].confidence[0].cpu().numpy(),
            rgb(deep_only),
            rgb(both),
        ],
        ["confidence at relu4_1", "confidence at relu3_1", "relu4_1 swapped alone", "both swapped"],
        f"multi-layer swap ({name})",
        cmaps={0: "viridis", 1: "viridis"},
    )


register(
    Variant(
        "multilayer",
        "relu4_1 and relu3_1 swapped together and decoded by the decoder with a relu3_1 "
        "entrance: colour and large texture from relu4_1, small texture from relu3_1 (journal 10/11).",
        swap,
        view,
        "both_layers",
        decoder_kind="relu4_1+relu3_1",
        fixed_layers=("relu4_1", "relu3_1"),
    )
)
