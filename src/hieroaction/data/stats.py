"""Summary statistics of a records file: counts, score ranges, vocabularies, steps."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from hieroaction.data.records import Record


def _summary(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "n": len(values),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "median": statistics.median(values),
    }


def dataset_stats(records: Sequence[Record]) -> dict[str, Any]:
    """Counts, score ranges, label vocabularies and step statistics of ``records``."""
    finals = [r.score.final for r in records if r.score.final is not None]
    components: dict[str, list[float]] = {}
    for r in records:
        for name, value in r.score.components.items():
            components.setdefault(name, []).append(value)
    steps_per_record = [len(r.steps) for r in records if r.steps]
    step_lengths = [s.end_frame - s.start_frame + 1 for r in records for s in r.steps]
    clip_lengths = [r.video.num_frames for r in records if r.video.num_frames is not None]
    step_scores = [s.score for r in records for s in r.steps if s.score is not None]
    return {
        "records": len(records),
        "datasets": dict(sorted(Counter(r.dataset for r in records).items())),
        "domains": dict(sorted(Counter(r.domain for r in records).items())),
        "splits": dict(sorted(Counter(r.split or "none" for r in records).items())),
        "score": _summary(finals),
        "components": {k: _summary(v) for k, v in sorted(components.items())},
        "judges_per_record": dict(sorted(Counter(len(r.score.judges) for r in records).items())),
        "actions": dict(Counter(r.action.label for r in records if r.action.label).most_common()),
        "step_labels": dict(Counter(s.label for r in records for s in r.steps).most_common()),
        "steps_per_record": _summary(steps_per_record),
        "step_length_frames": _summary(step_lengths),
        "step_scores": _summary(step_scores),
        "clip_length_frames": _summary(clip_lengths),
        "with_video": sum(1 for r in records if r.video.path or r.video.frames_dir),
        "with_commentary": sum(1 for r in records if r.commentary),
    }


def _fmt(summary: dict[str, float] | None) -> str:
    if summary is None:
        return "-"
    return (
        f"n={summary['n']} min={summary['min']:.4g} max={summary['max']:.4g} "
        f"mean={summary['mean']:.4g} std={summary['std']:.4g}"
    )


def format_stats(stats: dict[str, Any], top: int = 15) -> str:
    """A terminal-friendly rendering of :func:`dataset_stats`."""
    lines = [f"records: {stats['records']}"]
    for key in ("datasets", "domains", "splits", "judges_per_record"):
        lines.append(f"{key}: " + ", ".join(f"{k} {v}" for k, v in stats[key].items()))
    lines.append(f"score: {_fmt(stats['score'])}")
    for name, summary in stats["components"].items():
        lines.append(f"  component {name}: {_fmt(summary)}")
    for key in ("actions", "step_labels"):
        vocab = stats[key]
        shown = ", ".join(f"{k} ({v})" for k, v in list(vocab.items())[:top])
        more = f", ... {len(vocab) - top} more" if len(vocab) > top else ""
        lines.append(f"{key}: {len(vocab)} distinct: {shown}{more}")
    for key in ("steps_per_record", "step_length_frames", "step_scores", "clip_length_frames"):
        lines.append(f"{key}: {_fmt(stats[key])}")
    lines.append(f"with video: {stats['with_video']}, with commentary: {stats['with_commentary']}")
    return "\n".join(lines)
