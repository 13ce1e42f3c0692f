"""APDrawingGAN's distance-transform (chamfer) loss: exact distances, upstream's formula, and a
gradient that draws the missing strokes and erases the extra ones."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from labkit.losses import chamfer, squared_distance, stroke_distance


def _blobs(n=2, h=40, w=56, seed=0):
    """Grey images in [-1, 1] with dark and light areas of many shapes."""
    noise = torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return (torch.nn.functional.avg_pool2d(noise, 5, 1, 2) * 3).clamp(-1, 1)


def _upstream_dt(gray: np.ndarray, dark: bool) -> np.ndarray:
    """Upstream's dt(): the distance to the nearest dark (or light) pixel over its maximum, with the
    exact Euclidean transform where upstream has cv2's 5x5-mask approximation of it."""
    targets = gray < 0 if dark else gray >= 0
    distance = ndimage.distance_transform_edt(~targets)
    return distance / distance.max()


def test_the_distance_is_the_exact_euclidean_one_over_its_maximum():
    images = _blobs()[:, 0]
    for dark in (True, False):
        expected = np.stack([_upstream_dt(im, dark) for im in images.numpy()])
        assert np.abs(stroke_distance(images, dark).numpy() - expected).max() < 1e-6
    blank = torch.ones(1, 9, 7)
    assert torch.equal(stroke_distance(blank, dark=False), torch.zeros_like(blank))  # every pixel a target
    assert torch.allclose(stroke_distance(blank, dark=True), torch.ones_like(blank))  # no target: all equally far


def test_a_window_of_reach_gives_the_full_soft_min_where_the_costs_are_small():
    cost = 8.0 * torch.nn.functional.softplus(_blobs()[:, 0] / 0.1)  # under 81 px^2
    full, banded = squared_distance(cost, 8.0), squared_distance(cost, 8.0, reach=19)
    assert (full - banded).abs().max() < 1e-4


def test_the_loss_is_upstreams_formula_on_three_channel_sketches():
    fake, real = _blobs(3, seed=1).repeat(1, 3, 1, 1), _blobs(3, seed=2).repeat(1, 3, 1, 1)
    fake[:, 0] = fake[:, 0] * 0.9  # channels that differ: the luminance is what is measured
    to_fake, to_real = chamfer(fake, real)
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    f, r = (fake * weights).sum(1).numpy(), (real * weights).sum(1).numpy()
    # apdrawing_gan_model.backward_G with the threshold for its line networks: sums over pixels, / batch size
    expected_to_fake = (
        sum(_upstream_dt(a, True)[b < 0].sum() + _upstream_dt(a, False)[b >= 0].sum() for a, b in zip(f, r)) / 3
    )
    expected_to_real = (
        sum(_upstream_dt(b, True)[a < 0].sum() + _upstream_dt(b, False)[a >= 0].sum() for a, b in zip(f, r)) / 3
    )
    assert to_fake.item() == pytest.approx(expected_to_fake, rel=1e-5)
    assert to_real.item() == pytest.approx(expected_to_real, rel=1e-5)
    same = chamfer(real, real)
    assert same[0].item() == same[1].item() == 0


def _strokes(h=48, w=48):
    sketch = torch.ones(1, 1, h, w)
    sketch[..., 10:12, 6:40] = -1
    sketch[..., 14:40, 30:32] = -1
    sketch[..., 30:33, 8:20] = -1
    return sketch


@pytest.mark.parametrize("start", ["blank", "noise"])
def test_descending_the_loss_alone_draws_the_sketch(start):
    """From a blank page (every stroke missing) or from noise (half the page dark: strokes to erase),
    the loss's gradient alone leads to the sketch's strokes."""
    target = _strokes()
    torch.manual_seed(0)
    logits = torch.full_like(target, 1.0) if start == "blank" else torch.randn_like(target)
    logits.requires_grad_()
    optimiser = torch.optim.Adam([logits], lr=0.05)
    first = None
    for _ in range(100):
        to_fake, to_real = chamfer(torch.tanh(logits), target)
        first = first or (to_fake + to_real).item()
        optimiser.zero_grad()
        (to_fake + to_real).backward()
        optimiser.step()
    drawn, wanted = torch.tanh(logits) < 0, target < 0
    assert first > 100 and (to_fake + to_real).item() < 0.01 * first
    assert (drawn & wanted).sum() / (drawn | wanted).sum() > 0.95


def test_both_directions_carry_a_gradient():
    """Upstream's d_CM(fake, real) picks fake's pixels with a hard mask and trains nothing; here it
    can (chamfer2_trains)."""
    fake = _blobs(1, seed=3).requires_grad_()
    for term in chamfer(fake, _strokes(40, 56)):
        fake.grad = None
        term.backward()
        assert fake.grad.abs().sum() > 0 and torch.isfinite(fake.grad).all()


def test_the_second_term_is_logged_not_trained_unless_asked(tiny_cfg):
    """As upstream, d_CM(fake, real) is logged and adds nothing to what the generator minimises;
    chamfer2_trains puts it in the objective."""
    from labkit.terms import GeneratorStep, generator_loss, generator_terms, loss_formula
    from labkit.train import Pix2Pix

    photo, real = _blobs(2, 32, 32, seed=5).expand(2, 3, 32, 32), _strokes(32, 32).expand(2, 1, 32, 32)
    for trains in (False, True):
        cfg = tiny_cfg(lambda_chamfer=0.1, lambda_chamfer2=0.1, chamfer2_trains=trains)
        fake = _blobs(2, 32, 32, seed=4).requires_grad_()
        terms = generator_terms(GeneratorStep(cfg, Pix2Pix(cfg, torch.device("cpu")), photo, real, {"fake": fake}))
        assert terms["G_chamfer2"].item() > 0 and terms["G_chamfer2"].requires_grad == trains
        others = terms["G_GAN"] + terms["G_L1"] + terms["G_chamfer"]
        assert torch.equal(generator_loss(cfg, terms), others + terms["G_chamfer2"] if trains else others)
    assert loss_formula(tiny_cfg(lambda_chamfer2=0.1)) == "GAN + 100·L1 [logged: 0.1·d_CM(fake, real)]"
    assert loss_formula(tiny_cfg(lambda_chamfer2=0.1, chamfer2_trains=True)) == "GAN + 100·L1 + 0.1·d_CM(fake, real)"
