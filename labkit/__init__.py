"""labkit: a lab notebook for image-translation research.

A notebook's first cell calls `cfg, run = labkit.start(globals())`; then a few functions of
the submodules (`labkit.data.load_faces`, `labkit.train.fit`, `labkit.style.swaprun.setup`,
`labkit.viz`). Submodules load on first use, so `import labkit` (and the command line) stays
quick.
"""

import sys

# jsonschema (imported by nbformat, so by papermill and every runner process) builds an RFC 3987
# grammar when its optional rfc3987_syntax is importable: 1-3 CPU-s per process, for the "iri"
# format check, which no notebook schema uses. Without it jsonschema skips that one check.
sys.modules.setdefault("rfc3987_syntax", None)

from .config import ParamError, SketchConfig, StyleConfig  # noqa: E402 (after the import block above)
from .lazy import lazy_getattr  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ParamError", "SketchConfig", "StyleConfig", "start", "__version__"]

_SUBMODULES = {
    "ablate",
    "compare",
    "config",
    "data",
    "drive",
    "explore",
    "executors",
    "jobs",
    "keys",
    "lablog",
    "landmarks",
    "lease",
    "metrics",
    "models",
    "plan",
    "registry",
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


__getattr__ = lazy_getattr(__name__, dict.fromkeys(_SUBMODULES, ""))
