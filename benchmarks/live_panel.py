"""What the live training panel costs: a face run at the demo's size trained with the panel on
(as in a JupyterLab kernel), the seconds its redraws took against the run's training time.

    .venv/bin/python benchmarks/live_panel.py [--ablation baseline] [--set NAME=VALUE ...]

The panel's images go nowhere (no Jupyter frontend here); what is measured is what the kernel
does for them: render the figure to PNG and hand it over. Target: at most 2% of training.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ablation", default="baseline")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a face parameter")
    args = parser.parse_args()
    os.environ["LABKIT_RUNS"] = tempfile.mkdtemp(prefix="panel-bench-")
    os.environ["JPY_SESSION_NAME"] = "notebooks/baseline.ipynb"  # as a Jupyter server starts a kernel
    from IPython.display import DisplayHandle

    DisplayHandle.display = DisplayHandle.update = lambda self, obj, **kw: None  # no frontend to send to

    from labkit import track
    from labkit.config import SketchConfig, parse_override
    from labkit.data import load_faces
    from labkit.demo import DEMO_SIZE
    from labkit.train import fit

    settings = dict(parse_override(text) for text in [*DEMO_SIZE[SketchConfig], *args.set])
    cfg = SketchConfig(
        **{"ablation": args.ablation, "experiment": "panel-bench", "fid_backbone": "random-init", **settings}
    )
    data = load_faces(cfg, progress=False)
    run = track.open_run(cfg)
    started = time.perf_counter()
    t = fit(cfg, data, run, progress=False)
    total = time.perf_counter() - started
    run.end()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {cfg.ablation} at the demo's size")
    print(
        f"fit {total:.1f} s, {t.step} steps, {len(t.history)} evaluations; the panel drew {t.panel.draws} times in "
        f"{t.panel.spent:.2f} s ({t.panel.spent / t.panel.draws * 1000:.0f} ms a draw): "
        f"{100 * t.panel.spent / total:.2f}% of the run (target <= 2%)"
    )


if __name__ == "__main__":
    main()
