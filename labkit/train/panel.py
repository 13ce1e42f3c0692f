"""The live view of a face run training in JupyterLab: under the cell that runs `fit`, one output
area holds the loss curves, each evaluation's FID with its 95% interval and the newest sample
grid, redrawn in place as training goes.

Only where a person watches: a kernel that a Jupyter server started for a notebook (it sets
JPY_SESSION_NAME). Under papermill or `labkit ablate` nothing interactive is written (the
executed notebook keeps the views drawn after training). A redraw renders one small figure; the
panel waits at least BUDGET_FACTOR times the last redraw's cost before the next one (and at
least MIN_SECONDS), so drawing takes about 1/BUDGET_FACTOR of the training's time, plus one draw
per evaluation, which is drawn at once (benchmarks/live_panel.py measures it). The sample grid is
its own PNG, encoded once per evaluation: matplotlib draws only the two small plots.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .. import keys, viz

MIN_SECONDS = 2.0
BUDGET_FACTOR = 100  # drawing <= 1/100 of the time between draws, evaluations' draws included


def watched() -> bool:
    """Whether a person watches this kernel: a Jupyter server started it for a notebook."""
    return bool(os.environ.get("JPY_SESSION_NAME"))


class Panel:
    """One output area, redrawn in place: losses at log steps, FID (with its interval) and the
    sample grid at evaluations. `spent` is the seconds its drawing took."""

    def __init__(self, title: str, evaluations: list[tuple[int, dict]] = ()):
        """`evaluations`: (epoch, metrics) of a resumed run's earlier evaluations, drawn from the start."""
        from IPython.display import DisplayHandle

        self.title, self.spent, self.draws = title, 0.0, 0
        self.steps, self.losses = [], {}
        self.epochs, self.fids, self.intervals = [], [], []
        self.grid: np.ndarray | None = None
        self._grid_png = ""  # base64, encoded once per evaluation
        self._next = 0.0
        for epoch, metrics in evaluations:
            self._add(epoch, metrics)
        self.handle = DisplayHandle()
        self.handle.display({"text/plain": f"{title}: training starts"}, raw=True)

    def step(self, step: int, means: dict[str, float]) -> None:
        self.steps.append(step)
        for name, value in means.items():
            if name.startswith("loss_"):
                self.losses.setdefault(name, []).append(value)
        if time.monotonic() >= self._next:
            self.draw()

    def evaluation(self, epoch: int, metrics: dict[str, float], grid: np.ndarray | None) -> None:
        self._add(epoch, metrics)
        self.grid = grid
        self._grid_png = "" if grid is None else viz.png_data(grid)
        self.draw()

    def _add(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs.append(epoch)
        self.fids.append(metrics.get(keys.FID, np.nan))
        self.intervals.append(
            (metrics.get(keys.ci(keys.FID, "low"), np.nan), metrics.get(keys.ci(keys.FID, "high"), np.nan))
        )

    def figure(self):
        """The panel's plots: the losses | FID with its interval band."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 3), dpi=72)
        axes = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.8, wspace=0.25)  # tight_layout costs a draw
        for name, values in self.losses.items():
            axes[0].plot(self.steps[-len(values) :], values, label=name.removeprefix("loss_"), lw=1)
        axes[0].set(title="losses (mean per log step)", xlabel="step")
        if self.losses:
            axes[0].legend(fontsize=8)
        if self.epochs:
            low, high = np.array(self.intervals, dtype=float).T
            axes[1].fill_between(self.epochs, low, high, alpha=0.25, label="95% interval")
            axes[1].plot(self.epochs, self.fids, "o-", label="FID")
            axes[1].legend(fontsize=8)
            axes[1].set_title(f"FID {self.fids[-1]:.2f} [{low[-1]:.2f}, {high[-1]:.2f}] at epoch {self.epochs[-1]}")
        else:
            axes[1].set_title("FID: at the first evaluation")
        axes[1].set(xlabel="epoch")
        fig.suptitle(self.title, fontsize=10)
        return fig

    def html(self) -> str:
        plots = viz.figure_png_data(self.figure())
        grid = (
            f'<figure style="margin:0"><img src="data:image/png;base64,{self._grid_png}" style="max-height:240px">'
            "<figcaption>photo | real sketch | generated, at the last evaluation</figcaption></figure>"
            if self._grid_png
            else ""
        )
        return (
            f'<div class="labkit-panel" style="display:flex;gap:12px;align-items:flex-start">'
            f'<img src="data:image/png;base64,{plots}">{grid}</div>'
        )

    def draw(self) -> None:
        from IPython.display import HTML

        started = time.monotonic()
        self.handle.update(HTML(self.html()))
        took = time.monotonic() - started
        self.spent, self.draws = self.spent + took, self.draws + 1
        self._next = time.monotonic() + max(MIN_SECONDS, BUDGET_FACTOR * took)
