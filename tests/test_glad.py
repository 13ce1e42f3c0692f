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
