"""The main job, `labkit demo`: every notebook once, on the synthetic face set and scikit-image's
pictures, then the FID table, in minutes on a 2-core CPU.

Every notebook runs as `labkit ablate` runs it (its own kernel, its MLflow run, the executed
notebook attached), in experiments of their own (`demo`, `demo-style`), at demo size: the
notebook's own settings with fewer epochs and steps (DEMO_SIZE), enough for the curves, the
grids and the table to show what they show at full size.

One queue, two notebooks at a time, the longest first: the decoders and the face ablations are
queued at once, each swap variant joins the queue when the decoder it needs has finished, and a
free worker takes the next notebook at once (none waits for a whole batch). Each phase says how
long it took.
"""

from __future__ import annotations

import dataclasses
import time

from .config import ParamError, SketchConfig, StyleConfig, parse_override
from .jobs import Job, Outcome
from .plan import plan

FACES, STYLE = "demo", "demo-style"
WORKERS = 2  # much of a notebook is one-threaded start-up (kernel, imports) that two processes overlap
# What makes a notebook demo-sized, per schema, on top of its own settings. Faces: 36 synthetic
# faces (9 test faces, 3 per subset), 9 epochs (5 at the initial rate, 4 decaying), FID after
# epochs 3, 6 and 9: a curve of three points, each with its interval (an evaluation costs more than
# an epoch here). Decoders: 30 steps, a loss logged every 5, the reconstructions before and after.
DEMO_SIZE = {
    SketchConfig: ("synthetic_count=36", "n_epochs=5", "n_epochs_decay=4", "eval_every=3"),
    StyleConfig: ("steps=30", "log_every=5", "checkpoint_every=15"),
}


def decoder_kind(variant) -> str:
    return variant.decoder_kind or StyleConfig.decoder_kind


def face_jobs(extra: list[str] = ()) -> list[Job]:
    """The face ablations, the longest first: +local trains seven networks, and local_align also
    aligns the misaligned set's sketches, which align then reads (so it goes last, not waiting)."""
    ablations = sorted(
        SketchConfig.ablations(), key=lambda a: (not a.startswith("local"), a != "local_align", a == "align")
    )
    return plan(ablations, overrides=[f"experiment={FACES}", *DEMO_SIZE[SketchConfig], *extra])


def decoder_jobs(extra: list[str] = ()) -> list[Job]:
    """One decoder of each kind a swap variant needs, the kind most variants need first."""
    from .style.variants import VARIANTS

    needed = [decoder_kind(v) for v in VARIANTS]
    kinds = sorted(set(needed), key=lambda k: -needed.count(k))
    return [
        dataclasses.replace(job, label=f"decoder_{kind.replace('+', '_')}")
        for kind in kinds
        for job in plan(
            ["decoder_train"],
            overrides=[f"experiment={STYLE}", f"decoder_kind={kind}", *DEMO_SIZE[StyleConfig], *extra],
        )
    ]


def swap_jobs(kind: str, decoder_run: str, extra: list[str] = ()) -> list[Job]:
    """The swap variants that decode with a decoder of this kind, given its run."""
    from .style.variants import VARIANTS

    return plan(
        [v.ablation for v in VARIANTS if decoder_kind(v) == kind],
        overrides=[
            f"experiment={STYLE}",
            f"decoder_kind={kind}",
            f"decoder_run={decoder_run}",
            *DEMO_SIZE[StyleConfig],
            *extra,
        ],
    )


def after(extra: list[str] = ()):
    """What an ended demo job lets start: a finished decoder's swap variants."""

    def follow(outcome: Outcome) -> list[Job]:
        cfg = outcome.job.cfg
        if cfg.ablation != "decoder_train" or not outcome.status.done:
            return []
        return swap_jobs(cfg.decoder_kind, outcome.run_id, extra)

    return follow


class Phases:
    """How long each phase of the demo took, printed as each ends and together at the end; the
    first counts from the process's start (its imports too)."""

    def __init__(self):
        import psutil

        self.started = self.mark = psutil.Process().create_time()
        self.seconds: dict[str, float] = {}

    def end(self, name: str) -> None:
        now = time.time()
        self.seconds[name] = now - self.mark
        self.mark = now
        print(f"[demo] {name}: {self.seconds[name]:.0f}s")

    def report(self) -> str:
        total = time.time() - self.started
        return f"demo finished in {total:.0f}s (" + ", ".join(f"{k} {v:.0f}s" for k, v in self.seconds.items()) + ")"


def plan_all(extra: list[str] = ()) -> list[Job]:
    """Every notebook the demo starts with, checked before any runs, `extra` NAME=VALUE settings
    on top of every one: the decoder most variants need and the longest face run first."""
    shared = set(SketchConfig.names()) & set(StyleConfig.names()) - {"ablation", "experiment"}  # the demo's own
    for text in extra:
        name, _ = parse_override(text)
        if name not in shared:
            raise ParamError(
                f"--set {text}: the demo's --set takes a parameter every notebook has ({', '.join(sorted(shared))}); "
                f"to run one ablation with it: labkit ablate ABLATION --set {text}"
            )
    decoders, faces = decoder_jobs(extra), face_jobs(extra)
    return [decoders[0], faces[0], *decoders[1:], *faces[1:]]


def run(jobs: list[Job], extra: list[str] = (), progress: bool = True) -> tuple[list[Outcome], Phases]:
    """Run the planned notebooks (plan_all) in one queue, each swap variant when its decoder has
    finished, and return their outcomes; the table and the lab log are the caller's (labkit.cli)."""
    from . import ablate

    phases = Phases()
    phases.end("start-up and plan")
    outcomes = ablate.run_all(jobs, progress=progress, workers=WORKERS, then=after(extra))
    phases.end(f"notebooks ({len(outcomes)})")
    return outcomes, phases
