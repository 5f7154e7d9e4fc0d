"""One assessment for people: aligned terminal text, Markdown, and HTML with a step timeline.

The same renderers serve ``hieroaction assess``, the example assessments of the evaluation
report and the web app. Every renderer takes an
:class:`~hieroaction.inference.AssessResult` (an assessment with its problems and the frames
the model saw) and, where known, the ground truth, and never fails on a partial assessment:
what the parser could not read is shown as missing, with the problems listed.
"""

from __future__ import annotations

import shutil
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hieroaction.domains import get_domain
from hieroaction.errors import ConfigError
from hieroaction.evaluation.predictions import TruthRow
from hieroaction.inference import AssessResult
from hieroaction.reports.html import Markup, escape, format_value, page, table
from hieroaction.reports.svg import timeline_svg
from hieroaction.sar import Assessment


@dataclass
class ReportConfig:
    """How reports look (a section of the evaluation recipe).

    Attributes:
        key_frames: frames shown above a step timeline.
        thumb_height: their height in pixels.
        timeline_width: width of a timeline in pixels.
        examples: example assessments in an evaluation report.
        problems_shown: answer problems listed per assessment.
    """

    key_frames: int = 8
    thumb_height: int = 64
    timeline_width: int = 900
    examples: int = 4
    problems_shown: int = 8

    def __post_init__(self) -> None:
        for name in ("key_frames", "thumb_height", "timeline_width", "problems_shown"):
            if getattr(self, name) < 1:
                raise ConfigError(f"report.{name} must be at least 1, got {getattr(self, name)}")
        if self.examples < 0:
            raise ConfigError(f"report.examples must be >= 0, got {self.examples}")


def _num(value: float | None) -> str:
    return format_value(value)


def _formula_note(domain: str, assessment: Assessment) -> str | None:
    """What the domain formula gives for the predicted components, when it gives anything."""
    try:
        expected = get_domain(domain).final_score(dict(assessment.components))
    except ConfigError:
        return None
    if expected is None:
        return None
    return f"the {domain} formula gives {_num(round(expected, 3))}"


def _components(assessment: Assessment) -> str:
    return ", ".join(f"{name} {_num(value)}" for name, value in assessment.components.items())


def _problem_lines(result: AssessResult, limit: int) -> list[str]:
    lines = [f"{p.code.value}: {p.message}" for p in result.problems[:limit]]
    if len(result.problems) > limit:
        lines.append(f"... and {len(result.problems) - limit} more")
    return lines


def _window_text(result: AssessResult) -> str:
    parts = []
    if result.window is not None:
        parts.append(f"window {result.window[0]:.2f}-{result.window[1]:.2f} s")
    if result.frame_times:
        parts.append(f"{len(result.frame_times)} frames")
    if result.fps:
        parts.append(f"{result.fps:g} fps")
    parts.append(f"domain {result.domain}")
    return ", ".join(parts)


def _calibration_rows(result: AssessResult) -> list[tuple[str, str]]:
    """``("interval", ...)`` and ``("samples", ...)`` where the model is calibrated (nothing
    otherwise: an interval is never made up)."""
    rows = []
    if result.interval is not None:
        rows.append(("interval", result.interval.text()))
    if result.agreement is not None:
        rows.append(("samples", result.agreement.text()))
    return rows


def _timings_text(result: AssessResult) -> str:
    t = result.timings
    batch = f" (batch of {t.batch_size})" if t.batch_size > 1 else ""
    return (
        f"decode {t.decode_s:.2f} s, preprocess {t.preprocess_s:.2f} s, "
        f"generate {t.generate_s:.2f} s{batch}"
    )


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------


def assessment_text(result: AssessResult, width: int | None = None, problems_shown: int = 8) -> str:
    """Aligned, wrapped terminal text of one result (step times: seconds from the window start)."""
    width = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    key_w = 14
    body_w = max(30, width - key_w)
    out = [result.source]

    def field(key: str, text: str) -> None:
        lines = textwrap.wrap(text, body_w) or [""]
        out.append(f"  {key:<{key_w - 2}}{lines[0]}")
        out.extend(" " * key_w + line for line in lines[1:])

    if result.error is not None:
        field("error", result.error)
        return "\n".join(out) + "\n"
    a = result.assessment or Assessment()
    field("clip", _window_text(result))
    field("action", a.action or "(not read)")
    if a.steps:
        label_w = max(5, max(len(s.label) for s in a.steps))
        header = f"{'#':>2}  {'label':<{label_w}}  {'start':>6}  {'end':>6}  {'quality':>7}"
        field("steps", header)
        for i, s in enumerate(a.steps, start=1):
            quality = _num(s.quality) if s.quality is not None else ""
            out.append(" " * key_w + f"{i:>2}  {s.label:<{label_w}}  {s.start:>6.2f}  {s.end:>6.2f}  {quality:>7}")
            for line in textwrap.wrap(s.analysis, max(20, body_w - 4)):
                out.append(" " * (key_w + 4) + line)
    else:
        field("steps", "(none read)")
    score = _num(a.score) if a.score is not None else "(not read)"
    if a.components:
        score += f"  ({_components(a)}"
        note = _formula_note(result.domain, a)
        score += f"; {note})" if note else ")"
    field("score", score)
    for key, text in _calibration_rows(result):
        field(key, text)
    if a.recognition_reasoning:
        field("recognition", a.recognition_reasoning)
    if a.scoring_reasoning:
        field("reasoning", a.scoring_reasoning)
    problems = _problem_lines(result, problems_shown)
    field("problems", "none: the answer follows the SAR format" if not problems else problems[0])
    for line in problems[1:]:
        field("", line)
    field("timings", _timings_text(result))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def _md_cell(value: Any) -> str:
    text = value if isinstance(value, str) else format_value(value)
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown (GitHub) table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows)
    return "\n".join(lines)


def assessment_markdown(
    result: AssessResult, truth: TruthRow | None = None, problems_shown: int = 8, heading: str = "###"
) -> str:
    """Markdown of one result, side by side with the truth when given."""
    out = [f"{heading} {result.record_id or result.source}", ""]
    if result.error is not None:
        return "\n".join(out + [f"**Not assessed:** {result.error}", ""])
    a = result.assessment or Assessment()
    out.append(f"*{_window_text(result)}*")
    out.append("")
    rows: list[list[Any]] = [["action", a.action or "(not read)"]]
    if truth is not None:
        rows[0].append(truth.action or "")
    rows.append(["score", a.score] + ([truth.score] if truth is not None else []))
    if a.components:
        rows.append(["components", _components(a)] + ([""] if truth is not None else []))
    rows += [[key, text] + ([""] if truth is not None else []) for key, text in _calibration_rows(result)]
    out.append(md_table(["", "predicted"] + (["true"] if truth is not None else []), rows))
    out.append("")
    if a.steps:
        out.append(md_table(
            ["#", "label", "start (s)", "end (s)", "quality", "analysis"],
            [[i, s.label, s.start, s.end, s.quality, s.analysis] for i, s in enumerate(a.steps, start=1)],
        ))
        out.append("")
    if truth is not None and truth.steps:
        out.append("True steps: " + "; ".join(f"{s.label} {s.start:.2f}-{s.end:.2f} s" for s in truth.steps))
        out.append("")
    for name, text in (("Recognition", a.recognition_reasoning), ("Scoring", a.scoring_reasoning)):
        if text:
            out.append(f"**{name}:** {text}")
            out.append("")
    problems = _problem_lines(result, problems_shown)
    out.append("**Problems:** " + ("none" if not problems else "; ".join(problems)))
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


def key_frames(result: AssessResult, count: int) -> tuple[list[np.ndarray], list[float]]:
    """Up to ``count`` of the frames the model saw, evenly spread, with their times."""
    clip = result.clip
    if clip is None or clip.num_frames == 0:
        return [], []
    picks = np.unique(np.linspace(0, clip.num_frames - 1, min(count, clip.num_frames)).round().astype(int))
    return [clip.frames[i] for i in picks], [float(clip.timestamps[i]) for i in picks]


def _duration(result: AssessResult, truth: TruthRow | None) -> float:
    if result.clip is not None:
        return float(result.clip.duration)
    if result.window is not None:
        return result.window[1] - result.window[0]
    ends = [s.end for s in (result.assessment.steps if result.assessment else [])]
    ends += [s.end for s in (truth.steps or [])] if truth is not None else []
    return max(ends, default=1.0)


def assessment_timeline(result: AssessResult, truth: TruthRow | None = None, config: ReportConfig | None = None) -> str:
    """The SVG timeline of one result: key frames over the predicted (and true) steps."""
    config = config or ReportConfig()
    frames, times = key_frames(result, config.key_frames)
    tracks: list[tuple[str, Sequence[Any]]] = [("predicted", result.assessment.steps if result.assessment else [])]
    if truth is not None and truth.steps is not None:
        tracks.append(("true", truth.steps))
    return timeline_svg(
        _duration(result, truth), tracks, frames=frames, frame_times=times,
        width=config.timeline_width, thumb_height=config.thumb_height,
    )


def assessment_html(result: AssessResult, truth: TruthRow | None = None, config: ReportConfig | None = None) -> str:
    """An HTML card for one result: summary, timeline over key frames, steps, reasoning, problems."""
    config = config or ReportConfig()
    title = escape(result.record_id or result.source)
    if result.error is not None:
        return f'<div class="card"><h3>{title}</h3><p class="error">Not assessed: {escape(result.error)}</p></div>'
    a = result.assessment or Assessment()
    rows: list[list[Any]] = [["action", a.action or "(not read)"], ["score", a.score]]
    if truth is not None:
        rows[0].append(truth.action or "")
        rows[1].append(truth.score)
    if a.components:
        note = _formula_note(result.domain, a)
        rows.append(["components", _components(a) + (f" ({note})" if note else "")] + ([""] if truth else []))
    rows += [[key, text] + ([""] if truth is not None else []) for key, text in _calibration_rows(result)]
    summary = table(["", "predicted"] + (["true"] if truth is not None else []), rows)
    steps = table(
        ["#", "label", "start (s)", "end (s)", "quality", "analysis"],
        [[i, s.label, s.start, s.end, s.quality, s.analysis] for i, s in enumerate(a.steps, start=1)],
        numeric=[True, False, True, True, True, False],
    ) if a.steps else '<p class="muted">No step could be read.</p>'
    reasoning = "".join(
        f'<p><b>{name}:</b> <span class="reasoning">{escape(text)}</span></p>'
        for name, text in (("Recognition", a.recognition_reasoning), ("Scoring", a.scoring_reasoning))
        if text
    )
    problems = _problem_lines(result, config.problems_shown)
    problem_html = (
        '<p class="ok">The answer follows the SAR format.</p>' if not problems else
        '<p class="error">The answer has problems; what could be read is shown above.</p>'
        '<ul class="problems">' + "".join(f"<li>{escape(p)}</li>" for p in problems) + "</ul>"
    )
    raw = (
        f"<details><summary>Raw answer</summary><pre>{escape(result.completion)}</pre></details>"
        if result.completion is not None else ""
    )
    return (
        f'<div class="card"><h3>{title}</h3><p class="sub">{escape(_window_text(result))}</p>'
        f"{summary}{assessment_timeline(result, truth, config)}{steps}{reasoning}{problem_html}{raw}"
        f'<p class="muted">{escape(_timings_text(result))}</p></div>'
    )


def assessments_page(
    results: Sequence[AssessResult], config: ReportConfig | None = None, title: str = "Assessment"
) -> str:
    """A self-contained HTML page of one or more results."""
    config = config or ReportConfig()
    failed = sum(r.error is not None for r in results)
    codes = Counter(p.code.value for r in results for p in r.problems)
    subtitle = f"{len(results)} clip(s)" + (f", {failed} not assessed" if failed else "")
    if codes:
        subtitle += "; answer problems: " + ", ".join(f"{c} x{n}" for c, n in codes.most_common(4))
    body = "\n".join(assessment_html(r, config=config) for r in results)
    return page(title, Markup(body), subtitle)
