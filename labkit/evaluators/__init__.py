"""The metrics a face run scores itself with, in one registry: each is an Evaluator (a module of
this package, or of a plugin: labkit.registry) that says

- whether it measures something of a run (`build` returns None where not),
- what it records once at the start (`setup`: tags that say what its numbers mean),
- its numbers at each evaluation (`reset`, `process` the generated sketches of a split,
  `results`: metrics by their recorded names, which the loop logs and keeps in its history),
- and its columns in the compare table (`columns`, under `title`).

A module of the registry imports torch and the metrics code inside its functions, not at its
top: the compare command reads the columns without them.
"""

from ..registry import import_entries
from .evaluator import (
    EVALUATORS,
    Column,
    Evaluator,
    Generated,
    Setting,
    build_all,
    columns,
    measured_boxes,
    register,
)

__all__ = [
    "EVALUATORS",
    "Column",
    "Evaluator",
    "Generated",
    "Setting",
    "build_all",
    "columns",
    "measured_boxes",
    "register",
]

# the built-in evaluators, FID first (its line leads the printed summary); a module added here joins after them
import_entries(__name__, __path__, first=("fid", "validation", "alignment"), skip=("evaluator",))
