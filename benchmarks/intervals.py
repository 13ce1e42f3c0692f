"""How well the 95% intervals of FID, KID and a paired FID difference are calibrated: in simulated
worlds where the truth is known, how often they cover it and how wide they are against the true
95% spread. Target: coverage 93-97 in 100 and width at most 1.25 times the true spread.

    .venv/bin/python benchmarks/intervals.py [--worlds suite full inception-100 inception-338]
        [--methods jackknife-2 jackknife bootstrap] [--tests 100]

A world draws, for N test faces, the features of the real sketch and of two generators' sketches
of each face (the pair is the unit, as in the lab). The truth of each statistic is its mean over
`--draws` test sets (what an interval at this N covers: FID at this N); the true spread is the
2.5-97.5 percentile range of those draws.

- suite: Gaussian, 48 dimensions, 40 faces (the suite's world: fewer faces than dimensions).
- full: Gaussian, 32 dimensions, 100 faces (more faces than dimensions).
- inception-100, inception-338: shaped like Inception's pool features: 2048 dimensions, a
  rank-64 power-law spectrum, heavy-tailed (Laplace) latents, non-negative (after a ReLU).

Methods:
- jackknife-2: the lab's (labkit.metrics.jackknife): the delete-one jackknife variance less half
  of Efron & Stein's delete-two correction, Student's t with n - 1 degrees of freedom.
- jackknife: the delete-one variance alone, which runs logged before the delete-two values hold.
- bootstrap: what runs logged before the jackknife hold (labkit.metrics.bootstrap:
  bias-corrected percentile, paired resamples).
- oracle (always printed): the estimate ± 1.96 true standard deviations, the best any interval
  from a variance can do; where it lands outside 93-97, the statistic is not normal at this N
  (KID's heavy tails at 2048 dimensions).

Coverage of 100 test sets has a Monte Carlo error of about 2 in 100 (a perfect method lands
outside 93-97 in one cell of four): `--tests` more for a sharper answer. At N = 338 a test set
costs the delete-one values about 10 s on 2 cores, the delete-two values about 20 s more (two
generators: a lab evaluation is half of that).
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


def truth(world: World, draws: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, 2.5-97.5 percentile range, standard deviation) of each statistic over `draws` test sets."""
    values = []
    for _ in range(draws):
        real, a, b = world.draw(rng)
        values.append(statistics(Grams.of(real, a), Grams.of(real, b), np.ones((1, world.faces), int))[0])
    values = np.array(values)
    return values.mean(0), np.quantile(values, 0.975, 0) - np.quantile(values, 0.025, 0), values.std(0)


def bootstrap_intervals(grams_a, grams_b, estimate, resamples):
    counts = bootstrap.face_counts(len(grams_a.rr), resamples)
    reps = statistics(grams_a, grams_b, counts)
    return np.array([bootstrap.interval(estimate[k], reps[:, k]) for k in range(3)])


def lab_intervals(real, a, b, estimate) -> dict[str, np.ndarray]:
    """The lab's intervals of FID, KID and the paired FID difference (jackknife-2), and the
    delete-one jackknife's (jackknife), which runs logged before the delete-two values hold."""
    left_a, left_b = jackknife.left_out(real, a), jackknife.left_out(real, b)
    out = {}
    for method, paired in (("jackknife-2", True), ("jackknife", False)):

        def row(left, metric, value, paired=paired):
            return jackknife.LeftOut(value, left[metric], left[metric + jackknife.PAIRED] if paired else None)

        fid_a, kid_a = row(left_a, "fid", estimate[0]), row(left_a, "kid", estimate[1])
        _, *delta, _ = jackknife.difference(fid_a, row(left_b, "fid", estimate[0] - estimate[2]))
        out[method] = np.array([jackknife.mean_interval(fid_a), jackknife.mean_interval(kid_a), delta])
    return out


def run(name: str, methods: list[str], tests: int, draws: int, resamples: int) -> None:
    world = WORLDS[name]()
    rng = np.random.default_rng(1)
    start = time.time()
    mean, spread, sd = truth(world, draws, rng)
    methods = [*methods, "oracle"]
    covered = {m: np.zeros(3) for m in methods}
    width = {m: np.zeros(3) for m in methods}
    for _ in range(tests):
        real, a, b = world.draw(rng)
        grams_a, grams_b = Grams.of(real, a), Grams.of(real, b)
        estimate = statistics(grams_a, grams_b, np.ones((1, world.faces), int))[0]
        found = {}
        if {"jackknife-2", "jackknife"} & set(methods):
            found.update(lab_intervals(real, a, b, estimate))
        if "bootstrap" in methods:
            found["bootstrap"] = bootstrap_intervals(grams_a, grams_b, estimate, resamples)
        found["oracle"] = np.stack([estimate - 1.959964 * sd, estimate + 1.959964 * sd], 1)
        for m in methods:
            low, high = found[m][:, 0], found[m][:, 1]
            covered[m] += (low <= mean) & (mean <= high)
            width[m] += high - low
    print(f"\n{name}: {world.faces} faces, {world.mix.shape[0]} dims, {world.shape}; {tests} test sets", flush=True)
    print(f"  {'method':<12} {'coverage % FID / KID / Δ':<26} {'width ÷ true spread FID / KID / Δ':<36} target")
    for m in methods:
        cover, ratio = covered[m] / tests, width[m] / tests / spread
        ok = ((cover >= 0.93) & (cover <= 0.97) & (ratio <= 1.25)).all()
        print(
            f"  {m:<12} {' / '.join(f'{100 * c:.1f}' for c in cover):<26} {' / '.join(f'{r:.2f}' for r in ratio):<36} "
            f"{'met' if ok else 'missed'}"
        )
    print(f"  ({time.time() - start:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", choices=list(WORLDS), default=list(WORLDS))
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=["jackknife-2", "jackknife", "bootstrap"],
        default=["jackknife-2", "jackknife", "bootstrap"],
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
