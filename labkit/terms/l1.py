"""pix2pix's L1 term: lambda_l1 x |generated - real sketch|."""

from dataclasses import dataclass

from ..knobs import knob
from .term import GeneratorStep, Term, register


@dataclass(frozen=True)
class L1Knobs:
    lambda_l1: float = knob(100.0, at_least=0)


def compute(step: GeneratorStep):
    from ..losses import l1

    return step.cfg.lambda_l1 * l1(step.fake, step.sketch)


register(Term("G_L1", on=lambda cfg: True, compute=compute, formula=lambda cfg: f"{cfg.lambda_l1:g}·L1", knobs=L1Knobs))
