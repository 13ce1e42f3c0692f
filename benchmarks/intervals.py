"""How well the 95% intervals of FID, KID and a paired FID difference are calibrated: in simulated
worlds where the truth is known, how often they cover it and how wide they are against the true
95% spread. Target: coverage 93-97 in 100 and width at most 1.25 times the true spread.

    .venv/bin/python benchmarks/intervals.py [--worlds suite full inception-100 inception-338]
        [--methods bootstrap jackknife jackknife-2] [--tests 100]

A world draws, for N test faces, the features of the real sketch and of two generators' sketches
of each face (the pair is the unit, as in the lab). The truth of each statistic is its mean over
`--draws` test sets (what an interval at this N covers: FID at this N); the true spread is the
2.5-97.5 percentile range of those draws.

- suite: Gaussian, 48 dimensions, 40 faces (the suite's world: fewer faces than dimensions).
- full: Gaussian, 32 dimensions, 100 faces (more faces than dimensions).
- inception-100, inception-338: shaped like Inception's pool features: 2048 dimensions, a
  rank-64 power-law spectrum, heavy-tailed (Laplace) latents, non-negative (after a ReLU).

Methods:
- jackknife: the lab's (labkit.metrics.jackknife): the delete-one jackknife variance (Efron &
  Stein 1981), a normal interval.
- bootstrap: the lab's before it, which older runs hold (labkit.metrics.bootstrap:
  bias-corrected percentile, paired resamples).
- jackknife-2: a candidate: the delete-one variance less half its second-order excess
  estimated from delete-two values (see delete_two_variance), a normal interval.

Coverage of 100 test sets has a Monte Carlo error of about 2 in 100 (a perfect method lands
outside 93-97 in one cell of four): `--tests` more for a sharper answer. At N = 338 a test set
costs the jackknife about 10 s on 2 cores, jackknife-2 about 30 s more.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labkit.metrics import bootstrap, jackknife  # noqa: E402
from labkit.metrics.grams import Grams  # noqa: E402

Z = 1.959963984540054  # the normal's 97.5% point
PAIRS = 300  # delete-two pairs for jackknife-2 (every pair when there are fewer)


class World:
    def __init__(self, dims: int, faces: int, shape: str, rank: int = 64, seed: int = 7):
        rng = np.random.default_rng(seed)
        self.faces, self.shape = faces, shape
        if shape == "gaussian":
            self.mix = rng.normal(size=(dims, dims)) / np.sqrt(dims) * np.linspace(2.0, 0.3, dims)
            self.shift = rng.normal(size=dims) * 0.3
        else:
            self.mix = rng.normal(size=(dims, rank)) / np.sqrt(rank) * np.arange(1, rank + 1) ** -0.7
            self.shift = rng.normal(size=dims) * 0.3 / 4

    def latent(self, rng, n):
        k = self.mix.shape[1]
        return rng.normal(size=(n, k)) if self.shape == "gaussian" else rng.laplace(size=(n, k)) / np.sqrt(2)

    def draw(self, rng):
        """(real, a, b): the features of the real sketches and of two generators' of N faces."""
        n = self.faces
        real = self.latent(rng, n) @ self.mix.T
        noise = self.latent(rng, n) @ self.mix.T
        a = 0.8 * real + 0.5 * noise + self.shift
        b = 0.8 * real + 0.6 * noise + 1.3 * self.shift + 0.3 * self.latent(rng, n) @ self.mix.T
        if self.shape != "gaussian":
            real, a, b = (np.maximum(x, 0) for x in (real, a, b))
        return real, a, b


WORLDS = {
    "suite": lambda: World(48, 40, "gaussian"),
    "full": lambda: World(32, 100, "gaussian"),
    "inception-100": lambda: World(2048, 100, "inception"),
    "inception-338": lambda: World(2048, 338, "inception"),
}


def statistics(grams_a: Grams, grams_b: Grams, masks: np.ndarray) -> np.ndarray:
    """(len(masks), 3): FID of a, KID of a, FID of a - FID of b, with each mask's faces kept."""
    return np.array([(grams_a.fid(m), grams_a.kid(m), grams_a.fid(m) - grams_b.fid(m)) for m in masks])


def truth(world: World, draws: int, rng) -> tuple[np.ndarray, np.ndarray]:
    values = []
    for _ in range(draws):
        real, a, b = world.draw(rng)
        values.append(statistics(Grams.of(real, a), Grams.of(real, b), np.ones((1, world.faces), int))[0])
    values = np.array(values)
    return values.mean(0), np.quantile(values, 0.975, 0) - np.quantile(values, 0.025, 0)


def bootstrap_intervals(grams_a, grams_b, estimate, resamples):
    counts = bootstrap.face_counts(len(grams_a.rr), resamples)
    reps = statistics(grams_a, grams_b, counts)
    return np.array([bootstrap.interval(estimate[k], reps[:, k]) for k in range(3)])


def delete_two_variance(estimate, one, two, pairs):
    """D1 - D2 / 2: the delete-one jackknife variance D1 counts a statistic's k-face part about
    k times; Efron & Stein's delete-two term D2 removes the two-face excess exactly and
    over-removes from three faces on; the two partial sums of that alternating series bracket
    the variance, and this is their mean."""
    n = len(one)
    d1 = (n - 1) / n * ((one - one.mean(0)) ** 2).sum(0)
    q = estimate - one[pairs[:, 0]] - one[pairs[:, 1]] + two
    d2 = (n - 2) * (n - 3) ** 2 / (n * (n - 1) ** 2) * n * (n - 1) / 2 * (q**2).mean(0)
    return np.maximum(d1 - d2 / 2, d1 / 2)


def as_interval(estimate, variances):
    return np.stack([estimate - Z * np.sqrt(variances), estimate + Z * np.sqrt(variances)], 1)


def lab_intervals(real, a, b, estimate):
    """The lab's jackknife intervals of FID, KID and the paired FID difference."""
    left_a, left_b = jackknife.left_out(real, a), jackknife.left_out(real, b)
    values = (left_a["fid"], left_a["kid"], left_a["fid"] - left_b["fid"])
    return np.array([jackknife.run_interval(e, v) for e, v in zip(estimate, values)])


def delete_two_intervals(grams_a, grams_b, estimate, rng):
    n = len(grams_a.rr)
    everyone = np.array([(i, j) for i in range(n) for j in range(i + 1, n)])
    pairs = everyone if len(everyone) <= PAIRS else everyone[rng.choice(len(everyone), PAIRS, replace=False)]
    masks = np.ones((n + len(pairs), n), int)
    masks[np.arange(n), np.arange(n)] = 0
    masks[n + np.arange(len(pairs)), pairs[:, 0]] = 0
    masks[n + np.arange(len(pairs)), pairs[:, 1]] = 0
    values = statistics(grams_a, grams_b, masks)
    return as_interval(estimate, delete_two_variance(estimate, values[:n], values[n:], pairs))


def run(name: str, methods: list[str], tests: int, draws: int, resamples: int) -> None:
    world = WORLDS[name]()
    rng = np.random.default_rng(1)
    start = time.time()
    mean, spread = truth(world, draws, rng)
    covered = {m: np.zeros(3) for m in methods}
    width = {m: np.zeros(3) for m in methods}
    for _ in range(tests):
        real, a, b = world.draw(rng)
        grams_a, grams_b = Grams.of(real, a), Grams.of(real, b)
        estimate = statistics(grams_a, grams_b, np.ones((1, world.faces), int))[0]
        found = {}
        if "jackknife" in methods:
            found["jackknife"] = lab_intervals(real, a, b, estimate)
        if "bootstrap" in methods:
            found["bootstrap"] = bootstrap_intervals(grams_a, grams_b, estimate, resamples)
        if "jackknife-2" in methods:
            found["jackknife-2"] = delete_two_intervals(grams_a, grams_b, estimate, rng)
        for m in methods:
            low, high = found[m][:, 0], found[m][:, 1]
            covered[m] += (low <= mean) & (mean <= high)
            width[m] += high - low
    print(f"\n{name}: {world.faces} faces, {world.mix.shape[0]} dims, {world.shape}; {tests} test sets", flush=True)
    print(f"  {'method':<12} {'coverage FID / KID / Δ':<26} {'width ÷ true spread FID / KID / Δ':<36} target")
    for m in methods:
        cover, ratio = covered[m] / tests, width[m] / tests / spread
        ok = ((cover >= 0.93) & (cover <= 0.97) & (ratio <= 1.25)).all()
        print(
            f"  {m:<12} {' / '.join(f'{c:.2f}' for c in cover):<26} {' / '.join(f'{r:.2f}' for r in ratio):<36} "
            f"{'met' if ok else 'missed'}"
        )
    print(f"  ({time.time() - start:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", choices=list(WORLDS), default=list(WORLDS))
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=["jackknife", "bootstrap", "jackknife-2"],
        default=["jackknife", "bootstrap", "jackknife-2"],
    )
    parser.add_argument("--tests", type=int, default=100, help="test sets per world, each given its intervals")
    parser.add_argument("--draws", type=int, default=2000, help="test sets drawn for the truth")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (the lab's default)")
    args = parser.parse_args()
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    print(f"{cpu or platform.machine()}, {os.cpu_count()} cores; truth from {args.draws} draws per world")
    for name in args.worlds:
        run(name, args.methods, args.tests, args.draws, args.resamples)


if __name__ == "__main__":
    main()
