"""A loss term of the generator's objective, and the registry of them (see labkit.terms)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..registry import Registry


@dataclass
class GeneratorStep:
    """What a term is computed from: the config, the model (its discriminators), the batch and
    the generator's outputs on it."""

    cfg: object
    model: object
    photo: object
    sketch: object
    out: dict

    @property
    def fake(self):
        return self.out["fake"]


@dataclass(frozen=True)
class Term:
    name: str
    on: Callable[[object], bool]
    compute: Callable[[GeneratorStep], object]
    formula: Callable[[object], str]
    knobs: type | None = None
    view: Callable | None = None


TERMS: Registry[Term] = Registry("loss term", "labkit.terms")
register = TERMS.register


def active(cfg) -> list[Term]:
    """The terms of this config's objective, in their order."""
    return [term for term in TERMS if term.on(cfg)]


def generator_terms(step: GeneratorStep) -> dict:
    """The generator's loss terms, weighted, by name; their sum is what it minimises."""
    return {term.name: term.compute(step) for term in active(step.cfg)}


def loss_formula(cfg) -> str:
    """The generator's objective with its weights, as the compare table prints it."""
    return " + ".join(term.formula(cfg) for term in active(cfg))


def knob_sets() -> list[type]:
    """The parameter sets the terms add to SketchConfig."""
    return [term.knobs for term in TERMS if term.knobs is not None]


def log_sample_view(result, draw: Callable, key: str, title: str) -> None:
    """A view of the final model on the run's sample faces: draw(outputs, real sketches, names)
    -> RGB array, logged under key and shown."""
    s = result.samples
    result.log_view(draw(result.sample_outputs(), s["sketch"], s["names"]), key, title)


def show_views(result) -> None:
    """The views of the terms in the run's objective, each logged to the run and shown."""
    for term in active(result.cfg):
        if term.view is not None:
            term.view(result)
