"""Decoders that invert VGG19 features back to RGB [0, 1] images: mirrored VGG with
reflection padding and nearest-neighbour upsampling (as in AdaIN / Avatar-Net).

`relu3_1`            256 channels at 1/4 size -> image
`relu4_1`            512 channels at 1/8 size -> image
`relu4_1+relu3_1`    the relu4_1 decoder with an entrance that injects relu3_1 features after
                     its first upsampling (the journal's 10/11 decoder)
`avatar`             Avatar-Net's hourglass decoder (LucasSheng/avatar-net, models/vgg_decoder.py,
                     vgg_combined_decoder from conv4_1): the relu4_1 decoder's layers, with AdaIN
                     to the relu3_1, relu2_1 and relu1_1 features before the convs that mirror
                     them, and a 7x7 output conv. Trained as an autoencoder (the skips are the
                     image's own features); when stylising, the skips are the style's.
"""

from __future__ import annotations

import torch
from torch import nn

KINDS = ("relu3_1", "relu4_1", "relu4_1+relu3_1", "avatar")
AVATAR_SKIPS = ("relu3_1", "relu2_1", "relu1_1")


def adain(x: torch.Tensor, skip: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """x with each channel's mean and std set to skip's (adaptive instance normalisation)."""
    mean, std = x.mean((2, 3), keepdim=True), (x.var((2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    skip_mean, skip_std = skip.mean((2, 3), keepdim=True), skip.var((2, 3), keepdim=True, unbiased=False).sqrt()
    return (x - mean) / std * skip_std + skip_mean


class Hourglass(nn.Module):
    """Avatar-Net's combined decoder from relu4_1: stages of (3x3 conv + ReLU)s, each upsampling
    stage starting with nearest x2, AdaIN to a skip feature before the conv of its layer."""

    def __init__(self):
        super().__init__()
        up = nn.Upsample(scale_factor=2, mode="nearest")
        self.stages = nn.ModuleList(
            [
                nn.Sequential(
                    *_conv(512, 256), up, *_conv(256, 256), *_conv(256, 256), *_conv(256, 256)
                ),  # conv4_1 .. conv3_2
                nn.Sequential(*_conv(256, 128), up, *_conv(128, 128)),  # conv3_1, conv2_2
                nn.Sequential(*_conv(128, 64), up, *_conv(64, 64)),  # conv2_1, conv1_2
                nn.Sequential(*_conv(64, 64), nn.ReflectionPad2d(3), nn.Conv2d(64, 3, 7)),
            ]
        )  # conv1_1, output

    def forward(self, features: dict[str, torch.Tensor], skips: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.stages[0](features["relu4_1"])
        for stage, layer in zip(self.stages[1:], AVATAR_SKIPS):
            x = stage(adain(x, skips[layer]))
        return x


def _conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)] + ([nn.ReLU(inplace=True)] if relu else [])


def _tail() -> list[nn.Module]:
    """relu3_1 resolution (256 channels) down to the image."""
    return [
        *_conv(256, 128),
        nn.Upsample(scale_factor=2, mode="nearest"),
        *_conv(128, 128),
        *_conv(128, 64),
        nn.Upsample(scale_factor=2, mode="nearest"),
        *_conv(64, 64),
        *_conv(64, 3, relu=False),
    ]


class Decoder(nn.Module):
    def __init__(self, kind: str = "relu4_1"):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"decoder kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.inputs = (
            ("relu3_1",)
            if kind == "relu3_1"
            else ("relu4_1", "relu3_1")
            if "+" in kind
            else ("relu4_1", *AVATAR_SKIPS)
            if kind == "avatar"
            else ("relu4_1",)
        )
        if kind == "avatar":
            self.hourglass = Hourglass()
        elif kind == "relu3_1":
            self.head = nn.Identity()
            self.body = nn.Sequential(*_tail())
        else:
            self.head = nn.Sequential(*_conv(512, 256), nn.Upsample(scale_factor=2, mode="nearest"))
            first = 512 if "+" in kind else 256  # the entrance: relu3_1 features joined here
            self.body = nn.Sequential(*_conv(first, 256), *_conv(256, 256), *_conv(256, 256), *_tail())

    def forward(self, features: dict[str, torch.Tensor], style: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The image of features; `style`, when stylising, gives the avatar decoder's skips
        (the other kinds read only features)."""
        if self.kind == "avatar":
            return self.hourglass(features, style if style is not None else features)
        x = self.head(features[self.inputs[0]])
        if self.kind == "relu4_1+relu3_1":
            x = torch.cat([x, features["relu3_1"]], 1)
        return self.body(x)
