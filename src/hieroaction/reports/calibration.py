"""The score-interval part of the evaluation report: coverage and width with their bootstrap
intervals, per class, and a reliability plot (nominal against empirical coverage).

It reads the ``interval_*`` keys that :func:`hieroaction.evaluation.scoring.interval_metrics`
adds to ``metrics.json`` for a calibrated model, or for predictions that came with intervals;
without them every function here gives nothing. Without the calibration (``evaluate
--predictions`` without ``--calibration``) there is no reliability, and the section says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from hieroaction.reports.assessment import md_table
from hieroaction.reports.html import escape, format_value, table
from hieroaction.reports.svg import _AXIS, _FONT, _GRID

RELIABILITY_ASSET = "reliability.svg"


def _ci_text(ci: Sequence[float] | None) -> str:
    return f"{format_value(ci[0])} – {format_value(ci[1])}" if ci else "—"


def _level(value: float) -> str:
    return f"{100 * value:g} %"


# What the report says in place of the reliability when the calibration was not given.
NO_RELIABILITY = (
    "Reliability not computed: it needs the calibration's stored scores "
    "(evaluate --predictions ... --calibration FILE, the calibration that made the intervals)."
)


def has_intervals(metrics: Mapping[str, Any]) -> bool:
    """Whether the metrics hold score intervals (a calibrated model, or predictions with intervals)."""
    return metrics.get("interval_nominal") is not None


def has_reliability(metrics: Mapping[str, Any]) -> bool:
    """Whether the metrics hold the intervals' reliability (the calibration was known)."""
    return has_intervals(metrics) and metrics.get("interval_reliability") is not None


def interval_metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, Any, str, Any]]:
    """Rows ``(what, value, CI text, clips)`` for the metrics table (none without a calibration)."""
    if not has_intervals(metrics):
        return []
    nominal = _level(metrics["interval_nominal"])
    return [
        (f"interval coverage (nominal {nominal})", metrics.get("interval_coverage"),
         _ci_text(metrics.get("interval_coverage_ci")), metrics.get("n_interval")),
        ("mean interval width", metrics.get("interval_width"),
         _ci_text(metrics.get("interval_width_ci")), metrics.get("intervals_finite")),
    ]


def _per_class_rows(metrics: Mapping[str, Any]) -> list[list[Any]]:
    return [
        [c, row["n"], row["coverage"], _ci_text(row["coverage_ci"]), row["width"], _ci_text(row["width_ci"])]
        for c, row in (metrics.get("interval_per_class") or {}).items()
    ]


_PER_CLASS_HEADERS = ["class", "n", "coverage", "CI", "mean width", "CI"]


def _reliability_rows(metrics: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for r in metrics.get("interval_reliability") or []:
        q = r.get("quantile")
        rows.append([_level(r["nominal"]), r.get("empirical"), "unbounded" if q is None or not math.isfinite(q) else q])
    return rows


def _sentences(metrics: Mapping[str, Any]) -> list[str]:
    cal = metrics.get("calibration")
    if cal:
        source = (
            f"Calibration: {cal.get('method')} conformal, {cal.get('n')} clips of split {cal.get('split')!s}"
            + (f" ({cal.get('missing')} without a usable predicted score)" if cal.get("missing") else "")
            + (f", {cal.get('samples')} sampled answers per clip" if (cal.get("samples") or 1) > 1 else "")
            + f", made {cal.get('created')}."
        )
    else:
        source = (f"The {_level(metrics['interval_nominal'])} intervals the predictions came with "
                  "(the calibration that made them was not given).")
    lines = [
        source,
        "Coverage: the share of clips whose true score lies inside their interval; a clip without an "
        "interval (no predicted score) counts as not covered. Width: the mean of the finite intervals "
        f"({metrics.get('intervals_finite')} of {metrics.get('n_interval')} clips).",
        "Reliability: at each nominal level the quantile is refitted from the calibration's stored "
        "scores; a well calibrated model lies on the diagonal (above it: intervals wider than needed)."
        if has_reliability(metrics) else NO_RELIABILITY,
    ]
    return lines


def reliability_svg(rows: Sequence[Mapping[str, Any]], size: int = 320) -> str:
    """Empirical against nominal coverage, both from 0 to 1, with the diagonal."""
    left, right, top, bottom = 52, 14, 14, 44
    inner_w, inner_h = size - left - right, size - top - bottom

    def px(v: float) -> float:
        return left + v * inner_w

    def py(v: float) -> float:
        return top + inner_h - v * inner_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
        'role="img" aria-label="empirical against nominal coverage">',
        f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" fill="#fff" stroke="{_AXIS}"/>',
    ]
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{top + inner_h}" stroke="{_GRID}"/>')
        parts.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + inner_w}" y2="{py(t):.1f}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{px(t):.1f}" y="{top + inner_h + 15}" font-size="11" text-anchor="middle" '
                     f'{_FONT} fill="{_AXIS}">{t:g}</text>')
        parts.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" font-size="11" text-anchor="end" '
                     f'{_FONT} fill="{_AXIS}">{t:g}</text>')
    parts.append(f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}" '
                 'stroke="#999" stroke-dasharray="4 3"/>')
    points = [(float(r["nominal"]), float(r["empirical"])) for r in rows
              if r.get("empirical") is not None and math.isfinite(r["empirical"])]
    if len(points) > 1:
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#4e79a7" stroke-width="1.5"/>')
    for x, y in points:
        parts.append(f'<circle class="level" cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="#4e79a7">'
                     f"<title>nominal {_level(x)}: empirical {escape(format_value(y))}</title></circle>")
    parts.append(f'<text x="{left + inner_w / 2:.1f}" y="{size - 8}" font-size="12" text-anchor="middle" '
                 f'{_FONT}>nominal coverage</text>')
    parts.append(f'<text x="13" y="{top + inner_h / 2:.1f}" font-size="12" text-anchor="middle" {_FONT} '
                 f'transform="rotate(-90 13 {top + inner_h / 2:.1f})">empirical coverage</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def intervals_markdown(metrics: Mapping[str, Any], asset: str) -> list[str]:
    """The Markdown lines of the section (none without a calibration); ``asset`` is the path
    of the reliability plot."""
    if not has_intervals(metrics):
        return []
    first, second, third = _sentences(metrics)
    out = ["## Score intervals", "", first, "", second, ""]
    if metrics.get("interval_per_class"):
        out += [md_table(_PER_CLASS_HEADERS, _per_class_rows(metrics)), ""]
    if has_reliability(metrics):
        out += [f"![reliability]({asset})", "",
                md_table(["nominal", "empirical", "quantile"], _reliability_rows(metrics)), ""]
    out += [third, ""]
    return out


def intervals_html(metrics: Mapping[str, Any]) -> list[str]:
    """The HTML parts of the section (none without a calibration)."""
    if not has_intervals(metrics):
        return []
    first, second, third = _sentences(metrics)
    parts = ["<h2>Score intervals</h2>", f"<p>{escape(first)}</p>", f'<p class="muted">{escape(second)}</p>']
    if metrics.get("interval_per_class"):
        parts.append(table(_PER_CLASS_HEADERS, _per_class_rows(metrics), numeric=[False, True, True, True, True, True]))
    parts.append("<h3>Reliability</h3>")
    if has_reliability(metrics):
        parts.append(reliability_svg(metrics.get("interval_reliability") or []))
        parts.append(table(["nominal", "empirical", "quantile"], _reliability_rows(metrics),
                           numeric=[True, True, True]))
    parts.append(f'<p class="muted">{escape(third)}</p>')
    return parts


__all__ = [
    "NO_RELIABILITY",
    "RELIABILITY_ASSET",
    "has_intervals",
    "has_reliability",
    "interval_metric_rows",
    "intervals_html",
    "intervals_markdown",
    "reliability_svg",
]
