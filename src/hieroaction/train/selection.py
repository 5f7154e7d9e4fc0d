"""Which checkpoint is best: selection on what users measure, guarded against format collapse.

A trainer validates its model on the validation split (greedy answers, scored by
:func:`hieroaction.evaluation.scoring.score_predictions`, the same definitions ``evaluate``
uses) and asks :func:`is_better` whether the new validation beats the best so far. The default
is validation Spearman, ties broken by R-l2, and a candidate is refused when its parse-failure
rate rose, or its action accuracy fell, by more than ``guard_margin`` against the start (the
model the run began from), so a run cannot buy rank correlation by giving up the structured
answer. The rewards are not the default: a model can earn more reward while ranking clips worse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hieroaction.errors import ConfigError

# metric -> (higher is better, the truth column the validation split needs for it)
SELECTABLE: dict[str, tuple[bool, str | None]] = {
    "spearman": (True, "score"),
    "rl2_x100": (False, "score"),
    "action_accuracy": (True, "action"),
    "step_sequence_accuracy": (True, "steps"),
    "parse_failure_rate": (False, None),
    "reward": (True, None),
}
PREFIX = "val/"


@dataclass
class SelectionConfig:
    """How ``best/`` is chosen (the ``selection:`` section of HPL recipes).

    Attributes:
        metric: the validation metric to maximise (or minimise, for ``rl2_x100`` and
            ``parse_failure_rate``): one of :data:`SELECTABLE`.
        tie_break: the metric that decides between equal values of ``metric`` (None: the
            earlier checkpoint stays).
        guard_margin: a candidate whose parse-failure rate is higher, or whose action accuracy
            is lower, than the start's by more than this is never selected (None: no guard).
    """

    metric: str = "spearman"
    tie_break: str | None = "rl2_x100"
    guard_margin: float | None = 0.02

    def __post_init__(self) -> None:
        for name, value in (("metric", self.metric), ("tie_break", self.tie_break)):
            if value is not None and value not in SELECTABLE:
                raise ConfigError(f"selection.{name} must be one of {sorted(SELECTABLE)}, got {value!r}")
        if self.guard_margin is not None and not (math.isfinite(self.guard_margin) and self.guard_margin >= 0):
            raise ConfigError(f"selection.guard_margin must be a number >= 0 (or null), got {self.guard_margin!r}")

    def needed_truths(self) -> set[str]:
        """Truth columns the validation split must hold for this selection."""
        return {SELECTABLE[m][1] for m in (self.metric, self.tie_break) if m is not None and SELECTABLE[m][1]}

    def check_split(self, available: Iterable[str], split: str) -> None:
        """One sentence when the validation split lacks a truth the selection needs."""
        missing = sorted(self.needed_truths() - set(available))
        if missing:
            raise ConfigError(
                f"selection.metric {self.metric!r}"
                + (f" (tie_break {self.tie_break!r})" if self.tie_break else "")
                + f" needs the true {', '.join(missing)} of the validation clips, and the {split!r} split has none; "
                "choose another selection.metric (e.g. reward) or a validation split with that truth"
            )


def truths_of(records: Iterable[Any]) -> set[str]:
    """The truth columns at least one of ``records`` holds (what a selection may need)."""
    records = list(records)
    available = {"domain"}
    if any(r.action.label for r in records):
        available.add("action")
    if any(r.steps for r in records):
        available.add("steps")
    if any(r.score.final is not None for r in records):
        available.update({"score", "score_range"})
    if any(r.score.components for r in records):
        available.add("components")
    return available


def _value(metrics: Mapping[str, Any], name: str) -> float | None:
    value = metrics.get(PREFIX + name, metrics.get(name))
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def guard_failure(candidate: Mapping[str, Any], start: Mapping[str, Any] | None, config: SelectionConfig) -> str | None:
    """Why ``candidate`` may not be selected against the start, or None."""
    if start is None or config.guard_margin is None:
        return None
    margin = config.guard_margin
    failures, start_failures = _value(candidate, "parse_failure_rate"), _value(start, "parse_failure_rate")
    if failures is not None and start_failures is not None and failures > start_failures + margin:
        return f"parse-failure rate {failures:.3f} > start {start_failures:.3f} + {margin:g}"
    accuracy, start_accuracy = _value(candidate, "action_accuracy"), _value(start, "action_accuracy")
    if accuracy is not None and start_accuracy is not None and accuracy < start_accuracy - margin:
        return f"action accuracy {accuracy:.3f} < start {start_accuracy:.3f} - {margin:g}"
    return None


def _compare(a: float | None, b: float | None, higher: bool) -> int:
    """1 when ``a`` is better than ``b``, -1 when worse, 0 when equal; a number beats None."""
    if a is None or b is None:
        return (a is not None) - (b is not None)
    if math.isclose(a, b, rel_tol=0.0, abs_tol=1e-12):
        return 0
    return 1 if (a > b) == higher else -1


def is_better(
    candidate: Mapping[str, Any],
    best: Mapping[str, Any] | None,
    config: SelectionConfig,
    start: Mapping[str, Any] | None = None,
) -> bool:
    """Whether ``candidate``'s validation beats ``best``'s (None: nothing selected yet) under
    ``config``, guarded against the start's validation."""
    if guard_failure(candidate, start, config) is not None:
        return False
    if best is None:
        return True
    order = _compare(_value(candidate, config.metric), _value(best, config.metric), SELECTABLE[config.metric][0])
    if order == 0 and config.tie_break is not None:
        order = _compare(
            _value(candidate, config.tie_break), _value(best, config.tie_break), SELECTABLE[config.tie_break][0]
        )
    return order > 0


def run_reference(validations: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """The guard's reference for a run that starts from nothing (SFT): the lowest parse-failure
    rate and the highest action accuracy among ``validations``."""
    reference: dict[str, float] = {}
    for name, pick in (("parse_failure_rate", min), ("action_accuracy", max)):
        values = [v for v in (_value(m, name) for m in validations) if v is not None]
        if values:
            reference[PREFIX + name] = pick(values)
    return reference


def replaces(
    candidate: Mapping[str, Any],
    best: Mapping[str, Any] | None,
    config: SelectionConfig,
    validations: Iterable[Mapping[str, Any]],
) -> bool:
    """Whether ``candidate`` becomes ``best/`` of a run guarded by its own best so far
    (``validations``: every validation of the run, the candidate's included).

    A checkpoint within ``guard_margin`` of the run's lowest parse-failure rate and highest
    action accuracy beats one that is not; between two that are both within (or both not),
    ``metric`` then ``tie_break`` decide. The reference moves as the run goes on, so a best
    chosen early can lose its place to a later checkpoint that passes where it no longer does.
    """
    if best is None:
        return True
    reference = run_reference(validations)
    candidate_ok = guard_failure(candidate, reference, config) is None
    best_ok = guard_failure(best, reference, config) is None
    if candidate_ok != best_ok:
        return candidate_ok
    return is_better(candidate, best, config)
