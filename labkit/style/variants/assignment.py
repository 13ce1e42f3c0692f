"""assignment: globally matched, each style patch used a limited number of times; its view is the
histogram of patch usage against argmax."""

from dataclasses import dataclass

from ...knobs import knob
from .variant import Variant, register


@dataclass(frozen=True)
class AssignmentKnobs:
    usage_limit: int = knob(2, "assignment: uses allowed per style patch", at_least=1)


def swap(cfg, c, s, _):
    from ..swap import assignment_swap

    return assignment_swap(c, s, cfg.patch_size, limit=cfg.usage_limit)


def view(lab):
    """How many style patches are used 0, 1, 2, ... times, against plain argmax."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ...viz import figure_to_array
    from ..swap import swap
    from ..views import first_pair

    name, _, _, c, s = first_pair(lab)
    layer = lab.cfg.swap_layer
    capped = lab.stylise(c, s)[2].usage().cpu().numpy()
    greedy = swap(c[layer], s[layer], lab.cfg.patch_size, chunk=lab.cfg.chunk).usage().cpu().numpy()
    top = int(max(capped.max(), greedy.max()))
    bins = np.arange(top + 2)
    fig, ax = plt.subplots(figsize=(6, 3), constrained_layout=True)
    ax.hist([greedy, capped], bins=bins - 0.5, label=["argmax (greedy)", f"assignment (limit {lab.cfg.usage_limit})"])
    ax.set_yscale("log")
    ax.set_xlabel("times a style patch is used")
    ax.set_ylabel("style patches")
    ax.set_title(f"style patch usage ({name})", fontsize=9)
    ax.legend(fontsize=8)
    return figure_to_array(fig)


register(
    Variant(
        "assignment",
        "Globally matched: each style patch may be used at most `usage_limit` times (exact "
        "assignment, or Sinkhorn with capacities), instead of greedy best matches (journal 11/11).",
        swap,
        view,
        "usage_histogram",
        knobs=AssignmentKnobs,
    )
)
