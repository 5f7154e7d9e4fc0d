"""Validation on what users measure, shared by SFT and HPL.

A trainer answers the validation clips greedily and hands the answers here: each is read as
``hieroaction evaluate`` reads it (:func:`~hieroaction.inference.assessor.read_answer`: the
lenient parse, a score outside the domain's range a problem and no score) and scored by
:func:`~hieroaction.evaluation.scoring.score_predictions`, so ``val/spearman``,
``val/rl2_x100``, ``val/action_accuracy``, ``val/step_sequence_accuracy`` and
``val/parse_failure_rate`` mean on the validation split what ``evaluate`` reports on test.
:mod:`hieroaction.train.selection` chooses ``best/`` on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hieroaction.data.records import Record
from hieroaction.errors import DataError

# the metrics every validation reports (NaN where the split has no truth for one)
METRICS = ("spearman", "rl2_x100", "action_accuracy", "step_sequence_accuracy", "parse_failure_rate")

# one answer as validation keeps it: (record id, assessment or None, text, problems as dicts)
Row = tuple[str, Any, str, list[dict[str, Any]]]


def read_row(record: Record, text: str) -> Row:
    """One greedy answer, read as evaluation reads it."""
    from hieroaction.inference.assessor import read_answer

    assessment, problems = read_answer(text, record.domain)
    return (record.id, assessment, text, [p.model_dump(mode="json") for p in problems])


def validation_metrics(rows: Sequence[Row], records: Mapping[str, Record]) -> dict[str, float]:
    """``val/<metric>`` for every metric of :data:`METRICS` over ``rows`` (``records``: by id),
    and ``val/clips``."""
    from hieroaction.evaluation.predictions import prediction_from_assessment, truth_from_record
    from hieroaction.evaluation.scoring import BootstrapConfig, ScoringConfig, score_predictions

    predictions = [prediction_from_assessment(i, a, text, problems) for i, a, text, problems in rows]
    truths = [truth_from_record(records[i]) for i, *_ in rows]
    try:
        scored = score_predictions(predictions, truths, ScoringConfig(bootstrap=BootstrapConfig(n_resamples=0)))
    except DataError:  # no validation clip has a true score
        scored = None
    nan = float("nan")
    metrics = {"val/clips": float(len(rows))}
    for key in METRICS:
        value = None if scored is None else scored.metrics.get(key)
        metrics[f"val/{key}"] = nan if value is None else float(value)
    return metrics


__all__ = ["METRICS", "Row", "read_row", "validation_metrics"]
