"""Bootstrap intervals: exact on the whole set, and covering the true value at (at least) the
nominal rate in a simulation where the truth is known."""

import numpy as np
import pytest

from labkit.metrics import bootstrap, fid_from_features, kid_from_features

DIMS, N = 48, 40  # fewer faces than dimensions, as a test split against Inception's 2048


class World:
    """Paired features of a real sketch and two generators' sketches of the same face, Gaussian
    with a known structure; a seed's generator is the population's plus an offset of its own."""

    def __init__(self, seed_spread: float = 0.0):
        rng = np.random.default_rng(7)
        self.mix = rng.normal(size=(DIMS, DIMS)) / np.sqrt(DIMS) * np.linspace(2.0, 0.3, DIMS)
        self.shift = rng.normal(size=DIMS) * 0.3
        self.seed_spread = seed_spread

    def draw(self, rng, n=N, seeds=1):
        real = rng.normal(size=(n, DIMS)) @ self.mix.T
        noise = rng.normal(size=(n, DIMS)) @ self.mix.T
        a = [0.8 * real + 0.5 * noise + self.shift + self.seed_spread * rng.normal(size=DIMS) for _ in range(seeds)]
        b = 0.8 * real + 0.6 * noise + 1.3 * self.shift + 0.3 * rng.normal(size=(n, DIMS)) @ self.mix.T
        return real, a, b


def test_on_the_whole_set_the_resample_statistics_are_fid_and_kid():
    rng = np.random.default_rng(0)
    for n, dims in ((40, 64), (100, 32)):  # the low-rank and the full-rank (scipy sqrtm) regimes
        real = rng.normal(size=(n, dims))
        fake = 0.7 * real + rng.normal(size=(n, dims)) + 0.2
        grams = bootstrap.Grams.of(real, fake)
        assert grams.fid(np.ones(n, int)) == pytest.approx(fid_from_features(real, fake), rel=1e-9)
        assert grams.kid(np.ones(n, int)) == pytest.approx(kid_from_features(real, fake), rel=1e-9, abs=1e-12)
        # counts are a resample: the faces drawn twice count twice
        counts = np.array([2, 0] + [1] * (n - 2))
        picked = np.repeat(np.arange(n), counts)
        assert grams.fid(counts) == pytest.approx(fid_from_features(real[picked], fake[picked]), rel=1e-9)


def test_every_run_on_the_same_faces_draws_the_same_resamples():
    assert (bootstrap.face_counts(30, 50) == bootstrap.face_counts(30, 50)).all()
    assert (bootstrap.face_counts(30, 50).sum(1) == 30).all()
    assert not (bootstrap.face_counts(30, 50, "cuhk") == bootstrap.face_counts(30, 50, "ar")).all()


def _truth(world, draws=1500):
    rng = np.random.default_rng(1)
    values = []
    for _ in range(draws):
        real, (a,), b = world.draw(rng)
        values.append(
            (
                fid_from_features(real, a),
                kid_from_features(real, a),
                fid_from_features(real, a) - fid_from_features(real, b),
            )
        )
    return np.mean(values, 0)


@pytest.mark.slow
def test_intervals_cover_the_true_fid_kid_and_difference_at_the_nominal_rate():
    """100 test sets drawn from a known world: the 95% intervals of FID, KID and of the paired
    FID difference cover their true values (the expected values at this N) at least 90 times."""
    world = World()
    true_fid, true_kid, true_diff = _truth(world)
    rng = np.random.default_rng(2)
    covered, widths = np.zeros(3, int), []
    for _ in range(100):
        real, (a,), b = world.draw(rng)
        rep_a, rep_b = bootstrap.replicates(real, a, 200), bootstrap.replicates(real, b, 200)
        fid_a, kid_a, fid_b = fid_from_features(real, a), kid_from_features(real, a), fid_from_features(real, b)
        low, high = bootstrap.interval(fid_a, rep_a["fid"])
        covered[0] += low <= true_fid <= high
        widths.append(high - low)
        low, high = bootstrap.interval(kid_a, rep_a["kid"])
        covered[1] += low <= true_kid <= high
        _, low, high = bootstrap.difference(
            np.array([fid_a]), rep_a["fid"][:, None], np.array([fid_b]), rep_b["fid"][:, None]
        )
        covered[2] += low <= true_diff <= high
    assert (covered >= 90).all(), covered
    assert np.mean(widths) < 8 * true_fid  # an interval, not the whole line


@pytest.mark.slow
def test_seeds_and_faces_combine():
    """Three seeds whose models differ: the two-stage interval of their mean covers the mean over
    seeds and faces at least 90 times in 100; the faces alone would miss it far more often."""
    world = World(seed_spread=0.8)
    rng = np.random.default_rng(3)
    truth = np.mean(
        [
            np.mean([fid_from_features(real, a) for a in fakes])
            for real, fakes, _ in (world.draw(rng, seeds=3) for _ in range(1000))
        ]
    )
    covered, faces_only_covered = 0, 0
    for _ in range(100):
        real, fakes, _ = world.draw(rng, seeds=3)
        estimates = np.array([fid_from_features(real, a) for a in fakes])
        table = np.stack([bootstrap.replicates(real, a, 200)["fid"] for a in fakes], 1)
        low, high = bootstrap.mean_interval(estimates, table)
        covered += low <= truth <= high
        low, high = bootstrap.interval(estimates.mean(), table.mean(1))
        faces_only_covered += low <= truth <= high
    assert covered >= 90 and faces_only_covered < covered - 10, (covered, faces_only_covered)


def test_the_detectable_difference_gets_a_verdict_four_times_in_five():
    """A true difference of the detectable size, measured with a normal error whose 95% interval
    is as wide as the given one, is called `lower` about 80 times in 100 (and never `higher`)."""
    se = 0.7
    size = bootstrap.detectable(-1.959964 * se, 1.959964 * se)
    assert size == pytest.approx(se * (1.959964 + 0.841621), rel=1e-5)
    estimates = -size + se * np.random.default_rng(0).normal(size=20000)
    verdicts = [bootstrap.verdict(e - 1.959964 * se, e + 1.959964 * se) for e in estimates]
    assert verdicts.count("lower") / len(verdicts) == pytest.approx(0.80, abs=0.01)
    assert "higher" not in verdicts
    assert np.isnan(bootstrap.detectable(float("nan"), float("nan")))


def test_verdicts():
    assert bootstrap.verdict(-3.0, -0.5) == "lower"
    assert bootstrap.verdict(0.2, 1.0) == "higher"
    assert bootstrap.verdict(-1.0, 1.0) == "no clear difference"
    assert bootstrap.verdict(float("nan"), float("nan")) == "n/a"
