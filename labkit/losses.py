"""Loss terms (pure functions of tensors)."""

from __future__ import annotations

import math

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
    return [
        y[..., :-1, 1:] - y[..., :-1, :-1],
        y[..., 1:, :-1] - y[..., :-1, :-1],
        y[..., 1:, 1:] - y[..., :-1, :-1],
        y[..., 1:, :-1] - y[..., :-1, 1:],
    ]


def glad(
    fake: torch.Tensor, real: torch.Tensor, mode: str = "components", norm: str = "l1", eps: float = 1e-6
) -> torch.Tensor:
    """Generalized gradient loss on the luminance Y of both images.

    components:  1/4 * sum_d mean_p rho(D_d Y_fake(p) - D_d Y_real(p))
    magnitude:   mean_p rho(|D Y_fake|(p) - |D Y_real|(p)),  |D Y| = sqrt(sum_d (D_d Y)^2 + eps)
    spsr:        mean_p rho(G(fake)(p) - G(real)(p)), G the gradient map of SPSR (Ma et al., CVPR
                 2020, its gradient loss): spsr_gradient, per channel
    with D_d the forward differences in the four directions (horizontal, vertical, both
    diagonals) and rho(t) = |t| (norm 'l1', SPSR's) or t^2 (norm 'l2').
    """
    rho = torch.abs if norm == "l1" else torch.square
    if mode == "spsr":
        return rho(spsr_gradient(fake) - spsr_gradient(real)).mean()
    gf, gr = directional_gradients(luminance(fake)), directional_gradients(luminance(real))
    if mode == "components":
        return sum(rho(a - b).mean() for a, b in zip(gf, gr)) / len(gf)
    magnitude = lambda grads: torch.sqrt(sum(g * g for g in grads) + eps)  # noqa: E731
    return rho(magnitude(gf) - magnitude(gr)).mean()


def spsr_gradient(img: torch.Tensor) -> torch.Tensor:
    """SPSR's gradient map (its Get_gradient_nopadding): per channel, central differences with
    zero padding, h = x(i, j+1) - x(i, j-1) and v = x(i+1, j) - x(i-1, j), and the magnitude
    sqrt(h^2 + v^2 + 1e-6)."""
    padded = F.pad(img, (1, 1, 1, 1))
    h = padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]
    v = padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]
    return torch.sqrt(h * h + v * v + 1e-6)


# APDrawingGAN's distance-transform loss. A sketch pixel is dark (a stroke) below mid grey, x < 0 in
# [-1, 1], as upstream's masks (real_B_gray < 0) and its cv2 threshold at 127 of 255 have it.
CHAMFER_SOFTNESS = 0.1  # intensity: the width of the soft threshold that carries the gradient
CHAMFER_TEMPERATURE = 8.0  # px^2: the soft-min's; a light pixel then costs 80 px^2, as if 9 px from the stroke
# px: every soft cost is below T (1 / softness + 1) (softplus of a pixel in [-1, 1]), so a pixel further than
# this weighs under e^-30 of the nearest in the soft-min
CHAMFER_REACH = math.ceil(math.sqrt(CHAMFER_TEMPERATURE * (1 / CHAMFER_SOFTNESS + 31)))


def squared_distance(cost: torch.Tensor, temperature: float = 0.0, reach: int = 0) -> torch.Tensor:
    """min over pixels q of |p - q|^2 + cost(q), at every pixel p of (N, H, W) costs, in px^2: the
    squared Euclidean distance transform where cost is 0 on the targets and large elsewhere. Exact,
    in Felzenszwalb and Huttenlocher's separable form (a min along the rows, then along the columns);
    with a temperature T > 0 each min is the soft-min -T log sum exp(-(.)/T), smooth in the cost.
    reach > 0 looks only that many px along each axis (enough where every cost is below reach^2
    minus a margin); memory: N * H * W * (2 reach + 1, or else max(H, W)) values a pass."""
    for dim in (-1, -2):
        line = cost.movedim(dim, -1)
        n = line.shape[-1]
        if 0 < reach < n:
            far = float(cost.shape[-2] ** 2 + cost.shape[-1] ** 2 + reach**2)
            candidates = F.pad(line, (reach, reach), value=far).unfold(-1, 2 * reach + 1, 1)  # (..., n, window)
            offsets = torch.arange(-reach, reach + 1, device=cost.device, dtype=cost.dtype) ** 2
        else:
            at = torch.arange(n, device=cost.device, dtype=cost.dtype)
            candidates, offsets = line.unsqueeze(-2), (at[:, None] - at[None, :]) ** 2  # (to, from)
        total = candidates + offsets
        least = total.amin(-1) if temperature == 0 else -temperature * torch.logsumexp(-total / temperature, -1)
        cost = least.movedim(-1, dim)
    return cost


def stroke_distance(image: torch.Tensor, dark: bool) -> torch.Tensor:
    """The distance from every pixel of (N, H, W) grey images in [-1, 1] to the nearest dark pixel
    (dark) or light one, divided by its largest value in each image: upstream's dt1 / dt2 (cv2's
    distance transform over its max, 0 on the targets). The value is the exact Euclidean one of the
    thresholded image; the gradient is that of a soft-min over a soft threshold, so the generator
    learns where a stroke is missing or extra (upstream trains a network, netDT, for that gradient)."""
    side = 1.0 if dark else -1.0  # the targets: side * x < 0
    targets = side * image < 0 if dark else image >= 0
    far = float(image.shape[-2] ** 2 + image.shape[-1] ** 2)  # beyond any distance in the image
    with torch.no_grad():
        exact = squared_distance(torch.where(targets, 0.0, far).to(image.dtype)).sqrt()
        scale = exact.amax((-2, -1), keepdim=True).clamp_min(1.0)  # all targets: 0 everywhere
    if not (torch.is_grad_enabled() and image.requires_grad):  # the soft-min carries only the gradient
        return exact / scale
    soft_cost = CHAMFER_TEMPERATURE * F.softplus(side * image.clamp(-1, 1) / CHAMFER_SOFTNESS)  # -T log(soft share)
    soft = (squared_distance(soft_cost, CHAMFER_TEMPERATURE, CHAMFER_REACH).clamp_min(0) + 1e-3).sqrt()
    return (exact + (soft - soft.detach())) / scale  # the exact value, the soft gradient


def chamfer(fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """APDrawingGAN's distance-transform loss (its apdrawing_gan_model.backward_G), both directions
    of the chamfer distance between the luminances of two batches of sketches:

        d_CM(real, fake) = sum over real's dark pixels of fake's dark-distance (stroke_distance)
                         + sum over real's light pixels of fake's light-distance
        d_CM(fake, real) = the same over fake's pixels, with real's distances

    each over the batch size (sums over the pixels, as upstream: they grow with the image area).
    Upstream picks the pixels with pretrained line networks (netLine1 / 2) besides the threshold, and
    its second term selects them with a hard mask, so no gradient reaches the generator through it
    (it is logged only, as labkit.terms.chamfer does by default); here the threshold alone picks
    them, and fake's pixels are picked by a soft threshold in the gradient (the hard one in the
    value), so the second term can train too (chamfer2_trains)."""
    return chamfer_real_to_fake(fake, real), chamfer_fake_to_real(fake, real)


def chamfer_real_to_fake(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """d_CM(real, fake) of `chamfer`: real's pixels, charged by fake's distances."""
    f, r = luminance(fake.float())[:, 0], luminance(real.float())[:, 0]
    to_fake = torch.where(r < 0, stroke_distance(f, dark=True), stroke_distance(f, dark=False))
    return to_fake.sum() / f.shape[0]


def chamfer_fake_to_real(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """d_CM(fake, real) of `chamfer`: fake's pixels (a soft threshold in the gradient), charged by
    real's distances."""
    f, r = luminance(fake.float())[:, 0], luminance(real.float())[:, 0]
    with torch.no_grad():
        to_dark, to_light = stroke_distance(r, dark=True), stroke_distance(r, dark=False)
    soft = torch.sigmoid(-f / CHAMFER_SOFTNESS)
    fake_dark = (f < 0).to(f.dtype) + (soft - soft.detach())
    return (fake_dark * to_dark + (1 - fake_dark) * to_light).sum() / f.shape[0]
