"""The generator's loss terms, in one registry: a face ablation is the set of terms its config
turns on. Each term is a module of this package (or of a plugin, labkit.registry) that registers:

- its name (its loss is logged as `loss_<name>`),
- when it is on for a config,
- how it is computed (weighted), from a GeneratorStep,
- its formula as text (the compare table and the docs print the sum of the formulas),
- the parameters it adds to SketchConfig (a frozen dataclass of knobs), and
- its view (a picture of the final model the ablation's notebook shows and logs), when it has one.

The generator's objective is the sum of the terms that are on, in the order they are
registered. A term module is read by the command line for its parameters: it imports torch and
the networks in the functions that compute, not at its top.
"""

from ..registry import import_entries
from .term import (
    TERMS,
    GeneratorStep,
    Term,
    active,
    generator_loss,
    generator_terms,
    knob_sets,
    loss_formula,
    register,
    show_views,
)

__all__ = [
    "TERMS",
    "GeneratorStep",
    "Term",
    "active",
    "generator_loss",
    "generator_terms",
    "knob_sets",
    "loss_formula",
    "register",
    "show_views",
]

# the built-in terms, the objective's first terms in its order; a module added here joins after them
import_entries(__name__, __path__, first=("adversarial", "l1", "glad", "local", "chamfer"), skip=("term",))
