"""Sub-action level: the steps' labels, their time spans and their quality."""

from __future__ import annotations

import math
from typing import Any

from hieroaction.domains import get_domain
from hieroaction.evaluation.metrics import aligned_tiou, normalised_edit_score
from hieroaction.rewards.base import Truth, parsed, truths


def _norm(label: str) -> str:
    return " ".join(label.lower().split())


def sequence_reward(completions: list[Any], **columns: Any) -> list[float | None]:
    """1 - normalised edit distance between predicted and true step labels (None: no steps).

    Repeating a step or adding extra ones increases the distance, so it never pays.
    """
    out: list[float | None] = []
    for completion, truth in zip(completions, truths(len(completions), columns)):
        if not truth.steps:
            out.append(None)
            continue
        predicted = [_norm(s.label) for s in parsed(completion).assessment.steps]
        out.append(normalised_edit_score(predicted, [_norm(s["label"]) for s in truth.steps]))
    return out


def localisation_reward(completions: list[Any], **columns: Any) -> list[float | None]:
    """Mean temporal IoU of order-aligned predicted and true steps (None: no step times)."""
    out: list[float | None] = []
    for completion, truth in zip(completions, truths(len(completions), columns)):
        spans = [(s["start"], s["end"]) for s in truth.steps if s.get("start") is not None]
        if not spans or len(spans) != len(truth.steps):
            out.append(None)
            continue
        predicted = [(s.start, s.end) for s in parsed(completion).assessment.steps]
        out.append(aligned_tiou(predicted, spans))
    return out


def _range_of(truth: Truth, name: str) -> tuple[float, float] | None:
    domain = get_domain(truth.domain)
    ranges = domain.extra.get("component_ranges") or {}
    if name in ranges:
        lo, hi = ranges[name]
        return float(lo), float(hi)
    return domain.component_range


def _error(pred: float | None, true: float, span: tuple[float, float] | None) -> float:
    """Absolute error normalised by the span (relative error without one), capped at 1."""
    if pred is None or not math.isfinite(pred):
        return 1.0
    scale = (span[1] - span[0]) if span else max(abs(true), 1e-6)
    return min(1.0, abs(pred - true) / scale)


def subscore_reward(completions: list[Any], **columns: Any) -> list[float | None]:
    """1 - mean normalised absolute error of step qualities and score components.

    Step qualities are order-aligned with the true step scores (a missing step or quality
    counts as the largest error); components are matched by name. Errors are normalised by
    the domain's ranges (``quality_range`` / ``step_score_range``, ``component_ranges``).
    None when the sample has neither step scores nor components.
    """
    out: list[float | None] = []
    for completion, truth in zip(completions, truths(len(completions), columns)):
        assessment = parsed(completion).assessment
        domain = get_domain(truth.domain)
        step_span = domain.extra.get("step_score_range") or domain.extra.get("quality_range")
        step_span = tuple(map(float, step_span)) if step_span else None
        errors = []
        true_steps = [s for s in truth.steps if s.get("score") is not None]
        if true_steps and len(true_steps) == len(truth.steps):
            for i, step in enumerate(truth.steps):
                pred = assessment.steps[i].quality if i < len(assessment.steps) else None
                errors.append(_error(pred, float(step["score"]), step_span))
        for name, value in truth.components.items():
            errors.append(_error(assessment.components.get(name), float(value), _range_of(truth, name)))
        out.append(None if not errors else 1.0 - sum(errors) / len(errors))
    return out
