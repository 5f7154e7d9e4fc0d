"""Split-conformal score intervals: the math, and nothing else (numbers in, numbers out).

A calibration set of ``n`` clips gives one nonconformity score per clip:

- ``absolute``: ``|y - yhat|``, the absolute error of the point estimate;
- ``normalised``: ``|y - yhat| / (sigma + floor)``, where ``sigma`` is the spread of the scores of
  several sampled answers to the same clip, so clips on which the model hesitates get wider
  intervals.

A clip without a predicted score (an unreadable answer, a clip that could not be decoded), or,
for ``normalised``, without a measurable spread (fewer than two sampled answers with a score),
has an infinite score: it is never covered, so the coverage stays honest.

The conformal quantile at coverage ``1 - alpha`` is the ``k``-th smallest score with
``k = ceil((n + 1)(1 - alpha))``; when ``k > n`` it is infinite (too few clips for that coverage).
For a new clip exchangeable with the calibration clips, the interval
``yhat -/+ q`` (``yhat -/+ q (sigma + floor)``) then holds the true score with probability at
least ``1 - alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np

from hieroaction.errors import ConfigError

METHODS = ("absolute", "normalised")
SPREADS = ("std", "mad")
# A MAD times this estimates the standard deviation of a normal distribution.
MAD_TO_STD = 1.4826


def check_coverage(coverage: float) -> float:
    """``coverage`` as a float, or :class:`ConfigError` unless it lies strictly between 0 and 1."""
    try:
        value = float(coverage)
    except (TypeError, ValueError):
        raise ConfigError(f"coverage must be a number between 0 and 1, got {coverage!r}") from None
    if not 0.0 < value < 1.0:
        raise ConfigError(f"coverage must lie strictly between 0 and 1 (e.g. 0.9), got {coverage!r}")
    return value


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def conformal_rank(n: int, coverage: float) -> int:
    """``k = ceil((n + 1) * coverage)``: the rank (1-based) of the conformal quantile among ``n``
    sorted scores (``k > n`` means the quantile is infinite)."""
    coverage = check_coverage(coverage)
    # (n + 1) * coverage can land a hair above an integer in floating point (21 * 0.9 is
    # 18.900000000000002; 20 * 0.95 could be 19.000000000000004): that hair is not a rank.
    return math.ceil((n + 1) * coverage - 1e-9)


def conformal_quantile(scores: Sequence[float | None], coverage: float) -> float:
    """The finite-sample conformal quantile of ``scores`` at ``coverage``.

    ``None`` (and NaN) stand for an infinite score. Returns ``inf`` when there are too few
    scores for the coverage (``ceil((n + 1) * coverage) > n``) or the chosen score is itself
    infinite.
    """
    values = np.sort(np.asarray([math.inf if (s is None or math.isnan(s)) else float(s) for s in scores]))
    k = conformal_rank(len(values), coverage)
    if k > len(values) or len(values) == 0:
        return math.inf
    return float(values[k - 1])


def nonconformity(
    true: float, pred: float | None, spread: float | None = None, floor: float = 0.0,
    method: str = "absolute",
) -> float:
    """``|true - pred|`` (``absolute``) or ``|true - pred| / (spread + floor)`` (``normalised``);
    infinite without a finite prediction, or (normalised) without a spread."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {list(METHODS)}, got {method!r}")
    if not _finite(pred):
        return math.inf
    error = abs(float(true) - float(pred))  # type: ignore[arg-type]
    if method == "absolute":
        return error
    if not _finite(spread):
        return math.inf
    scale = float(spread) + float(floor)  # type: ignore[arg-type]
    if scale <= 0:
        return 0.0 if error == 0 else math.inf
    return error / scale


def half_width(
    quantile: float, spread: float | None = None, floor: float = 0.0, method: str = "absolute"
) -> float | None:
    """Half the interval's width: ``q`` (absolute) or ``q (spread + floor)`` (normalised);
    infinite when ``q`` is (too few calibration clips for the coverage). ``None`` when
    ``normalised`` has no spread: that clip's score is infinite, so no finite quantile admits
    any true score and there is no interval to give."""
    if method == "normalised" and not _finite(spread):
        return None if math.isfinite(quantile) else math.inf
    if not math.isfinite(quantile):
        return math.inf
    if method == "absolute":
        return float(quantile)
    return float(quantile) * (float(spread) + float(floor))  # type: ignore[arg-type]


def interval(
    pred: float, quantile: float, spread: float | None = None, floor: float = 0.0, method: str = "absolute",
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float] | None:
    """``(pred - h, pred + h)`` with ``h`` from :func:`half_width`, cut to ``bounds`` (the score
    range of the domain, when it has one: a true score lies inside it, so cutting keeps the
    coverage). An infinite ``h`` gives ``(-inf, inf)`` (or ``bounds``); no ``h`` gives ``None``."""
    h = half_width(quantile, spread, floor, method)
    if h is None:
        return None
    low, high = float(pred) - h, float(pred) + h
    if bounds is not None:
        low, high = max(low, float(bounds[0])), min(high, float(bounds[1]))
    return low, high


def covered(true: float, low: float | None, high: float | None) -> bool:
    """Whether ``true`` lies in ``[low, high]``; a missing interval (``None`` bounds, as JSON
    writes infinities) covers nothing, an infinite one everything."""
    if low is None or high is None:
        return False
    return bool(low <= true <= high)


def coverage(true: Sequence[float], lows: Sequence[float | None], highs: Sequence[float | None]) -> float:
    """Share of ``true`` inside ``[low, high]`` (NaN for no clip)."""
    if len(true) != len(lows) or len(true) != len(highs):
        raise ValueError(f"{len(true)} true scores for {len(lows)} lows and {len(highs)} highs")
    if not len(true):
        return math.nan
    return sum(covered(t, lo, hi) for t, lo, hi in zip(true, lows, highs)) / len(true)


def per_class_coverage(
    true: Sequence[float], lows: Sequence[float | None], highs: Sequence[float | None],
    classes: Sequence[Hashable],
) -> dict[Hashable, tuple[int, float]]:
    """``class -> (clips, coverage)``, classes in the order they first appear."""
    groups: dict[Hashable, list[int]] = {}
    for i, c in enumerate(classes):
        groups.setdefault(c, []).append(i)
    return {
        c: (len(idx), coverage([true[i] for i in idx], [lows[i] for i in idx], [highs[i] for i in idx]))
        for c, idx in groups.items()
    }


def spread(values: Sequence[float], kind: str = "std") -> float | None:
    """The spread of sampled scores: standard deviation (``std``, population) or the median
    absolute deviation scaled to a standard deviation (``mad``, 1.4826 x MAD). ``None`` for
    fewer than two finite values (a spread cannot be measured from one)."""
    if kind not in SPREADS:
        raise ConfigError(f"spread must be one of {list(SPREADS)}, got {kind!r}")
    finite = np.asarray([v for v in values if _finite(v)], dtype=float)
    if len(finite) < 2:
        return None
    if kind == "std":
        return float(np.std(finite))
    return float(MAD_TO_STD * np.median(np.abs(finite - np.median(finite))))


def reliability(
    calibration_scores: Sequence[float | None], test_scores: Sequence[float | None], levels: Sequence[float],
) -> list[dict[str, float]]:
    """Nominal against empirical coverage: at each level, the conformal quantile refitted from
    the calibration scores and the share of test scores at or below it.

    A test clip is covered when its score is finite and at most the quantile: exactly when its
    true score lies in its interval (a clip without a predicted score, or without a spread for
    ``normalised``, has no interval and is never covered). Returns ``[{"nominal", "quantile",
    "empirical"}]`` (``quantile`` may be ``inf``; ``empirical`` is NaN without test scores).
    """
    test = [math.inf if (s is None or math.isnan(s)) else float(s) for s in test_scores]
    rows = []
    for level in levels:
        q = conformal_quantile(calibration_scores, level)
        # an infinite test score (no predicted score, no spread) is never covered, even by q = inf
        empirical = sum(math.isfinite(s) and s <= q for s in test) / len(test) if test else math.nan
        rows.append({"nominal": float(level), "quantile": q, "empirical": float(empirical)})
    return rows


__all__ = [
    "METHODS",
    "SPREADS",
    "check_coverage",
    "conformal_quantile",
    "conformal_rank",
    "coverage",
    "covered",
    "half_width",
    "interval",
    "nonconformity",
    "per_class_coverage",
    "reliability",
    "spread",
]
