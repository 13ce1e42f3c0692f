"""pix2pix's networks as the reference implementation defines them.

U-Net generator: each level down is LeakyReLU(0.2) -> conv k4 s2 -> BatchNorm, each level up
ReLU -> transposed conv k4 s2 -> BatchNorm, with skips; the outermost level has no norm
and ends in tanh; the innermost has no norm going down. Channels ngf, 2ngf, 4ngf, then 8ngf
for the remaining levels, of which all but the innermost (and the three 8ngf levels outside
it) carry dropout 0.5: at 256 px (8 levels) that is the reference unet_256.
PatchGAN: conv k4 s2 + LeakyReLU, two more s2 levels with BatchNorm, one s1 level, a 1-channel
s1 conv: 70 x 70 receptive field, 30 x 30 logits for a 256 input.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn


class UnetBlock(nn.Module):
    """One U-Net level: down, the inner levels, up, concatenated with the input (skip)."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)
        down_relu, up_relu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        down_norm, up_norm = nn.BatchNorm2d(inner_nc), nn.BatchNorm2d(outer_nc)
        if outermost:
            up = [up_relu, nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1), nn.Tanh()]
            layers = [down_conv, submodule, *up]
        elif innermost:
            up = [
                up_relu,
                nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=False),
                up_norm,
            ]
            layers = [down_relu, down_conv, *up]
        else:
            up = [
                up_relu,
                nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=False),
                up_norm,
            ]
            layers = [down_relu, down_conv, down_norm, submodule, *up] + ([nn.Dropout(0.5)] if dropout else [])
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """A U-Net of `num_downs` levels (default log2(image_size): down to 1 x 1). Level k halves
    the size into ngf * min(2^k, max_mult) channels; the levels between two max_mult-wide levels
    carry dropout (at max_mult 8: levels 4 .. num_downs - 2, the reference unet_256). Any input
    whose sides divide by 2^num_downs works (the part networks use rectangles)."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        image_size: int | None = None,
        ngf: int = 64,
        num_downs: int | None = None,
        max_mult: int = 8,
    ):
        super().__init__()
        if num_downs is None:
            num_downs = int(math.log2(image_size)) if image_size else 0
            if 2**num_downs != image_size or num_downs < 5:
                raise ValueError(f"image_size {image_size} must be a power of two >= 32")
        if num_downs < 2:
            raise ValueError("a U-Net needs at least 2 levels")
        inner = [ngf * min(2**k, max_mult) for k in range(num_downs)]
        block = UnetBlock(inner[-2], inner[-1], innermost=True)
        for k in range(num_downs - 2, 0, -1):
            block = UnetBlock(inner[k - 1], inner[k], submodule=block, dropout=inner[k - 1] == inner[k])
        self.model = UnetBlock(output_nc, inner[0], input_nc=input_nc, submodule=block, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers = [nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers += [nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def without_dropout(net: nn.Module) -> nn.Module:
    """The network with its dropout layers made identities, in place: upstream's --no_dropout
    (the same parameters; the generator becomes deterministic in training too)."""
    for name, child in net.named_children():
        if isinstance(child, nn.Dropout):
            setattr(net, name, nn.Identity())
        else:
            without_dropout(child)
    return net


@contextlib.contextmanager
def as_upstream_tests(net: nn.Module):
    """The network as pix2pix's and APDrawingGAN's test.py run it (the pix2pix paper's inference):
    dropout on and every BatchNorm normalising by the batch's own statistics, without updating
    (nor, under several processes, synchronising) the running statistics it keeps for training.
    The BatchNorm layers stay in eval mode with their running statistics set aside, which makes
    PyTorch normalise by the batch's; they are put back after."""
    net.eval()
    set_aside = []
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            set_aside.append((module, module.running_mean, module.running_var))
            module.running_mean = module.running_var = None
        elif isinstance(module, nn.modules.dropout._DropoutNd):
            module.train()
    try:
        yield net
    finally:
        for module, mean, var in set_aside:
            module.running_mean, module.running_var = mean, var
        net.eval()


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """N(0, 0.02) on conv weights, N(1, 0.02) on norm scales, zero biases (the reference init)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net
