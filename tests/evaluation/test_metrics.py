import math

import numpy as np
import pytest
from scipy import stats

from hieroaction.evaluation.metrics import (
    accuracy,
    aiou_at,
    aligned_tiou,
    bootstrap_ci,
    edit_distance,
    fisher_z_mean,
    normalised_edit_score,
    per_class_spearman,
    relative_l2,
    score_metrics,
    segment_iou,
    spearman,
)


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 10, 50).astype(float)
    pred = true + rng.normal(0, 3, 50)
    pred[:5] = pred[0]  # ties
    assert spearman(pred, true) == pytest.approx(stats.spearmanr(pred, true).statistic)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_relative_l2_by_hand():
    true, pred = [0.0, 5.0, 10.0], [1.0, 5.0, 8.0]
    # range 10: ((1/10)^2 + 0 + (2/10)^2) / 3
    assert relative_l2(pred, true) == pytest.approx((0.01 + 0.04) / 3)
    assert relative_l2(pred, true, score_range=(0.0, 20.0)) == pytest.approx((0.0025 + 0.01) / 3)
    assert math.isnan(relative_l2([1.0], [2.0]))


def test_fisher_z_mean_by_hand():
    rhos = [0.9, 0.5, 0.7]
    assert fisher_z_mean(rhos) == pytest.approx(math.tanh(sum(math.atanh(r) for r in rhos) / 3))
    assert fisher_z_mean([1.0, 1.0]) == pytest.approx(1.0)
    assert fisher_z_mean([0.5, float("nan")]) == pytest.approx(0.5)


def test_per_class_and_score_metrics():
    true = [1, 2, 3, 4, 10, 20, 30, 40]
    pred = [1, 2, 4, 3, 40, 30, 20, 10]
    classes = ["a"] * 4 + ["b"] * 4
    per = per_class_spearman(pred, true, classes)
    assert per["a"] == pytest.approx(0.8) and per["b"] == pytest.approx(-1.0)
    out = score_metrics(pred, true, classes)
    assert out["spearman[a]"] == pytest.approx(0.8)
    assert out["spearman_fisher_z"] == pytest.approx(fisher_z_mean([0.8, -1.0]))
    assert out["rl2_x100"] == pytest.approx(100 * relative_l2(pred, true))
    # a missing prediction is filled with the mean of the others and counted
    filled = score_metrics([1.0, None, 3.0], [1.0, 2.0, 3.0])
    assert filled["missing_scores"] == 1 and filled["spearman"] == pytest.approx(1.0)


def test_labels_and_edit_distance():
    assert accuracy(["a", None, "c"], ["a", "b", "d"]) == pytest.approx(1 / 3)
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["x", "y"]) == 2
    assert normalised_edit_score(["Back", "Entry"], ["Back", "2.5 Soms.Pike", "Entry"]) == pytest.approx(2 / 3)
    assert normalised_edit_score([], []) == 1.0
    assert normalised_edit_score(["a"], ["b"]) == 0.0


def test_temporal_iou():
    assert segment_iou((0, 2), (1, 3)) == pytest.approx(1 / 3)
    assert segment_iou((0, 1), (2, 3)) == 0.0
    assert segment_iou((2, 1), (0, 3)) == 0.0  # malformed
    assert segment_iou((0, float("nan")), (0, 3)) == 0.0
    # a missing third step counts as IoU 0
    assert aligned_tiou([(0, 1), (1, 2)], [(0, 1), (1, 2), (2, 3)]) == pytest.approx(2 / 3)
    assert aiou_at([0.4, 0.5, 0.8, 0.76], 0.5) == pytest.approx(0.75)
    assert aiou_at([0.4, 0.5, 0.8, 0.76], 0.75) == pytest.approx(0.5)


def test_bootstrap_interval_contains_the_estimate():
    rng = np.random.default_rng(1)
    true = rng.normal(size=200)
    pred = true + rng.normal(scale=0.5, size=200)
    lo, hi = bootstrap_ci(spearman, pred, true, n_resamples=300)
    assert lo < spearman(pred, true) < hi
    assert 0.0 < hi - lo < 0.3
    assert bootstrap_ci(spearman, pred, true, n_resamples=50, seed=3) == bootstrap_ci(
        spearman, pred, true, n_resamples=50, seed=3)
