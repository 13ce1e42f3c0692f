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
    # whether the generator minimises it when it is on; otherwise it is computed and logged only
    # (as upstream logs a term whose gradient is zero)
    trains: Callable[[object], bool] = lambda cfg: True


TERMS: Registry[Term] = Registry("loss term", "labkit.terms")
register = TERMS.register


def active(cfg) -> list[Term]:
    """The terms of this config's objective, in their order."""
    return [term for term in TERMS if term.on(cfg)]


def generator_terms(step: GeneratorStep) -> dict:
    """The generator's loss terms that are on, weighted, by name; a logged-only term's without a
    gradient."""
    import torch

    out = {}
    for term in active(step.cfg):
        if term.trains(step.cfg):
            out[term.name] = term.compute(step)
        else:
            with torch.no_grad():
                out[term.name] = term.compute(step)
    return out


def generator_loss(cfg, terms: dict):
    """What the generator minimises: the sum of the terms that train."""
    return sum(terms[term.name] for term in active(cfg) if term.trains(cfg))


def loss_formula(cfg) -> str:
    """The generator's objective with its weights, as the compare table prints it; a term that is
    logged only is named after it, in brackets."""
    trained = " + ".join(term.formula(cfg) for term in active(cfg) if term.trains(cfg))
    logged = ", ".join(term.formula(cfg) for term in active(cfg) if not term.trains(cfg))
    return trained + (f" [logged: {logged}]" if logged else "")


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
