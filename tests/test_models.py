import math

import pytest
import torch

from labkit.losses import gan_loss
from labkit.models import PatchDiscriminator, UnetGenerator, init_weights


@pytest.mark.parametrize("size", [32, 64, 128, 256])
@pytest.mark.parametrize("out_channels", [1, 3])
def test_unet_shapes_and_depth(size, out_channels):
    net = UnetGenerator(3, out_channels, size, ngf=4).eval()
    out = net(torch.randn(1, 3, size, size))
    assert out.shape == (1, out_channels, size, size)
    assert out.abs().max() <= 1  # tanh
    downs = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    assert downs == int(math.log2(size))  # halved down to 1 x 1
    dropouts = sum(isinstance(m, torch.nn.Dropout) for m in net.modules())
    assert dropouts == int(math.log2(size)) - 5  # three at 256, as unet_256


def test_unet_refuses_sizes_it_cannot_halve():
    with pytest.raises(ValueError):
        UnetGenerator(3, 1, 48)


@pytest.mark.parametrize("size,logits", [(256, 30), (128, 14), (64, 6)])
def test_patchgan_output(size, logits):
    d = PatchDiscriminator(4, ndf=8)
    assert d(torch.randn(2, 4, size, size)).shape == (2, 1, logits, logits)


def test_patchgan_receptive_field_is_70():
    d = PatchDiscriminator(1, ndf=4)
    init_weights(d)
    x = torch.zeros(1, 1, 256, 256, requires_grad=True)
    d.eval()(x)[0, 0, 15, 15].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    assert rows.max() - rows.min() + 1 == 70


def test_init_is_normal_0_02():
    net = init_weights(UnetGenerator(3, 1, 32, ngf=16))
    weights = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.002


def test_gan_loss_values():
    zero = torch.zeros(2, 1, 3, 3)
    assert torch.isclose(gan_loss(zero, True), torch.tensor(math.log(2)))
    assert gan_loss(torch.full((1, 1, 2, 2), 20.0), True) < 1e-6
    assert gan_loss(torch.full((1, 1, 2, 2), 20.0), False) > 19
