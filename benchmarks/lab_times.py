"""How long the README's two commands take: the demo's phases, the whole suite and its slowest
tests, and the quick tier (`-m "not slow"`), each run as a new user runs it, on this machine.

    .venv/bin/python benchmarks/lab_times.py [--demo] [--suite] [--quick] [--set precision=fp32]

With no choice it runs all three, one after another (the demo in a fresh runs/ folder of its own,
so nothing it finds is reused). `--set` goes to the demo (`labkit demo --set`): on a CPU with
native bf16, `--set precision=fp32` times the path of CPUs without it. Targets: the demo <= 300 s,
the suite <= 12 min, the quick tier <= 3 min, on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def demo(settings: list[str]) -> None:
    runs = Path(tempfile.mkdtemp(prefix="labkit-demo-"))
    env = {**os.environ, "LABKIT_RUNS": str(runs / "runs"), "LABKIT_LOG": str(runs / "lablog")}
    command = [str(BIN / "labkit"), "demo", "--no-progress", *[f"--set={s}" for s in settings]]
    started = time.time()
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.time() - started
    phases = re.findall(r"^\[demo\] (.+): (\d+)s$", out.stdout, re.M)
    jobs = re.findall(r"^    (\S+): (FINISHED|FAILED|KILLED|SKIPPED|BUSY) run \w+ in (\d+)s", out.stdout, re.M)
    print(f"demo ({' '.join(settings) or 'defaults'}): {seconds:.0f} s, exit {out.returncode}")
    for name, value in phases:
        print(f"  phase {name:24} {value:>5} s")
    for name, status, value in sorted(jobs, key=lambda j: -int(j[2])):
        print(f"  notebook {name:30} {status:9} {value:>5} s")
    if out.returncode:
        print(out.stdout[-3000:] + out.stderr[-3000:])


def pytest(label: str, extra: list[str]) -> None:
    command = [str(BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=15", *extra]
    started = time.time()
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.time() - started
    lines = out.stdout.splitlines()
    slowest = [line for line in lines if re.match(r"^\d+\.\d+s (call|setup|teardown)", line)]
    closing = next((line for line in reversed(lines) if re.search(r"\d+ (passed|failed)", line)), "no result")
    print(f"{label}: {seconds / 60:.1f} min ({closing.strip('= ')})")
    for line in slowest:
        print(f"  {line}")
    if out.returncode:
        print(out.stdout[-3000:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--suite", action="store_true")
    parser.add_argument("--quick", action="store_true", help='the quick tier, pytest -m "not slow"')
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="for the demo")
    args = parser.parse_args()
    everything = not (args.demo or args.suite or args.quick)
    from labkit.speed import cpu_features

    print(f"{os.cpu_count()} cores; CPU: {cpu_features()}")
    if args.demo or everything:
        demo(args.set)
    if args.quick or everything:
        pytest("quick tier (-m 'not slow')", ["-m", "not slow"])
    if args.suite or everything:
        pytest("suite", [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
