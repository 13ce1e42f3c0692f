"""+local: APDrawingGAN's local networks (labkit.models.local). Two terms: the L1 of the six local
outputs against the real sketch there, and the six local discriminators' adversarial losses
(only these with fusion `none`, which has no local outputs). Its view: each local network's
output, the composite, the global output and the fused result."""

from dataclasses import dataclass

from .. import keys
from ..knobs import knob
from .term import GeneratorStep, Term, register


@dataclass(frozen=True)
class LocalKnobs:
    local: bool = knob(
        False, "APDrawingGAN's six local networks (eyes, nose, mouth on the landmarks; hair, background)"
    )
    lambda_local: float = knob(25.0, "weight of the local networks' L1 (upstream lambda_local)", at_least=0)
    local_gan_weight: float = knob(
        0.25, "weight of each local discriminator's adversarial loss (upstream 0.25)", at_least=0
    )
    fusion: str = knob(
        "combiner",
        "how the local outputs meet the global one: combiner (APDrawingGAN's) | blend "
        "(learned soft mask) | attention (per-pixel softmax over the 7 outputs) | none (global output "
        "only, widened to the same parameter count)",
        choices=("combiner", "blend", "attention", "none"),
    )


def local_l1(step: GeneratorStep):
    from ..losses import l1
    from ..models.local import FACE_PARTS, REGIONS, crop, masked

    out, sketch = step.out, step.sketch
    return step.cfg.lambda_local * (
        sum(l1(out["parts"][p], crop(sketch, out["boxes"][p])) for p in FACE_PARTS)
        + sum(l1(out["regions"][r], masked(sketch, out["areas"][r])) for r in REGIONS)
    )


def local_gan(step: GeneratorStep):
    from ..losses import gan_loss
    from ..models.local import LOCAL_PARTS, local_pairs

    fake_parts = local_pairs(step.photo, step.fake, step.out)
    return step.cfg.local_gan_weight * sum(gan_loss(step.model.D_parts(p, fake_parts[p]), True) for p in LOCAL_PARTS)


def view(result) -> None:
    from ..viz import local_views

    s = result.samples
    result.log_view(
        local_views(result.sample_outputs(pieces=True), s["photo"], s["names"]),
        keys.LOCAL_VIEWS,
        "local: parts, composite, global, fused",
    )


register(
    Term(
        "G_local",
        on=lambda cfg: cfg.local and cfg.fusion != "none",
        compute=local_l1,
        formula=lambda cfg: f"{cfg.lambda_local:g}·Σ L1_local",
        knobs=LocalKnobs,
    )
)
register(
    Term(
        "G_GAN_parts",
        on=lambda cfg: cfg.local,
        compute=local_gan,
        formula=lambda cfg: f"{cfg.local_gan_weight:g}·Σ GAN_local",
        view=view,
    )
)
