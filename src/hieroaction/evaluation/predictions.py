"""Reading predictions and ground truth for scoring: from this system or from any other.

Both files are JSONL keyed by ``"id"``.

Prediction lines, in one of two shapes:

- any system: ``{"id", "score"}``, optionally ``"action"`` (a label) and ``"steps"``
  (``[{"label", "start", "end"}]`` in seconds from the start of the clip);
- ``hieroaction evaluate``'s own ``predictions.jsonl``: ``{"id", "assessment", "completion",
  "problems"}`` (and ``"error"`` for a clip that could not be read), the assessment being the
  typed :class:`~hieroaction.sar.Assessment`.

Either shape may carry a score interval, as a calibrated model writes it: ``"interval": {"low",
"high", "coverage"}`` (optionally ``"method"`` and ``"unbounded"``: a ``null`` bound of an unbounded
interval is infinite; both bounds ``null`` otherwise: no interval), and ``"samples": {"spread"}``
(the sampled answers' spread, which a ``normalised`` calibration needs). ``"interval": null`` or no
``"interval"``: the clip has no interval.

Truth lines: a unified record (see ``docs/data-formats.md``; its steps are converted to seconds
with the record's fps exactly as the rewards do), or just ``{"id", "score"}`` with optional
``"action"``, ``"steps"`` (seconds) and ``"class"`` (the group of per-class rho).

Nothing is dropped in silence: a line that cannot be read, a prediction without a score, a
step that is not ``{label, start, end}`` and a malformed interval (a bound that is not a number,
``low`` above ``high``, no coverage between 0 and 1) become :class:`LineProblem` entries that the metrics
report lists. A missing file, a file without one usable line and an id given twice end in one
:class:`~hieroaction.errors.DataError` sentence.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import ValidationError

from hieroaction.data.records import Record
from hieroaction.errors import DataError
from hieroaction.sar.targets import truth_columns
from hieroaction.sar import Assessment

ClassBy = Literal["action", "domain", "dataset"]


class Span(NamedTuple):
    """One step: its label and its time span in seconds from the start of the clip."""

    label: str
    start: float
    end: float


@dataclass
class TruthRow:
    """The ground truth of one clip, as the metrics see it."""

    id: str
    score: float | None = None
    action: str | None = None
    steps: list[Span] | None = None  # None: no step annotation with times
    group: str | None = None  # the class of per-class rho


@dataclass
class GivenInterval:
    """The score interval a prediction line came with.

    ``low``/``high`` are ``None`` when the line says there is no interval (or its interval was
    malformed): the clip counts as not covered. An unbounded side is infinite. ``coverage`` is
    the nominal coverage, ``method`` the calibration method when the line names it.
    """

    low: float | None
    high: float | None
    coverage: float
    method: str | None = None


@dataclass
class PredictionRow:
    """What a system predicted for one clip.

    ``has_action`` / ``has_steps`` say whether the line gave an action or steps at all (a
    system that never predicts steps is not scored on them); ``completion`` and ``problems``
    are known only for this system's own predictions.
    """

    id: str
    score: float | None = None
    action: str | None = None
    steps: list[Span] = field(default_factory=list)
    has_action: bool = False
    has_steps: bool = False
    completion: str | None = None
    problems: list[dict[str, Any]] | None = None
    error: str | None = None
    assessment: Assessment | None = None
    interval: GivenInterval | None = None  # None: the line gave no interval
    spread: float | None = None  # the sampled answers' spread (``"samples": {"spread"}``)

    @property
    def unreadable(self) -> bool:
        """Nothing at all could be read from the answer (own predictions only)."""
        a = self.assessment
        return a is None or (a.action is None and not a.steps and a.score is None and not a.components)


@dataclass
class LineProblem:
    """A line (or a part of it) that could not be used as it is."""

    path: str
    line: int
    id: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        return f"{where} (id {self.id!r}): {self.reason}" if self.id is not None else f"{where}: {self.reason}"


# ---------------------------------------------------------------------------------------------
# Lines
# ---------------------------------------------------------------------------------------------


def _json_lines(path: Path, problems: list[LineProblem], what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise DataError(f"{path}: no such {what} file (expected JSONL keyed by \"id\")")
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(LineProblem(str(path), number, None, f"not valid JSON ({exc.msg})"))
                continue
            if not isinstance(obj, dict):
                problems.append(LineProblem(str(path), number, None, "not a JSON object"))
                continue
            raw_id = obj.get("id")
            if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or str(raw_id).strip() == "":
                problems.append(LineProblem(str(path), number, None, 'no "id" (a string)'))
                continue
            obj["id"] = str(raw_id)
            yield number, obj


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _spans(value: Any) -> list[Span] | None:
    """Steps as spans; None when ``value`` is not a list of ``{label, start, end}``."""
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        if not isinstance(item, Mapping):
            return None
        label, start, end = item.get("label"), _number(item.get("start")), _number(item.get("end"))
        if not isinstance(label, str) or start is None or end is None:
            return None
        out.append(Span(label, start, end))
    return out


def _unique_lines(path: Path, problems: list[LineProblem], what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The usable lines of ``path``; an id on two lines is a :class:`DataError`."""
    seen: dict[str, int] = {}
    for number, obj in _json_lines(path, problems, what):
        if obj["id"] in seen:
            raise DataError(
                f"{path}: id {obj['id']!r} appears twice (lines {seen[obj['id']]} and {number}); "
                "each clip must have one line"
            )
        seen[obj["id"]] = number
        yield number, obj


def _nonempty(rows: list[Any], path: Path, what: str, problems: list[LineProblem]) -> None:
    if not rows:
        first = f" (first problem: {problems[0]})" if problems else ""
        raise DataError(f"{path}: holds no usable {what} line{first}")


# ---------------------------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------------------------


def prediction_from_assessment(
    row_id: str,
    assessment: Assessment | None,
    completion: str | None = None,
    problems: list[dict[str, Any]] | None = None,
    error: str | None = None,
) -> PredictionRow:
    """A prediction from this system's parsed answer (or its failure to read the clip)."""
    a = assessment
    return PredictionRow(
        id=row_id,
        score=None if a is None else a.score,
        action=None if a is None else a.action,
        steps=[] if a is None else [Span(s.label, s.start, s.end) for s in a.steps],
        has_action=True,
        has_steps=True,
        completion=completion,
        problems=list(problems or []),
        error=error,
        assessment=a,
    )


def _own_prediction(obj: dict[str, Any], number: int, path: Path, problems: list[LineProblem]) -> PredictionRow:
    raw = obj.get("assessment")
    assessment = None
    if raw is not None:
        try:
            assessment = Assessment.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "assessment"
            problems.append(LineProblem(str(path), number, obj["id"], f"assessment.{where}: {first['msg']}"))
    elif obj.get("error") is None:
        problems.append(LineProblem(str(path), number, obj["id"], "no assessment and no error"))
    listed = obj.get("problems")
    return prediction_from_assessment(
        obj["id"],
        assessment,
        completion=obj.get("completion") if isinstance(obj.get("completion"), str) else None,
        problems=[p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else [],
        error=str(obj["error"]) if obj.get("error") is not None else None,
    )


def _other_prediction(obj: dict[str, Any], number: int, path: Path, problems: list[LineProblem]) -> PredictionRow:
    row = PredictionRow(id=obj["id"], score=_number(obj.get("score")))
    if row.score is None:
        reason = 'no "score"' if "score" not in obj else f'"score" is not a finite number ({obj["score"]!r})'
        problems.append(LineProblem(str(path), number, row.id, f"{reason}; scored as a missing prediction"))
    if "action" in obj:
        row.has_action = True
        action = obj["action"]
        row.action = action if isinstance(action, str) and action.strip() else None
    if "steps" in obj:
        row.has_steps = True
        spans = _spans(obj["steps"])
        if spans is None:
            problems.append(LineProblem(
                str(path), number, row.id,
                '"steps" is not a list of {label, start, end} in seconds; scored as no steps',
            ))
        row.steps = spans or []
    return row


def _bound(value: Any, unbounded: bool, infinite: float) -> float | None:
    """One side of an interval: a number, ``infinite`` for a ``null`` side of an unbounded
    interval, ``None`` for a ``null`` side otherwise; raises ValueError for anything else."""
    if value is None:
        return infinite if unbounded else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(repr(value))
    return float(value)


def _given_interval(obj: dict[str, Any], number: int, path: Path, problems: list[LineProblem]) -> GivenInterval | None:
    """The line's ``"interval"`` (None without one); a malformed one is a problem and counts as
    no interval (not covered), keeping its nominal coverage when that could be read."""
    raw = obj.get("interval")
    if raw is None:
        return None

    def problem(reason: str) -> None:
        problems.append(LineProblem(str(path), number, obj["id"], f'"interval" {reason}; scored as no interval (not covered)'))

    if not isinstance(raw, Mapping):
        problem(f"is not an object with low, high and coverage ({raw!r})")
        return None
    level = raw.get("coverage")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        problem(f"has no coverage between 0 and 1 ({level!r})")
        return None
    method = raw.get("method") if isinstance(raw.get("method"), str) else None
    unbounded = raw.get("unbounded") is True
    given = GivenInterval(None, None, float(level), method)
    try:
        low = _bound(raw.get("low"), unbounded, -math.inf)
    except ValueError as exc:
        problem(f"low is not a number ({exc})")
        return given
    try:
        high = _bound(raw.get("high"), unbounded, math.inf)
    except ValueError as exc:
        problem(f"high is not a number ({exc})")
        return given
    if (low is None) != (high is None):
        problem(f"has one bound only (low {raw.get('low')!r}, high {raw.get('high')!r})")
        return given
    if low is not None and high is not None and low > high:
        problem(f"low {low:g} is above high {high:g}")
        return given
    given.low, given.high = low, high
    return given


def _spread(obj: dict[str, Any]) -> float | None:
    samples = obj.get("samples")
    return _number(samples.get("spread")) if isinstance(samples, Mapping) else None


def read_predictions(path: str | Path, problems: list[LineProblem] | None = None) -> list[PredictionRow]:
    """The prediction lines of ``path`` (either shape; see the module docstring).

    Lines that cannot be used, and parts of lines, are appended to ``problems``.
    """
    path = Path(path)
    problems = problems if problems is not None else []
    rows: list[PredictionRow] = []
    for number, obj in _unique_lines(path, problems, "predictions"):
        own = "assessment" in obj
        row = (_own_prediction if own else _other_prediction)(obj, number, path, problems)
        row.interval = _given_interval(obj, number, path, problems)
        row.spread = _spread(obj)
        rows.append(row)
    _nonempty(rows, path, "prediction", problems)
    return rows


# ---------------------------------------------------------------------------------------------
# Truth
# ---------------------------------------------------------------------------------------------


def truth_from_record(
    record: Record, class_by: ClassBy = "action", default_fps: float | None = None
) -> TruthRow:
    """The truth of a unified record; step times in seconds as the rewards compute them.

    Steps need a frame rate: the record's, else ``default_fps``; without either the record's
    steps are not scored.
    """
    columns = truth_columns(record, default_fps=default_fps)
    steps = [Span(s["label"], s["start"], s["end"]) for s in columns["steps"]]
    group = {"action": record.action.label, "domain": record.domain, "dataset": record.dataset}[class_by]
    return TruthRow(
        id=record.id,
        score=columns["score"],
        action=columns["action"],
        steps=steps or None,
        group=group,
    )


def _plain_truth(
    obj: dict[str, Any], number: int, path: Path, problems: list[LineProblem], class_by: ClassBy
) -> TruthRow:
    row = TruthRow(id=obj["id"], score=_number(obj.get("score")))
    if row.score is None and obj.get("score") is not None:
        problems.append(LineProblem(str(path), number, row.id, f'"score" is not a finite number ({obj["score"]!r})'))
    action = obj.get("action")
    row.action = action if isinstance(action, str) and action.strip() else None
    if "steps" in obj:
        spans = _spans(obj["steps"])
        if spans is None:
            problems.append(LineProblem(
                str(path), number, row.id, '"steps" is not a list of {label, start, end} in seconds'
            ))
        row.steps = spans or None
    group = obj.get("class", obj.get(class_by) if class_by != "action" else row.action)
    row.group = None if group is None else str(group)
    return row


def read_truth(
    path: str | Path,
    problems: list[LineProblem] | None = None,
    class_by: ClassBy = "action",
    default_fps: float | None = None,
) -> list[TruthRow]:
    """The truth lines of ``path``: unified records or plain ``{"id", "score", ...}`` lines."""
    path = Path(path)
    problems = problems if problems is not None else []
    rows: list[TruthRow] = []
    for number, obj in _unique_lines(path, problems, "truth"):
        try:
            record = Record.model_validate(obj)
        except ValidationError:
            # Not a unified record: the plain shape, whose steps are already in seconds.
            rows.append(_plain_truth(obj, number, path, problems, class_by))
            continue
        rows.append(truth_from_record(record, class_by, default_fps))
    _nonempty(rows, path, "truth", problems)
    return rows
