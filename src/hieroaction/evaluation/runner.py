"""``hieroaction evaluate`` as Python: run a model over a records file, or score existing
predictions, and write predictions, metrics and the report.

With a model (:func:`evaluate_model`): the records' clips (from the frame cache when given) go
through :class:`~hieroaction.inference.Assessor` in batches, greedy, with a progress bar; each
answer is parsed leniently and compared with the record. Without one (:func:`evaluate_files`):
predictions from any system are scored with the same code, score intervals included (with the
calibration file given, their reliability too).

Files written to the output folder, each atomically (a crash or a bad input at any point leaves
the previous file or none, never a partial one), and only after every metric was computed:
``predictions.jsonl``, ``metrics.json``, ``report.md`` (+ ``report_assets/``) and ``report.html``.

Model selection (checkpoints, prompts, frame settings) belongs on a validation split; the test
split is evaluated once, with the settings chosen there.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hieroaction.config import config_to_dict
from hieroaction.data.records import BadLine, Record, read_jsonl
from hieroaction.domains import get_domain
from hieroaction.errors import ConfigError, DataError
from hieroaction.evaluation.predictions import (
    GivenInterval,
    LineProblem,
    PredictionRow,
    TruthRow,
    prediction_from_assessment,
    read_predictions,
    read_truth,
    truth_from_record,
)
from hieroaction.evaluation.scoring import (
    Evaluation,
    IntervalRow,
    Pair,
    ScoringConfig,
    interval_metrics,
    score_predictions,
)
from hieroaction.inference import AssessResult, Assessor, Calibration, InferenceConfig
from hieroaction.inference.calibration import read_calibration_file
from hieroaction.io import write_json_atomic, write_jsonl_atomic
from hieroaction.reports.assessment import ReportConfig
from hieroaction.reports.evaluation import Example, choose_examples, write_evaluation_report
from hieroaction.video import FrameCache

PREDICTIONS = "predictions.jsonl"
METRICS = "metrics.json"


@dataclass
class EvalConfig:
    """The evaluation recipe: how the model runs, how predictions are scored, how the report
    looks (``hieroaction evaluate --config FILE.yaml``)."""

    inference: InferenceConfig = field(default_factory=InferenceConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    report: ReportConfig = field(default_factory=ReportConfig)


@dataclass
class EvaluationRun:
    """What an evaluation produced: the scores and the files written."""

    evaluation: Evaluation
    files: list[Path]
    results: list[AssessResult] = field(default_factory=list)


def prediction_line(result: AssessResult) -> dict[str, Any]:
    """The ``predictions.jsonl`` line of one result: id, parsed assessment, raw answer,
    problems (and the error of a clip that could not be read)."""
    line: dict[str, Any] = {
        "id": result.record_id,
        "assessment": None if result.assessment is None else result.assessment.model_dump(mode="json"),
        "completion": result.completion,
        "problems": [p.model_dump(mode="json") for p in result.problems],
    }
    if result.error is not None:
        line["error"] = result.error
    if result.interval is not None:
        line["interval"] = result.interval.to_dict()
    if result.agreement is not None:
        line["samples"] = result.agreement.to_dict()
    return line


def _interval_rows(pairs: list[Pair]) -> list[IntervalRow]:
    """The matched clips with a true score, with their predicted score, interval and spread
    (a clip without an interval has ``None`` bounds: not covered)."""
    rows = []
    for pair in pairs:
        if pair.truth.score is None:
            continue
        given = pair.pred.interval
        rows.append(IntervalRow(
            id=pair.truth.id,
            true=float(pair.truth.score),
            pred=pair.pred.score,
            low=given.low if given is not None else None,
            high=given.high if given is not None else None,
            spread=pair.pred.spread,
            group=pair.truth.group,
        ))
    return rows


def _prediction_row(result: AssessResult) -> PredictionRow:
    line = prediction_line(result)
    row = prediction_from_assessment(
        str(result.record_id), result.assessment, result.completion, line["problems"], result.error
    )
    if result.interval is not None:
        i = result.interval
        row.interval = GivenInterval(i.low, i.high, i.coverage, i.method)
    if result.agreement is not None:
        row.spread = result.agreement.spread
    return row


def _nominal_coverage(preds: list[PredictionRow], path: str | Path) -> float | None:
    """The nominal coverage every prediction's interval states (``None`` when none has one);
    :class:`ConfigError` when they disagree: intervals of different levels have no common
    coverage to measure."""
    levels = [(r.interval.coverage, r.id) for r in preds if r.interval is not None]
    if not levels:
        return None
    (level, first), *rest = levels
    for other, row_id in rest:
        if not math.isclose(other, level, rel_tol=1e-9):
            raise ConfigError(
                f"{path}: the score intervals disagree on their nominal coverage ({level:g} for id "
                f"{first!r}, {other:g} for id {row_id!r}); score the predictions of one calibration at a time"
            )
    return level


def _check_calibration(calibration: Calibration, nominal: float | None, preds: list[PredictionRow],
                       path: str | Path) -> None:
    """The calibration given with ``--calibration`` must be the one that made the intervals."""
    where = calibration.path or "the calibration"
    if nominal is None:
        raise ConfigError(
            f"{path}: no prediction carries a score interval, so the calibration {where} has no "
            "intervals to check; leave --calibration out"
        )
    if not math.isclose(nominal, calibration.coverage, rel_tol=1e-9):
        raise ConfigError(
            f"{where}: its coverage {calibration.coverage:g} is not the {nominal:g} of the intervals "
            f"in {path}; give the calibration that made them"
        )
    methods = [(r.interval.method, r.id) for r in preds if r.interval is not None]
    for method, row_id in methods:
        if method is not None and method != calibration.method:
            raise ConfigError(
                f"{where}: its method {calibration.method!r} is not the {method!r} of the interval "
                f"of id {row_id!r} in {path}; give the calibration that made them"
            )


def _output_folder(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder; --out expects a folder")
    return out


def _records(data: Path, split: str | None, problems: list[LineProblem]) -> list[Record]:
    bad: list[BadLine] = []
    records = read_jsonl(data, bad=bad)
    problems.extend(LineProblem(b.path, b.line, None, b.reason) for b in bad)
    if not records:
        first = f" (first problem: {bad[0]})" if bad else ""
        raise DataError(f"{data}: holds no readable record{first}")
    if split is not None:
        chosen = [r for r in records if r.split == split]
        if not chosen:
            present = sorted({str(r.split) for r in records})
            raise DataError(f"{data}: no record has split {split!r} (splits present: {', '.join(present)})")
        records = chosen
    twice = [i for i, n in Counter(r.id for r in records).items() if n > 1]
    if twice:
        raise DataError(f"{data}: record id {twice[0]!r} appears more than once; each clip must have one id")
    return records


def evaluate_model(
    model: str | Path,
    data: str | Path,
    out_dir: str | Path,
    *,
    config: EvalConfig | None = None,
    split: str | None = None,
    frames_cache: str | Path | None = None,
    progress: bool = True,
    assessor: Assessor | None = None,
) -> EvaluationRun:
    """Run ``model`` on the records of ``data`` (one ``split`` of it) and write the results.

    Args:
        model: checkpoint folder or Hub id (ignored when ``assessor`` is given).
        data: a records JSONL file; relative video paths are relative to its folder.
        out_dir: where ``predictions.jsonl``, ``metrics.json`` and the report go.
        config: the evaluation recipe.
        split: only records of this split (all records when None).
        frames_cache: a frame cache folder (``hieroaction data frames``); clips missing from
            it are decoded and added.
        progress: show a progress bar on stderr.
        assessor: an already loaded model (its settings win over ``config.inference``).
    """
    from tqdm import tqdm

    config = config or EvalConfig()
    data = Path(data)
    out = _output_folder(out_dir)
    problems: list[LineProblem] = []
    records = _records(data, split, problems)
    # Checked before the model is loaded: a record of an unknown domain has no prompt.
    for domain in sorted({r.domain for r in records}):
        get_domain(domain)
    assessor = assessor or Assessor.from_pretrained(model, config.inference)
    cache = FrameCache(frames_cache, base_dir=data.parent) if frames_cache is not None else None
    results: list[AssessResult] = []
    truths: list[TruthRow] = []
    bar = tqdm(total=len(records), desc="evaluate", unit="clip", disable=not progress, file=sys.stderr)
    try:
        for record, result in zip(records, assessor.assess_records(records, cache=cache, base_dir=data.parent)):
            results.append(result)
            # Truth step times use the clip's own fps, the one the model was told its times in.
            fps = result.fps or config.scoring.default_fps
            truths.append(truth_from_record(record, config.scoring.class_by, default_fps=fps))
            bar.update(1)
    finally:
        bar.close()
    evaluation = score_predictions([_prediction_row(r) for r in results], truths, config.scoring, problems)
    calibration = getattr(assessor, "calibration", None)
    if calibration is not None:
        # a calibrated model: how often its score intervals hold the true score, and how wide
        rows = _interval_rows(evaluation.pairs)
        evaluation.metrics.update(interval_metrics(rows, calibration, config.scoring))
    by_id = {r.id: r for r in records}
    results_by_id = {r.record_id: r for r in results}
    truths_by_id = {t.id: t for t in truths}
    examples = []
    for row_id, why in choose_examples(evaluation, config.report.examples):
        result = results_by_id[row_id]
        if result.error is None:
            result.clip = assessor.load_clip(by_id[row_id], cache, base_dir=data.parent)
        examples.append(Example(result, truths_by_id[row_id], why))
    info = {
        "model": str(model),
        "data": str(data),
        "split": split or "all records",
        "clips": len(records),
        "frames": f"{assessor.frame_config.strategy}, {assessor.frame_config.num_frames} frames",
        "calibration": calibration.summary() if calibration is not None else None,
    }
    metrics = {**evaluation.metrics, "run": {**info, "config": config_to_dict(config)}}
    files = [
        write_jsonl_atomic(out / PREDICTIONS, [prediction_line(r) for r in results]),
        write_json_atomic(out / METRICS, metrics),
    ]
    files += write_evaluation_report(
        out, evaluation, title="Evaluation", info=info, examples=examples, config=config.report
    )
    for example in examples:
        example.result.clip = None
    return EvaluationRun(evaluation, files, results)


def evaluate_files(
    predictions: str | Path,
    truth: str | Path,
    *,
    config: EvalConfig | None = None,
    out_dir: str | Path | None = None,
    calibration: str | Path | None = None,
) -> EvaluationRun:
    """Score an existing predictions file against a truth file (see
    :mod:`hieroaction.evaluation.predictions` for both formats); with ``out_dir``, also write
    ``metrics.json`` and the report there.

    When the predictions carry score intervals (``"interval": {"low", "high", "coverage"}``, as
    ``evaluate --model`` and ``assess`` write them for a calibrated model), their coverage and
    width are scored as for a calibrated model (:func:`interval_metrics`), at the nominal
    coverage the lines state (lines that disagree on it are a :class:`ConfigError`). Their
    reliability needs the calibration's stored scores: ``calibration``, the calibration file
    (``hieroaction_calibration.json``) that made the intervals; without it reliability is left
    out.
    """
    config = config or EvalConfig()
    cal = read_calibration_file(calibration) if calibration is not None else None
    problems: list[LineProblem] = []
    preds = read_predictions(predictions, problems)
    nominal = _nominal_coverage(preds, predictions)
    if cal is not None:
        _check_calibration(cal, nominal, preds, predictions)
    truths = read_truth(truth, problems, config.scoring.class_by, config.scoring.default_fps)
    evaluation = score_predictions(preds, truths, config.scoring, problems)
    if nominal is not None:
        rows = _interval_rows(evaluation.pairs)
        evaluation.metrics.update(interval_metrics(rows, cal, config.scoring, nominal=nominal))
    files: list[Path] = []
    if out_dir is not None:
        out = _output_folder(out_dir)
        info = {
            "predictions": str(predictions),
            "truth": str(truth),
            "calibration": f"{calibration}: {cal.summary()}" if cal is not None else None,
        }
        metrics = {**evaluation.metrics, "run": {**info, "config": config_to_dict(config)}}
        files.append(write_json_atomic(out / METRICS, metrics))
        files += write_evaluation_report(out, evaluation, title="Evaluation", info=info, config=config.report)
    return EvaluationRun(evaluation, files)
