"""Intervals of FID, KID and paired differences: the jackknife's values are the statistics with a
face (or a pair of faces) left out, and its intervals cover the truth at the nominal rate and are
about as wide as the true spread in a simulated world where the truth is known
(benchmarks/intervals.py's "suite" world)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from labkit.metrics import bootstrap, fid_from_features, jackknife, kid_from_features
from labkit.metrics.grams import Grams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from intervals import WORLDS, lab_intervals, statistics, truth  # noqa: E402


@pytest.mark.parametrize("n, dims", [(40, 64), (60, 20)])  # the low-rank and the full-rank (scipy sqrtm) regimes
def test_the_left_out_values_are_fid_and_kid_without_that_face_or_pair(n, dims):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(n, dims))
    fake = 0.7 * real + rng.normal(size=(n, dims)) + 0.2
    left_out = jackknife.left_out(real, fake)
    assert left_out["fid"].shape == left_out["kid"].shape == (n,)
    for i in (0, n // 2, n - 1):
        keep = np.delete(np.arange(n), i)
        assert left_out["fid"][i] == pytest.approx(fid_from_features(real[keep], fake[keep]), rel=1e-8)
        assert left_out["kid"][i] == pytest.approx(kid_from_features(real[keep], fake[keep]), rel=1e-8, abs=1e-12)
    pairs = jackknife.pairs(n)
    assert len(pairs) == jackknife.PAIRS and left_out["fid~pairs"].shape == left_out["kid~pairs"].shape == (300,)
    assert (pairs == jackknife.pairs(n)).all()  # every run on these faces leaves out the same pairs
    for k in (0, 299):
        keep = np.setdiff1d(np.arange(n), pairs[k])
        assert left_out["fid~pairs"][k] == pytest.approx(fid_from_features(real[keep], fake[keep]), rel=1e-8)
        assert left_out["kid~pairs"][k] == pytest.approx(kid_from_features(real[keep], fake[keep]), rel=1e-8, abs=1e-12)
    assert np.isnan(jackknife.left_out(real[:2], fake[:2])["fid"]).all()  # one face left has no covariance
    assert len(jackknife.pairs(10)) == 45 and "fid~pairs" not in jackknife.left_out(real[:3], fake[:3])


def test_the_bootstrap_statistics_of_older_runs_are_fid_and_kid():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(40, 64)), rng.normal(size=(40, 64)) + 0.2
    grams = Grams.of(real, fake)
    counts = np.array([2, 0] + [1] * 38)  # a resample: the face drawn twice counts twice
    picked = np.repeat(np.arange(40), counts)
    assert grams.fid(counts) == pytest.approx(fid_from_features(real[picked], fake[picked]), rel=1e-9)
    assert (bootstrap.face_counts(30, 50) == bootstrap.face_counts(30, 50)).all()


@pytest.mark.slow
def test_intervals_cover_the_truth_at_the_nominal_rate_and_no_wider_than_needed():
    """200 test sets of the suite's world (48 dimensions, 40 faces: fewer faces than dimensions,
    as a test split against Inception's 2048): the 95% intervals of FID, KID and the paired FID
    difference cover their true values (the expected values at this N) 93 to 97 times in 100 (95.5,
    95 and 96 with these seeds) and are at most 1.25 times the true 95% spread (1.05, 1.01, 1.08;
    benchmarks/intervals.py measures more test sets and worlds). The delete-one values alone, which
    runs logged before the delete-two values hold, make FID's and the difference's intervals 1.2
    times as wide."""
    world = WORLDS["suite"]()
    rng = np.random.default_rng(1)
    mean, spread, _ = truth(world, 1000, rng)
    covered, widths, widths_one = np.zeros(3), np.zeros(3), np.zeros(3)
    tests = 200
    for _ in range(tests):
        real, a, b = world.draw(rng)
        estimate = statistics(Grams.of(real, a), Grams.of(real, b), np.ones((1, world.faces), int))[0]
        found = lab_intervals(real, a, b, estimate)
        low, high = found["jackknife-2"].T
        covered += (low <= mean) & (mean <= high)
        widths += high - low
        widths_one += np.diff(found["jackknife"]).ravel()
    coverage, ratio = covered / tests, widths / tests / spread
    assert ((coverage >= 0.93) & (coverage <= 0.97)).all(), coverage
    assert (ratio <= 1.25).all() and (ratio >= 0.9).all(), ratio
    assert (widths_one[[0, 2]] > 1.1 * widths[[0, 2]]).all(), widths_one / widths


@pytest.mark.slow
def test_seeds_and_faces_combine():
    """Three seeds whose models differ (each generator the population's plus an offset of its
    own): the interval of their mean covers the mean over seeds and faces at least 90 times in
    100; the faces' variance alone would miss it far more often."""
    world = WORLDS["suite"]()
    rng = np.random.default_rng(3)

    def draw():
        real, a, _ = world.draw(rng)
        return real, [a + 0.8 * rng.normal(size=a.shape[1]) for _ in range(3)]

    true_mean = np.mean(
        [np.mean([fid_from_features(real, a) for a in fakes]) for real, fakes in (draw() for _ in range(600))]
    )
    covered, faces_only_covered = 0, 0
    for _ in range(100):
        real, fakes = draw()
        estimates = np.array([fid_from_features(real, a) for a in fakes])
        left = [jackknife.left_out(real, a) for a in fakes]
        one, two = (np.stack([f[k] for f in left], 1) for k in ("fid", "fid~pairs"))
        low, high = jackknife.mean_interval(jackknife.LeftOut(estimates, one, two))
        covered += low <= true_mean <= high
        low, high = jackknife.run_interval(estimates.mean(), one.mean(1), two.mean(1))
        faces_only_covered += low <= true_mean <= high
    assert covered >= 90 and faces_only_covered < covered - 10, (covered, faces_only_covered)


def test_a_paired_difference_cancels_what_the_faces_share():
    """Two generators of the same faces: the paired interval of their difference is narrower
    than the two intervals' half-widths added, as the faces' own difficulty cancels."""
    world = WORLDS["suite"]()
    real, a, b = world.draw(np.random.default_rng(4))
    left_a, left_b = jackknife.left_out(real, a), jackknife.left_out(real, b)
    fid_a, fid_b = fid_from_features(real, a), fid_from_features(real, b)
    row_a = jackknife.LeftOut(fid_a, left_a["fid"], left_a["fid~pairs"])
    row_b = jackknife.LeftOut(fid_b, left_b["fid"], left_b["fid~pairs"])
    difference, low, high, size = jackknife.difference(row_a, row_b)
    assert difference == pytest.approx(fid_a - fid_b) and low < difference < high
    unpaired = np.diff(jackknife.mean_interval(row_a)) / 2 + np.diff(jackknife.mean_interval(row_b)) / 2
    assert (high - low) / 2 < unpaired[0]
    t = scipy.stats.t(len(real) - 1)  # Tukey's jackknife interval: t with n - 1 degrees of freedom
    assert size == pytest.approx((high - low) / 2 / t.ppf(0.975) * (t.ppf(0.975) + t.ppf(0.8)), rel=1e-5)
    # a row without delete-two values (logged before them) pairs by delete-one values alone: wider
    _, low_one, high_one, _ = jackknife.difference(row_a, jackknife.LeftOut(fid_b, left_b["fid"]))
    assert high_one - low_one > high - low


def test_the_detectable_difference_gets_a_verdict_four_times_in_five():
    """A true difference of the detectable size, measured with a normal error of that standard
    error, is called `lower` about 80 times in 100 (and never `higher`); an older run's bootstrap
    interval gives the size from its half-width."""
    se = 0.7
    size = jackknife.detectable(se)
    assert size == pytest.approx(se * (1.959964 + 0.841621), rel=1e-5)
    assert bootstrap.detectable(-1.959964 * se, 1.959964 * se) == pytest.approx(size, rel=1e-5)
    estimates = -size + se * np.random.default_rng(0).normal(size=20000)
    verdicts = [jackknife.verdict(*jackknife.interval(e, se)) for e in estimates]
    assert verdicts.count("lower") / len(verdicts) == pytest.approx(0.80, abs=0.01)
    assert "higher" not in verdicts
    # with few seeds, Student's t: a larger size for the same standard error
    assert jackknife.detectable(se, df=3) > size


def test_verdicts():
    assert jackknife.verdict(-3.0, -0.5) == "lower"
    assert jackknife.verdict(0.2, 1.0) == "higher"
    assert jackknife.verdict(-1.0, 1.0) == "no clear difference"
    assert jackknife.verdict(float("nan"), float("nan")) == "n/a"


def test_runs_logged_with_slashed_subset_names_read_as_todays():
    """Runs logged before the per-subset names lost their '/' (`fid/cuhk`, `fid.n_real/cuhk`) sit
    in one table with newer runs (`fid.cuhk`), each value where the other's column is empty."""
    import pandas as pd

    from labkit.compare import _subsets_renamed

    old_and_new = pd.DataFrame(
        {
            "metrics.fid": [30.0, 31.0],
            "metrics.fid/cuhk": [29.0, None],
            "metrics.fid.cuhk": [None, 28.0],
            "tags.fid.n_real/cuhk": ["100", None],
            "metrics.system/cpu_utilization_percentage": [50.0, 60.0],
        }
    )
    renamed = _subsets_renamed(old_and_new)
    assert renamed["metrics.fid.cuhk"].tolist() == [29.0, 28.0]
    assert renamed["tags.fid.n_real.cuhk"].iloc[0] == "100" and renamed["tags.fid.n_real.cuhk"].isna().iloc[1]
    assert "metrics.fid/cuhk" not in renamed and "metrics.system/cpu_utilization_percentage" in renamed
