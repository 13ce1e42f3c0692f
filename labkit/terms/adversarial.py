"""The generator's adversarial term (pix2pix): fool the global PatchGAN on cat(photo, sketch)."""

from .term import GeneratorStep, Term, register


def compute(step: GeneratorStep):
    import torch

    from ..losses import gan_loss

    return gan_loss(step.model.D(torch.cat([step.photo, step.fake], 1)), True)


register(Term("G_GAN", on=lambda cfg: True, compute=compute, formula=lambda cfg: "GAN"))
