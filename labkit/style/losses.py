"""Losses and measures of a stylised image (pure functions of tensors)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gram(features: torch.Tensor) -> torch.Tensor:
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def style_loss(out_feats: dict, style_feats: dict) -> torch.Tensor:
    """Sum over layers of the squared Gram difference (style means over the batch if it differs)."""
    total = 0.0
    for name, f in out_feats.items():
        g_style = gram(style_feats[name])
        if g_style.shape[0] != f.shape[0]:
            g_style = g_style.mean(0, keepdim=True)
        total = total + F.mse_loss(gram(f), g_style.expand_as(gram(f)))
    return total


def adain_loss(out_feats: dict, target_feats: dict) -> torch.Tensor:
    """Channel mean and std of the output's features against the target's (AdaIN's style loss)."""
    total = 0.0
    for name, f in out_feats.items():
        t = target_feats[name]
        total = total + F.mse_loss(f.mean((2, 3)), t.mean((2, 3))) + F.mse_loss(f.std((2, 3)), t.std((2, 3)))
    return total


def tv(img: torch.Tensor) -> torch.Tensor:
    return (img[..., 1:, :] - img[..., :-1, :]).abs().mean() + (img[..., :, 1:] - img[..., :, :-1]).abs().mean()
