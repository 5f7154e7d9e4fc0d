"""Reference predictors that show what the demo's numbers mean.

- ``mean_score``: every clip gets the mean final score of the training split. Its ranking is
  constant, so its Spearman rho is undefined (read as 0); its R-l2 is the error of knowing
  nothing about a clip.
- ``difficulty_oracle``: knows each clip's true action and its difficulty, not the execution,
  and predicts difficulty x the mean execution of the training split. A model that only
  recognises the action cannot beat it; one that reads execution quality from the pixels can.

Both are scored by :func:`hieroaction.evaluation.scoring.score_predictions`, the code that
scores the models, on the same clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hieroaction.data.records import Record
from hieroaction.domains import get_domain
from hieroaction.errors import DataError
from hieroaction.evaluation.predictions import PredictionRow, TruthRow
from hieroaction.evaluation.scoring import Evaluation, ScoringConfig, score_predictions

BASELINES = ("mean_score", "difficulty_oracle")


def _finals(records: Sequence[Record]) -> list[float]:
    return [float(r.score.final) for r in records if r.score.final is not None]


def mean_score_predictions(train: Sequence[Record], records: Sequence[Record]) -> list[PredictionRow]:
    """The mean training final score for every record."""
    finals = _finals(train)
    if not finals:
        raise DataError("the training split has no final score to average")
    mean = float(np.mean(finals))
    return [PredictionRow(id=r.id, score=mean) for r in records]


def _difficulty(record: Record, component: str) -> float | None:
    value = record.score.components.get(component)
    if value is None:
        value = record.action.attributes.get(component)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def difficulty_oracle_predictions(
    train: Sequence[Record], records: Sequence[Record]
) -> list[PredictionRow]:
    """Difficulty x the mean training execution, for records of a product-formula domain
    (difficulty x execution, as diving and the synthetic sport score).

    Raises :class:`DataError` when a record's domain has no such formula or a record has no
    difficulty.
    """
    if not records:
        return []
    domain = get_domain(records[0].domain)
    formula = domain.formula
    if formula.kind != "product" or len(formula.factors) != 2:
        raise DataError(
            f"the difficulty oracle needs a difficulty x execution formula; domain "
            f"{domain.name!r} has a {formula.kind!r} formula"
        )
    difficulty_name, execution_name = formula.factors
    executions = [
        float(r.score.components[execution_name])
        for r in train
        if isinstance(r.score.components.get(execution_name), (int, float))
    ]
    if not executions:
        raise DataError(f"no training record has the component {execution_name!r} to average")
    mean_execution = float(np.mean(executions))
    rows = []
    for r in records:
        difficulty = _difficulty(r, difficulty_name)
        if difficulty is None:
            raise DataError(f"record {r.id!r} has no {difficulty_name!r} for the difficulty oracle")
        rows.append(PredictionRow(id=r.id, score=difficulty * mean_execution * formula.scale))
    return rows


def score_baselines(
    train: Sequence[Record],
    records: Sequence[Record],
    truths: Sequence[TruthRow],
    config: ScoringConfig | None = None,
) -> dict[str, Evaluation]:
    """Both baselines scored against ``truths`` (the rows of ``records``)."""
    return {
        "mean_score": score_predictions(mean_score_predictions(train, records), truths, config),
        "difficulty_oracle": score_predictions(
            difficulty_oracle_predictions(train, records), truths, config
        ),
    }


def calibrated_oracle(
    train: Sequence[Record], val: Sequence[Record], test: Sequence[Record], coverage: float,
) -> dict[str, Any]:
    """The difficulty oracle calibrated as a model is (split-conformal on the absolute error of
    its validation predictions, :mod:`hieroaction.inference.conformal`): its quantile, and the
    empirical coverage and mean width of its intervals on ``test`` (cut to the domain's score
    range, as a model's are)."""
    import hieroaction.inference.conformal as conformal

    def scored(records: Sequence[Record]) -> list[tuple[float, float]]:
        rows = difficulty_oracle_predictions(train, [r for r in records if r.score.final is not None])
        truth = {r.id: float(r.score.final) for r in records if r.score.final is not None}
        return [(truth[row.id], float(row.score)) for row in rows if row.score is not None]

    calibration = scored(val)
    quantile = conformal.conformal_quantile([abs(t - p) for t, p in calibration], coverage)
    bounds = get_domain(test[0].domain).score_range if test else None
    hits, widths = [], []
    for true, pred in scored(test):
        low, high = conformal.interval(pred, quantile, bounds=bounds)  # type: ignore[misc]
        hits.append(float(conformal.covered(true, low, high)))
        widths.append(high - low)
    return {
        "interval_nominal": coverage,
        "quantile": quantile,
        "n_calibration": len(calibration),
        "n_interval": len(hits),
        "interval_coverage": float(np.mean(hits)) if hits else None,
        "interval_width": float(np.mean(widths)) if widths else None,
    }
