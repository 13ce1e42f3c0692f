"""How sure an FID or KID is: jackknife intervals over the test faces, for one run, for a mean
over seeds, and for a difference between two ablations.

An evaluation computes FID and KID again with each test face left out, and with each of a fixed
set of pairs of faces left out (a face's real and generated sketch together: the pair is the
unit). Every run on the same test faces leaves out the same faces and pairs in the same order
(the `fid.faces` digest says which faces; `pairs` which pairs), so two runs' values line up face
by face, which is what a paired difference needs.

The variance. The delete-one jackknife's, D1 = (n-1)/n * sum (T(-i) - mean)^2, errs high, never
low, in expectation, for any statistic of independent faces (Efron & Stein, "The jackknife
estimate of variance", Ann. Statist. 9, 1981): it counts the part of the statistic that depends
on k faces together about k times. FID with fewer faces than dimensions has a large two-face
part, so D1 alone was 1.45 times the true variance in the suite's simulated world (intervals 1.2
to 1.3 times the true spread, covering 98-99 times in 100). Efron & Stein's delete-two term D2,
from the values with two faces left out, estimates that excess; it removes it exactly from a
statistic with parts of at most two faces and over-removes from one with three-face parts (FID's
square-root trace has parts of every order). The lab takes D1 - D2/2, the midpoint of the
two partial sums that bracket the variance (never below D1/2): in four simulated worlds
(benchmarks/intervals.py) its intervals are 0.93-1.10 times the true spread; see
docs/methods/fid.md for their coverage.
D2 is estimated from PAIRS pairs of faces (every pair of a smaller test set), the same for
every run on n faces.

The interval is Student's t with n - 1 degrees of freedom for the faces (Tukey's jackknife
interval), which widens it for a small test set whose variance is itself uncertain.

What an interval covers is the value the same model gets, on average, on another test set of n
faces drawn like this one: FID at this n, not at infinite n (FID is biased by n).

With several seeds the seeds' own spread adds to the faces' (the seeds share the test faces):
the variance of a mean over k seeds is the faces' variance of that mean (from the seeds' mean
left-out values) plus s^2 / k, and the degrees of freedom are Welch-Satterthwaite's, so with the
seeds' spread alone it is the t interval of their mean.

Runs logged before the delete-two values hold the delete-one values alone (method `jackknife`):
their intervals are D1's, wider; compare reads them, marks them, and pairs them with later runs
by the delete-one values of both.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np

from .grams import Grams

LEVEL = 0.95
POWER = 0.80  # the chance that a real difference of the detectable size gets a verdict
METHOD = "jackknife-2"  # a run's fid.interval tag
DELETE_ONE = "jackknife"  # runs logged before the delete-two values (before them: a bootstrap)
PAIRS = 300  # pairs of faces left out for D2: its estimate's noise is small beside D1's by then
PAIRED = "~pairs"  # `fid~pairs`, `kid.cuhk~pairs`: a metric's values with each pair left out


@lru_cache(maxsize=64)
def pairs(n: int) -> np.ndarray:
    """(p, 2): the pairs of faces left out on a test set of n faces, every pair up to PAIRS, else
    PAIRS of them drawn with n as the seed, so that every run on these faces leaves out the same."""
    everyone = np.array(list(combinations(range(n), 2)), dtype=int).reshape(-1, 2)
    if len(everyone) > PAIRS:
        everyone = everyone[np.sort(np.random.default_rng(n).choice(len(everyone), PAIRS, replace=False))]
    everyone.flags.writeable = False  # cached: every caller shares it
    return everyone


def fids_without_each(grams: Grams) -> np.ndarray:
    """(n,) FID of the faces with face i left out, as Grams.fid computes it with that face's
    count at 0, with everything but the SVD done for all faces at once."""
    n = len(grams.rr)
    m = n - 1

    def quadratic(a):  # w^T a w, w uniform over the faces kept, for each face left out
        return (a.sum() - 2 * a.sum(1) + np.diag(a)) / m**2

    def trace(a):  # trace of the kept faces' covariance, from their inner products
        return m / (m - 1) * ((np.trace(a) - np.diag(a)) / m - quadratic(a))

    mean_term = quadratic(grams.rr + grams.ff - grams.rf - grams.rf.T)
    trace_sqrt = np.empty(n)
    everyone = np.arange(n)
    for i in range(n):
        keep = np.delete(everyone, i)
        x = grams.rf[np.ix_(keep, keep)]
        centred = x - x.mean(0)[None, :] - x.mean(1)[:, None] + x.mean()
        trace_sqrt[i] = np.linalg.svd(centred, compute_uv=False).sum() / (m - 1)
    return mean_term + trace(grams.rr) + trace(grams.ff) - 2 * trace_sqrt


def left_out(real: np.ndarray, fake: np.ndarray) -> dict[str, np.ndarray]:
    """FID and KID of these paired faces with each face left out ({'fid': (n,), 'kid': (n,)}),
    and with each of pairs(n) left out ({'fid~pairs': (p,), 'kid~pairs': (p,)}, from 4 faces);
    NaN with fewer than 3 faces (two faces leave one, which has no covariance)."""
    n = len(real)
    if n < 3:
        return {"fid": np.full(n, np.nan), "kid": np.full(n, np.nan)}
    grams = Grams.of(real, fake)
    kid = np.array([grams.kid(1 - np.eye(n, dtype=int)[i]) for i in range(n)])
    out = {"fid": fids_without_each(grams), "kid": kid}
    if n >= 4:
        left = pairs(n)
        kept = np.ones((len(left), n), dtype=int)
        kept[np.arange(len(left))[:, None], left] = 0
        out["fid" + PAIRED] = np.array([grams.fid(k) for k in kept])
        out["kid" + PAIRED] = np.array([grams.kid(k) for k in kept])
    return out


@dataclass
class LeftOut:
    """A statistic of k runs on the same test faces: its k estimates, its values with each face
    left out (n, k), and with each of pairs(n) left out (p, k; None for runs logged before)."""

    estimates: np.ndarray
    one: np.ndarray
    two: np.ndarray | None = None

    def __post_init__(self):
        self.estimates = np.atleast_1d(np.asarray(self.estimates, float))
        self.one = np.asarray(self.one, float).reshape(len(self.one), -1)
        if self.two is not None:
            self.two = np.asarray(self.two, float).reshape(len(self.two), -1)


def variance(estimate: float, one: np.ndarray, two: np.ndarray | None = None) -> float:
    """The variance of a statistic over test sets of n faces, from its estimate and its values
    with each face left out (one) and with each of pairs(n) left out (two): D1 - D2/2, never
    below D1/2; without `two` the delete-one jackknife's D1."""
    n = len(one)
    if n < 3 or not np.isfinite(one).all():
        return float("nan")
    d1 = (n - 1) / n * ((one - one.mean()) ** 2).sum()
    left = pairs(n)
    if two is None or not np.isfinite(two).all() or len(two) != len(left):
        return float(d1)
    # what is left of the statistic's two-face part once its one-face parts are taken out
    q = estimate - one[left[:, 0]] - one[left[:, 1]] + two
    d2 = (n - 2) * (n - 3) ** 2 / (2 * (n - 1)) * (q**2).mean()
    return float(max(d1 - d2 / 2, d1 / 2))


def spread(row: LeftOut, minus: LeftOut | None = None) -> tuple[float, float, float]:
    """(estimate, standard error, degrees of freedom) of the mean over seeds of `row`, or with
    `minus` (another row on the same faces), of the difference of the two means, paired face by
    face (by the delete-one values alone when either row lacks the delete-two)."""
    rows = [row] if minus is None else [row, minus]
    signs = (1.0, -1.0)[: len(rows)]
    estimate = sum(s * r.estimates.mean() for s, r in zip(signs, rows))
    one = sum(s * r.one.mean(1) for s, r in zip(signs, rows))
    two = None if any(r.two is None for r in rows) else sum(s * r.two.mean(1) for s, r in zip(signs, rows))
    faces = variance(estimate, one, two)
    seeds = [r.estimates.var(ddof=1) / len(r.estimates) if len(r.estimates) > 1 else 0.0 for r in rows]
    total = faces + sum(seeds)
    # Welch-Satterthwaite: the faces' term has n - 1 degrees of freedom (Tukey), each row's seed
    # term its k - 1
    rough = faces * faces / (len(one) - 1) + sum(v * v / (len(r.estimates) - 1) for v, r in zip(seeds, rows) if v)
    return float(estimate), float(np.sqrt(total)), float(total * total / rough if rough > 0 else np.inf)


def _quantile(p: float, df: float) -> float:
    from scipy.stats import norm, t

    return float(norm.ppf(p) if np.isinf(df) else t.ppf(p, df))


def interval(estimate: float, se: float, df: float = np.inf, level: float = LEVEL) -> tuple[float, float]:
    if not (np.isfinite(estimate) and np.isfinite(se)):
        return float("nan"), float("nan")
    half = _quantile((1 + level) / 2, df) * se
    return float(estimate - half), float(estimate + half)


def run_interval(estimate: float, one: np.ndarray, two: np.ndarray | None = None) -> tuple[float, float]:
    """One run's interval of a metric from its values with each face (and pair) left out."""
    return interval(*spread(LeftOut(estimate, one, two)))


def mean_interval(row: LeftOut) -> tuple[float, float]:
    """The interval of the mean over seeds."""
    return interval(*spread(row))


def difference(a: LeftOut, b: LeftOut) -> tuple[float, float, float, float]:
    """(difference, low, high, detectable) of mean(a) - mean(b) over seeds, paired face by face."""
    estimate, se, df = spread(a, minus=b)
    return (estimate, *interval(estimate, se, df), detectable(se, df))


def detectable(se: float, df: float = np.inf, level: float = LEVEL, power: float = POWER) -> float:
    """The smallest true difference whose interval excludes 0 with probability `power`:
    (t_{(1+level)/2} + t_power) standard errors."""
    return float((_quantile((1 + level) / 2, df) + _quantile(power, df)) * se)


def verdict(low: float, high: float) -> str:
    """What a difference's interval says (lower FID is better)."""
    if np.isnan(low):
        return "n/a"
    return "lower" if high < 0 else "higher" if low > 0 else "no clear difference"
