"""CUFS file names: the key that pairs a photo with its sketch, the subset, the usual split.

CUHK student photos `f-005-01`, `f1-001-01`, `m-008-01`, `m1-001-01`; their sketches add
`-sz1` and sometimes change the prefix (`F2-005-01-sz1`, `m2-008-01-sz1`, but
`m-063-01-sz1`). AR photos `m-002-1` / `w-001-1`, sketches `Mp-002-1-sz1` / `Wp-001-1-sz1`.
XM2VTS photos `000_1_1`. The key folds case, reads `_` as `-`, drops the sketch suffix and
maps the sketch prefixes (f2 -> f, m2 -> m, mp -> m, wp -> w).
"""

from __future__ import annotations

import re

SKETCH_SUFFIX = re.compile(r"[-_ ](sz1|sketch)$")
SKETCH_PREFIXES = {"f2": "f", "m2": "m", "mp": "m", "wp": "w"}
SUBSET_PATTERNS = [
    ("xm2vts", re.compile(r"^\d{3}-\d+-\d+$")),
    ("ar", re.compile(r"^[mw]-\d{3}-\d$")),
    ("cuhk", re.compile(r"^[fm]\d?-\d{3}-\d{2}$")),
]
SUBSETS = ("cuhk", "ar", "xm2vts")
# train / test counts of the split used in face sketch synthesis papers
USUAL_SPLIT = {"cuhk": (88, 100), "ar": (80, 43), "xm2vts": (100, 195)}


def pair_key(stem: str) -> str:
    key = SKETCH_SUFFIX.sub("", stem.strip().lower().replace("_", "-"))
    prefix, _, rest = key.partition("-")
    return f"{SKETCH_PREFIXES.get(prefix, prefix)}-{rest}" if rest else key


def is_sketch_name(stem: str) -> bool:
    return bool(SKETCH_SUFFIX.search(stem.strip().lower().replace("_", "-")))


def subset_of(key: str, folders: tuple[str, ...] = ()) -> str:
    """cuhk / ar / xm2vts from a folder name on the path, else from the name's pattern, else
    the name's prefix (the synthetic set's `cuhk-0001`)."""
    for folder in folders:
        words = set(re.split(r"[^a-z0-9]+", folder.lower()))
        for subset in SUBSETS:
            if subset in words or (subset == "cuhk" and "student" in words):
                return subset
    for subset, pattern in SUBSET_PATTERNS:
        if pattern.match(key):
            return subset
    return key.split("-")[0]


def split_from_folders(folders: tuple[str, ...]) -> str:
    """'train' / 'test' when a folder on the path says so (training, Testing photo, test/ ...)."""
    for folder in folders:
        name = folder.lower()
        if "train" in name:
            return "train"
        if "test" in name:
            return "test"
    return ""


def usual_split(keys_by_subset: dict[str, list[str]]) -> dict[str, str]:
    """The papers' split for CUFS subsets (first N sorted names train, the rest test); other
    names: every fourth (sorted) is a test face."""
    split = {}
    for subset, keys in keys_by_subset.items():
        keys = sorted(keys)
        n_train = USUAL_SPLIT.get(subset, (None, None))[0]
        for i, key in enumerate(keys):
            if n_train is not None and len(keys) > n_train:
                split[key] = "train" if i < n_train else "test"
            else:
                split[key] = "test" if i % 4 == 0 else "train"
    return split
