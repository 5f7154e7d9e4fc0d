"""Score level: the final score, and its agreement with the domain's formula."""

from __future__ import annotations

import math
from typing import Any, Literal

from hieroaction.domains import get_domain
from hieroaction.rewards.base import Truth, parsed, truths

Kernel = Literal["threshold", "gaussian", "laplace"]


def score_similarity(distance: float, scale: float, kernel: Kernel = "threshold") -> float:
    """Map an absolute error to [0, 1]: 1 at 0, falling with ``distance / scale``.

    threshold: ``1 - min(1, d / scale)``; gaussian: ``exp(-(d / scale)^2 / 2)``;
    laplace: ``exp(-d / scale)``.
    """
    if not math.isfinite(distance) or scale <= 0:
        return 0.0
    x = distance / scale
    if kernel == "threshold":
        return 1.0 - min(1.0, x)
    if kernel == "gaussian":
        return math.exp(-0.5 * x * x)
    if kernel == "laplace":
        return math.exp(-x)
    raise ValueError(f"unknown score kernel {kernel!r}; expected threshold, gaussian or laplace")


def _range(truth: Truth) -> tuple[float, float] | None:
    return truth.score_range or get_domain(truth.domain).score_range


def _inside(value: float, rng: tuple[float, float]) -> bool:
    return rng[0] <= value <= rng[1]


def score_reward(
    completions: list[Any], tau: float = 0.1, kernel: Kernel = "threshold", **columns: Any
) -> list[float | None]:
    """Similarity of the predicted and true final score on the scale ``tau x score range``.

    A score outside the score range earns 0 (it is wrong whatever the truth); no score, 0.
    None when the sample has no true score or no range is known.
    """
    out: list[float | None] = []
    for completion, truth in zip(completions, truths(len(completions), columns)):
        rng = _range(truth)
        if truth.score is None or rng is None:
            out.append(None)
            continue
        pred = parsed(completion).assessment.score
        if pred is None or not _inside(pred, rng):
            out.append(0.0)
            continue
        out.append(score_similarity(abs(pred - truth.score), tau * (rng[1] - rng[0]), kernel))
    return out


def consistency_reward(
    completions: list[Any], tau: float = 0.02, kernel: Kernel = "threshold", **columns: Any
) -> list[float | None]:
    """Agreement of the predicted score with the domain formula over the predicted components.

    Every component the formula reads must be reported; a missing one earns 0. None for a
    domain whose score has no formula (generic).
    """
    out: list[float | None] = []
    for completion, truth in zip(completions, truths(len(completions), columns)):
        domain = get_domain(truth.domain)
        rng = _range(truth)
        if domain.formula.kind == "identity" or rng is None:
            out.append(None)
            continue
        assessment = parsed(completion).assessment
        implied = domain.final_score(assessment.components)
        if assessment.score is None or implied is None or not _inside(assessment.score, rng):
            out.append(0.0)
            continue
        out.append(score_similarity(abs(assessment.score - implied), tau * (rng[1] - rng[0]), kernel))
    return out
