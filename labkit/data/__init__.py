"""Face data: the synthetic set, the folder layout, geometry and the torch dataset. Names load on
first use, so the command line reads `DataError` without importing torch."""

from ..lazy import lazy_getattr

_WHERE = {
    "FaceData": "faces",
    "FaceDataset": "faces",
    "load_faces": "faces",
    "DataError": "images",
    "LANDMARK_NAMES": "layout",
    "FacePair": "layout",
    "find_pairs": "layout",
    "fingerprint": "layout",
    "write_synthetic_set": "synthetic",
}
__all__ = list(_WHERE)

__getattr__ = lazy_getattr(__name__, _WHERE)
