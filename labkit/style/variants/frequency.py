"""frequency: only the content's low-pass part is swapped; its view shows the split."""

from dataclasses import dataclass

from ...knobs import knob
from .variant import Matched, Variant, register


@dataclass(frozen=True)
class FrequencyKnobs:
    cutoff: float = knob(2.0, "frequency: Gaussian sigma of the low-pass, feature px", at_least=0)


def swap(cfg, c, s, _):
    from ..swap import frequency_swap

    return frequency_swap(c, s, cfg.cutoff, k=cfg.patch_size, chunk=cfg.chunk)


def matched(cfg, c, s, _):
    from ..swap import low_pass

    return Matched(low_pass(c, cfg.cutoff), [s])


def view(lab):
    """How the content's features split into the low-pass part (swapped) and the high-frequency
    residual (kept), and the output against swapping everything (cutoff 0)."""
    from ..swap import low_pass
    from ..views import first_pair, panels, rgb

    name, c_img, _, c, s = first_pair(lab)
    layer = lab.cfg.swap_layer
    low = low_pass(c[layer], lab.cfg.cutoff)
    energy = lambda f: f.abs().mean(1)[0].cpu().numpy()  # noqa: E731
    kept, all_swapped = lab.stylise(c, s)[0], lab.stylise(c, s, cutoff=0.0)[0]
    return panels(
        [rgb(c_img), energy(low), energy(c[layer] - low), rgb(kept), rgb(all_swapped)],
        [
            "content",
            f"low-pass (sigma {lab.cfg.cutoff:g}): swapped",
            "high residual: kept",
            "output",
            "cutoff 0: all swapped",
        ],
        f"frequency-separated swap ({name})",
        cmaps={1: "magma", 2: "magma"},
    )


register(
    Variant(
        "frequency",
        "Only the Gaussian low-pass of the content (sigma `cutoff` feature px) is swapped; the "
        "high-frequency residual is kept, preserving the content's detail (journal 10/8).",
        swap,
        view,
        "frequency_split",
        knobs=FrequencyKnobs,
        matched=matched,
    )
)
