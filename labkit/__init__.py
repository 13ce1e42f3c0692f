"""labkit: a lab notebook for image-translation research.

A notebook's first cell calls `cfg, run = labkit.start(globals())`; then a few functions of
the submodules (`labkit.data.load_faces`, `labkit.train.fit`, `labkit.style.swaprun.setup`,
`labkit.viz`). Submodules load on first use, so `import labkit` (and the command line) stays
quick.
"""

import importlib
import sys

# jsonschema (imported by nbformat, so by papermill and every runner process) builds an RFC 3987
# grammar when its optional rfc3987_syntax is importable: 1-3 CPU-s per process, for the "iri"
# format check, which no notebook schema uses. Without it jsonschema skips that one check.
sys.modules.setdefault("rfc3987_syntax", None)

from .config import ParamError, SketchConfig, StyleConfig  # noqa: E402 (after the import block above)

__version__ = "0.1.0"
__all__ = ["ParamError", "SketchConfig", "StyleConfig", "start", "__version__"]

_SUBMODULES = {
    "ablate",
    "compare",
    "config",
    "data",
    "keys",
    "lablog",
    "landmarks",
    "lease",
    "metrics",
    "models",
    "runs",
    "style",
    "terms",
    "track",
    "train",
    "viz",
    "weights",
}


def start(namespace: dict):
    """The config of a notebook's globals (parameters cell and injected values, every name
    checked) and the MLflow run it logs to: see labkit.track.start."""
    from .track import start as start_run

    return start_run(namespace)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'labkit' has no attribute '{name}'")
