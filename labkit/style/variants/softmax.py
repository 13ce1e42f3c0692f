"""softmax: a temperature-weighted average over all style patches; its view shows a strip of
temperatures after argmax."""

from dataclasses import dataclass

from ...knobs import knob
from .variant import Variant, register


@dataclass(frozen=True)
class SoftmaxKnobs:
    temperature: float = knob(0.05, "softmax: NCC / temperature", above=0)


def swap(cfg, c, s, _):
    from ..swap import swap

    return swap(c, s, cfg.patch_size, mode="softmax", temperature=cfg.temperature, chunk=cfg.chunk)


def view(lab, temperatures=(0.01, 0.05, 0.2, 1.0)):
    """The output at each temperature, after argmax (the limit of small temperatures)."""
    import torch

    from ..swap import swap
    from ..views import first_pair, panels, rgb

    name, c_img, _, c, s = first_pair(lab)
    argmax = swap(c[lab.cfg.swap_layer], s[lab.cfg.swap_layer], lab.cfg.patch_size, chunk=lab.cfg.chunk)
    with torch.no_grad():
        first = lab.decoder({**c, lab.cfg.swap_layer: argmax.features}, s).clamp(0, 1)[0]
    outs = [lab.stylise(c, s, temperature=t)[0] for t in temperatures]
    return panels(
        [rgb(c_img), rgb(first), *map(rgb, outs)],
        ["content", "argmax", *[f"T = {t:g}" for t in temperatures]],
        f"softmax over temperatures ({name})",
    )


register(
    Variant(
        "softmax",
        "Weights softmax(NCC / temperature) over all style patches instead of the single best "
        "(journal 10/9): small temperatures approach argmax, large ones average the style's colours.",
        swap,
        view,
        "temperature_strip",
        knobs=SoftmaxKnobs,
    )
)
