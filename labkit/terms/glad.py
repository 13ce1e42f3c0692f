"""+glad: the generalized gradient loss (labkit.losses.glad) on the sketches' luminance; its view
shows the gradient maps of the real and the generated sketch and where they disagree."""

from dataclasses import dataclass

from .. import keys
from ..knobs import knob
from .term import GeneratorStep, Term, log_sample_view, register


@dataclass(frozen=True)
class GladKnobs:
    lambda_glad: float = knob(0.0, "weight of the gradient loss (0: off; 100 in +glad)", at_least=0)
    glad_mode: str = knob(
        "components",
        "components: signed differences in four directions (labkit's) | magnitude: their gradient "
        "magnitudes | spsr: SPSR's gradient loss (Ma et al. 2020: central differences, magnitudes, per channel)",
        choices=("components", "magnitude", "spsr"),
    )
    glad_norm: str = knob("l1", choices=("l1", "l2"))


def compute(step: GeneratorStep):
    from ..losses import glad

    cfg = step.cfg
    return cfg.lambda_glad * glad(step.fake.float(), step.sketch.float(), cfg.glad_mode, cfg.glad_norm)


def formula(cfg) -> str:
    variant = "" if (cfg.glad_mode, cfg.glad_norm) == ("components", "l1") else f"({cfg.glad_mode}, {cfg.glad_norm})"
    return f"{cfg.lambda_glad:g}·glad{variant}"


def view(result) -> None:
    from ..viz import glad_views

    log_sample_view(result, glad_views, keys.GLAD_VIEWS, "glad: gradient maps and gradient error")


register(
    Term("G_glad", on=lambda cfg: cfg.lambda_glad > 0, compute=compute, formula=formula, knobs=GladKnobs, view=view)
)
