"""VGG19 encoder with an explicit input convention, and a check that what it is fed fits it.

Every image in the lab is RGB in [0, 1]; `encoder.preprocess` converts it to the network's
convention:
  torchvision  RGB in [0, 1], minus the ImageNet mean, divided by its std (torchvision's VGG19)
  caffe        0-255, minus the mean (103.939, 116.779, 123.68 in BGR), channel order 'bgr'
               or 'rgb' (the original Caffe VGG, as Chen & Schmidt and Avatar-Net use it)
Feeding the wrong range (0-1 to a network that expects about ±127 cost the user weeks of
dull colours) makes `forward` warn loudly with what it saw and what it expected.
"""
from __future__ import annotations

import warnings

import torch
import torchvision
from torch import nn

from ..weights import ensure

VGG19_URL = torchvision.models.VGG19_Weights.IMAGENET1K_V1.url
LAYERS = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "conv5_1": 28, "relu5_1": 29}
CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "conv5_1": 512, "relu5_1": 512}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class InputRangeWarning(UserWarning):
    pass


class VGGEncoder(nn.Module):
    def __init__(self, weights: str = "imagenet", convention: str = "torchvision", channel_order: str = "bgr",
                 last: str = "relu4_1", seed: int = 0):
        super().__init__()
        if convention not in ("torchvision", "caffe"):
            raise ValueError(f"convention must be 'torchvision' or 'caffe', got {convention!r}")
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        self.convention, self.channel_order, self.weights = convention, channel_order, weights
        vgg = torchvision.models.vgg19(weights=None)
        if weights == "imagenet":
            vgg.load_state_dict(torch.load(ensure(VGG19_URL, "VGG19 (torchvision)", "Or set vgg_weights to "
                                                  "'random-init' for a smoke run."), map_location="cpu"))
        elif weights == "random-init":
            generator = torch.Generator().manual_seed(seed)
            for m in vgg.features:
                if isinstance(m, nn.Conv2d):  # Kaiming: activations keep their scale through 16 layers
                    m.weight.data = torch.randn(m.weight.shape, generator=generator) * (2.0 / m.weight[0].numel()) ** 0.5
                    m.bias.data.zero_()
        else:  # a state dict file of torchvision's VGG19 layout (e.g. Caffe weights converted)
            state = torch.load(weights, map_location="cpu")
            vgg.load_state_dict(state if "features.0.weight" in state else {f"features.{k}": v for k, v in state.items()},
                                strict=False)
        self.features = vgg.features[:LAYERS[last] + 1].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.last = last
        mean = IMAGENET_MEAN if convention == "torchvision" else CAFFE_MEAN_BGR[::-1]  # RGB order
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self._warned = False

    def preprocess(self, rgb01: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] images -> this network's input convention."""
        if self.convention == "torchvision":
            return (rgb01 - self.mean) / self.std
        x = rgb01 * 255.0 - self.mean
        return x.flip(1) if self.channel_order == "bgr" else x

    def check_range(self, x: torch.Tensor) -> str | None:
        """What is wrong with the input's range for this convention, or None."""
        top, low = float(x.detach().abs().amax()), float(x.detach().amin())
        if self.convention == "caffe" and top <= 3.0:
            return (f"input spans at most ±{top:.2f} but this VGG expects the caffe convention (0-255 minus the mean, "
                    "about ±127): colours will come out dull. Pass RGB [0, 1] images through encoder.preprocess().")
        if self.convention == "torchvision" and top > 10.0:
            return (f"input reaches {top:.1f} but this VGG expects the torchvision convention (ImageNet-normalised, "
                    "about -2..2.7): it looks like 0-255 data. Pass RGB [0, 1] images through encoder.preprocess().")
        if self.convention == "torchvision" and low >= 0.0 and top <= 1.0:
            return ("input is all in [0, 1]: raw RGB, not ImageNet-normalised as this VGG expects. "
                    "Pass it through encoder.preprocess().")
        return None

    def forward(self, x: torch.Tensor, layers=("relu4_1",), check: bool = True) -> dict[str, torch.Tensor]:
        """Features of x, already in this network's convention; x's range is checked unless the
        caller converted it itself (encode)."""
        problem = self.check_range(x) if check else None
        if problem and not self._warned:
            warnings.warn("\n" + "!" * 78 + f"\nVGG INPUT RANGE: {problem}\n" + "!" * 78, InputRangeWarning, stacklevel=2)
            self._warned = True
        wanted = {LAYERS[name]: name for name in layers}
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
            if len(out) == len(wanted):
                break
        return out

    def encode(self, rgb01: torch.Tensor, layers=("relu4_1",)) -> dict[str, torch.Tensor]:
        """Features of RGB [0, 1] images (a decoder's output may stray outside while it trains)."""
        return self(self.preprocess(rgb01), layers, check=False)
