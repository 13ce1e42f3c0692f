"""The regions of a parsing map, their moments, their pairing across two maps, and how well
two maps overlap.

A region is one connected piece of one label (the two eyes are two regions), described by
its area, centroid and second moments: under an affine map A the centroid moves to A c + t
and the covariance to A S A^T, which is what the transforms are fitted to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from ..data.labels import LABELS

BACKGROUND = LABELS["background"]
PARTS = {v: k for k, v in LABELS.items() if v != BACKGROUND}  # label id -> name


@dataclass(frozen=True)
class Region:
    label: int
    area: int
    centroid: np.ndarray  # (x, y)
    covariance: np.ndarray  # (2, 2), px^2
    mask: np.ndarray  # (H, W) bool
    clipped: bool  # touches the image's edge: its moments are of a cut-off piece

    @property
    def radius(self) -> float:
        return float(np.sqrt(max(np.trace(self.covariance), 1e-6)))

    def axis_points(self) -> np.ndarray:
        """The centroid and the ends of the principal axes (5, 2): where a transform is compared."""
        values, vectors = np.linalg.eigh(self.covariance)
        axes = vectors * np.sqrt(np.clip(values, 0, None))
        return np.array(
            [
                self.centroid,
                self.centroid + axes[:, 0],
                self.centroid - axes[:, 0],
                self.centroid + axes[:, 1],
                self.centroid - axes[:, 1],
            ]
        )


def regions(labels: np.ndarray, min_area: int = 12) -> list[Region]:
    """Every connected piece of every non-background label, at least `min_area` pixels."""
    found = []
    for label in PARTS:
        pieces, count = ndimage.label(labels == label)
        for k in range(1, count + 1):
            mask = pieces == k
            area = int(mask.sum())
            if area < min_area:
                continue
            ys, xs = np.nonzero(mask)
            points = np.stack([xs, ys], 1).astype(np.float64)
            centroid = points.mean(0)
            centred = points - centroid
            # + 1/12: each pixel is a unit square, not a point (exact moments of the area)
            covariance = centred.T @ centred / area + np.eye(2) / 12
            clipped = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
            found.append(Region(label, area, centroid, covariance, mask, clipped))
    return found


def match(photo: list[Region], sketch: list[Region], moved=lambda p: p, gate: float = 0.25) -> list[tuple]:
    """(photo region, sketch region) pairs of the same label, paired by least total distance
    between centroids (the photo's moved by `moved`, a current guess of the transform); a pair
    further apart than `gate` times the larger region's size plus 8 px is dropped, as is a
    region without a partner (a region missing on one side)."""
    pairs = []
    for label in PARTS:
        a = [r for r in photo if r.label == label]
        b = [r for r in sketch if r.label == label]
        if not a or not b:
            continue
        cost = np.array([[np.linalg.norm(moved(ra.centroid) - rb.centroid) for rb in b] for ra in a])
        for i, j in zip(*linear_sum_assignment(cost)):
            if cost[i, j] <= 8 + gate * 4 * max(a[i].radius, b[j].radius):
                pairs.append((a[i], b[j]))
    return pairs


def overlap(photo_labels: np.ndarray, sketch_labels: np.ndarray) -> dict[str, dict[str, float]]:
    """IoU and Dice of each label present in either map: {name: {iou, dice}}."""
    out = {}
    for label, name in PARTS.items():
        a, b = photo_labels == label, sketch_labels == label
        union, total = np.logical_or(a, b).sum(), a.sum() + b.sum()
        if union:
            inter = np.logical_and(a, b).sum()
            out[name] = {"iou": float(inter / union), "dice": float(2 * inter / total)}
    return out


def mean_overlap(photo_labels: np.ndarray, sketch_labels: np.ndarray) -> dict[str, float]:
    """The mean over labels of IoU and Dice: {iou, dice} (nan when neither map has a region)."""
    return means(overlap(photo_labels, sketch_labels))


def means(per_label: dict[str, dict[str, float]]) -> dict[str, float]:
    """{iou, dice} averaged over the labels of an `overlap` result."""
    return {
        k: float(np.mean([v[k] for v in per_label.values()])) if per_label else float("nan") for k in ("iou", "dice")
    }
