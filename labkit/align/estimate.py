"""Estimating the warp T between a photo's parsing map Px and its sketch's Py, Px = T(Py),
without training anything. Three ways (`align_mode`), each returning a field (labkit.align.fields):

`global`   one similarity or affine transform for the whole face, fitted by robust least
           squares to the regions' centroids and second moments (regions missing on one side
           are left out of the fit).
`regions`  one transform per region, each fitted to its own moments and pulled towards the
           global one (a small region's moments leave a rotation open); blended by a
           partition of unity: every photo pixel belongs to one region (or to the rest, which
           takes the global transform) and the indicator maps, smoothed by a Gaussian of
           `smoothness` px, sum to one everywhere. The blend is widened until it folds nowhere.
`dense`    a free-form field on top of `regions`: control points every `smoothness` px,
           interpolated bicubically, moved by L-BFGS to minimise the mismatch of the label
           maps (each label a channel) plus a bending penalty, stiffened until it folds nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.optimize import least_squares

from .fields import affine_field, as_array, as_tensor, jacobian_determinant, sample
from .regions import PARTS, Region, match, regions

MODES = ("global", "regions", "dense")
TRANSFORMS = ("affine", "similarity")
SMOOTHNESS = 6.0  # px; the lab's default is SketchConfig.align_smoothness
PRIOR_WEIGHT = 0.1  # how strongly a region's transform is pulled towards the global one
MIN_JACOBIAN = 0.2  # the smallest local area ratio a warp may have (0 would be a fold)
# dense: the weight of the control points' roughness against the label mismatch; on the
# synthetic set's deformations (misalign 4) 0.002 left the least end-point error (0.01 and
# above over-smooth, 0.0003 follows the labels' noise)
DENSE_BENDING = 0.002
# The dense fit compares the label maps at every second pixel of each axis: the field is smooth
# (bicubic between control points 6 px apart) and the maps are blurred by 1.5 px, so a 2 px pitch
# sees the same boundaries at a quarter of the sampling. On 8 faces misaligned by 4 px: end-point
# error 0.518 -> 0.519 px, region IoU 0.9852 -> 0.9854, a fifth less CPU time.
DENSE_STRIDE = 2


@dataclass
class Alignment:
    field: np.ndarray  # (H, W, 2), labkit.align.fields' convention
    mode: str
    matrix: np.ndarray  # the global transform: photo point -> sketch point
    offset: np.ndarray
    regions: int  # regions paired between the two maps
    smoothness: float  # as used (regions widens it where the blend would fold)
    notes: list[str] = field(default_factory=list)


def _unpack(params: np.ndarray, transform: str) -> tuple[np.ndarray, np.ndarray]:
    if transform == "affine":
        return params[:4].reshape(2, 2), params[4:6]
    a, b = params[:2]
    return np.array([[a, -b], [b, a]]), params[2:4]


def _pack(matrix: np.ndarray, offset: np.ndarray, transform: str) -> np.ndarray:
    if transform == "affine":
        return np.concatenate([matrix.ravel(), offset])
    return np.array([(matrix[0, 0] + matrix[1, 1]) / 2, (matrix[1, 0] - matrix[0, 1]) / 2, *offset])


def _residuals(params, pairs, transform, prior, prior_weight):
    matrix, offset = _unpack(params, transform)
    out = []
    for rx, ry in pairs:
        # a region's moments are as sure as it is large (a thin brow gains or loses a pixel
        # row in resampling): residuals weighted by the square root of its area
        weight = np.sqrt(min(rx.area, ry.area) / 100)
        out.extend(weight * (matrix @ rx.centroid + offset - ry.centroid))
        # the moved covariance against the sketch's, in px (d(sigma^2) / (2 sigma) ~ d(sigma))
        m = weight * (matrix @ rx.covariance @ matrix.T - ry.covariance) / (2 * ry.radius)
        out.extend([m[0, 0], np.sqrt(2) * m[0, 1], m[1, 1]])
        if prior is not None:
            dm, do = matrix - prior[0], offset - prior[1]
            out.extend((prior_weight * (rx.axis_points() @ dm.T + do)).ravel())
    return np.asarray(out)


def _centroid_guess(pairs, transform) -> tuple[np.ndarray, np.ndarray]:
    """Least squares on the centroids alone, where they determine the transform; else a shift."""
    src = np.array([rx.centroid for rx, _ in pairs])
    dst = np.array([ry.centroid for _, ry in pairs])
    if transform == "affine" and len(pairs) >= 3:
        design = np.hstack([src, np.ones((len(src), 1))])
        if np.linalg.matrix_rank(design) == 3:
            solution = np.linalg.lstsq(design, dst, rcond=None)[0]
            return solution[:2].T, solution[2]
    if transform == "similarity" and len(pairs) >= 2:
        cs, cd = src.mean(0), dst.mean(0)
        zs, zd = (src - cs) @ [1, 1j], (dst - cd) @ [1, 1j]
        if np.abs(zs).sum() > 1e-6:
            k = (np.conj(zs) @ zd) / (np.conj(zs) @ zs)
            matrix = np.array([[k.real, -k.imag], [k.imag, k.real]])
            return matrix, cd - matrix @ cs
    return np.eye(2), (dst - src).mean(0) if len(pairs) else np.zeros(2)


def fit(
    pairs: list[tuple[Region, Region]], transform: str = "affine", prior=None, prior_weight: float = PRIOR_WEIGHT
) -> tuple[np.ndarray, np.ndarray]:
    """The transform (matrix, offset), photo point -> sketch point, that best moves the photo
    regions' centroids and moments onto their sketch partners (soft-L1: robust to a region
    the parser drew differently on the two sides)."""
    start = prior if prior is not None else _centroid_guess(pairs, transform)
    if not pairs:
        return np.eye(2), np.zeros(2)
    result = least_squares(
        _residuals,
        _pack(*start, transform),
        args=(pairs, transform, prior, prior_weight),
        loss="soft_l1",
        f_scale=1.0,
        x_scale="jac",
    )
    return _unpack(result.x, transform)


def _whole(pairs: list[tuple], transform: str) -> list[tuple]:
    """The pairs whose moments are whole: a region cut by the image's edge (a neck, long
    hair) moves its cut, not its shape, so it is fitted only when too few others are left."""
    whole = [(a, b) for a, b in pairs if not (a.clipped or b.clipped)]
    return whole if len(whole) >= (3 if transform == "affine" else 2) else pairs


def global_transform(photo_labels: np.ndarray, sketch_labels: np.ndarray, transform: str = "affine"):
    """(matrix, offset, pairs): one transform for the whole face, the regions paired again
    under the first fit (a large misalignment can pair the wrong eye at first)."""
    rx, ry = regions(photo_labels), regions(sketch_labels)
    pairs = match(rx, ry)
    matrix, offset = fit(_whole(pairs, transform), transform)
    pairs = match(rx, ry, moved=lambda p: matrix @ p + offset)
    matrix, offset = fit(_whole(pairs, transform), transform)
    return matrix, offset, pairs


def _blend(shape, pieces: list[tuple[np.ndarray, np.ndarray]], rest: np.ndarray, smoothness: float) -> np.ndarray:
    """sum_r G * 1_r · u_r over the pieces (mask, field) and the rest of the image."""
    total = np.zeros((*shape, 2), np.float32)
    elsewhere = ~np.any([m for m, _ in pieces], axis=0) if pieces else np.ones(shape, bool)
    for mask, piece in [*pieces, (elsewhere, rest)]:
        weight = ndimage.gaussian_filter(mask.astype(np.float32), smoothness, mode="nearest")
        total += weight[..., None] * piece
    return total


def regions_field(
    photo_labels: np.ndarray, sketch_labels: np.ndarray, transform: str = "affine", smoothness: float = SMOOTHNESS
) -> Alignment:
    shape = photo_labels.shape
    matrix, offset, pairs = global_transform(photo_labels, sketch_labels, transform)
    rest = affine_field(matrix, offset, shape)
    pieces = [
        (
            rx.mask,
            rest
            if rx.clipped or ry.clipped
            else affine_field(*fit([(rx, ry)], transform, prior=(matrix, offset)), shape),
        )
        for rx, ry in pairs
    ]
    notes, sigma = [], smoothness
    for _ in range(8):
        u = _blend(shape, pieces, rest, sigma)
        if jacobian_determinant(u).min() > MIN_JACOBIAN:
            break
        sigma *= 1.5
    else:
        u, notes = rest, ["the regions' transforms fold at any blend width: the global transform is used"]
    if sigma != smoothness:
        notes.append(f"blend widened from {smoothness:g} to {sigma:.3g} px so that the warp folds nowhere")
    return Alignment(u, "regions", matrix, offset, len(pairs), sigma, notes)


def _one_hot(labels: np.ndarray) -> torch.Tensor:
    ids = [0, *PARTS]
    return torch.stack([torch.from_numpy((labels == i).astype(np.float32)) for i in ids])[None]


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian over the last two axes of (N, C, H, W), edges reflected."""
    if sigma <= 0:
        return x
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def dense_field(
    photo_labels: np.ndarray,
    sketch_labels: np.ndarray,
    start: np.ndarray,
    spacing: float = SMOOTHNESS,
    bending: float = DENSE_BENDING,
    steps: int = 300,
) -> np.ndarray:
    """A smooth correction on top of `start`, on control points every `spacing` px
    (interpolated bicubically), minimising the mismatch of the one-hot label maps (blurred
    a little, so that a boundary pulls from a few px away) plus `bending` times the squared
    differences of neighbouring control points; L-BFGS. Where the labels say nothing (inside
    a large region, along a straight boundary) the regulariser carries the field over."""
    fixed = _gaussian(_one_hot(photo_labels), 1.5)[..., ::DENSE_STRIDE, ::DENSE_STRIDE]
    moving = _gaussian(_one_hot(sketch_labels), 1.5)
    h, w = photo_labels.shape
    base = as_tensor(start)
    control = torch.zeros(1, 2, int(np.ceil(h / spacing)) + 1, int(np.ceil(w / spacing)) + 1, requires_grad=True)
    optimiser = torch.optim.LBFGS([control], lr=1, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")

    def correction():
        return F.interpolate(control, size=(h, w), mode="bicubic", align_corners=True)

    def loss():
        optimiser.zero_grad()
        mismatch = ((fixed - sample(moving, base + correction(), stride=DENSE_STRIDE)) ** 2).sum(1).mean()
        roughness = ((control[..., 1:] - control[..., :-1]) ** 2).mean() + (
            (control[..., 1:, :] - control[..., :-1, :]) ** 2
        ).mean()
        total = mismatch + bending * roughness
        total.backward()
        return total

    optimiser.step(loss)
    with torch.no_grad():
        return as_array(base + correction())


def estimate(
    photo_labels: np.ndarray,
    sketch_labels: np.ndarray,
    mode: str = "regions",
    transform: str = "affine",
    smoothness: float = SMOOTHNESS,
) -> Alignment:
    """The warp that brings the sketch (its parsing map `sketch_labels`) onto the photo's
    geometry (`photo_labels`), both (H, W) maps of labkit's labels on the same grid."""
    if mode not in MODES:
        raise ValueError(f"align mode {mode!r} is not one of {list(MODES)}")
    if transform not in TRANSFORMS:
        raise ValueError(f"transform {transform!r} is not one of {list(TRANSFORMS)}")
    if photo_labels.shape != sketch_labels.shape:
        raise ValueError(f"the parsing maps differ in size: photo {photo_labels.shape}, sketch {sketch_labels.shape}")
    if mode == "global":
        matrix, offset, pairs = global_transform(photo_labels, sketch_labels, transform)
        return Alignment(
            affine_field(matrix, offset, photo_labels.shape), "global", matrix, offset, len(pairs), smoothness
        )
    aligned = regions_field(photo_labels, sketch_labels, transform, smoothness)
    if mode == "dense":
        bending = DENSE_BENDING
        for _ in range(4):
            field = dense_field(photo_labels, sketch_labels, aligned.field, smoothness, bending)
            if jacobian_determinant(field).min() > MIN_JACOBIAN:
                aligned.field, aligned.mode = field, "dense"
                break
            bending *= 4
        else:
            aligned.notes.append("the dense field folds at any stiffness tried: the regions' warp is used")
        if bending != DENSE_BENDING:
            aligned.notes.append(
                f"dense stiffness raised from {DENSE_BENDING:g} to {bending:g} so that it folds nowhere"
            )
    return aligned
