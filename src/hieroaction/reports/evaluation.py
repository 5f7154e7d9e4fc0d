"""The evaluation report: metrics with intervals, a scatter plot, per-class and confusion
tables, answer problems and a few example assessments with their frames.

Written twice from the same content: ``report.md`` (plots and example timelines as SVG files
in ``report_assets/``) and ``report.html`` (one self-contained file).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hieroaction.evaluation.predictions import TruthRow
from hieroaction.evaluation.scoring import Evaluation
from hieroaction.inference import AssessResult
from hieroaction.io import write_atomic
from hieroaction.reports.assessment import (
    ReportConfig,
    assessment_html,
    assessment_markdown,
    assessment_timeline,
    md_table,
)
from hieroaction.reports.calibration import (
    NO_RELIABILITY,
    RELIABILITY_ASSET,
    has_intervals,
    has_reliability,
    interval_metric_rows,
    intervals_html,
    intervals_markdown,
    reliability_svg,
)
from hieroaction.reports.html import Markup, escape, format_value, page, table
from hieroaction.reports.svg import scatter_svg

ASSETS = "report_assets"

# (metrics key, what it is, the key of its clip count): the rows of the metrics table.
METRIC_ROWS = (
    ("spearman", "Spearman rho", "n"),
    ("rl2_x100", "R-l2 x 100", "n"),
    ("spearman_fisher_z", "per-class rho, Fisher-z mean", "n"),
    ("action_accuracy", "action accuracy", "n_action"),
    ("step_sequence_accuracy", "step sequence accuracy", "n_steps"),
    ("step_edit_score", "step edit score", "n_steps"),
    ("step_tiou", "step tIoU (order-aligned)", "n_steps"),
    ("parse_failure_rate", "SAR parse-failure rate", "n_completions"),
    ("unreadable_rate", "unreadable answers", "n_completions"),
)


@dataclass
class Example:
    """An example assessment for the report, and why it was picked."""

    result: AssessResult
    truth: TruthRow | None
    why: str


def choose_examples(evaluation: Evaluation, count: int) -> list[tuple[str, str]]:
    """``(id, why)`` of up to ``count`` clips worth reading: the best, median and worst
    predicted scores, then an answer with problems, then the next worst."""
    if count <= 0:
        return []
    ranked = sorted(
        (abs(pred - true), i) for i, true, pred, imputed in evaluation.scores if not imputed
    )
    picks: list[tuple[str, str]] = []

    def add(row_id: str, why: str) -> None:
        if len(picks) < count and row_id not in {p[0] for p in picks}:
            picks.append((row_id, why))

    if ranked:
        add(ranked[0][1], f"closest score (error {ranked[0][0]:.3g})")
        mid = ranked[len(ranked) // 2]
        add(mid[1], f"median error ({mid[0]:.3g})")
        add(ranked[-1][1], f"largest error ({ranked[-1][0]:.3g})")
    for pair in evaluation.pairs:
        if pair.pred.problems:
            add(pair.truth.id, "an answer with problems")
            break
    for pair in evaluation.pairs:
        if pair.pred.score is None:
            add(pair.truth.id, "no score could be read")
            break
    for err, row_id in reversed(ranked):
        add(row_id, f"large error ({err:.3g})")
    for pair in evaluation.pairs:
        add(pair.truth.id, "another clip")
    return picks


def _metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, Any, str, Any]]:
    rows = []
    keys = list(METRIC_ROWS)
    aiou = [k for k in metrics if k.startswith("aiou@") and not k.endswith("_ci")]
    keys[7:7] = [(k, f"AIoU@{k[5:]}", "n_steps") for k in aiou]
    for key, label, n_key in keys:
        value = metrics.get(key)
        if value is None:
            continue
        ci = metrics.get(f"{key}_ci")
        ci_text = f"{format_value(ci[0])} – {format_value(ci[1])}" if ci else "—"
        rows.append((label, value, ci_text, metrics.get(n_key)))
    return rows + interval_metric_rows(metrics)


def _answer_problems(evaluation: Evaluation) -> list[tuple[str, int]]:
    codes = Counter(
        str(p.get("code")) for pair in evaluation.pairs for p in (pair.pred.problems or [])
    )
    return codes.most_common()


def _coverage(evaluation: Evaluation) -> list[str]:
    lines = evaluation.coverage_lines()
    ids = evaluation.metrics.get("ids", {})
    if ids.get("clip_errors"):
        lines.append(f"{len(ids['clip_errors'])} clip(s) could not be read and count as missing predictions")
    if ids.get("without_predicted_score"):
        lines.append(
            f"{len(ids['without_predicted_score'])} prediction(s) without a score are scored as the "
            "mean of the others"
        )
    if ids.get("without_true_score"):
        lines.append(f"{len(ids['without_true_score'])} clip(s) without a true score are left out of the score metrics")
    return lines


def _actions_sentence(m: Mapping[str, Any]) -> str:
    hits = round(m["action_accuracy"] * m["n_action"])
    return (
        f"Action accuracy {format_value(m['action_accuracy'])}: {hits} of the {m['n_action']} clips "
        "with a true action label were recognised exactly."
    )


def _confusion_rows(evaluation: Evaluation) -> list[list[Any]]:
    return [
        [c["true"], c["predicted"] if c["predicted"] is not None else "(none)", c["count"]]
        for c in evaluation.confusions
    ]


def _per_class_rows(evaluation: Evaluation) -> tuple[list[str], list[list[Any]]]:
    with_acc = any("action_accuracy" in row for row in evaluation.per_class)
    headers = ["class", "n", "Spearman rho"] + (["action accuracy"] if with_acc else [])
    rows = [
        [row["class"], row["n"], row["spearman"]] + ([row.get("action_accuracy")] if with_acc else [])
        for row in evaluation.per_class
    ]
    return headers, rows


def _scatter(evaluation: Evaluation) -> str:
    ids, true, pred, imputed = zip(*evaluation.scores) if evaluation.scores else ((), (), (), ())
    return scatter_svg(true, pred, ids=ids, imputed=imputed)


def evaluation_markdown(
    evaluation: Evaluation, title: str, info: Mapping[str, Any], examples: Sequence[Example] = (),
    config: ReportConfig | None = None,
) -> str:
    """The Markdown report; it links ``report_assets/scatter.svg`` and ``example-N.svg``."""
    config = config or ReportConfig()
    m = evaluation.metrics
    out = [f"# {title}", ""]
    out += [f"- **{k}:** {v}" for k, v in info.items() if v is not None]
    out += ["", "## Metrics", ""]
    out.append(md_table(
        ["metric", "value", f"{round(100 * m.get('confidence', 0.95))}% CI", "clips"],
        _metric_rows(m),
    ))
    out += ["", f"Score range of the truth (for R-l2): {format_value(m['score_range'][0])} to "
            f"{format_value(m['score_range'][1])}. Intervals: percentile bootstrap, "
            f"{m.get('bootstrap_resamples')} resamples of the clips.", ""]
    coverage = _coverage(evaluation)
    if coverage:
        out += ["**Coverage:**", ""] + [f"- {line}" for line in coverage] + [""]
    out += ["## Predicted against true scores", "", f"![predicted against true scores]({ASSETS}/scatter.svg)", ""]
    if evaluation.per_class:
        headers, rows = _per_class_rows(evaluation)
        out += ["## Per class", "", md_table(headers, rows), ""]
    out += intervals_markdown(m, f"{ASSETS}/{RELIABILITY_ASSET}")
    if m.get("action_accuracy") is not None:
        out += ["## Actions", "", _actions_sentence(m), ""]
        if evaluation.confusions:
            confusions = md_table(["true", "predicted", "clips"], _confusion_rows(evaluation))
            out += ["Most frequent confusions:", "", confusions]
        out.append("")
    problems = _answer_problems(evaluation)
    if problems:
        out += ["## Answer problems", "", md_table(["problem", "count"], problems), ""]
    if evaluation.problems:
        out += ["## Input lines with problems", ""] + [f"- {p}" for p in evaluation.problems[:50]]
        if len(evaluation.problems) > 50:
            out.append(f"- ... and {len(evaluation.problems) - 50} more (see metrics.json)")
        out.append("")
    if examples:
        out += ["## Example assessments", ""]
        for i, ex in enumerate(examples, start=1):
            out += [f"*{ex.why}*", "", f"![timeline]({ASSETS}/example-{i}.svg)", ""]
            out.append(assessment_markdown(ex.result, ex.truth, config.problems_shown, heading="###"))
    return "\n".join(out).rstrip() + "\n"


def evaluation_html(
    evaluation: Evaluation, title: str, info: Mapping[str, Any], examples: Sequence[Example] = (),
    config: ReportConfig | None = None,
) -> str:
    """The self-contained HTML report."""
    config = config or ReportConfig()
    m = evaluation.metrics
    items = "".join(f"<li><b>{escape(k)}:</b> {escape(v)}</li>" for k, v in info.items() if v is not None)
    parts = [f"<ul>{items}</ul>"]
    parts.append("<h2>Metrics</h2>")
    parts.append(table(
        ["metric", "value", f"{round(100 * m.get('confidence', 0.95))}% CI", "clips"],
        _metric_rows(m), numeric=[False, True, True, True],
    ))
    parts.append(
        f'<p class="muted">Score range of the truth (for R-l2): {escape(format_value(m["score_range"][0]))} to '
        f'{escape(format_value(m["score_range"][1]))}. Intervals: percentile bootstrap, '
        f'{escape(m.get("bootstrap_resamples"))} resamples of the clips.</p>'
    )
    coverage = _coverage(evaluation)
    if coverage:
        parts.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in coverage) + "</ul>")
    parts.append("<h2>Predicted against true scores</h2>")
    parts.append(_scatter(evaluation))
    if evaluation.per_class:
        headers, rows = _per_class_rows(evaluation)
        parts.append("<h2>Per class</h2>")
        parts.append(table(headers, rows, numeric=[False] + [True] * (len(headers) - 1)))
    parts.extend(intervals_html(m))
    if m.get("action_accuracy") is not None:
        parts.append("<h2>Actions</h2>")
        parts.append(f"<p>{escape(_actions_sentence(m))}</p>")
        if evaluation.confusions:
            parts.append("<p>Most frequent confusions:</p>")
            parts.append(
                table(["true", "predicted", "clips"], _confusion_rows(evaluation), numeric=[False, False, True])
            )
    problems = _answer_problems(evaluation)
    if problems:
        parts.append("<h2>Answer problems</h2>")
        parts.append(table(["problem", "count"], problems, numeric=[False, True]))
    if evaluation.problems:
        parts.append("<h2>Input lines with problems</h2><ul>")
        parts.extend(f"<li>{escape(p)}</li>" for p in evaluation.problems[:50])
        parts.append("</ul>")
    if examples:
        parts.append("<h2>Example assessments</h2>")
        for ex in examples:
            parts.append(f'<p class="muted">{escape(ex.why)}</p>')
            parts.append(assessment_html(ex.result, ex.truth, config))
    return page(title, Markup("\n".join(parts)), subtitle=f"{m['n']} clips scored")


def write_evaluation_report(
    out_dir: str | Path,
    evaluation: Evaluation,
    *,
    title: str = "Evaluation",
    info: Mapping[str, Any] | None = None,
    examples: Sequence[Example] = (),
    config: ReportConfig | None = None,
) -> list[Path]:
    """Write ``report.md`` (with ``report_assets/``) and ``report.html``; returns the paths."""
    out = Path(out_dir)
    info = dict(info or {})
    written = [write_atomic(out / ASSETS / "scatter.svg", _scatter(evaluation))]
    if has_reliability(evaluation.metrics):
        reliability = reliability_svg(evaluation.metrics.get("interval_reliability") or [])
        written.append(write_atomic(out / ASSETS / RELIABILITY_ASSET, reliability))
    for i, ex in enumerate(examples, start=1):
        timeline = assessment_timeline(ex.result, ex.truth, config)
        written.append(write_atomic(out / ASSETS / f"example-{i}.svg", timeline))
    written.append(write_atomic(out / "report.md", evaluation_markdown(evaluation, title, info, examples, config)))
    written.append(write_atomic(out / "report.html", evaluation_html(evaluation, title, info, examples, config)))
    return written


def evaluation_text(evaluation: Evaluation) -> str:
    """The metrics as aligned terminal text, with the coverage sentences."""
    m = evaluation.metrics
    rows = _metric_rows(m)
    width = max(len(label) for label, *_ in rows)
    level = f"{round(100 * m.get('confidence', 0.95))}% CI"
    lines = [f"{'metric':<{width}}  {'value':>8}  {level:<19}  clips"]
    for label, value, ci, n in rows:
        lines.append(f"{label:<{width}}  {format_value(value):>8}  {ci:<19}  {format_value(n)}")
    if has_intervals(m) and not has_reliability(m):
        lines.append(NO_RELIABILITY)
    lines += _coverage(evaluation)
    if evaluation.problems:
        lines.append(f"{len(evaluation.problems)} input line problem(s), first: {evaluation.problems[0]}")
    return "\n".join(lines) + "\n"
