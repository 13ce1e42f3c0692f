"""gram: the query pulled towards the style's mean feature; its view shows the output as the pull
grows."""

from dataclasses import dataclass

from ...knobs import knob
from .variant import Matched, Variant, register


@dataclass(frozen=True)
class GramKnobs:
    beta: float = knob(1.0, "gram: weight of the style mean in the query")


def swap(cfg, c, s, _):
    from ..swap import gram_aware_swap

    return gram_aware_swap(c, s, cfg.beta, k=cfg.patch_size, chunk=cfg.chunk)


def matched(cfg, c, s, _):
    return Matched(c + cfg.beta * s.mean(dim=(2, 3), keepdim=True), [s])


def view(lab, betas=(0.0, 0.5, 1.0, 2.0)):
    """The output as the query moves towards the style's mean feature, with the share of content
    locations whose match moved away from the plain swap (beta 0)."""
    from ..views import first_pair, panels, rgb

    name, c_img, _, c, s = first_pair(lab)
    runs = [lab.stylise(c, s, beta=b) for b in betas]
    plain = runs[0][2].index
    moved = [float((r[2].index != plain).float().mean()) for r in runs]
    return panels(
        [rgb(c_img), *[rgb(r[0]) for r in runs]],
        ["content", *[f"beta {b:g}: {m:.0%} moved" for b, m in zip(betas, moved)]],
        f"Gram-aware query shift ({name})",
    )


register(
    Variant(
        "gram",
        "Gram-aware: the query is content + beta x the style's mean feature, pulling matches towards "
        "patches typical of the style (journal 01/06).",
        swap,
        view,
        "query_shift",
        knobs=GramKnobs,
        matched=matched,
    )
)
