"""Face data: the synthetic set, the folder layout, geometry and the torch dataset. Names load on
first use, so the command line reads `DataError` without importing torch."""

import importlib

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


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'labkit.data' has no attribute '{name}'")
