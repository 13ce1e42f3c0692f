"""labkit: a lab notebook for image-translation research.

Notebooks call a few functions: `SketchConfig.from_namespace(globals())`,
`track.open_run(cfg)`, `data.load_faces(cfg)`, `train.fit(cfg, data, run)`, and views in `viz`.
"""
from .config import ParamError, SketchConfig

__version__ = "0.1.0"
__all__ = ["ParamError", "SketchConfig", "__version__"]
