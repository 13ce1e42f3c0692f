"""How long the `labkit` commands that only read take, as a person types them: each a real process
in a lab folder whose store holds a few hundred runs (made with MLflow's client: parameters,
metrics over 10 steps, tags, as labkit logs them). Target: each within 1 s on an idle 2-core
machine.

    .venv/bin/python benchmarks/read_only.py [--runs 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABKIT = [sys.executable, "-m", "labkit.cli"]
COMMANDS = (
    ["--version"],
    ["--help"],
    ["params", "glad"],
    ["runs"],
    ["runs", "--all"],
    ["runs", "--all", "--experiment", "faces"],
    ["log", "show", "--no-images"],
    ["ui", "--print-only"],
)


def fill_store(folder: Path, runs: int) -> None:
    """A store of `runs` finished face runs in two experiments, and a lab log that refers to them."""
    os.environ["LABKIT_RUNS"], os.environ["LABKIT_LOG"] = str(folder / "runs"), str(folder / "lablog")
    from mlflow.entities import Param

    from labkit import keys, lablog, track
    from labkit.config import SketchConfig

    c = track.client()
    for i in range(runs):
        cfg = SketchConfig(experiment="faces" if i % 2 else "sweeps", seed=i)
        run = track.Run(c, track.create_run(cfg, label=f"glad{i}"))
        params, settings = cfg.recorded()
        c.log_batch(run.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        for step in range(1, 11):
            run.log_metrics({keys.FID: 40.0 - step, keys.KID: 0.04}, step=step)
        run.set_tags({keys.SETTINGS: ", ".join(f"{k}={v}" for k, v in settings.items())})
        c.set_terminated(run.run_id, "FINISHED")
    lablog.add("first look at run:glad1 and run:glad3", "ideas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="labkit-read-only-"))
    try:
        fill_store(folder, args.runs)
        print(f"{os.cpu_count()} cores; a store of {args.runs} runs; each command {args.repeat} times")
        print(f"\n{'command':44} {'median s':>9} {'slowest s':>10}")
        env = {**os.environ, "LABKIT_ROOT": str(ROOT)}
        for command in COMMANDS:
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                done = subprocess.run([*LABKIT, *command], cwd=ROOT, env=env, capture_output=True, text=True)
                times.append(time.perf_counter() - started)
                if done.returncode != 0:
                    print(f"  FAILED: labkit {' '.join(command)}: {done.stderr.strip()[-300:]}")
            print(f"{'labkit ' + ' '.join(command):44} {statistics.median(times):9.2f} {max(times):10.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
