"""Displacement fields: what an alignment returns, and how images are warped by one.

A field `u` is a float32 array (H, W, 2) of (dx, dy) in pixels, defined on the photo's pixel
grid and read backwards: the warped sketch at photo pixel p is the sketch at p + u(p),
y'(p) = y(p + u(p)). Pixel (row i, column j) sits at the point (x=j, y=i). Backward fields
warp without holes, and a sketch and its parsing map warp with the same field (bilinear for
the one, nearest for the other).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def identity_grid(height: int, width: int) -> np.ndarray:
    """(H, W, 2): each pixel's own (x, y)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([xs, ys], -1)


def affine_field(matrix: np.ndarray, offset: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The field of the map p -> matrix @ p + offset (photo point to sketch point)."""
    p = identity_grid(*shape)
    return (p @ np.asarray(matrix, np.float32).T + np.asarray(offset, np.float32) - p).astype(np.float32)


def sample(image: torch.Tensor, field: torch.Tensor, mode: str = "bilinear", stride: int = 1) -> torch.Tensor:
    """image (N, C, H, W) read at p + field(p), field (1, 2, H, W) in px; borders repeat; with a
    stride, only at every stride-th pixel of each axis (p = (0, 0), (0, stride), ...).
    Differentiable in the field (the dense fit optimises through it)."""
    field = field[..., ::stride, ::stride]
    h, w = field.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=field.dtype) * stride, torch.arange(w, dtype=field.dtype) * stride, indexing="ij"
    )
    x = (xs + field[0, 0]) * (2 / max(image.shape[-1] - 1, 1)) - 1
    y = (ys + field[0, 1]) * (2 / max(image.shape[-2] - 1, 1)) - 1
    grid = torch.stack([x, y], -1)[None].expand(image.shape[0], -1, -1, -1).to(image.dtype)
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)


def as_tensor(field: np.ndarray) -> torch.Tensor:
    """(H, W, 2) array -> (1, 2, H, W) tensor, as `sample` takes it."""
    return torch.from_numpy(np.ascontiguousarray(field.transpose(2, 0, 1), dtype=np.float32))[None]


def as_array(field: torch.Tensor) -> np.ndarray:
    return field[0].detach().numpy().transpose(1, 2, 0).astype(np.float32)


def warp(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """An image (H, W) or (H, W, C) warped by the field, bilinear; the same dtype back."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    x = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]
    out = sample(x, as_tensor(field))[0]
    out = out[0] if image.ndim == 2 else out.permute(1, 2, 0)
    out = out.numpy()
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(image.dtype)


def warp_labels(labels: np.ndarray, field: np.ndarray) -> np.ndarray:
    """A label map warped by the field, nearest neighbour (labels are never blended)."""
    x = torch.from_numpy(labels.astype(np.float32))[None, None]
    return sample(x, as_tensor(field), "nearest")[0, 0].numpy().round().astype(labels.dtype)


def invert(field: np.ndarray, iterations: int = 60) -> np.ndarray:
    """The field v that undoes `field`: warping by `field`, then by v, gives the image back.
    Fixed-point iteration v(p) = -field(p + v(p)), which converges for smooth fields whose
    map is one-to-one (|grad field| < 1)."""
    source = as_tensor(field)
    inverse = -source
    for _ in range(iterations):
        inverse = -sample(source, inverse)
    return as_array(inverse)


def jacobian_determinant(field: np.ndarray) -> np.ndarray:
    """det(I + grad u) per pixel: above 0 everywhere means the warp folds nowhere."""
    dux_dy, dux_dx = np.gradient(field[..., 0])
    duy_dy, duy_dx = np.gradient(field[..., 1])
    return (1 + dux_dx) * (1 + duy_dy) - dux_dy * duy_dx


def end_point_error(field: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None) -> float:
    """Mean distance in pixels between two fields (over `where` when given)."""
    error = np.linalg.norm(field - truth, axis=-1)
    return float(error[where].mean() if where is not None else error.mean())
