"""The swap variants, in one registry: each is a module of this package (or of a plugin,
labkit.registry) that registers its swap, the parameters it adds to StyleConfig, the view its
notebook shows (a function beside its swap), and the decoder it needs. The ablation names
(`swap_<name>`), the choices of `labkit stylize --variant`, the demo's list and the dispatch of a
swap run all come from here.

A variant's `swap(cfg, content, style, context)` takes one layer's content and style feature
maps and returns a SwapResult; the run swaps every layer in `layers(cfg)` and hands the
decoder the swapped maps. `prepare(cfg, encoder, images)`, when a variant has one, computes
what its swap needs from the images first (the channel weights of channel_weighted).

The command line reads this registry for the parameters and the names: a variant module imports
torch, the swap and matplotlib inside its functions, not at its top.
"""

from ...registry import import_entries
from .variant import VARIANTS, Variant, by_ablation, knob_sets, register

__all__ = ["VARIANTS", "Variant", "by_ablation", "knob_sets", "register"]

# the built-in variants, in the order the demo and the docs list them; a module added here joins after them
import_entries(
    __name__,
    __path__,
    first=("argmax", "softmax", "frequency", "assignment", "channel_weighted", "gram", "multiscale", "multilayer"),
    skip=("variant",),
)
