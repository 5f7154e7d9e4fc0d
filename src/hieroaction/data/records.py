"""The unified action record: one type for every dataset, stored one JSON object per line.

A record says where the clip is (a video file or a frame folder, and the action window in it),
what the action is, its sub-action steps (frames relative to the window start, inclusive), the
score with its components and judge scores, and any commentary. Only ``id`` is required; a
user's own data can be as small as ``{"id": "c1", "video": "clip.mp4", "score": 7.5}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hieroaction.errors import DataError
from hieroaction.io import atomic_open

SCHEMA_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class VideoRef(_Strict):
    """Where the clip's pixels are.

    Exactly one of ``path`` (a video file) and ``frames_dir`` (a folder of frame images) is
    normally set. ``start_frame`` and ``end_frame`` are absolute, inclusive frame indices of the
    action window in that source; ``None`` means the start or the end of the source.
    ``frame_template`` names frame files in ``frames_dir`` from the absolute index, e.g.
    ``"{:05d}.jpg"`` for FineDiving; ``None`` means the folder's images in sorted order.
    """

    path: str | None = None
    frames_dir: str | None = None
    frame_template: str | None = None
    start_frame: int | None = None
    end_frame: int | None = None
    fps: float | None = None

    @model_validator(mode="after")
    def _window_is_ordered(self) -> VideoRef:
        if self.start_frame is not None and self.start_frame < 0:
            raise ValueError(f"start_frame must be >= 0, got {self.start_frame}")
        if (
            self.start_frame is not None
            and self.end_frame is not None
            and self.end_frame < self.start_frame
        ):
            raise ValueError(
                f"end_frame {self.end_frame} is before start_frame {self.start_frame}"
            )
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        return self

    @property
    def num_frames(self) -> int | None:
        """Frames in the action window, when both ends are known."""
        if self.start_frame is None or self.end_frame is None:
            return None
        return self.end_frame - self.start_frame + 1


class Action(_Strict):
    """The whole action: a label from the domain's vocabulary and its attributes."""

    label: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class Step(_Strict):
    """One sub-action. Frames are relative to the record's ``video.start_frame``, inclusive."""

    label: str
    start_frame: int
    end_frame: int
    score: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Step:
        if self.start_frame < 0 or self.end_frame < self.start_frame:
            raise ValueError(
                f"step {self.label!r} has frames {self.start_frame}..{self.end_frame}; "
                "expected 0 <= start_frame <= end_frame"
            )
        return self


class Score(_Strict):
    """The final score, the components of the domain formula, judge scores and the range."""

    final: float | None = None
    components: dict[str, float] = Field(default_factory=dict)
    judges: list[float] = Field(default_factory=list)
    range: tuple[float, float] | None = None

    @field_validator("final")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError(f"final score must be finite, got {value}")
        return value

    @field_validator("range")
    @classmethod
    def _ordered_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError(f"score range must be (low, high) with low < high, got {value}")
        return value


class Record(_Strict):
    """One annotated (or unannotated) action clip in the unified format."""

    id: str
    dataset: str = "custom"
    domain: str = "generic"
    split: str | None = None
    video: VideoRef = Field(default_factory=VideoRef)
    action: Action = Field(default_factory=Action)
    steps: list[Step] = Field(default_factory=list)
    score: Score = Field(default_factory=Score)
    commentary: str | None = None

    @field_validator("id")
    @classmethod
    def _nonempty_id(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("id must be a non-empty string")
        return value

    @field_validator("video", mode="before")
    @classmethod
    def _video_shorthand(cls, value: Any) -> Any:
        # Users' own files may give the video as a bare path.
        if isinstance(value, str):
            return {"path": value}
        return value

    @field_validator("score", mode="before")
    @classmethod
    def _score_shorthand(cls, value: Any) -> Any:
        # Users' own files may give the score as a bare number.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"final": value}
        return value

    @model_validator(mode="after")
    def _steps_inside_window(self) -> Record:
        n = self.video.num_frames
        if n is not None:
            for step in self.steps:
                if step.end_frame >= n:
                    raise ValueError(
                        f"step {step.label!r} ends at relative frame {step.end_frame}, "
                        f"past the {n}-frame action window"
                    )
        return self

    def to_json(self) -> str:
        """One line of JSONL."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, line: str) -> Record:
        """Parse one line of JSONL; raises :class:`DataError` with the reason."""
        try:
            return cls.model_validate_json(line)
        except ValidationError as exc:
            raise DataError(_describe_validation_error(exc)) from None


def _describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def write_jsonl(records: Iterable[Record], path: str | Path) -> int:
    """Write records to ``path`` atomically (:func:`hieroaction.io.atomic_open`); returns how
    many."""
    count = 0
    with atomic_open(path, "w") as fh:
        for record in records:
            fh.write(record.to_json())
            fh.write("\n")
            count += 1
    return count


class BadLine(BaseModel):
    """A JSONL line that could not be read as a record."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def iter_jsonl(path: str | Path, bad: list[BadLine] | None = None) -> Iterator[Record]:
    """Yield the records of a JSONL file.

    A malformed line raises :class:`DataError` naming the file and line, unless ``bad`` is
    given: then the line is appended to it and reading goes on, so one bad line never loses
    the good ones.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such records file (expected a JSONL file of records)")
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield Record.from_json(line)
            except DataError as exc:
                reason = str(exc)
                try:
                    json.loads(line)
                except json.JSONDecodeError as jexc:
                    reason = f"not valid JSON ({jexc.msg} at column {jexc.colno})"
                if bad is None:
                    raise DataError(f"{path}:{number}: {reason}") from None
                bad.append(BadLine(path=str(path), line=number, reason=reason))


def read_jsonl(path: str | Path, bad: list[BadLine] | None = None) -> list[Record]:
    """All records of a JSONL file (see :func:`iter_jsonl` for bad lines)."""
    return list(iter_jsonl(path, bad))
