"""VGG19 encoder with an explicit input convention, and a check that what it is fed fits it.

Every image in the lab is RGB in [0, 1]; `encoder.preprocess` converts it to the network's
convention:
  torchvision  RGB in [0, 1], minus the ImageNet mean, divided by its std (torchvision's VGG19)
  caffe        0-255, minus the mean (103.939, 116.779, 123.68 in BGR), channel order 'bgr'
               or 'rgb' (the original Caffe VGG, as Chen & Schmidt and Avatar-Net use it)
Feeding the wrong range (0-1 to a network that expects about ±127 gives weeks of
dull colours) makes `forward` warn loudly with what it saw and what it expected.

Weights: `imagenet` (torchvision's file in the torch hub cache), `random-init` (Kaiming, for
smoke runs), `auto` (imagenet when the file can be had, else random-init, loudly), or a .pth
file in torchvision's layout (`features.N.weight`, or `N.weight`) or with Caffe's layer
names (`conv1_1.weight` ... `conv5_4.bias`). Anything else is refused with the keys it lacks
and the keys it should not have: a file that loads "with no error" but leaves the encoder
random is the silent failure this guards against.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn

from .. import keys
from ..console import banner
from ..weights import ensure_vgg19, kaiming_normal_, resolve_auto

LAYERS = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "conv5_1": 28, "relu5_1": 29}
CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "conv5_1": 512, "relu5_1": 512}
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")  # where style (Gram) losses are measured
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision's features index of each conv, under its Caffe name (block_conv)
CONV_INDEX = dict(
    zip(
        [f"conv{b}_{j}" for b, n in zip(range(1, 6), (2, 2, 4, 4, 4)) for j in range(1, n + 1)],
        (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34),
    )
)


class InputRangeWarning(UserWarning):
    pass


class WeightsMismatch(ValueError):
    """A weights file whose keys do not fit VGG19; the message lists what is missing and extra."""


def features_state(state: dict, source: str, needed: int) -> dict[str, torch.Tensor]:
    """The `features.*` tensors of a VGG19 state dict in any known layout, checked: every conv
    up to features index `needed` must be there, and no key may be foreign."""
    mapped, foreign = {}, []
    for key, value in state.items():
        if key.startswith("classifier."):
            continue  # a whole torchvision VGG19: its classifier is not used
        m = re.fullmatch(r"(?:features\.)?(\d+)\.(weight|bias)", key) or re.fullmatch(
            r"(conv\d_\d)\.(weight|bias)", key
        )
        index = (int(m.group(1)) if m.group(1).isdigit() else CONV_INDEX.get(m.group(1))) if m else None
        if index is None or index not in CONV_INDEX.values():
            foreign.append(key)
        else:
            mapped[f"features.{index}.{m.group(2)}"] = value
    wanted = [f"features.{i}.{p}" for i in CONV_INDEX.values() if i <= needed for p in ("weight", "bias")]
    missing = [k for k in wanted if k not in mapped]
    if foreign or missing:
        raise WeightsMismatch(
            f"{source}: not VGG19 weights in a layout the lab knows (torchvision's `features.N.weight`, or Caffe's "
            f"`conv1_1.weight`).\n  missing: {missing[:8] or 'none'}{' ...' if len(missing) > 8 else ''}"
            f"\n  unexpected: {foreign[:8] or 'none'}{' ...' if len(foreign) > 8 else ''}"
        )
    return mapped


class VGGEncoder(nn.Module):
    def __init__(
        self,
        weights: str = "imagenet",
        convention: str = "torchvision",
        channel_order: str = "bgr",
        last: str = "relu4_1",
        seed: int = 0,
    ):
        super().__init__()
        if convention not in ("torchvision", "caffe"):
            raise ValueError(f"convention must be 'torchvision' or 'caffe', got {convention!r}")
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        self.convention, self.channel_order, self.weights = convention, channel_order, weights
        # only the convolutions up to `last`: torchvision's whole VGG19 would also build (and
        # initialise, for seconds) a 120 M-parameter classifier that nothing here uses
        self.features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])[: LAYERS[last] + 1]
        if weights == "random-init":
            kaiming_normal_(self.features, seed)
        else:
            path = ensure_vgg19() if weights == "imagenet" else Path(weights).expanduser()
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # not a torch file, or one that carries code: refuse it, say which
                raise WeightsMismatch(f"{path}: cannot read it as a weights file ({exc})") from None
            if not isinstance(state, dict):
                raise WeightsMismatch(f"{path}: holds a {type(state).__name__}, not a state dict of VGG19 weights")
            mapped = features_state(state, str(path), LAYERS[last])
            self.features.load_state_dict(
                {
                    key.removeprefix("features."): value
                    for key, value in mapped.items()
                    if int(key.split(".")[1]) <= LAYERS[last]
                }
            )
        self.features.eval()
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
            return (
                f"input spans at most ±{top:.2f} but this VGG expects the caffe convention (0-255 minus the mean, "
                "about ±127): colours will come out dull. Pass RGB [0, 1] images through encoder.preprocess()."
            )
        if self.convention == "torchvision" and top > 10.0:
            return (
                f"input reaches {top:.1f} but this VGG expects the torchvision convention (ImageNet-normalised, "
                "about -2..2.7): it looks like 0-255 data. Pass RGB [0, 1] images through encoder.preprocess()."
            )
        if self.convention == "torchvision" and low >= 0.0 and top <= 1.0:
            return (
                "input is all in [0, 1]: raw RGB, not ImageNet-normalised as this VGG expects. "
                "Pass it through encoder.preprocess()."
            )
        return None

    def forward(self, x: torch.Tensor, layers=("relu4_1",), check: bool = True) -> dict[str, torch.Tensor]:
        """Features of x, already in this network's convention; x's range is checked unless the
        caller converted it itself (encode)."""
        problem = self.check_range(x) if check else None
        if problem and not self._warned:
            warnings.warn("\n" + banner("VGG INPUT RANGE", problem), InputRangeWarning, stacklevel=2)
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


def build_encoder(cfg, device: torch.device) -> VGGEncoder:
    """The VGG19 encoder of a style config; `auto` falls back to random-init, loudly."""
    weights = resolve_auto(cfg.vgg_weights, "imagenet", ensure_vgg19, "VGG19")
    encoder = VGGEncoder(weights, cfg.vgg_convention, cfg.channel_order, seed=cfg.seed)
    if weights == "imagenet" and cfg.vgg_convention == "caffe":
        warnings.warn(
            "torchvision's VGG19 weights were trained on the torchvision convention; with "
            "vgg_convention='caffe' load Caffe-converted weights (vgg_weights=FILE.pth)",
            stacklevel=2,
        )
    return encoder.to(device)


def encoder_tags(encoder: VGGEncoder) -> dict:
    """What a style run's features mean: random-init encoders are smoke runs."""
    return {
        keys.VGG_WEIGHTS: encoder.weights,
        "style.vgg_convention": encoder.convention,
        keys.VGG_COMPARABLE: "yes" if encoder.weights != "random-init" else "NO: random-init smoke encoder",
    }
