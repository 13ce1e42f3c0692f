"""FID and KID with pytorch-fid's Inception."""

from .backbone import Backbone, load_backbone, weights_path
from .fid import FidEvaluator, features, fid_from_features, kid_from_features, to_uint8

__all__ = [
    "Backbone",
    "load_backbone",
    "weights_path",
    "FidEvaluator",
    "features",
    "fid_from_features",
    "kid_from_features",
    "to_uint8",
]
