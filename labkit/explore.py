"""Runs side by side in a notebook: `labkit.explore.runs(experiment="faces")` shows the
experiment's runs as a table to select from (ablation, seed, FID with its 95% interval, status)
and, for the selection, their FID curves on one axis, their sample grids of the same test faces
side by side at a chosen epoch, and their error heatmaps at that epoch.

Everything is read from the MLflow store the lab tracks to (a run still training included; the
button re-reads it), never from a copy: the curves from the metric histories, the pictures from
the images each evaluation logged. The pure functions below draw; `RunExplorer` wires them to
ipywidgets.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import compare, keys, track, viz

GRID_COLUMNS = 3  # a logged sample grid: photo | real sketch | generated
_LOGGED = re.compile(r"^(?P<key>.+?)[+%]step[+%](?P<step>\d+)[+%]timestamp[+%](?P<time>\d+)[+%][^+%]+\.png$")


@dataclass(frozen=True)
class Run:
    run_id: str
    name: str
    ablation: str
    seed: str
    fid: float
    low: float
    high: float
    status: str

    @property
    def fid_text(self) -> str:
        if np.isnan(self.fid):
            return "no FID yet"
        interval = "" if np.isnan(self.low) else " " + compare.interval_text(self.low, self.high)
        return f"{self.fid:.2f}{interval}"


def experiment_runs(experiment: str) -> list[Run]:
    """The experiment's training runs, newest first; an unknown experiment is refused with the
    names of those that exist."""
    frame = compare.collect(experiment)
    column = lambda name: frame.get(name, pd.Series(np.nan, index=frame.index))  # noqa: E731
    return [
        Run(
            run_id,
            str(name),
            str(ablation),
            "" if pd.isna(seed) else str(seed),
            float(fid),
            float(low),
            float(high),
            str(status),
        )
        for run_id, name, ablation, seed, fid, low, high, status in zip(
            frame["run_id"],
            column("tags.mlflow.runName"),
            column(f"tags.{keys.ABLATION}"),
            column("params.seed"),
            column(f"metrics.{keys.FID}"),
            column(f"metrics.{keys.ci(keys.FID, 'low')}"),
            column(f"metrics.{keys.ci(keys.FID, 'high')}"),
            frame["status"],
        )
    ]


def table_rows(runs: list[Run]) -> tuple[str, list[str]]:
    """The header and one line per run, in aligned columns (a monospace select shows them as a table)."""
    cells = [["run", "ablation", "seed", "FID [95% interval]", "status"]] + [
        [r.name, r.ablation, r.seed, r.fid_text, r.status] for r in runs
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells]
    return lines[0], lines[1:]


def logged_images(run_id: str) -> dict[str, dict[int, str]]:
    """{key: {step: artifact path}} of every image the run logged, from one listing (the newest
    where a step was logged twice, as by a resumed run)."""
    found: dict[str, dict[int, tuple[int, str]]] = {}
    for artifact in track.client().list_artifacts(run_id, "images"):
        match = _LOGGED.match(Path(artifact.path).name)
        if match:
            steps, step, stamp = found.setdefault(match["key"], {}), int(match["step"]), int(match["time"])
            if step not in steps or stamp > steps[step][0]:
                steps[step] = (stamp, artifact.path)
    return {key: {step: path for step, (_, path) in sorted(steps.items())} for key, steps in found.items()}


@lru_cache(maxsize=256)
def image(run_id: str, path: str) -> np.ndarray:
    """A logged image (RGB uint8), read from the store (an artifact never changes: kept in memory)."""
    from PIL import Image

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one small file: no bar
    with tempfile.TemporaryDirectory() as folder:
        local = track.client().download_artifacts(run_id, path, folder)
        return np.asarray(Image.open(local).convert("RGB"))


def curves_figure(runs: list[Run], epoch: int | None = None):
    """The runs' FID over epochs on one axis, each with its 95% interval band; the chosen epoch marked."""
    curves = {r.name: compare.fid_curve(r.run_id) for r in runs}
    bands = {r.name: compare.fid_band(r.run_id) for r in runs}
    fig = viz.fid_curves(curves, title="FID over training (band: each run's 95% interval)", bands=bands)
    if epoch is not None:
        fig.axes[0].axvline(epoch, color="grey", linestyle="--", linewidth=1)
    return fig


def samples_side_by_side(grids: dict[str, np.ndarray]) -> tuple[np.ndarray | None, list[str], list[str]]:
    """photo | real sketch | each run's generated sketches, from the runs' logged sample grids:
    (grid, column titles, the runs left out because their grid shows other test faces or sizes)."""
    if not grids:
        return None, [], []
    names = list(grids)
    first = viz.grid_columns(grids[names[0]], GRID_COLUMNS)
    columns, titles, left_out = first[:2], ["photo", "real sketch"], []
    for name in names:
        photo, sketch, generated = viz.grid_columns(grids[name], GRID_COLUMNS)
        if photo.shape == first[0].shape and np.array_equal(photo, first[0]) and np.array_equal(sketch, first[1]):
            columns.append(generated)
            titles.append(name)
        else:
            left_out.append(name)
    return viz.side_by_side(columns), titles, left_out


def _img(data: str, alt: str, caption: str = "") -> str:
    figcaption = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure style="margin:4px 0"><img src="data:image/png;base64,{data}" alt="{alt}">{figcaption}</figure>'


def view_html(runs: list[Run], epoch: int | None, logged: dict[str, dict]) -> str:
    """The selection's picture: FID curves, then at `epoch` the sample grids side by side and
    each run's error heatmap (logged: each run's logged_images), with a line for what a run has
    not logged."""
    if not runs:
        return "<p>Select one or more runs above (ctrl- or shift-click for several).</p>"
    parts = [_img(viz.figure_png_data(curves_figure(runs, epoch)), "FID curves")]
    grids, heatmaps, missing = {}, {}, []
    for r in runs:
        sample_at, heatmap_at = (logged[r.run_id].get(key, {}) for key in (keys.SAMPLES, keys.ERROR_HEATMAP))
        if epoch in sample_at:
            grids[r.name] = image(r.run_id, sample_at[epoch])
        else:
            missing.append(r.name)
        if epoch in heatmap_at:
            heatmaps[r.name] = image(r.run_id, heatmap_at[epoch])
    grid, titles, other_faces = samples_side_by_side(grids)
    if grid is not None:
        figure = viz.figure_png_data(viz.titled_figure(grid, titles))
        parts.append(_img(figure, "samples side by side", f"the same test faces at epoch {epoch}"))
    for name, heatmap in heatmaps.items():
        parts.append(_img(viz.png_data(heatmap), f"error heatmap {name}", f"{name}: |generated - real|"))
    notes = [f"{', '.join(missing)}: no samples logged at epoch {epoch}"] if missing else []
    notes += [f"{', '.join(other_faces)}: other test faces or size, not set beside the rest"] if other_faces else []
    return "".join(f"<p><b>{n}</b></p>" for n in notes) + "".join(parts)


class RunExplorer:
    """The experiment's runs as a table (select several), the epoch, a button that re-reads the
    store, and the selection's view, redrawn on each change."""

    def __init__(self, experiment: str):
        import ipywidgets as w

        self.experiment = experiment
        self.header = w.HTML()
        self.table = w.SelectMultiple(layout=w.Layout(width="100%"))
        self.epoch = w.SelectionSlider(options=[0], description="epoch", continuous_update=False, disabled=True)
        self.reread = w.Button(description="re-read the store", icon="refresh")
        self.view = w.HTML()
        for widget, name in ((self.table, "labkit-runs"), (self.epoch, "labkit-epoch"), (self.view, "labkit-explore")):
            widget.add_class(name)
        style = w.HTML("<style>.labkit-runs select, .labkit-runs-header {font-family: monospace}</style>")
        self.box = w.VBox([style, self.header, self.table, w.HBox([self.epoch, self.reread]), self.view])
        self._busy = False
        self.table.observe(lambda _: self._selected(), "value")
        self.epoch.observe(lambda _: self._draw(), "value")
        self.reread.on_click(lambda _: self.load())
        self.load()

    def load(self) -> None:
        """(Re-)read the experiment's runs, keeping the selection where the runs are still there."""
        self.runs = {r.run_id: r for r in experiment_runs(self.experiment)}
        self.logged: dict[str, dict] = {}  # run id -> its logged_images, listed once until re-read
        header, lines = table_rows(list(self.runs.values()))
        self.header.value = f'<pre class="labkit-runs-header" style="margin:0">{header}</pre>'
        kept = [i for i in self.table.value if i in self.runs] or _one_per_ablation(list(self.runs.values()))
        self._busy = True
        self.table.options = list(zip(lines, self.runs))
        self.table.rows = min(12, max(3, len(lines)))
        self._busy = False
        self.table.value = tuple(kept)
        self._selected()

    def select(self, *names: str) -> None:
        """Select runs by name (as a click in the table does)."""
        by_name = {r.name: r.run_id for r in self.runs.values()}
        self.table.value = tuple(by_name[n] for n in names)

    @property
    def selected(self) -> list[Run]:
        return [self.runs[i] for i in self.table.value]

    def _logged(self) -> dict[str, dict]:
        """The selected runs' logged images, each run's artifacts listed once until re-read."""
        for r in self.selected:
            if r.run_id not in self.logged:
                self.logged[r.run_id] = logged_images(r.run_id)
        return self.logged

    def _selected(self) -> None:
        if self._busy:
            return
        logged = self._logged()
        epochs = sorted({step for r in self.selected for step in logged[r.run_id].get(keys.SAMPLES, {})})
        self._busy = True
        kept = not self.epoch.disabled and self.epoch.value in epochs  # the epoch chosen, else the newest
        chosen = self.epoch.value if kept else (epochs[-1] if epochs else 0)
        self.epoch.options, self.epoch.disabled = (epochs or [0]), not epochs
        self.epoch.value = chosen
        self._busy = False
        self._draw()

    def _draw(self) -> None:
        if not self._busy:
            epoch = None if self.epoch.disabled else self.epoch.value
            self.view.value = view_html(self.selected, epoch, self._logged())

    def _repr_mimebundle_(self, **kwargs):
        """The widgets, and the table and view as HTML for a notebook read without a kernel (its
        saved copy, the docs): JupyterLab shows the widgets."""
        bundle = self.box._repr_mimebundle_(**kwargs)
        lines = "\n".join(label for label, run_id in self.table.options if run_id in self.table.value)
        bundle["text/html"] = f"{self.header.value}<pre>{lines}</pre>{self.view.value}"
        return bundle


def _one_per_ablation(runs: list[Run]) -> list[str]:
    """The default selection: each ablation's lowest seed."""
    chosen: dict[str, Run] = {}
    for r in sorted(runs, key=lambda r: (r.ablation, r.seed.zfill(6))):
        chosen.setdefault(r.ablation, r)
    return [r.run_id for r in chosen.values()]


def runs(experiment: str = "faces") -> RunExplorer:
    """The run explorer of an experiment, for a notebook cell: `labkit.explore.runs("faces")`."""
    return RunExplorer(experiment)
