"""+align's measures: how well the training sketches sit on the photos before and after the warp
(region overlap of the parsing maps; on the synthetic set the end-point error against the true
field), and the FID against the warped test sketches beside the headline one."""

from __future__ import annotations

from .. import keys
from .evaluator import Column, Setting, register
from .validation import AgainstSketches


def _before_after(score: str, header: str, digits: int) -> Column:
    return Column(header, keys.align_metric(score, "before"), digits, then=keys.align_metric(score, "after"))


@register
class Alignment(AgainstSketches):
    name, metric = "align", keys.FID_ALIGNED
    title = "+align: how well the training sketches sit on the photos"
    note = (
        "Mean over the faces of the parsing maps' region overlap (photo vs sketch) before → after the "
        "warp; on the synthetic set also the end-point error against the true field. FID (last) above is "
        "against the real test sketches; here also against the aligned ones."
    )
    columns = (
        Column("align", keys.ALIGN_MODE, tag=True),
        _before_after("iou", "IoU", 3),
        _before_after("dice", "Dice", 3),
        _before_after("epe", "end-point error (px)", 2),
        Column("FID vs aligned test sketches", keys.FID_ALIGNED),
    )

    @classmethod
    def build(cls, setting: Setting) -> Alignment | None:
        alignment = setting.data.alignment
        split = f"test-aligned-{alignment and alignment.folder.name}"
        evaluator = cls.against(setting, setting.data.test_aligned, split)
        if evaluator is not None:
            evaluator.alignment = alignment
        return evaluator

    def setup(self, run) -> None:
        run.set_tags({keys.ALIGN_MODE: self.alignment.mode})
        run.log_file(self.alignment.folder / "scores.csv", keys.ALIGN)
        run.log_file(self.alignment.folder / "check.png", keys.ALIGN)
        print(
            "sketches aligned to the photos (region overlap of the parsing maps, before -> after):\n"
            + self.alignment.report()
        )

    def results(self) -> dict[str, float]:
        out = super().results()
        for subset in ["", *self.alignment.subsets()]:
            for name, value in self.alignment.summary(subset).items():
                metric = keys.align_metric(*name.split("_"))
                out[keys.per_subset(metric, subset) if subset else metric] = value
        return out

    def summary(self, results: dict[str, float]) -> str:
        return f"FID vs aligned test sketches {results[self.metric]:.2f}"
