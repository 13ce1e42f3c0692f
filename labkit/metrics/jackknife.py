"""How sure an FID or KID is: jackknife intervals over the test faces, for one run, for a mean
over seeds, and for a difference between two ablations.

An evaluation computes FID and KID again with each test face left out (its real and its
generated sketch together: the pair is the unit). Every run on the same test faces leaves out
the same faces in the same order (the `fid.faces` digest says which), so two runs' values line
up face by face, which is what a paired difference needs.

The variance is the delete-one jackknife's, (n-1)/n * sum (T(-i) - mean)^2. Efron & Stein ("The
jackknife estimate of variance", Ann. Statist. 9, 1981) proved it errs high, never low, in
expectation, for any statistic of independent faces: it counts the part of the statistic that
depends on k faces together about k times. FID with fewer faces than dimensions has a large
two-face part, so the interval is still somewhat wide there (1.24 times the true 95% spread in
the suite's simulated world), but far less than a bootstrap's, whose resamples repeat faces and
add noise the real sampling does not have (1.7 times for FID, 3 times for KID, in the same
world). benchmarks/intervals.py measures both, and a delete-two correction, in four worlds.

What an interval covers is the value the same model gets, on average, on another test set of n
faces drawn like this one: FID at this n, not at infinite n (FID is biased by n).

With several seeds the seeds' own spread adds to the faces' (the seeds share the test faces):
the variance of a mean over k seeds is the faces' variance of that mean (from the seeds' mean
left-out values) plus s^2 / k, and the interval is Student's t with Welch-Satterthwaite degrees
of freedom, so with the seeds' spread alone it is the t interval of their mean.
"""

from __future__ import annotations

import numpy as np

from .grams import Grams

LEVEL = 0.95
POWER = 0.80  # the chance that a real difference of the detectable size gets a verdict
METHOD = "jackknife"  # a run's fid.interval tag; runs logged before it hold a bootstrap


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
    """FID and KID of these paired faces with each face left out ({'fid': (n,), 'kid': (n,)});
    NaN with fewer than 3 faces (two faces leave one, which has no covariance)."""
    n = len(real)
    if n < 3:
        return {"fid": np.full(n, np.nan), "kid": np.full(n, np.nan)}
    grams = Grams.of(real, fake)
    kid = np.array([grams.kid(1 - np.eye(n, dtype=int)[i]) for i in range(n)])
    return {"fid": fids_without_each(grams), "kid": kid}


def variance(values: np.ndarray) -> float:
    """The delete-one jackknife variance of a statistic from its left-out values."""
    n = len(values)
    if n < 3 or not np.isfinite(values).all():
        return float("nan")
    return float((n - 1) / n * ((values - values.mean()) ** 2).sum())


def spread(estimates: np.ndarray, table: np.ndarray, minus: tuple | None = None) -> tuple[float, float, float]:
    """(estimate, standard error, degrees of freedom) of the mean over seeds of `estimates`
    (table: their left-out values, one column per seed), or with `minus` = (estimates, table) of
    another row on the same faces, of the difference of the two means, paired face by face."""
    rows = [(np.asarray(estimates, float), np.asarray(table, float))]
    if minus is not None:
        rows.append((np.asarray(minus[0], float), np.asarray(minus[1], float)))
    signs = (1.0, -1.0)[: len(rows)]
    estimate = sum(s * e.mean() for s, (e, _) in zip(signs, rows))
    faces = variance(sum(s * t.mean(1) for s, (_, t) in zip(signs, rows)))
    seeds = [e.var(ddof=1) / len(e) if len(e) > 1 else 0.0 for e, _ in rows]
    total = faces + sum(seeds)
    # Welch-Satterthwaite: the faces' term comes from many faces (infinite degrees of freedom),
    # each row's seed term from its k - 1
    rough = sum(v * v / (len(e) - 1) for v, (e, _) in zip(seeds, rows) if len(e) > 1)
    return float(estimate), float(np.sqrt(total)), float(total * total / rough if rough > 0 else np.inf)


def _quantile(p: float, df: float) -> float:
    from scipy.stats import norm, t

    return float(norm.ppf(p) if np.isinf(df) else t.ppf(p, df))


def interval(estimate: float, se: float, df: float = np.inf, level: float = LEVEL) -> tuple[float, float]:
    if not (np.isfinite(estimate) and np.isfinite(se)):
        return float("nan"), float("nan")
    half = _quantile((1 + level) / 2, df) * se
    return float(estimate - half), float(estimate + half)


def run_interval(estimate: float, values: np.ndarray) -> tuple[float, float]:
    """One run's interval of a metric from its left-out values."""
    return interval(estimate, np.sqrt(variance(values)))


def mean_interval(estimates: np.ndarray, table: np.ndarray) -> tuple[float, float]:
    """The interval of the mean over seeds (table: left-out values, one column per seed)."""
    return interval(*spread(estimates, table))


def difference(
    estimates_a: np.ndarray, table_a: np.ndarray, estimates_b: np.ndarray, table_b: np.ndarray
) -> tuple[float, float, float, float]:
    """(difference, low, high, detectable) of mean(a) - mean(b) over seeds, paired face by face."""
    estimate, se, df = spread(estimates_a, table_a, minus=(estimates_b, table_b))
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
