"""Convert a dataset's original files to a unified-records JSONL file (``hieroaction data
convert``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from hieroaction.data.adapters import Problem, get_adapter
from hieroaction.data.records import write_jsonl
from hieroaction.data.validate import split_counts


@dataclass
class ConvertSummary:
    """What :func:`convert_dataset` wrote and what it left out."""

    out: Path
    written: int
    splits: dict[str, int]
    skipped: list[Problem] = field(default_factory=list)  # records that could not be converted
    warnings: list[Problem] = field(default_factory=list)  # converted, but with noisy labels
    no_video: int = 0  # records written with neither video.path nor video.frames_dir

    def no_video_line(self, frames: str | Path | None) -> str | None:
        """The line saying how many clips have no video or frames (``None`` when all have)."""
        if not self.no_video:
            return None
        where = f" under {frames}" if frames is not None else ""
        return (
            f"{self.no_video} of {self.written} clips have no video or frame folder{where}; "
            "their video.path and video.frames_dir stay null"
        )


def convert_dataset(
    name: str, annotations: str | Path, out: str | Path, frames: str | Path | None = None
) -> ConvertSummary:
    """Convert a dataset's original files to a unified-records JSONL file.

    Good records are always written, whatever the bad ones; the bad ones are returned. Video
    paths and frame folders are written absolute, and only for clips found under ``frames``.
    """
    adapter = get_adapter(name)
    result = adapter.load(Path(annotations), Path(frames) if frames else None)
    records = tqdm(
        result.records, desc=f"writing {adapter.name}", unit="rec", disable=None, leave=False
    )
    written = write_jsonl(records, out)
    skipped = [p for p in result.problems if p.kind in ("unreadable", "missing")]
    warnings = [p for p in result.problems if p.kind not in ("unreadable", "missing")]
    no_video = sum(1 for r in result.records if not (r.video.path or r.video.frames_dir))
    return ConvertSummary(Path(out), written, split_counts(result.records), skipped, warnings, no_video)
