"""Face data: the synthetic set, the folder layout, geometry and the torch dataset."""
from .faces import FaceData, FaceDataset, load_faces
from .images import DataError
from .layout import LANDMARK_NAMES, FacePair, find_pairs, fingerprint
from .synthetic import write_synthetic_set

__all__ = ["FaceData", "FaceDataset", "load_faces", "DataError", "LANDMARK_NAMES", "FacePair", "find_pairs",
           "fingerprint", "write_synthetic_set"]
