"""Decoders that invert VGG19 features back to RGB [0, 1] images: mirrored VGG with
reflection padding and nearest-neighbour upsampling (as in AdaIN / Avatar-Net).

`relu3_1`            256 channels at 1/4 size -> image
`relu4_1`            512 channels at 1/8 size -> image
`relu4_1+relu3_1`    the relu4_1 decoder with an entrance that injects relu3_1 features after
                     its first upsampling (the journal's 10/11 decoder)
"""
from __future__ import annotations

import torch
from torch import nn

KINDS = ("relu3_1", "relu4_1", "relu4_1+relu3_1")


def _conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)] + ([nn.ReLU(inplace=True)] if relu else [])


def _tail() -> list[nn.Module]:
    """relu3_1 resolution (256 channels) down to the image."""
    return [*_conv(256, 128), nn.Upsample(scale_factor=2, mode="nearest"), *_conv(128, 128), *_conv(128, 64),
            nn.Upsample(scale_factor=2, mode="nearest"), *_conv(64, 64), *_conv(64, 3, relu=False)]


class Decoder(nn.Module):
    def __init__(self, kind: str = "relu4_1"):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"decoder kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.inputs = ("relu3_1",) if kind == "relu3_1" else ("relu4_1", "relu3_1") if "+" in kind else ("relu4_1",)
        if kind == "relu3_1":
            self.head = nn.Identity()
            self.body = nn.Sequential(*_tail())
        else:
            self.head = nn.Sequential(*_conv(512, 256), nn.Upsample(scale_factor=2, mode="nearest"))
            first = 512 if "+" in kind else 256  # the entrance: relu3_1 features joined here
            self.body = nn.Sequential(*_conv(first, 256), *_conv(256, 256), *_conv(256, 256), *_tail())

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.head(features[self.inputs[0]])
        if self.kind == "relu4_1+relu3_1":
            x = torch.cat([x, features["relu3_1"]], 1)
        return self.body(x)

