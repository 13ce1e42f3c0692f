"""The generalized gradient loss on hand-made images with known gradients."""

import math

import pytest
import torch

from labkit.losses import directional_gradients, glad, luminance


def _edge(n=8, at=4):
    """-1 left of column `at`, +1 from it on: a vertical edge of height 2."""
    img = -torch.ones(1, 1, n, n)
    img[..., at:] = 1
    return img


def test_directional_gradients_of_a_vertical_edge():
    horizontal, vertical, diagonal, anti = directional_gradients(_edge())
    assert horizontal.shape == (1, 1, 7, 7)
    assert torch.equal(horizontal[0, 0, :, 3], torch.full((7,), 2.0)) and horizontal.abs().sum() == 14
    assert vertical.abs().sum() == 0
    assert diagonal.abs().sum() == 14 and anti.abs().sum() == 14 and anti.min() == -2


@pytest.mark.parametrize(
    "mode,norm,expected",
    [
        ("components", "l1", 3 / 14),  # (2/7 + 0 + 2/7 + 2/7) / 4
        ("components", "l2", 3 / 7),  # (4/7 + 0 + 4/7 + 4/7) / 4
        ("magnitude", "l1", math.sqrt(12) / 7),  # |D| = sqrt(4 + 0 + 4 + 4) on 7 of 49 pixels
    ],
)
def test_glad_values_against_a_flat_image(mode, norm, expected):
    flat = -torch.ones(1, 1, 8, 8)
    assert glad(_edge(), flat, mode, norm).item() == pytest.approx(expected, rel=1e-3)


def test_glad_ignores_brightness_and_sees_moved_edges():
    edge = _edge()
    assert glad(edge, edge).item() == 0
    assert glad(edge * 0.5 + 0.3, edge * 0.5).item() == pytest.approx(0, abs=1e-7)  # a constant offset
    assert glad(_edge(at=5), edge).item() > 0


def test_glad_works_on_luminance_and_has_gradients():
    rgb = torch.rand(2, 3, 16, 16, requires_grad=True)
    y = luminance(rgb)
    assert torch.allclose(y[:, 0], 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])
    loss = glad(rgb, torch.rand(2, 1, 16, 16))
    loss.backward()
    assert rgb.grad.abs().sum() > 0


def test_spsr_mode_is_spsrs_gradient_loss():
    """glad_mode spsr: SPSR's Get_gradient_nopadding (per channel, 3x3 central-difference kernels,
    zero padding, sqrt(v^2 + h^2 + 1e-6)) written as its convolutions, then L1 between the maps."""
    from labkit.losses import spsr_gradient

    kernel_v = torch.tensor([[0.0, -1, 0], [0, 0, 0], [0, 1, 0]])[None, None]
    kernel_h = torch.tensor([[0.0, 0, 0], [-1, 0, 1], [0, 0, 0]])[None, None]

    def spsr(x):
        maps = []
        for i in range(x.shape[1]):
            c = x[:, i : i + 1]
            v, h = (
                torch.nn.functional.conv2d(c, kernel_v, padding=1),
                torch.nn.functional.conv2d(c, kernel_h, padding=1),
            )
            maps.append(torch.sqrt(v.pow(2) + h.pow(2) + 1e-6))
        return torch.cat(maps, 1)

    fake, real = torch.rand(2, 3, 9, 11) * 2 - 1, torch.rand(2, 3, 9, 11) * 2 - 1
    assert torch.allclose(spsr_gradient(fake), spsr(fake), atol=1e-6)
    assert torch.allclose(glad(fake, real, "spsr"), (spsr(fake) - spsr(real)).abs().mean(), atol=1e-6)
    # magnitudes: an edge of the wrong polarity costs nothing, as in SPSR
    assert glad(_edge(), -_edge(), "spsr") < 1e-6 < glad(_edge(), -_edge(), "components")
