"""Parsing-mask labels: the lab's names, and the map from a parser's label ids to them.

A face parser writes its own ids (CelebAMask-HQ parsers: 1 skin, 2/3 brows, 4/5 eyes, 10 nose,
11-13 mouth and lips, 17 hair, ...). ROOT/labels.json maps each of the lab's names to one id or
a list of ids, e.g. {"skin": [1, 14], "brows": [2, 3], "eyes": [4, 5], "nose": 10,
"mouth": [11, 12, 13], "hair": 17}; ids it does not name are background.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .images import DataError

LABELS = {"background": 0, "skin": 1, "hair": 2, "brows": 3, "eyes": 4, "nose": 5, "mouth": 6}


def read_label_map(root: Path) -> np.ndarray:
    """A 256-entry lookup table from the files' ids to LABELS (identity without labels.json)."""
    path = Path(root) / "labels.json"
    if not path.is_file():
        return np.arange(256, dtype=np.int64)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    lut = np.zeros(256, dtype=np.int64)
    for name, ids in spec.items():
        if name not in LABELS:
            raise DataError(f"{path}: unknown label '{name}'; the lab's labels are {list(LABELS)}")
        for i in [ids] if isinstance(ids, int) else ids:
            if not isinstance(i, int) or not 0 <= i < 256:
                raise DataError(f"{path}: label '{name}' has id {i!r}; ids are integers 0..255")
            lut[i] = LABELS[name]
    return lut
