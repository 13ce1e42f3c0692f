"""How long `labkit` takes to refuse bad input, on an idle machine and on one whose cores are
all busy (a burner process per core, as when a batch of runs trains beside you). Target: every
refusal within 3 s on 2 cores, busy or not.

    .venv/bin/python benchmarks/refusals.py [--repeat 5]

Each case is a real `labkit` process in a fresh runs/ folder; the time is until it exits.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "a mistyped parameter": ["ablate", "{typo}"],
    "a value out of range (--set)": ["ablate", "baseline", "--set", "lr=-1"],
    "unreadable YAML after --set": ["ablate", "baseline", "--set", "lr=[1"],
    "--seeds 0": ["ablate", "baseline", "--seeds", "0"],
    "a device this machine has not": ["ablate", "baseline", "--set", "device=cuda:7"],
    "compare of an unknown experiment": ["compare", "--experiment", "nosuch"],
}


def _burn() -> None:
    while True:
        pass


def _time(args: list[str], env: dict) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "labkit.cli", *args], cwd=ROOT, env=env, capture_output=True)
    return time.perf_counter() - started, done.returncode


def measure(repeat: int, typo: Path, busy: bool) -> dict[str, list[float]]:
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(os.cpu_count() if busy else 0)]
    for b in burners:
        b.start()
    try:
        out = {}
        for name, args in CASES.items():
            env = {**os.environ, "LABKIT_RUNS": tempfile.mkdtemp(prefix="labkit-refusal-")}
            times = []
            for _ in range(repeat):
                seconds, code = _time([a.format(typo=typo) for a in args], env)
                assert code == 2, f"{name}: exit {code}, not a refusal"
                times.append(seconds)
            out[name] = times
        return out
    finally:
        for b in burners:
            b.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    typo = Path(tempfile.mkdtemp()) / "typo.yaml"
    typo.write_text("ablation: baseline\nlamda_l1: 5\n")
    print(f"{os.cpu_count()} cores; each case run {args.repeat} times, seconds to the refusal (median, max)")
    for busy in (False, True):
        print(f"\n{'every core busy' if busy else 'idle'}:")
        for name, times in measure(args.repeat, typo, busy).items():
            print(f"  {name:36} {statistics.median(times):5.2f}  {max(times):5.2f}")


if __name__ == "__main__":
    main()
