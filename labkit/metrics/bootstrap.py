"""Bootstrap intervals, as runs logged before the jackknife (labkit.metrics.jackknife) hold them:
such a run's last evaluation left `fid/bootstrap.npz`, FID and KID on each resample of its test
faces, and compare still reads it, so those runs keep their intervals (and a table that mixes
them with jackknife rows says so). benchmarks/intervals.py also measures them beside the
jackknife.

A resample draws N test faces with replacement, each bringing its real and its generated
sketch (so real and generated stay paired), and is held as counts per face. Every run on the
same test faces draws the same resamples (a fixed seed per N and subset): two runs' replicates
are paired resample by resample, which is what a paired difference needs.

FID is biased upwards by the noise of its covariances, and a resample, whose faces repeat,
has more of it: its replicates sit well above the estimate (by one interval width in the
tests' simulation, 48 dimensions and 40 faces; by 2.5 at 256 dimensions and 120 faces). The
interval is therefore the bias-corrected percentile interval: the replicates' 2.5 and 97.5
percentiles moved down by their mean's excess over
the estimate (Efron & Tibshirani 1993, ch. 10 and 13). What it covers is the value the same
model gets, on average, on another test set of N faces drawn like this one (FID at this N, not
at infinite N). The repeated faces also widen it, so it errs on the safe side: in the tests'
simulation FID's interval is 1.7 times the true 95% spread, a paired difference's 1.5 times,
KID's 3 times.

With several seeds, seeds are resampled too (two-stage resampling, Davison & Hinkley 1997,
sec. 3.8): each replicate is the mean over seeds drawn with replacement, each seed's value at
the same face resample, so the interval holds the seed-to-seed spread and the test faces'. The
seed stage is widened for its few values (see seed_stage_scale).

The low-rank algebra of fid_from_features makes each replicate cheap: with the Gram matrices of
the features computed once, a resample costs one SVD of a (faces drawn) square matrix.
"""

from __future__ import annotations

import zlib

import numpy as np

from .grams import Grams

LEVEL = 0.95
METHOD = "bootstrap"  # what compare calls the intervals of runs that hold fid/bootstrap.npz
SEED = 2718  # fixed: the same test faces give the same resamples in every run


def face_counts(n: int, resamples: int, subset: str = "") -> np.ndarray:
    """(resamples, n) counts of n faces drawn with replacement, the same for every run with n
    test faces (in a subset of this name)."""
    rng = np.random.default_rng([SEED, n, zlib.crc32(subset.encode())])
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)


def replicates(real: np.ndarray, fake: np.ndarray, resamples: int, subset: str = "") -> dict[str, np.ndarray]:
    """FID and KID of each resample of these paired faces ({'fid': (resamples,), 'kid': ...})."""
    grams = Grams.of(real, fake)
    counts = face_counts(len(real), resamples, subset)
    return {"fid": np.array([grams.fid(c) for c in counts]), "kid": np.array([grams.kid(c) for c in counts])}


def interval(estimate: float, values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The bias-corrected percentile interval of an estimate from its replicates."""
    values = values[np.isfinite(values)]
    if len(values) < 2 or not np.isfinite(estimate):
        return float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    bias = values.mean() - estimate
    return float(low - bias), float(high - bias)


def over_seeds(table: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two-stage replicates of a mean over seeds: table is (resamples, seeds), each column one
    seed's replicates; each row's mean is taken over seeds drawn with replacement."""
    seeds = table.shape[1]
    if seeds == 1:
        return table[:, 0]
    everyone = table.mean(1)
    drawn = np.take_along_axis(table, rng.integers(0, seeds, size=table.shape), axis=1).mean(1)
    return everyone + seed_stage_scale(seeds) * (drawn - everyone)


def seed_stage_scale(seeds: int, level: float = LEVEL) -> float:
    """What the seed stage's deviations are scaled by: a mean of k values drawn with replacement
    varies (k - 1) / k times as much as a mean of k new seeds would, and with k seeds their spread
    is itself uncertain (Student's t with k - 1 degrees of freedom, not the normal): with the
    seeds' spread alone the interval is the t interval of their mean."""
    from scipy.stats import norm, t

    q = (1 + level) / 2
    return float(np.sqrt(seeds / (seeds - 1)) * t.ppf(q, seeds - 1) / norm.ppf(q))


def mean_interval(estimates: np.ndarray, table: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """The interval of the mean over seeds of these estimates (table: their replicates, one
    column per seed)."""
    return interval(float(np.mean(estimates)), over_seeds(table, np.random.default_rng(seed)))


def difference(
    estimates_a: np.ndarray, table_a: np.ndarray, estimates_b: np.ndarray, table_b: np.ndarray, seed: int = 0
) -> tuple[float, float, float]:
    """(difference, low, high) of mean(a) - mean(b) over seeds, paired over the test faces:
    row r of both tables is the same face resample."""
    rng = np.random.default_rng(seed)
    values = over_seeds(table_a, rng) - over_seeds(table_b, rng)
    estimate = float(np.mean(estimates_a) - np.mean(estimates_b))
    return (estimate, *interval(estimate, values))


def detectable(low: float, high: float, level: float = LEVEL) -> float:
    """The smallest true difference such an interval tells from 0 four times in five, the
    standard error read from its half-width. With these intervals wider than the sampling they
    describe (see above), it errs high."""
    from scipy.stats import norm

    from . import jackknife

    return jackknife.detectable((high - low) / 2 / norm.ppf((1 + level) / 2))
