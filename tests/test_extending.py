"""Extending the lab from outside the package, as CONTRIBUTING.md tells: a package of its own
registers a loss term (a new face ablation, with a parameter of its own), a metric and an executor
through its entry points; the ablation's notebook is added to the lab's notebooks; `labkit ablate`
runs it on tiny data with that executor, the runner, the kernel and the table all seeing the
plugin."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, TINY

from labkit import track

TERM = '''
"""+tv: the generated sketch's total variation, a toy term."""

from dataclasses import dataclass

from labkit.knobs import knob
from labkit.terms import GeneratorStep, Term, register


@dataclass(frozen=True)
class TvKnobs:
    lambda_tv_face: float = knob(0.0, "weight of the generated sketch's total variation", at_least=0)


def compute(step: GeneratorStep):
    fake = step.fake
    tv = (fake[..., 1:, :] - fake[..., :-1, :]).abs().mean() + (fake[..., 1:] - fake[..., :-1]).abs().mean()
    return step.cfg.lambda_tv_face * tv


register(
    Term("G_tv", on=lambda cfg: cfg.lambda_tv_face > 0, compute=compute,
         formula=lambda cfg: f"{cfg.lambda_tv_face:g}·TV", knobs=TvKnobs)
)
'''

METRIC = '''
"""Ink: the share of the generated test sketches' pixels darker than mid-grey, a toy metric."""

from labkit.evaluators import Column, Evaluator, register


@register
class Ink(Evaluator):
    name = "ink"
    title = "Ink"
    note = "The share of the generated test sketches' pixels darker than mid-grey."
    columns = (Column("ink (last)", "ink", digits=3),)

    def reset(self):
        self.images = []

    def process(self, split, generated):
        self.images.append(generated.images)

    def results(self):
        import torch

        return {"ink": float((torch.cat(self.images) < 0).float().mean())}
'''

EXECUTOR = '''
"""The jobs one at a time, the last queued first: a toy executor."""

from labkit.executors import EXECUTORS, Executor


@EXECUTORS("reversed")
class Reversed(Executor):
    def run(self, jobs, batch):
        from labkit.drive import drive
        from labkit.jobs import describe

        batch.echo(f"reversed executor: {len(jobs)} job(s), the last first")
        outcomes = []
        for job in reversed(jobs):
            outcomes.append(drive(job, batch.fresh, progress=False, queued_since=batch.started))
            batch.echo(describe(outcomes[-1]))
        return outcomes
'''


def _plugin(folder: Path) -> Path:
    """An installed-looking package on its own path entry: its modules and a dist-info naming them
    in labkit's entry point groups (what `pip install` of a package with those entry points writes)."""
    (folder / "toy_lab").mkdir(parents=True)
    (folder / "toy_lab" / "__init__.py").write_text("")
    (folder / "toy_lab" / "tv_term.py").write_text(TERM)
    (folder / "toy_lab" / "ink_metric.py").write_text(METRIC)
    (folder / "toy_lab" / "reversed_executor.py").write_text(EXECUTOR)
    info = folder / "toy_lab-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-lab\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [labkit.terms]
            tv = toy_lab.tv_term

            [labkit.evaluators]
            ink = toy_lab.ink_metric

            [labkit.executors]
            reversed = toy_lab.reversed_executor
            """
        )
    )
    return folder


def _lab_with_notebook(root: Path) -> Path:
    """The lab's notebooks, and the new ablation's: glad's flow with its own parameters cell."""
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    notebook = json.loads((ROOT / "notebooks" / "glad.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = ['ablation = "tv"\n', "lambda_tv_face = 1.0"]
    (root / "notebooks" / "tv.ipynb").write_text(json.dumps(notebook))
    return root


@pytest.mark.slow
def test_a_term_a_metric_and_an_executor_registered_from_outside_run_end_to_end(lab, tmp_path):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(_plugin(tmp_path / "plugin")), os.environ.get("PYTHONPATH", "")]),
        LABKIT_ROOT=str(_lab_with_notebook(tmp_path / "lab")),
    )
    settings = [f"--set={k}={v}" for k, v in {**TINY, "experiment": "ext"}.items()]
    ablate = [sys.executable, "-m", "labkit.cli", "ablate", "tv", "baseline", *settings]
    done = subprocess.run(
        [*ablate, "--executor", "reversed", "--no-progress", "--no-log"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reversed executor: 2 job(s), the last first" in done.stdout

    c = track.client()
    runs = {r.info.run_name: r for r in c.search_runs([c.get_experiment_by_name("ext").experiment_id])}
    tv, baseline = runs["tv-s0"], runs["baseline-s0"]
    assert tv.info.status == baseline.info.status == "FINISHED"
    assert tv.data.params["lambda_tv_face"] == "1.0" and "lambda_tv_face" not in baseline.data.params  # off: not its
    assert "loss_G_tv" in tv.data.metrics and "loss_G_tv" not in baseline.data.metrics
    assert baseline.info.start_time < tv.info.start_time  # the last queued ran first

    # the local executor's kernels, forked from its warm process, register the plugin's term afresh
    seeds = subprocess.run([*ablate[:5], *settings, "--set=seed=1", "--seeds=2", "--no-progress", "--no-log"], env=env)
    assert seeds.returncode == 0
    runs = {r.info.run_name: r for r in c.search_runs([c.get_experiment_by_name("ext").experiment_id])}
    assert all("loss_G_tv" in runs[f"tv-s{seed}"].data.metrics for seed in (1, 2))

    table = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "compare", "--experiment", "ext"], env=env, capture_output=True, text=True
    )
    assert table.returncode == 0, table.stdout + table.stderr
    assert re.search(r"^tv +3 +\d+\.\d\d ± ", table.stdout, re.MULTILINE), table.stdout  # the terminal's table
    written = (lab / "compare" / "ext.md").read_text()  # and as written, with the objective and the metric
    assert "| tv | GAN + 100·L1 + 1·TV | 3 (0, 1, 2) |" in written

    # the metric: logged at every evaluation of every run, and its column in the table
    for run in runs.values():
        ink = [v for _, v in track.Run(c, run.info.run_id).metric_history("ink")]
        assert len(ink) == 2 and all(0 <= v <= 1 for v in ink), run.info.run_name
    mean = sum(runs[f"tv-s{seed}"].data.metrics["ink"] for seed in (0, 1, 2)) / 3
    assert "## Ink\n\nThe share of" in written and f"| tv | {mean:.3f} |" in written
