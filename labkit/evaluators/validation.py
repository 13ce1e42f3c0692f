"""FID on the validation faces (val_fraction > 0): held out of training, what picks the best epoch."""

from __future__ import annotations

from .. import keys
from .evaluator import Column, Evaluator, Setting, measured_boxes, register


class AgainstSketches(Evaluator):
    """FID of one split's generated sketches against a set of real sketches."""

    metric = ""

    def __init__(self, scorer):
        self.scorer, self.fake = scorer, None

    @classmethod
    def against(cls, setting: Setting, faces, split: str) -> AgainstSketches | None:
        if faces is None:
            return None
        from ..metrics import FidEvaluator

        sketches, fingerprint = faces.faces(setting.device)["sketch"], setting.data.fingerprint
        measured = dict(split=split, batch_size=setting.cfg.fid_batch_size, boxes=measured_boxes(setting.cfg, faces))
        return cls(FidEvaluator(sketches, setting.backbone, fingerprint, **measured))

    def reset(self) -> None:
        self.fake = None

    def process(self, split: str, generated) -> None:
        self.fake = generated.features

    def results(self) -> dict[str, float]:
        return {self.metric: self.scorer.evaluate(fake=self.fake)["fid"]}


@register
class ValidationFid(AgainstSketches):
    name, metric, splits = "fid_val", keys.FID_VAL, ("val",)
    title = "Validation FID"
    note = "FID on the validation faces, held out of training: the number that picks a run's best epoch."
    columns = (Column("validation FID (last)", keys.FID_VAL),)

    @classmethod
    def build(cls, setting: Setting) -> ValidationFid | None:
        return cls.against(setting, setting.data.val, f"val{setting.cfg.val_fraction:g}")

    def summary(self, results: dict[str, float]) -> str:
        return f"validation FID {results[self.metric]:.2f}"
