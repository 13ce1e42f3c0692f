"""APDrawingGAN's distance-transform loss (labkit.losses.chamfer), one term per direction of the
chamfer distance: d_CM(real, fake) charges real strokes the generated sketch misses, d_CM(fake,
real) generated strokes the real one does not have. Its view shows both."""

from dataclasses import dataclass

from .. import keys
from ..knobs import knob
from .term import GeneratorStep, Term, log_sample_view, register


@dataclass(frozen=True)
class ChamferKnobs:
    lambda_chamfer: float = knob(
        0.0,
        "weight of the distance-transform loss d_CM(real, fake) (APDrawingGAN's "
        "lambda_chamfer: 0.1 in the local notebooks)",
        at_least=0,
    )
    lambda_chamfer2: float = knob(
        0.0, "weight of d_CM(fake, real) (upstream lambda_chamfer2: 0.1 in the local notebooks)", at_least=0
    )
    chamfer2_trains: bool = knob(
        False,
        "whether the generator minimises d_CM(fake, real); upstream picks fake's pixels with a hard mask, so "
        "the term has no gradient there and is only logged (false, as upstream)",
    )


def real_to_fake(step: GeneratorStep):
    from ..losses import chamfer_real_to_fake

    return step.cfg.lambda_chamfer * chamfer_real_to_fake(step.fake, step.sketch)


def fake_to_real(step: GeneratorStep):
    from ..losses import chamfer_fake_to_real

    return step.cfg.lambda_chamfer2 * chamfer_fake_to_real(step.fake, step.sketch)


def view(result) -> None:
    from ..viz import chamfer_views

    log_sample_view(result, chamfer_views, keys.CHAMFER_VIEWS, "distance-transform loss: missing and extra strokes")


register(
    Term(
        "G_chamfer",
        on=lambda cfg: cfg.lambda_chamfer > 0,
        compute=real_to_fake,
        formula=lambda cfg: f"{cfg.lambda_chamfer:g}·d_CM(real, fake)",
        knobs=ChamferKnobs,
        view=view,
    )
)
register(
    Term(
        "G_chamfer2",
        on=lambda cfg: cfg.lambda_chamfer2 > 0,
        compute=fake_to_real,
        formula=lambda cfg: f"{cfg.lambda_chamfer2:g}·d_CM(fake, real)",
        trains=lambda cfg: cfg.chamfer2_trains,
    )
)
