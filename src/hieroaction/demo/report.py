"""The demo's report: ``DIR/report.html`` (self-contained) and ``DIR/metrics.json``.

Built from :mod:`hieroaction.reports` pieces (page, tables, frames as data URIs, assessment
cards) plus line charts of the learning curves, drawn here as inline SVG.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hieroaction.demo.budget import format_seconds
from hieroaction.demo.config import DemoConfig
from hieroaction.demo.summary import MODEL_TITLES, SUMMARY_METRICS
from hieroaction.io import write_atomic, write_json_atomic
from hieroaction.reports.html import Markup, escape, format_value, page, table
from hieroaction.reports.svg import PALETTE, nice_ticks

_FONT = 'font-family="system-ui, sans-serif"'

# HPL curves: metrics.jsonl key -> legend name.
REWARD_CURVES = {
    "reward/format": "format",
    "reward/recognition": "recognition",
    "reward/sequence": "sequence",
    "reward/localisation": "localisation",
    "reward/subscore": "sub-score",
    "reward/score": "score",
    "reward/consistency": "consistency",
}

# Rows of the per-seed metrics table: metrics key -> column title.
TABLE_METRICS = {
    "spearman": "Spearman rho",
    "rl2_x100": "R-l2 x100",
    "action_accuracy": "action acc.",
    "step_sequence_accuracy": "step seq. acc.",
    "step_tiou": "step tIoU",
    "parse_failure_rate": "parse failures",
}


Series = tuple[str, Sequence[float], Sequence[float]]


def line_chart_svg(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str = "step",
    y_label: str = "",
    y_range: tuple[float, float] | None = None,
    width: int = 460,
    height: int = 280,
) -> str:
    """Lines of ``(name, xs, ys)`` on shared axes, with a legend; points are drawn as dots
    too, so a series of a few points (validation) reads as well as a long one. Non-finite
    values are skipped."""
    cleaned = []
    for name, xs, ys in series:
        pairs = [(float(x), float(y)) for x, y in zip(xs, ys)
                 if y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]
        cleaned.append((name, pairs))
    points = [p for _, pairs in cleaned for p in pairs]
    left, right, top, bottom = 56, 12, 28, 44
    legend_rows = math.ceil(len(cleaned) / 3)
    bottom += 16 * legend_rows
    inner_w, inner_h = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{left}" y="16" font-size="13" font-weight="600" {_FONT}>{escape(title)}</text>',
    ]
    if not points:
        parts.append(f'<text x="{left}" y="{top + 20}" font-size="12" fill="#888" {_FONT}>no data</text></svg>')
        return "\n".join(parts)
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = y_range if y_range is not None else (min(p[1] for p in points), max(p[1] for p in points))
    if x_hi <= x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if y_hi <= y_lo:
        y_lo, y_hi = y_lo - 1, y_hi + 1
    if y_range is None:
        pad = 0.05 * (y_hi - y_lo)
        y_lo, y_hi = y_lo - pad, y_hi + pad

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * inner_w

    def py(y: float) -> float:
        return top + inner_h - (min(max(y, y_lo), y_hi) - y_lo) / (y_hi - y_lo) * inner_h

    parts.append(f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" fill="#fff" stroke="#555"/>')
    for t in nice_ticks(y_lo, y_hi, 4):
        parts.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + inner_w}" y2="{py(t):.1f}" stroke="#e6e6e6"/>')
        parts.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" font-size="10" text-anchor="end" {_FONT} '
                     f'fill="#555">{t:g}</text>')
    for t in nice_ticks(x_lo, x_hi, 5):
        parts.append(f'<text x="{px(t):.1f}" y="{top + inner_h + 14}" font-size="10" text-anchor="middle" '
                     f'{_FONT} fill="#555">{t:g}</text>')
    parts.append(f'<text x="{left + inner_w / 2:.1f}" y="{top + inner_h + 30}" font-size="11" '
                 f'text-anchor="middle" {_FONT}>{escape(x_label)}</text>')
    if y_label:
        mid = top + inner_h / 2
        parts.append(f'<text x="12" y="{mid:.1f}" font-size="11" text-anchor="middle" {_FONT} '
                     f'transform="rotate(-90 12 {mid:.1f})">{escape(y_label)}</text>')
    for i, (name, pairs) in enumerate(cleaned):
        colour = PALETTE[i % len(PALETTE)]
        if len(pairs) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pairs)
            parts.append(f'<polyline class="series" points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        radius = 2.8 if len(pairs) <= 12 else 1.4
        for x, y in pairs:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{radius}" fill="{colour}">'
                         f"<title>{escape(name)}: {x:g}, {y:.4g}</title></circle>")
        row, col = divmod(i, 3)
        lx = left + col * (inner_w / 3)
        ly = top + inner_h + 46 + 16 * row
        parts.append(f'<rect x="{lx:.1f}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14:.1f}" y="{ly + 1}" font-size="11" {_FONT}>{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value) and row.get("step") is not None:
            xs.append(float(row["step"]))
            ys.append(float(value))
    return xs, ys


def sft_curves(sft: Mapping[str, Any]) -> list[str]:
    """The SFT charts: the loss (training, and validation where it was computed) and, with the
    recipe's ``validation.every``, every metric its ``best/`` is chosen on."""
    history = sft.get("log_history", [])
    series: list[Series] = [("training loss", *_column(history, "loss"))]
    val = _column(history, "eval_loss")
    if val[0]:
        series.append(("validation loss", *val))
    charts = [line_chart_svg(series, title="SFT: loss per step", y_label="cross-entropy")]
    validation = [(name, *_column(history, key)) for key, name in VALIDATION_CURVES.items()]
    validation = [s for s in validation if s[1]]
    if validation:
        charts.append(line_chart_svg(validation, title="SFT: validation (greedy answers)", y_label="value"))
    return charts


# Validation metrics on a 0-1 scale, drawn together (R-l2 has its own chart).
VALIDATION_CURVES = {
    "val/spearman": "rho",
    "val/action_accuracy": "action accuracy",
    "val/step_sequence_accuracy": "step-sequence accuracy",
    "val/parse_failure_rate": "parse failures (not exact SAR)",
}


def hpl_curves(hpl: Mapping[str, Any], label: str = "HPL") -> list[str]:
    """The HPL charts: each reward component, total and validation reward, KL, length."""
    history = hpl.get("history", [])
    components = [(name, *_column(history, key)) for key, name in REWARD_CURVES.items()]
    components = [s for s in components if s[1]]
    charts = [line_chart_svg(components, title=f"{label}: reward components (training samples)",
                             y_label="reward", y_range=(0.0, 1.0))]
    totals: list[Series] = [("training total", *_column(history, "reward/total"))]
    for key, name in (("val/reward", "validation total (greedy)"), ("val/reward_sampled", "validation total (sampled)")):
        val = _column(history, key)
        if val[0]:
            totals.append((name, *val))
    charts.append(line_chart_svg(totals, title=f"{label}: total reward", y_label="reward"))
    # every validation metric best/ is chosen on (hieroaction.train.selection)
    validation = [(name, *_column(history, key)) for key, name in VALIDATION_CURVES.items()]
    validation = [s for s in validation if s[1]]
    if validation:
        charts.append(line_chart_svg(validation, title=f"{label}: validation (greedy answers)",
                                     y_label="value"))
    rl2 = _column(history, "val/rl2_x100")
    if rl2[0]:
        charts.append(line_chart_svg([("R-l2 x100", *rl2)], title=f"{label}: validation R-l2 x100",
                                     y_label="R-l2 x100"))
    charts.append(line_chart_svg([("KL to the start", *_column(history, "kl"))],
                                 title=f"{label}: KL", y_label="KL"))
    charts.append(line_chart_svg([("completion length", *_column(history, "completion_length"))],
                                 title=f"{label}: completion length", y_label="tokens"))
    # where the learning signal comes from: each reward's share of the within-group variance of
    # the total, the groups without spread (no signal), and how far the update moved the policy
    keys = sorted({k for row in history for k in row if k.startswith("reward_variance_share/")})
    shares = [(k.split("/", 1)[1], *_column(history, k)) for k in keys]
    shares = [s for s in shares if s[1]]
    if shares:
        charts.append(line_chart_svg(shares, title=f"{label}: share of the within-group reward variance",
                                     y_label="share"))
    signal = [(name, *_column(history, key)) for key, name in (
        ("zero_spread_fraction", "groups without spread"), ("policy/clipped_fraction", "clipped tokens"),
        ("policy/ratio_mean", "ratio mean"))]
    signal = [s for s in signal if s[1]]
    if signal:
        charts.append(line_chart_svg(signal, title=f"{label}: zero spread, ratio and clipping", y_label="value"))
    return charts


def _undefined(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _ci_text(metrics: Mapping[str, Any], key: str) -> str:
    value = metrics.get(key)
    if _undefined(value):
        return "\u2014"
    ci = metrics.get(f"{key}_ci")
    text = format_value(value)
    if ci:
        text += f" ({format_value(ci[0])}\u2013{format_value(ci[1])})"
    return text


def metrics_table(models: Mapping[str, Mapping[str, Any]], titles: Mapping[str, str]) -> str:
    """Every model and baseline with its metrics and their bootstrap intervals."""
    rows = []
    for name, metrics in models.items():
        cells = [titles.get(name, name)]
        for key in TABLE_METRICS:
            if key == "spearman" and _undefined(metrics.get(key)) and name == "mean_score":
                cells.append("undefined (constant: read as 0)")
            else:
                cells.append(_ci_text(metrics, key))
        cells.append(metrics.get("n"))
        rows.append(cells)
    return table(["model"] + list(TABLE_METRICS.values()) + ["clips"], rows,
                 numeric=[False] + [True] * (len(TABLE_METRICS) + 1))


def _mean_std(stats: Mapping[str, Any]) -> str:
    if stats.get("mean") is None:
        return "\u2014"
    text = format_value(stats["mean"])
    if stats.get("std") is not None:
        text += f" \u00b1 {format_value(stats['std'])}"
    return text


def seeds_table(summary: Mapping[str, Any], titles: Mapping[str, str]) -> str:
    """Mean \u00b1 sample standard deviation over seeds, per model and metric."""
    rows = []
    for name, metrics in summary["models"].items():
        rows.append([titles.get(name, name)] + [_mean_std(metrics[k]) for k in SUMMARY_METRICS])
    return table(["model"] + list(SUMMARY_METRICS.values()), rows,
                 numeric=[False] + [True] * len(SUMMARY_METRICS))


def targets_table(targets: Sequence[Mapping[str, Any]]) -> str:
    """The issue's targets: wanted, measured, met."""
    def verdict(met: bool | None) -> Markup:
        if met is None:
            return Markup('<span class="muted">not measured</span>')
        return Markup('<span class="ok">met</span>' if met else '<span class="error">not met</span>')

    return table(["target", "wanted", "measured", ""],
                 [[t["target"], t["wanted"], t["value"], verdict(t["met"])] for t in targets],
                 numeric=[False, False, True, False])


def _timings(run: Any) -> str:
    return table(["stage", "seconds", "load average at start", "at end"],
                 [[t["stage"], t["seconds"], t["load_start"], t["load_end"]] for t in run.timings],
                 numeric=[False, True, True, True])


def seed_section(run: Any, titles: Mapping[str, str], examples: bool = True) -> str:
    """One seed: data, metrics table, learning curves, timings and example assessments."""
    data, sft, hpl, ev = run.data, run.sft, run.hpl, run.evaluation
    labels = data.get("labels") or {}
    parts = [f"<h2>Seed {run.seed}</h2>"]
    ref = data.get("reference_rho", {})
    parts.append(
        f"<p>{data.get('clips')} synthetic clips (train {data['splits']['train']}, val "
        f"{data['splits']['val']}, test {data['splits']['test']}). On the whole test split, the "
        f"difficulty oracle reaches Spearman {format_value(ref.get('difficulty_oracle'))} and a "
        f"perfect reader of every step quality {format_value(ref.get('quality_reader'))}. "
        + (f"Partial labels: {labels.get('full')} of {labels.get('train')} training clips keep every "
           f"label, {labels.get('score_and_action')} the score and the action, "
           f"{labels.get('score_only')} the score only." if labels else "")
        + "</p>"
    )
    parts.append(
        f"<p>SFT: {sft.get('steps')} steps of {sft.get('batch_size')} "
        f"({sft.get('examples_seen')} examples, {sft.get('train_examples')} training clips), "
        f"{format_value(sft.get('seconds_per_step'))} s per step; learning rate "
        f"{escape(sft.get('lr_schedule', ''))}. HPL: {hpl.get('steps')} steps of "
        f"{hpl.get('prompts_per_step')} prompts x {hpl.get('group_size')} samples; the model "
        f"evaluated is <code>best/</code>, chosen on validation"
        f" (step {(hpl.get('best_metrics') or {}).get('step', '?')}); the shuffled control's "
        f"<code>best/</code> is step {(run.hpl_shuffled.get('best_metrics') or {}).get('step', '?')}.</p>"
    )
    parts.append(f"<h3>Test metrics ({ev.get('test_clips')} of {ev.get('test_split_clips')} test clips)</h3>")
    parts.append(metrics_table(run.models, titles))
    parts.append(
        '<p class="muted">In brackets: 95% percentile bootstrap intervals over the clips. Every '
        "model and baseline is scored on the same clips (the first of the test split in file "
        "order). An answer without a readable score is scored as the mean of the others.</p>"
    )
    parts.append("<h3>Learning curves</h3>")
    charts = sft_curves(sft) + hpl_curves(hpl)
    if run.hpl_shuffled:
        charts += hpl_curves(run.hpl_shuffled, "HPL, shuffled rewards")
    if run.ablation:
        charts += hpl_curves(run.ablation, "GRPO score-only")
    parts.append('<div class="charts">' + "".join(charts) + "</div>")
    parts.append("<h3>Time per stage</h3>")
    parts.append(_timings(run))
    if examples and run.examples_html:
        parts.append("<h3>Example assessments</h3>")
        parts.extend(run.examples_html)
    return "\n".join(parts)


def report_html(runs: Sequence[Any], summary: Mapping[str, Any], config: DemoConfig,
                info: Mapping[str, Any]) -> str:
    """The whole report page."""
    parts = [
        "<p>The whole HieroAction recipe on the synthetic benchmark, on this machine's CPU: "
        "synthetic clips, a small randomly initialised Qwen2.5-VL, SFT cold start on SAR targets, "
        "HPL (GRPO with the hierarchical rewards) from the SFT checkpoint, and evaluation on the "
        "test split with two reference baselines. In the paper's partial-label setting: SFT sees "
        "the fully labelled part of the training clips, HPL every clip (each reward where its "
        "truth exists); SFT with every clip labelled shows what full annotation buys, and HPL with "
        "its rewards shuffled among each batch's completions is the null control.</p>",
        "<h2>Targets</h2>",
        targets_table(summary["targets"]),
        '<p class="muted">Measured on the HPL model (mean over seeds), with the issue\'s targets '
        "for the default demo.</p>",
    ]
    calibration = summary.get("calibration") or {}
    if calibration.get("nominal") is not None:
        level = f"{100 * calibration['nominal']:g}%"
        rows = [[name, _mean_std(calibration[key]["coverage"]), _mean_std(calibration[key]["width"])]
                for key, name in (("hpl", "HPL"), ("difficulty_oracle", "difficulty oracle"))]
        parts += [
            "<h2>Calibrated score intervals</h2>",
            f"<p>Split-conformal {level} intervals fitted on the validation split "
            "(<code>hieroaction calibrate</code>; the oracle on its own validation errors, the same "
            "way), measured on the test clips:</p>",
            table(["", "test coverage", "mean width"], rows, numeric=[False, True, True]),
        ]
    notes = summary.get("control_notes") or []
    if notes:
        parts += ["<h2>The shuffled-reward control</h2>"] + [f"<p>{escape(n)}</p>" for n in notes]
    boot = summary.get("bootstrap_vs_shuffled") or {}
    if boot.get("spearman_gain_ci") or boot.get("rl2_x100_reduction_ci"):
        def span(ci: Any) -> str:
            return "undefined" if not ci else f"{ci[0]:+.3f} to {ci[1]:+.3f}"

        parts.append(
            f"<p>HPL against the shuffled control, paired bootstrap over the test clips of "
            f"{boot['seeds']} seed(s) ({boot['resamples']} resamples), 95% intervals: mean rho gain "
            f"{span(boot['spearman_gain_ci'])}; R-l2 x100 reduction {span(boot['rl2_x100_reduction_ci'])}.</p>")
    if len(runs) > 1:
        versus = summary["hpl_vs_sft"]
        parts += [
            "<h2>Over seeds</h2>",
            seeds_table(summary, MODEL_TITLES),
            f"<p>HPL minus SFT: Spearman {_mean_std(versus['spearman_gain'])}; R-l2 x100 reduced by "
            f"{_mean_std(versus['rl2_x100_reduction'])}; HPL better on both in "
            f"{versus['seeds_better_on_both']} of {versus['seeds']} seeds.</p>",
        ]
    for i, run in enumerate(runs):
        parts.append(seed_section(run, MODEL_TITLES, examples=i == 0))
    command = info.get("command") or (
        f"hieroaction demo --budget-minutes {config.budget_minutes:g} --seeds {config.seeds}"
        + (" --ablations" if config.ablations else "")
    )
    parts += [
        "<h2>Reproduce</h2>",
        f"<pre>{escape(command)}</pre>",
        f"<p>Recipes: <code>{escape(config.recipes.sft)}</code>, <code>{escape(config.recipes.hpl)}</code>"
        + (f", <code>{escape(config.recipes.ablation)}</code>" if config.ablations else "")
        + f". {info.get('cpu_count')} CPU cores, {config.threads} torch thread(s)"
        + (f", {info['jobs']} seeds at a time" if (info.get("jobs") or 1) > 1 else "")
        + (f", up to {info['stage_jobs']} training runs of a seed at a time"
           if (info.get("stage_jobs") or 1) > 1 else "") + "; load average "
        f"{format_value((info.get('load_average_start') or [None])[0])} at the start, "
        f"{format_value((info.get('load_average_end') or [None])[0])} at the end.</p>",
    ]
    subtitle = (
        f"{len(runs)} seed(s), {format_seconds(info.get('seconds', 0.0))} in all"
    )
    html = page("HieroAction demo", Markup("\n".join(parts)), subtitle)
    # Charts side by side where the page is wide enough.
    return html.replace("</style>", ".charts svg { margin: .3rem .6rem .3rem 0; }</style>", 1)


def write_outputs(out: Path, runs: Sequence[Any], summary: Mapping[str, Any], config: DemoConfig,
                  info: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``report.html`` and ``metrics.json`` into ``out`` (atomically)."""
    metrics = {
        "demo": dict(info),
        "summary": dict(summary),
        "seeds": [run.as_dict() for run in runs],
    }
    metrics_path = write_json_atomic(out / "metrics.json", metrics)
    report_path = write_atomic(out / "report.html", report_html(runs, summary, config, info))
    return report_path, metrics_path
