"""A metric a face run scores itself with, and the registry of them (see labkit.evaluators)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ..registry import Registry


@dataclass(frozen=True)
class Column:
    """A number the compare table shows for each row: the mean over the row's runs of a metric's
    last value; with `then`, 'key → then' (a score before and after); with `tag`, the runs' tag."""

    header: str
    key: str
    digits: int = 2
    then: str = ""
    tag: bool = False


@dataclass
class Setting:
    """What an evaluator is built from: the run's config, its faces, the FID backbone, the device."""

    cfg: object
    data: object
    backbone: object
    device: object


def measured_boxes(cfg, faces) -> list | None:
    """What FID measures of these faces' sketches: their rectangles (fid_region face), or None
    for the whole canvas."""
    return faces.boxes if cfg.fid_region == "face" else None


class Generated:
    """A split's generated sketches, with their FID features computed at most once (evaluators
    of the same split share them); with boxes, of the faces' rectangles (fid_region face)."""

    def __init__(self, images, backbone, batch_size: int, boxes=None):
        self.images, self.backbone, self.batch_size, self.boxes = images, backbone, batch_size, boxes

    @cached_property
    def features(self):
        from ..metrics import features, to_uint8

        return features(to_uint8(self.images), self.backbone, self.batch_size, self.boxes)


class Evaluator:
    """One metric of a face run, in the spirit of detectron2's DatasetEvaluator: at each
    evaluation the loop calls `reset`, then `process` with the generated sketches of every split
    the evaluator names in `splits` ('test', 'val'), then logs what `results` returns (metrics by
    their recorded names, at the evaluation's epoch). A subclass registered in EVALUATORS is
    built for every face run, unless `build` returns None (the run has nothing it measures).

    `columns` are what the compare table shows of it, under `title` with `note`; `setup`
    records once, at the start of a run, what its numbers mean; `record` logs what is not a
    number (arrays, files) after each evaluation; `summary` is its part of the printed line."""

    name = ""
    splits: tuple[str, ...] = ("test",)
    title = ""
    note = ""
    columns: tuple[Column, ...] = ()

    @classmethod
    def build(cls, setting: Setting) -> Evaluator | None:
        return cls()

    def setup(self, run) -> None:
        pass

    def reset(self) -> None:
        pass

    def process(self, split: str, generated: Generated) -> None:
        pass

    def results(self) -> dict[str, float]:
        raise NotImplementedError

    def record(self, run, step: int) -> None:
        pass

    def summary(self, results: dict[str, float]) -> str:
        return "  ".join(f"{k} {v:.4g}" for k, v in results.items())


EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator", "labkit.evaluators")
register = EVALUATORS.register


def build_all(setting: Setting) -> list[Evaluator]:
    """The evaluators of a run: every registered one that measures something of it."""
    return [e for cls in EVALUATORS if (e := cls.build(setting)) is not None]


def columns() -> list[type[Evaluator]]:
    """The evaluators with columns in the compare table, in their order."""
    return [cls for cls in EVALUATORS if cls.columns]
