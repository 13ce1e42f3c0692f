"""How +local's outputs meet the global U-Net's: the `fusion` variants.

combiner   APDrawingGAN's fusion net (upstream `combiner`): 7x7 conv, two residual blocks with
           Dropout 0.5, 7x7 conv, tanh, on cat(global output, composite of the local outputs)
blend      the same trunk predicts a soft mask m (sigmoid); fused = m * composite + (1 - m) * global
attention  the same trunk predicts one logit per source (the global output and each of the six
           local outputs on the canvas); a per-pixel softmax over the sources present there
           weighs them: fused = sum_k w_k * source_k
none       the global output alone, from a global U-Net widened to the parameter count of the
           combiner model (the control: what the local networks add beyond their parameters)
"""

from __future__ import annotations

import torch
from torch import nn

FUSIONS = ("combiner", "blend", "attention", "none")  # SketchConfig.fusion's choices


class ResidualBlock(nn.Module):
    """Upstream's ResnetBlock with reflect padding, BatchNorm and dropout."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return x + self.body(x)


def trunk(input_nc: int, output_nc: int, ngf: int) -> list[nn.Module]:
    """Upstream's `combiner` (n_blocks 2) up to its last conv, which gives output_nc channels."""
    return [
        nn.ReflectionPad2d(3),
        nn.Conv2d(input_nc, ngf, 7, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        ResidualBlock(ngf),
        ResidualBlock(ngf),
        nn.ReflectionPad2d(3),
        nn.Conv2d(ngf, output_nc, 7),
    ]


class Combiner(nn.Module):
    needs_sources = False  # reads the composite only, not the outputs one by one

    def __init__(self, channels: int, ngf: int = 64):
        super().__init__()
        self.model = nn.Sequential(*trunk(2 * channels, channels, ngf), nn.Tanh())

    def forward(self, global_out: torch.Tensor, composite: torch.Tensor, sources=None) -> dict:
        return {"fake": self.model(torch.cat([global_out, composite], 1))}


class Blend(nn.Module):
    needs_sources = False

    def __init__(self, channels: int, ngf: int = 64):
        super().__init__()
        self.model = nn.Sequential(*trunk(2 * channels, 1, ngf), nn.Sigmoid())

    def forward(self, global_out: torch.Tensor, composite: torch.Tensor, sources=None) -> dict:
        mask = self.model(torch.cat([global_out, composite], 1))
        return {"fake": mask * composite + (1 - mask) * global_out, "weights": {"local": mask}}


class Attention(nn.Module):
    needs_sources = True

    def __init__(self, channels: int, ngf: int = 64, n_sources: int = 7):
        super().__init__()
        self.model = nn.Sequential(*trunk(2 * channels, n_sources, ngf))

    def forward(self, global_out: torch.Tensor, composite: torch.Tensor, sources: dict) -> dict:
        """sources: {name: (output on the canvas, 0/1 where it exists)}, the global output first."""
        logits = self.model(torch.cat([global_out, composite], 1)).float()
        present = torch.cat([where for _, where in sources.values()], 1) > 0
        weights = torch.softmax(logits.masked_fill(~present, float("-inf")), 1)
        stacked = torch.stack([out.float() for out, _ in sources.values()], 1)  # (N, K, C, H, W)
        fake = (weights[:, :, None] * stacked).sum(1).to(global_out.dtype)
        return {"fake": fake, "weights": dict(zip(sources, weights.unbind(1)))}


def fusion_net(kind: str, channels: int, ngf: int) -> nn.Module | None:
    if kind not in FUSIONS:
        raise ValueError(f"unknown fusion '{kind}'; one of {', '.join(FUSIONS)}")
    return (
        {"combiner": Combiner, "blend": Blend, "attention": Attention}[kind](channels, ngf) if kind != "none" else None
    )
