"""Plots as inline SVG text: a predicted-vs-true scatter plot and a step timeline over frames.

No plotting library: the two figures are simple enough to write directly, and SVG text embeds
in HTML, opens on its own and renders on code hosts.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from hieroaction.reports.html import escape, image_data_uri

# Step colours: a label keeps its colour across tracks and clips (picked by a hash of it).
PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#8cd17d",
)
_AXIS = "#555"
_GRID = "#e6e6e6"
_FONT = 'font-family="system-ui, sans-serif"'


def label_colour(label: str) -> str:
    """The palette colour of a step label (stable across runs and processes)."""
    return PALETTE[zlib.crc32(label.encode("utf-8")) % len(PALETTE)]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2, 2.5 or 5 x 10^k) covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + 1e-9 * step:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_text(value: float) -> str:
    return f"{value:g}"


def scatter_svg(
    true: Sequence[float],
    pred: Sequence[float],
    *,
    ids: Sequence[str] | None = None,
    imputed: Sequence[bool] | None = None,
    x_label: str = "true score",
    y_label: str = "predicted score",
    size: int = 420,
) -> str:
    """Predicted against true scores, with the identity line; hover shows each clip's id.

    ``imputed`` marks predictions that were missing and scored as the mean (drawn hollow).
    Both axes share one scale, so distance from the diagonal is the error.
    """
    x = np.asarray(true, dtype=float)
    y = np.asarray(pred, dtype=float)
    imputed = list(imputed) if imputed is not None else [False] * len(x)
    ids = list(ids) if ids is not None else [str(i) for i in range(len(x))]
    finite = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)]])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    left, right, top, bottom = 56, 16, 16, 48
    inner = size - left - right
    inner_h = size - top - bottom

    def px(v: float) -> float:
        return left + (v - lo) / (hi - lo) * inner

    def py(v: float) -> float:
        return top + inner_h - (v - lo) / (hi - lo) * inner_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="{size}" '
        f'height="{size}" role="img" aria-label="{escape(y_label)} against {escape(x_label)}">',
        f'<rect x="{left}" y="{top}" width="{inner}" height="{inner_h}" fill="#fff" stroke="{_AXIS}"/>',
    ]
    for t in nice_ticks(lo, hi):
        parts.append(f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{top + inner_h}" stroke="{_GRID}"/>')
        parts.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + inner}" y2="{py(t):.1f}" stroke="{_GRID}"/>')
        parts.append(
            f'<text x="{px(t):.1f}" y="{top + inner_h + 16}" font-size="11" text-anchor="middle" '
            f'{_FONT} fill="{_AXIS}">{_tick_text(t)}</text>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{py(t) + 4:.1f}" font-size="11" text-anchor="end" '
            f'{_FONT} fill="{_AXIS}">{_tick_text(t)}</text>'
        )
    parts.append(
        f'<line x1="{px(lo):.1f}" y1="{py(lo):.1f}" x2="{px(hi):.1f}" y2="{py(hi):.1f}" '
        'stroke="#999" stroke-dasharray="4 3"/>'
    )
    for xi, yi, name, hollow in zip(x, y, ids, imputed):
        if not (math.isfinite(xi) and math.isfinite(yi)):
            continue
        fill = 'fill="none" stroke="#e15759" stroke-width="1.5"' if hollow else 'fill="#4e79a7" fill-opacity="0.7"'
        note = " (no predicted score: the mean is used)" if hollow else ""
        parts.append(
            f'<circle class="point" cx="{px(xi):.1f}" cy="{py(yi):.1f}" r="3.5" {fill}>'
            f"<title>{escape(name)}: true {xi:g}, predicted {yi:g}{escape(note)}</title></circle>"
        )
    parts.append(
        f'<text x="{left + inner / 2:.1f}" y="{size - 10}" font-size="12" text-anchor="middle" '
        f'{_FONT}>{escape(x_label)}</text>'
    )
    if any(imputed):
        parts.append(
            f'<text x="{left + 6}" y="{top + 14}" font-size="11" fill="#e15759" {_FONT}>'
            "hollow: no score read, drawn at the mean</text>"
        )
    parts.append(
        f'<text x="14" y="{top + inner_h / 2:.1f}" font-size="12" text-anchor="middle" {_FONT} '
        f'transform="rotate(-90 14 {top + inner_h / 2:.1f})">{escape(y_label)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _step_fields(step: Any) -> tuple[str, float, float]:
    if isinstance(step, dict):
        return str(step["label"]), float(step["start"]), float(step["end"])
    return str(step.label), float(step.start), float(step.end)


def timeline_svg(
    duration: float,
    tracks: Sequence[tuple[str, Sequence[Any]]],
    *,
    frames: Sequence[np.ndarray] = (),
    frame_times: Sequence[float] = (),
    width: int = 900,
    thumb_height: int = 64,
) -> str:
    """Key frames at their times above one bar per track of steps, on a shared time axis.

    Args:
        duration: seconds shown (the clip's length); steps past it are clipped to the edge.
        tracks: ``(name, steps)`` pairs, e.g. ``("predicted", ...)`` and ``("true", ...)``;
            a step is anything with ``label``, ``start`` and ``end`` (seconds), or such a dict.
        frames: key frames (``(H, W, 3)`` uint8), drawn as JPEG thumbnails.
        frame_times: each key frame's time in seconds.
        width: width of the figure in pixels.
        thumb_height: height of the thumbnails.
    """
    duration = duration if duration > 0 else 1.0
    left, right = 90, 12
    inner = width - left - right

    def px(t: float) -> float:
        return left + min(max(t, 0.0), duration) / duration * inner

    parts: list[str] = []
    y = 6
    if len(frames):
        slot = inner / len(frames)
        for frame, t in zip(frames, frame_times):
            h, w = frame.shape[:2]
            thumb_w = min(slot - 2, thumb_height * w / h)
            th = thumb_w * h / w
            x = min(max(px(t) - thumb_w / 2, left), left + inner - thumb_w)
            parts.append(
                f'<image x="{x:.1f}" y="{y}" width="{thumb_w:.1f}" height="{th:.1f}" '
                f'href="{image_data_uri(frame, height=max(1, round(th * 2)))}"><title>{t:.2f} s</title></image>'
            )
            parts.append(
                f'<line x1="{px(t):.1f}" y1="{y + th:.1f}" x2="{px(t):.1f}" y2="{y + th + 6:.1f}" stroke="{_AXIS}"/>'
            )
        y += int(thumb_height) + 10
    bar = 26
    for name, steps in tracks:
        parts.append(
            f'<text x="{left - 8}" y="{y + bar / 2 + 4:.1f}" font-size="12" text-anchor="end" {_FONT}>'
            f"{escape(name)}</text>"
        )
        parts.append(f'<rect x="{left}" y="{y}" width="{inner}" height="{bar}" fill="#f3f3f3"/>')
        if not steps:
            parts.append(
                f'<text x="{left + 6}" y="{y + bar / 2 + 4:.1f}" font-size="11" fill="#888" {_FONT}>no steps</text>'
            )
        for step in steps:
            label, start, end = _step_fields(step)
            x0, x1 = px(start), px(end)
            span = max(x1 - x0, 1.5)
            colour = label_colour(label)
            parts.append(
                f'<rect class="step" x="{x0:.1f}" y="{y}" width="{span:.1f}" height="{bar}" fill="{colour}" '
                f'stroke="#fff"><title>{escape(label)}: {start:.2f}-{end:.2f} s</title></rect>'
            )
            # Only labels that fit are written inside their bar (about 6.5 px per character).
            if span > 6.5 * len(label) + 8:
                parts.append(
                    f'<text x="{x0 + 4:.1f}" y="{y + bar / 2 + 4:.1f}" font-size="11" fill="#fff" '
                    f'{_FONT}>{escape(label)}</text>'
                )
        y += bar + 6
    for t in nice_ticks(0.0, duration, count=8):
        parts.append(f'<line x1="{px(t):.1f}" y1="{y - 4}" x2="{px(t):.1f}" y2="{y + 2}" stroke="{_AXIS}"/>')
        parts.append(
            f'<text x="{px(t):.1f}" y="{y + 14}" font-size="11" text-anchor="middle" {_FONT} '
            f'fill="{_AXIS}">{_tick_text(t)} s</text>'
        )
    height = y + 20
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="steps over time">'
    )
    return head + "\n" + "\n".join(parts) + "\n</svg>"
