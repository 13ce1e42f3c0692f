"""FID and KID with pytorch-fid's Inception."""
from .backbone import Backbone, BackboneUnavailable, load_backbone, weights_path
from .evaluator import FidEvaluator
from .fid import features, fid_from_features, kid_from_features, to_uint8

__all__ = ["Backbone", "BackboneUnavailable", "load_backbone", "weights_path", "FidEvaluator", "features",
           "fid_from_features", "kid_from_features", "to_uint8"]
