"""Loss terms (pure functions of tensors)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Vanilla GAN loss (pix2pix's default): BCE with logits against all-real or all-fake."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def l1(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(fake, real)


def luminance(img: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luminance (ITU-R 601 weights) of a 1- or 3-channel image."""
    if img.shape[1] == 1:
        return img
    r, g, b = img[:, 0:1], img[:, 1:2], img[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def directional_gradients(y: torch.Tensor) -> list[torch.Tensor]:
    """Forward differences in four directions, cropped to a common (H - 1) x (W - 1) grid:
    horizontal, vertical, diagonal (down-right) and anti-diagonal (down-left)."""
    return [y[..., :-1, 1:] - y[..., :-1, :-1],
            y[..., 1:, :-1] - y[..., :-1, :-1],
            y[..., 1:, 1:] - y[..., :-1, :-1],
            y[..., 1:, :-1] - y[..., :-1, 1:]]


def glad(fake: torch.Tensor, real: torch.Tensor, mode: str = "components", norm: str = "l1",
         eps: float = 1e-6) -> torch.Tensor:
    """Generalized gradient loss on the luminance Y of both images.

    components:  1/4 * sum_d mean_p rho(D_d Y_fake(p) - D_d Y_real(p))
    magnitude:   mean_p rho(|D Y_fake|(p) - |D Y_real|(p)),  |D Y| = sqrt(sum_d (D_d Y)^2 + eps)
    with D_d the forward differences in the four directions (horizontal, vertical, both
    diagonals) and rho(t) = |t| (norm 'l1') or t^2 (norm 'l2').
    """
    rho = torch.abs if norm == "l1" else torch.square
    gf, gr = directional_gradients(luminance(fake)), directional_gradients(luminance(real))
    if mode == "components":
        return sum(rho(a - b).mean() for a, b in zip(gf, gr)) / len(gf)
    magnitude = lambda grads: torch.sqrt(sum(g * g for g in grads) + eps)  # noqa: E731
    return rho(magnitude(gf) - magnitude(gr)).mean()
