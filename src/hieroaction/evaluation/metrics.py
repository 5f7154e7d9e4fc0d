"""AQA metrics, exactly as SPEC section 6 defines them.

Score metrics: Spearman rho (scipy's definition), relative L2 (R-l2, reported x100, the range
from the ground truth of the evaluated split), per-class rho averaged through Fisher's z.
Hierarchy metrics: action accuracy, step-sequence accuracy and normalised edit score, step
temporal IoU of order-aligned steps and AIoU@threshold, SAR parse-failure rate. Bootstrap
confidence intervals for any of them.

The step helpers (:func:`edit_distance`, :func:`aligned_tiou`) are shared with the rewards, so
a reward and the metric it stands for cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np

Segment = tuple[float, float]


def spearman(pred: Sequence[float], true: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when undefined."""
    pred, true = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    if len(pred) != len(true):
        raise ValueError(f"{len(pred)} predictions for {len(true)} true scores")
    if len(pred) < 2 or np.ptp(pred) == 0 or np.ptp(true) == 0:
        return float("nan")
    from scipy import stats  # imported here: it costs seconds in every process that imports rewards

    return float(stats.spearmanr(pred, true).statistic)


def relative_l2(
    pred: Sequence[float], true: Sequence[float], score_range: tuple[float, float] | None = None
) -> float:
    """R-l2 = mean(((s - s_hat) / (s_max - s_min))^2), NOT multiplied by 100.

    ``s_max`` and ``s_min`` come from ``true`` (the evaluated split's ground truth) unless
    ``score_range`` is given.
    """
    pred, true = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    if len(pred) != len(true):
        raise ValueError(f"{len(pred)} predictions for {len(true)} true scores")
    if len(true) == 0:
        return float("nan")
    lo, hi = score_range if score_range is not None else (true.min(), true.max())
    if hi <= lo:
        return float("nan")
    return float(np.mean(((true - pred) / (hi - lo)) ** 2))


def fisher_z_mean(rhos: Sequence[float]) -> float:
    """Average correlations through Fisher's z: tanh(mean(arctanh(rho))).

    A rho of exactly +-1 would make arctanh infinite; it is clipped just inside the interval.
    """
    values = np.asarray([r for r in rhos if not math.isnan(r)], dtype=float)
    if len(values) == 0:
        return float("nan")
    values = np.clip(values, -1 + 1e-12, 1 - 1e-12)
    return float(np.tanh(np.mean(np.arctanh(values))))


def per_class_spearman(
    pred: Sequence[float], true: Sequence[float], classes: Sequence[Hashable]
) -> dict[Hashable, float]:
    """Spearman rho within each class (as reported for AQA-7)."""
    groups: dict[Hashable, list[int]] = {}
    for i, c in enumerate(classes):
        groups.setdefault(c, []).append(i)
    pred, true = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    return {c: spearman(pred[idx], true[idx]) for c, idx in groups.items()}


def accuracy(pred: Sequence[object], true: Sequence[object]) -> float:
    """Fraction of exact matches (a missing prediction, None, counts as wrong)."""
    if not true:
        return float("nan")
    return sum(p is not None and p == t for p, t in zip(pred, true)) / len(true)


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance between two label sequences."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def normalised_edit_score(pred: Sequence[Hashable], true: Sequence[Hashable]) -> float:
    """1 - edit distance / max(len): 1 for identical sequences, 0 for nothing in common."""
    longest = max(len(pred), len(true))
    if longest == 0:
        return 1.0
    return 1.0 - edit_distance(pred, true) / longest


def segment_iou(a: Segment, b: Segment) -> float:
    """Temporal IoU of two [start, end] intervals (0 when either is empty or malformed)."""
    (s1, e1), (s2, e2) = a, b
    if not all(map(math.isfinite, (s1, e1, s2, e2))) or e1 < s1 or e2 < s2:
        return 0.0
    inter = max(0.0, min(e1, e2) - max(s1, s2))
    union = max(e1, e2) - min(s1, s2)
    return inter / union if union > 0 else float(s1 == s2 and e1 == e2)


def aligned_tiou(pred: Sequence[Segment], true: Sequence[Segment]) -> float:
    """Mean temporal IoU of order-aligned steps.

    The i-th predicted step is compared with the i-th true step; a step without a partner
    counts as IoU 0, so the mean is over max(len(pred), len(true)). Extra or missing steps
    therefore lower the score instead of being ignored.
    """
    longest = max(len(pred), len(true))
    if longest == 0:
        return float("nan")
    return sum(segment_iou(p, t) for p, t in zip(pred, true)) / longest


def aiou_at(tious: Sequence[float], threshold: float) -> float:
    """AIoU@threshold: the fraction of clips whose step tIoU is at least ``threshold``."""
    values = [t for t in tious if not math.isnan(t)]
    if not values:
        return float("nan")
    return sum(t >= threshold for t in values) / len(values)


def bootstrap_ci(
    metric: Callable[..., float],
    *columns: Sequence,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(*columns)``, resampling rows together.

    Resamples where the metric is undefined (NaN, e.g. a constant sample for Spearman) are
    left out of the percentiles.
    """
    arrays = [np.asarray(c, dtype=object) for c in columns]
    n = len(arrays[0])
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        value = metric(*[a[idx].tolist() for a in arrays])
        if not math.isnan(value):
            values.append(value)
    if not values:
        return (float("nan"), float("nan"))
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def fill_missing_scores(pred: Sequence[float | None], true: Sequence[float]) -> list[float]:
    """Predictions with each missing one (None or not finite) replaced by the mean of the rest.

    An unparsable answer stays in the evaluation instead of being dropped, so a model is not
    rewarded for abstaining on hard clips; with no prediction at all, the mean true score.
    """
    known = [p for p in pred if p is not None and math.isfinite(p)]
    fill = float(np.mean(known)) if known else float(np.mean(true))
    return [p if p is not None and math.isfinite(p) else fill for p in pred]


def score_metrics(
    pred: Sequence[float | None],
    true: Sequence[float],
    classes: Sequence[Hashable] | None = None,
) -> Mapping[str, float]:
    """Spearman, R-l2 x100 and (with ``classes``) per-class rho and its Fisher-z mean.

    Missing predictions are filled by :func:`fill_missing_scores`.
    """
    known = [p for p in pred if p is not None and math.isfinite(p)]
    filled = fill_missing_scores(pred, true)
    out: dict[str, float] = {
        "n": float(len(true)),
        "spearman": spearman(filled, true),
        "rl2_x100": 100.0 * relative_l2(filled, true),
        "missing_scores": float(len(pred) - len(known)),
    }
    if classes is not None:
        per_class = per_class_spearman(filled, true, classes)
        out["spearman_fisher_z"] = fisher_z_mean(list(per_class.values()))
        out.update({f"spearman[{c}]": v for c, v in per_class.items()})
    return out
