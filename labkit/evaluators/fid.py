"""FID and KID of the generated test sketches against the real ones, overall and per subset,
each with its 95% jackknife interval over the test faces (labkit.metrics.jackknife)."""

from __future__ import annotations

import numpy as np

from .. import keys
from ..console import banner
from .evaluator import Evaluator, Setting, measured_boxes, register


def with_interval(metric: str, value: float, interval, subset: str = "") -> dict[str, float]:
    """A metric and its interval's bounds under their logged names, per subset with one (no bounds
    without an interval)."""
    name = (lambda m: keys.per_subset(m, subset)) if subset else (lambda m: m)
    out = {name(metric): value}
    if interval is not None and not np.isnan(interval[0]):
        out.update({name(keys.ci(metric, side)): bound for side, bound in zip(("low", "high"), interval)})
    return out


@register
class TestFid(Evaluator):
    name = "fid"

    def __init__(self, scorer, chosen: str = "", inference: str = "eval"):
        self.scorer, self.fake, self.left_out, self.chosen, self.inference = scorer, None, {}, chosen, inference

    @classmethod
    def build(cls, setting: Setting) -> TestFid:
        from ..metrics import FidEvaluator

        cfg, data = setting.cfg, setting.data
        return cls(
            FidEvaluator(
                data.test.faces(setting.device)["sketch"],
                setting.backbone,
                data.fingerprint,
                subsets=[p.subset for p in data.test.pairs],
                batch_size=cfg.fid_batch_size,
                intervals=cfg.intervals,
                names=[p.name for p in data.test.pairs],
                boxes=measured_boxes(cfg, data.test),
            ),
            cfg.fid_backbone,
            cfg.inference,
        )

    def setup(self, run) -> None:
        run.set_tags({**self.scorer.provenance(), keys.FID_INFERENCE: self.inference})
        if not self.scorer.backbone.is_real and self.chosen != "auto":  # auto's fallback said it already
            print(banner("FID backbone: random-init (smoke run). These FIDs are NOT comparable with real ones."))

    def reset(self) -> None:
        self.fake, self.left_out = None, {}

    def process(self, split: str, generated) -> None:
        self.fake = generated.features

    def results(self) -> dict[str, float]:
        scores = self.scorer.evaluate(fake=self.fake)
        self.left_out = scores["left_out"]
        out = {keys.FID_N_FAKE: scores["n_fake"]}
        for metric in (keys.FID, keys.KID):
            out.update(with_interval(metric, scores[metric], scores.get(f"{metric}_ci")))
            for subset, sub in scores["per_subset"].items():
                out.update(with_interval(metric, sub[metric], sub.get(f"{metric}_ci"), subset))
        return out

    def record(self, run, step: int) -> None:
        if self.left_out:  # the newest evaluation's: what compare pairs runs with
            run.log_arrays({"epoch": np.array(step), **self.left_out}, keys.JACKKNIFE)

    def summary(self, results: dict[str, float]) -> str:
        low = results.get(keys.ci(keys.FID, "low"))
        interval = "" if low is None else f" [{low:.2f}, {results[keys.ci(keys.FID, 'high')]:.2f}]"
        subsets = self.scorer.subset_names
        per_subset = "".join(
            f"  {s} {results[keys.per_subset(keys.FID, s)]:.2f} (N {int((self.scorer.subsets == s).sum())})"
            for s in subsets
        )
        return (
            f"FID {results[keys.FID]:.2f}{interval}  KID {results[keys.KID]:.4f}  (N real {len(self.scorer.real)}, "
            f"N fake {results[keys.FID_N_FAKE]}, {self.scorer.backbone.name}){per_subset}"
        )
