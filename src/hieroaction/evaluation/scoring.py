"""Score predictions against the ground truth: every SPEC section 6 metric, with bootstrap CIs.

:func:`score_predictions` matches predictions and truth by id, reports the ids found in one of
them only (counted and listed), and computes, with :mod:`hieroaction.evaluation.metrics`:

============================ ==================================================================
``spearman``                 Spearman rho of predicted and true final scores
``rl2_x100``                 relative L2 x 100, range from the truth of the evaluated clips
``spearman_fisher_z``        per-class rho averaged through Fisher's z (``per_class`` holds each;
                             no interval: see the comment in :func:`score_predictions`)
``action_accuracy``          exact action labels, over clips with a true label
``step_sequence_accuracy``   clips whose step labels are exactly the true sequence
``step_edit_score``          mean 1 - normalised edit distance of the step label sequences
``step_tiou``                mean temporal IoU of order-aligned steps
``aiou@0.5``, ``aiou@0.75``  fraction of clips whose step tIoU reaches the threshold
``parse_failure_rate``       answers not in the exact SAR format (this system's predictions)
``unreadable_rate``          answers from which nothing at all could be read
============================ ==================================================================

Each metric ``m`` has ``m_ci``: a percentile bootstrap interval (clips resampled with
replacement). A prediction without a score (an unreadable answer, a clip that could not be
decoded, a line without ``"score"``) stays in the evaluation: it is scored as the mean of the
other predictions (the rule of :func:`~hieroaction.evaluation.metrics.score_metrics`), so a
system gains nothing by abstaining. Undefined metrics (no steps annotated, no action predicted)
are ``None``.

:func:`interval_metrics` adds the empirical coverage and width of score intervals (those of a
calibrated model, or those a predictions file came with), and, given the calibration, their
reliability (nominal against empirical coverage).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hieroaction.errors import ConfigError, DataError
from hieroaction.evaluation.metrics import (
    accuracy,
    aiou_at,
    aligned_tiou,
    bootstrap_ci,
    fill_missing_scores,
    normalised_edit_score,
    relative_l2,
    score_metrics,
    spearman,
)
from hieroaction.evaluation.predictions import ClassBy, LineProblem, PredictionRow, TruthRow

# How many ids of each unmatched kind are printed in a one-line summary.
_SHOWN_IDS = 5


@dataclass
class BootstrapConfig:
    """Bootstrap confidence intervals: resamples, level and seed (repeatable intervals)."""

    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_resamples < 0:
            raise ConfigError(f"bootstrap.n_resamples must be >= 0, got {self.n_resamples}")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"bootstrap.confidence must be between 0 and 1, got {self.confidence}")


@dataclass
class ScoringConfig:
    """How predictions are scored.

    Attributes:
        bootstrap: the confidence intervals (``n_resamples: 0`` turns them off).
        aiou_thresholds: tIoU thresholds of AIoU.
        class_by: what groups clips for per-class rho: the true ``action`` label (AQA-7's
            classes are action labels), the ``domain`` or the ``dataset``.
        default_fps: frame rate for the truth step times of records without one (FineDiving
            stores none); without it such records' steps are not scored.
        top_confusions: how many (true, predicted) action pairs the confusion summary lists.
    """

    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    aiou_thresholds: list[float] = field(default_factory=lambda: [0.5, 0.75])
    class_by: ClassBy = "action"
    default_fps: float | None = None
    top_confusions: int = 10

    def __post_init__(self) -> None:
        for t in self.aiou_thresholds:
            if not 0 <= t <= 1:
                raise ConfigError(f"aiou_thresholds must lie in [0, 1], got {t}")


@dataclass
class Pair:
    """A clip found in both files, with its per-clip step scores."""

    truth: TruthRow
    pred: PredictionRow
    edit: float | None = None
    tiou: float | None = None


@dataclass
class Evaluation:
    """Everything :func:`score_predictions` found.

    ``metrics`` is the flat, JSON-ready mapping written to ``metrics.json`` (and printed by
    ``--json``); the other fields feed the report.
    """

    metrics: dict[str, Any]
    pairs: list[Pair]
    per_class: list[dict[str, Any]]
    confusions: list[dict[str, Any]]
    only_in_predictions: list[str]
    only_in_truth: list[str]
    problems: list[str]
    # (id, true score, predicted score as scored, whether it was missing and imputed)
    scores: list[tuple[str, float, float, bool]] = field(default_factory=list)

    def coverage_lines(self) -> list[str]:
        """One sentence per kind of id found in one file only (none when all matched)."""
        lines = []
        for ids, where, other in (
            (self.only_in_predictions, "predictions", "truth"),
            (self.only_in_truth, "truth", "predictions"),
        ):
            if ids:
                shown = ", ".join(repr(i) for i in ids[:_SHOWN_IDS]) + (" ..." if len(ids) > _SHOWN_IDS else "")
                lines.append(f"{len(ids)} id(s) only in the {where}, not in the {other}: {shown}")
        return lines


def _ci(metric: Callable[..., float], columns: Sequence[Sequence[Any]], config: BootstrapConfig) -> list[float] | None:
    if config.n_resamples == 0 or not columns or not columns[0]:
        return None
    lo, hi = bootstrap_ci(
        metric, *columns, n_resamples=config.n_resamples, confidence=config.confidence, seed=config.seed
    )
    return None if math.isnan(lo) else [lo, hi]


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _match(
    predictions: Sequence[PredictionRow], truths: Sequence[TruthRow]
) -> tuple[list[Pair], list[str], list[str]]:
    by_id = {p.id: p for p in predictions}
    truth_ids = {t.id for t in truths}
    pairs = [Pair(t, by_id[t.id]) for t in truths if t.id in by_id]
    only_pred = [p.id for p in predictions if p.id not in truth_ids]
    only_truth = [t.id for t in truths if t.id not in by_id]
    if not pairs:
        raise DataError(
            f"none of the {len(predictions)} prediction ids matches one of the {len(truths)} truth "
            f"ids (predictions start with {predictions[0].id!r}, truth with {truths[0].id!r}); "
            "are both files of the same split?"
        )
    return pairs, only_pred, only_truth


def score_predictions(
    predictions: Sequence[PredictionRow],
    truths: Sequence[TruthRow],
    config: ScoringConfig | None = None,
    problems: Sequence[LineProblem | str] = (),
) -> Evaluation:
    """Match by id and compute every metric (see the module docstring).

    Raises :class:`DataError` when no id is in both, or no matched clip has a true score.
    """
    config = config or ScoringConfig()
    boot = config.bootstrap
    pairs, only_pred, only_truth = _match(predictions, truths)
    metrics: dict[str, Any] = {}

    # --- scores --------------------------------------------------------------------------
    scored = [p for p in pairs if p.truth.score is not None]
    if not scored:
        raise DataError(f"none of the {len(pairs)} clips found in both files has a true score")
    true = [float(p.truth.score) for p in scored]  # type: ignore[arg-type]
    pred = [p.pred.score for p in scored]
    groups = [p.truth.group for p in scored]
    use_classes = all(g is not None for g in groups) and len(set(groups)) > 1
    base = score_metrics(pred, true, groups if use_classes else None)
    filled = fill_missing_scores(pred, true)
    score_range = (min(true), max(true))
    metrics["n"] = len(scored)
    metrics["spearman"] = base["spearman"]
    metrics["spearman_ci"] = _ci(spearman, [filled, true], boot)
    metrics["rl2_x100"] = base["rl2_x100"]
    metrics["rl2_x100_ci"] = _ci(
        lambda p, t: 100.0 * relative_l2(p, t, score_range=score_range), [filled, true], boot
    )
    metrics["score_range"] = list(score_range)
    metrics["missing_scores"] = int(base["missing_scores"])
    per_class: list[dict[str, Any]] = []
    if use_classes:
        # No bootstrap interval: a resample duplicates clips, which drives the rho of a small
        # class to +-1 and its arctanh towards infinity, so the interval would mostly measure
        # the class sizes.
        metrics["spearman_fisher_z"] = base["spearman_fisher_z"]
        counts = Counter(groups)
        per_class = [
            {"class": c, "n": counts[c], "spearman": base[f"spearman[{c}]"]}
            for c in sorted(counts, key=lambda c: (-counts[c], str(c)))
        ]
        metrics["classes"] = len(counts)
    else:
        metrics["spearman_fisher_z"] = None
        metrics["classes"] = len(set(groups)) if all(g is not None for g in groups) else None

    # --- actions -------------------------------------------------------------------------
    confusions: list[dict[str, Any]] = []
    labelled = [p for p in pairs if p.truth.action is not None]
    if labelled and any(p.pred.has_action for p in pairs):
        pred_a = [p.pred.action for p in labelled]
        true_a = [p.truth.action for p in labelled]
        metrics["n_action"] = len(labelled)
        metrics["action_accuracy"] = accuracy(pred_a, true_a)
        metrics["action_accuracy_ci"] = _ci(accuracy, [pred_a, true_a], boot)
        wrong = Counter((t, p) for p, t in zip(pred_a, true_a) if p != t)
        confusions = [
            {"true": t, "predicted": p, "count": n}
            for (t, p), n in sorted(wrong.items(), key=lambda kv: (-kv[1], kv[0][0], str(kv[0][1])))
        ][: config.top_confusions]
        if per_class and config.class_by == "action":
            for row in per_class:
                hits = [a == row["class"] for a, t in zip(pred_a, true_a) if t == row["class"]]
                row["action_accuracy"] = _mean(hits)
    else:
        metrics.update(n_action=0, action_accuracy=None, action_accuracy_ci=None)

    # --- steps ---------------------------------------------------------------------------
    stepped = [p for p in pairs if p.truth.steps]
    thresholds = list(config.aiou_thresholds)
    if stepped and any(p.pred.has_steps for p in pairs):
        for p in stepped:
            labels_p = [s.label for s in p.pred.steps]
            labels_t = [s.label for s in p.truth.steps or []]
            p.edit = normalised_edit_score(labels_p, labels_t)
            p.tiou = aligned_tiou(
                [(s.start, s.end) for s in p.pred.steps], [(s.start, s.end) for s in p.truth.steps or []]
            )
        exact = [float([s.label for s in p.pred.steps] == [s.label for s in p.truth.steps or []]) for p in stepped]
        edits = [p.edit for p in stepped]
        tious = [p.tiou for p in stepped]
        metrics["n_steps"] = len(stepped)
        metrics["step_sequence_accuracy"] = _mean(exact)
        metrics["step_sequence_accuracy_ci"] = _ci(_mean, [exact], boot)
        metrics["step_edit_score"] = _mean(edits)
        metrics["step_edit_score_ci"] = _ci(_mean, [edits], boot)
        metrics["step_tiou"] = _mean(tious)
        metrics["step_tiou_ci"] = _ci(_mean, [tious], boot)
        for t in thresholds:
            metrics[f"aiou@{t:g}"] = aiou_at(tious, t)
            metrics[f"aiou@{t:g}_ci"] = _ci(lambda v, t=t: aiou_at(v, t), [tious], boot)
    else:
        metrics["n_steps"] = 0
        for key in ("step_sequence_accuracy", "step_edit_score", "step_tiou") + tuple(
            f"aiou@{t:g}" for t in thresholds
        ):
            metrics[key] = None
            metrics[f"{key}_ci"] = None

    # --- answers (this system's predictions only) ----------------------------------------
    answered = [p.pred for p in pairs if p.pred.completion is not None]
    metrics["n_completions"] = len(answered)
    if answered:
        failed = [float(bool(p.problems)) for p in answered]
        empty = [float(p.unreadable) for p in answered]
        metrics["parse_failure_rate"] = _mean(failed)
        metrics["parse_failure_rate_ci"] = _ci(_mean, [failed], boot)
        metrics["unreadable_rate"] = _mean(empty)
    else:
        metrics.update(parse_failure_rate=None, parse_failure_rate_ci=None, unreadable_rate=None)
    errors = [p.pred.id for p in pairs if p.pred.error is not None]
    metrics["clip_errors"] = len(errors)

    # --- coverage ------------------------------------------------------------------------
    metrics["confidence"] = boot.confidence
    metrics["bootstrap_resamples"] = boot.n_resamples
    metrics["per_class"] = {row["class"]: {k: v for k, v in row.items() if k != "class"} for row in per_class}
    metrics["ids"] = {
        "matched": len(pairs),
        "without_true_score": [p.truth.id for p in pairs if p.truth.score is None],
        "without_predicted_score": [p.truth.id for p in scored if p.pred.score is None],
        "only_in_predictions": {"count": len(only_pred), "ids": only_pred},
        "only_in_truth": {"count": len(only_truth), "ids": only_truth},
        "clip_errors": errors,
    }
    problem_lines = [str(p) for p in problems]
    metrics["problems"] = problem_lines
    return Evaluation(
        metrics=metrics,
        pairs=pairs,
        per_class=per_class,
        confusions=confusions,
        only_in_predictions=only_pred,
        only_in_truth=only_truth,
        problems=problem_lines,
        scores=[
            (p.truth.id, t, f, p.pred.score is None) for p, t, f in zip(scored, true, filled)
        ],
    )


# ---------------------------------------------------------------------------------------------
# Score intervals (a calibrated model: hieroaction.inference.calibration)
# ---------------------------------------------------------------------------------------------


@dataclass
class IntervalRow:
    """One clip's true score, predicted score and interval (``low``/``high`` ``None``: no
    interval, e.g. no predicted score), the sampled answers' spread and the clip's class."""

    id: str
    true: float
    pred: float | None
    low: float | None
    high: float | None
    spread: float | None = None
    group: str | None = None


def interval_metrics(
    rows: Sequence[IntervalRow], calibration: Any = None, config: ScoringConfig | None = None,
    levels: Sequence[float] = (0.5, 0.8, 0.9, 0.95), *, nominal: float | None = None,
) -> dict[str, Any]:
    """Empirical coverage and width of score intervals, and with a calibration their reliability.

    - ``interval_coverage``: the share of clips whose true score lies inside their interval; a
      clip without an interval (no predicted score; without a spread, for ``normalised``) is
      not covered. ``interval_width``: the mean width of the finite intervals. Both with
      bootstrap intervals, overall and per class (``interval_per_class``).
    - ``interval_reliability`` (only with ``calibration``): at each nominal level of ``levels``,
      the quantile refitted from the calibration's stored scores (``calibration.scores``) and
      the share of these clips whose nonconformity score is at most it; ``calibration`` also
      adds its description under ``"calibration"``. Without one both keys are left out: the
      intervals alone cannot say how they would widen at other levels.

    ``nominal`` is the intervals' nominal coverage, by default ``calibration.coverage``
    (``evaluate --model`` has a calibration; ``evaluate --predictions`` reads the level from the
    prediction lines, and may have none).
    """
    import hieroaction.inference.conformal as conformal

    if nominal is None:
        if calibration is None:
            raise ValueError("interval_metrics needs a calibration or the nominal coverage")
        nominal = calibration.coverage
    config = config or ScoringConfig()
    boot = config.bootstrap

    def summary(part: Sequence[IntervalRow]) -> dict[str, Any]:
        hits = [float(conformal.covered(r.true, r.low, r.high)) for r in part]
        widths = [
            r.high - r.low for r in part
            if r.low is not None and r.high is not None and math.isfinite(r.high - r.low)
        ]
        return {
            "n": len(part),
            "coverage": _mean(hits) if hits else None,
            "coverage_ci": _ci(_mean, [hits], boot),
            "width": _mean(widths) if widths else None,
            "width_ci": _ci(_mean, [widths], boot),
            "finite": len(widths),
        }

    overall = summary(rows)
    groups: dict[str, list[IntervalRow]] = {}
    for r in rows:
        if r.group is not None:
            groups.setdefault(r.group, []).append(r)
    per_class = (
        {c: summary(part) for c, part in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))}
        if len(groups) > 1 else {}
    )
    metrics: dict[str, Any] = {
        "interval_nominal": nominal,
        "n_interval": overall["n"],
        "interval_coverage": overall["coverage"],
        "interval_coverage_ci": overall["coverage_ci"],
        "interval_width": overall["width"],
        "interval_width_ci": overall["width_ci"],
        "intervals_finite": overall["finite"],
        "interval_per_class": per_class,
    }
    if calibration is not None:
        test_scores = [calibration.nonconformity(r.true, r.pred, r.spread) for r in rows]
        metrics["interval_reliability"] = conformal.reliability(calibration.scores, test_scores, levels)
        metrics["calibration"] = {
            "method": calibration.method, "coverage": calibration.coverage, "quantile": calibration.quantile,
            "n": calibration.n, "missing": calibration.missing, "samples": calibration.samples,
            "split": calibration.split, "created": calibration.created,
            "fingerprint": calibration.fingerprint,
        }
    return metrics
