"""How long `labkit` takes to refuse bad input: every case of the catalogue (tests/bad_inputs.py,
the rows of docs/bad-inputs.md), on an idle machine and on one whose cores are all busy (a burner
process per core, as when a batch of runs trains beside you). Target: every refusal within 3 s on
2 cores, busy or not.

    .venv/bin/python benchmarks/refusals.py [--repeat 3]

Each try is a real `labkit` process in a fresh lab folder; the time is until it exits. A case
that does not refuse (exit 2, nothing created) is printed as such.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bad_inputs import CASES, attempt  # noqa: E402


def _burn() -> None:
    while True:
        pass


def measure(repeat: int, busy: bool) -> dict[str, list[float]]:
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(os.cpu_count() if busy else 0)]
    for b in burners:
        b.start()
    try:
        out = {}
        for case in CASES:
            times = []
            for _ in range(repeat):
                with tempfile.TemporaryDirectory(prefix="labkit-refusal-") as folder:
                    outcome = attempt(case, Path(folder))
                if outcome.code != 2 or outcome.changed:
                    print(f"  NOT REFUSED: {case.given} (exit {outcome.code}, changed {outcome.changed})")
                times.append(outcome.seconds)
            out[case.given] = times
        return out
    finally:
        for b in burners:
            b.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; {len(CASES)} bad inputs, each tried {args.repeat} times; seconds to the refusal")
    idle, busy = measure(args.repeat, busy=False), measure(args.repeat, busy=True)
    print(f"\n{'bad input':64} {'idle':>6} {'busy':>6}   (median; busy: a burner on every core)")
    for given in idle:
        print(f"{given[:64]:64} {statistics.median(idle[given]):6.2f} {statistics.median(busy[given]):6.2f}")
    for name, times in (("idle", idle), ("every core busy", busy)):
        slowest = max(times, key=lambda given: max(times[given]))
        print(
            f"{name}: median of the cases {statistics.median(map(statistics.median, times.values())):.2f} s, "
            f"the slowest try {max(times[slowest]):.2f} s ({slowest}), over 3 s: "
            f"{sum(max(t) > 3 for t in times.values())}"
        )


if __name__ == "__main__":
    main()
