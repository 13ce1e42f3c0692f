"""+align: the sketch warped onto the photo's geometry, estimated from the two parsing maps
without training anything (labkit.align.estimate), applied to a data folder once and cached
(labkit.align.sketches), scored by region overlap (labkit.align.regions) and shown
(labkit.align.views)."""

from .estimate import MODES, TRANSFORMS, Alignment, estimate
from .fields import end_point_error, invert, jacobian_determinant, warp, warp_labels
from .regions import mean_overlap, overlap
from .sketches import AlignedSketches, align_sketches

__all__ = [
    "MODES",
    "TRANSFORMS",
    "Alignment",
    "estimate",
    "end_point_error",
    "invert",
    "jacobian_determinant",
    "warp",
    "warp_labels",
    "mean_overlap",
    "overlap",
    "AlignedSketches",
    "align_sketches",
]
