"""The split-conformal math (hieroaction.inference.conformal) against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hieroaction.errors import ConfigError
from hieroaction.inference import conformal as cf


def test_rank_is_ceil_of_n_plus_one_times_coverage():
    # n = 20: 21 x 0.9 = 18.9 -> 19; 21 x 0.5 = 10.5 -> 11; 21 x 0.95 = 19.95 -> 20
    assert cf.conformal_rank(20, 0.9) == 19
    assert cf.conformal_rank(20, 0.5) == 11
    assert cf.conformal_rank(20, 0.95) == 20
    # n = 19: 20 x 0.95 = 19 exactly (floating point must not push it to 20)
    assert cf.conformal_rank(19, 0.95) == 19
    # n = 9: 10 x 0.9 = 9 exactly
    assert cf.conformal_rank(9, 0.9) == 9


def test_quantile_is_the_kth_smallest_score():
    scores = [float(s) for s in range(20, 0, -1)]  # 20, 19, ..., 1 (unsorted on purpose)
    assert cf.conformal_quantile(scores, 0.9) == 19.0  # 19th smallest
    assert cf.conformal_quantile(scores, 0.5) == 11.0
    assert cf.conformal_quantile(scores, 0.95) == 20.0
    # 21 x 0.99 = 20.79 -> 21 > 20 clips: no finite quantile
    assert cf.conformal_quantile(scores, 0.99) == math.inf
    assert cf.conformal_quantile([], 0.5) == math.inf


def test_infinite_scores_count_as_the_largest():
    # 20 clips, 2 without a prediction (None and inf): k = 19 is the 19th smallest = inf
    scores = [float(s) for s in range(1, 19)] + [None, math.inf]
    assert cf.conformal_quantile(scores, 0.9) == math.inf
    # at 0.8: 21 x 0.8 = 16.8 -> 17th smallest = 17
    assert cf.conformal_quantile(scores, 0.8) == 17.0


@pytest.mark.parametrize("coverage", [0, 1, -0.1, 1.5, "x", None, float("nan")])
def test_coverage_must_lie_strictly_between_0_and_1(coverage):
    with pytest.raises(ConfigError, match="coverage"):
        cf.check_coverage(coverage)


def test_nonconformity_absolute_and_normalised():
    assert cf.nonconformity(10.0, 7.5) == 2.5
    assert cf.nonconformity(10.0, None) == math.inf
    assert cf.nonconformity(10.0, float("nan")) == math.inf
    # |10 - 7| / (2 + 1) = 1
    assert cf.nonconformity(10.0, 7.0, spread=2.0, floor=1.0, method="normalised") == 1.0
    # normalised without a spread: infinite (never covered)
    assert cf.nonconformity(10.0, 7.0, spread=None, floor=1.0, method="normalised") == math.inf
    # a zero spread with a zero floor: exact answers are covered, others are not
    assert cf.nonconformity(5.0, 5.0, 0.0, 0.0, "normalised") == 0.0
    assert cf.nonconformity(5.0, 6.0, 0.0, 0.0, "normalised") == math.inf
    with pytest.raises(ConfigError, match="method"):
        cf.nonconformity(1.0, 1.0, method="relative")


def test_interval_is_cut_to_the_score_range():
    assert cf.interval(50.0, 4.0) == (46.0, 54.0)
    # normalised: 50 -/+ 2 x (3 + 0.5) = 50 -/+ 7
    assert cf.interval(50.0, 2.0, spread=3.0, floor=0.5, method="normalised") == (43.0, 57.0)
    assert cf.interval(2.0, 4.0, bounds=(0.0, 120.0)) == (0.0, 6.0)
    # an infinite quantile: unbounded, or the whole score range
    assert cf.interval(50.0, math.inf) == (-math.inf, math.inf)
    assert cf.interval(50.0, math.inf, bounds=(0.0, 120.0)) == (0.0, 120.0)
    # normalised without a spread: no interval at all (its score is infinite)
    assert cf.interval(50.0, 2.0, spread=None, method="normalised") is None


def test_coverage_and_per_class_coverage():
    true = [1.0, 2.0, 3.0, 4.0, 5.0]
    lows = [0.0, 2.5, 3.0, None, 4.0]
    highs = [2.0, 3.0, 3.0, None, 4.5]
    # covered: 1 in [0, 2] yes; 2 in [2.5, 3] no; 3 in [3, 3] yes (closed); no interval: no; 5 no
    assert cf.coverage(true, lows, highs) == pytest.approx(2 / 5)
    per = cf.per_class_coverage(true, lows, highs, ["a", "b", "a", "b", "a"])
    assert per == {"a": (3, pytest.approx(2 / 3)), "b": (2, 0.0)}
    assert math.isnan(cf.coverage([], [], []))
    with pytest.raises(ValueError):
        cf.coverage([1.0], [0.0, 1.0], [2.0])


def test_spread_std_and_mad():
    assert cf.spread([1.0, 3.0]) == pytest.approx(1.0)  # population std
    assert cf.spread([1.0, 2.0, 3.0, 10.0], "mad") == pytest.approx(1.4826 * 1.0)  # median 2.5, |dev| .5 .5 1.5 7.5
    assert cf.spread([4.0]) is None
    assert cf.spread([4.0, None, float("nan")]) is None  # type: ignore[list-item]
    with pytest.raises(ConfigError):
        cf.spread([1.0, 2.0], "iqr")


def test_reliability_refits_the_quantile_at_each_level():
    cal = [float(s) for s in range(1, 21)]  # 1..20
    test = [0.5, 5.0, 11.0, 15.5, 19.0, 19.5, 25.0, math.inf, None, 10.0]
    rows = cf.reliability(cal, test, [0.5, 0.9, 0.99])
    # 0.5: q = 11 -> covered 0.5, 5, 11, 10 = 4 of 10
    # 0.9: q = 19 -> + 15.5, 19 = 6 of 10
    # 0.99: q = inf -> every finite score = 8 of 10 (inf and None: no interval, never covered)
    assert [r["quantile"] for r in rows] == [11.0, 19.0, math.inf]
    assert [r["empirical"] for r in rows] == [0.4, 0.6, 0.8]
    assert math.isnan(cf.reliability(cal, [], [0.5])[0]["empirical"])


def test_split_conformal_covers_at_least_the_nominal_share_on_average():
    """The guarantee itself: exchangeable calibration and test errors, many repetitions."""
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(400):
        errors = np.abs(rng.standard_t(3, size=31))  # heavy tails
        q = cf.conformal_quantile(errors[:30].tolist(), 0.9)
        hits.append(errors[30] <= q)
    # P(covered) = ceil(31 x 0.9) / 31 = 28/31 = 0.903; 400 draws: standard error 0.015
    assert np.mean(hits) > 0.86
