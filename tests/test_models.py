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


class _UpstreamUnetBlock(torch.nn.Module):
    """pix2pix's UnetSkipConnectionBlock (models/networks.py) with BatchNorm, written from reading
    it: the layout its saved generators (latest_net_G.pth) have."""

    def __init__(
        self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False, use_dropout=False
    ):
        super().__init__()
        nn = torch.nn
        self.outermost = outermost
        input_nc = input_nc or outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), nn.BatchNorm2d(inner_nc)
        uprelu, upnorm = nn.ReLU(True), nn.BatchNorm2d(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=False)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=False)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            model += [nn.Dropout(0.5)] if use_dropout else []
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def _upstream_unet(input_nc, output_nc, num_downs, ngf):
    """pix2pix's UnetGenerator (use_dropout: its default without --no_dropout)."""
    block = _UpstreamUnetBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        block = _UpstreamUnetBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=True)
    for outer, inner in ((4, 8), (2, 4), (1, 2)):
        block = _UpstreamUnetBlock(ngf * outer, ngf * inner, submodule=block)
    net = torch.nn.Module()
    net.model = _UpstreamUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)
    net.forward = lambda x: net.model(x)
    return net


def test_train_mode_inference_is_upstream_test_py(tiny_cfg):
    """pix2pix's test.py (and APDrawingGAN's) run the generator in train mode on one face at a time:
    with the same weights and faces, and dropout drawn from the same seed, labkit's `inference:
    train` gives the same sketches, and leaves the training's statistics and random state alone."""
    from labkit.train import Pix2Pix

    cfg = tiny_cfg(image_size=64, ngf=4, seed=3, precision="fp32")  # upstream computes in fp32
    model = Pix2Pix(cfg, torch.device("cpu"))
    model.G.train()
    for _ in range(3):  # running statistics that differ from any one face's
        model.G(torch.rand(4, 3, 64, 64) * 2 - 1)
    upstream = _upstream_unet(3, 1, 6, ngf=4)
    upstream.load_state_dict(model.G.state_dict())  # upstream's key names are labkit's
    photos = torch.rand(3, 3, 64, 64) * 2 - 1

    statistics, rng = {k: v.clone() for k, v in model.G.state_dict().items()}, torch.get_rng_state()
    ours = model.generate(photos, batch_size=16)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, statistics[k]) for k, v in model.G.state_dict().items())

    upstream.train()
    torch.manual_seed(cfg.seed)
    with torch.no_grad():
        theirs = torch.cat([upstream(photo[None]) for photo in photos])
    assert torch.equal(ours, theirs)
    assert torch.equal(model.generate(photos), ours)  # the same again: seeded
    eval_mode = Pix2Pix(cfg.__class__(**{**cfg.to_dict(), "inference": "eval"}), torch.device("cpu"))
    eval_mode.G.load_state_dict(model.G.state_dict())
    assert not torch.allclose(eval_mode.generate(photos), ours, atol=1e-3)  # running statistics, no dropout
