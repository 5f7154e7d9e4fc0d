"""What every frame source shares: :class:`FrameReader`, :class:`SourceInfo` and their helpers.

A reader opens one source (a video file or a frame folder), says what it holds in
:class:`SourceInfo` before decoding any pixels, checks action windows against it and reads
chosen frames. The backends live one per module: :mod:`hieroaction.video.pyav` (the default),
:mod:`hieroaction.video.decord_reader` (optional) and :mod:`hieroaction.video.frame_folder`;
:mod:`hieroaction.video.decode` picks one for a record.

Every problem a user's file can cause (missing, empty, truncated, not a video, a window past its
end, a missing or unreadable image, absurd dimensions) raises :class:`VideoError` naming the file.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hieroaction.errors import VideoError
from hieroaction.video.sample import FpsSource

Transform = Callable[[np.ndarray], np.ndarray]

# Image files a frame folder may hold (when no frame_template names them).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class SourceInfo:
    """What a reader knows about its source before decoding any pixels.

    Attributes:
        source: the video file or frame folder.
        kind: ``video`` or ``frames``.
        first_frame: the smallest frame index present (0 for video files).
        num_frames: one past the largest frame index (the frame count for video files).
        fps: frames per second used for timestamps.
        fps_source: ``record``, ``container`` or ``default``.
        height: frame height in pixels.
        width: frame width in pixels.
        codec: the codec name (``None`` for frame folders).
        decoder: ``pyav``, ``decord`` or ``images``.
    """

    source: str
    kind: Literal["video", "frames"]
    first_frame: int
    num_frames: int
    fps: float
    fps_source: FpsSource
    height: int
    width: int
    codec: str | None
    decoder: str


class FrameReader(ABC):
    """Reads chosen frames of one source; use as a context manager."""

    info: SourceInfo

    def window(self, start: int | None, end: int | None) -> tuple[int, int]:
        """The absolute inclusive window ``[start, end]``; ``None`` means the source's ends.

        Raises :class:`VideoError` when the window reaches past the source.
        """
        info = self.info
        last = info.num_frames - 1
        first = info.first_frame if start is None else start
        final = last if end is None else end
        if first > last:
            raise VideoError(
                f"{info.source}: the action window starts at frame {first}, past the end of the "
                f"clip ({info.num_frames} frames, last index {last})"
            )
        if final > last:
            raise VideoError(
                f"{info.source}: the action window ends at frame {final}, past the end of the "
                f"clip ({info.num_frames} frames, last index {last})"
            )
        if first < info.first_frame:
            raise VideoError(
                f"{info.source}: the action window starts at frame {first}, before the first "
                f"frame of the source ({info.first_frame})"
            )
        if final < first:
            raise VideoError(f"{info.source}: the action window {first}..{final} is empty")
        return first, final

    @abstractmethod
    def read(self, indices: Sequence[int], transform: Transform | None = None) -> list[np.ndarray]:
        """The frames at absolute ``indices`` (any order, repeats allowed), in that order.

        Each frame is an ``(H, W, 3)`` uint8 RGB array, passed through ``transform`` when given
        (in a worker thread, so resizing overlaps decoding).
        """

    def close(self) -> None:  # noqa: B027 - readers without resources need nothing here
        """Release the source."""

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worker_count(threads: int) -> int:
    if threads > 0:
        return threads
    # Colour conversion and resizing of a handful of frames stop scaling past a few threads.
    return max(1, min(4, os.cpu_count() or 1))


def _pick_fps(
    record_fps: float | None, container_fps: float | None, default_fps: float
) -> tuple[float, FpsSource]:
    if record_fps:
        return float(record_fps), "record"
    if container_fps and np.isfinite(container_fps) and container_fps > 0:
        return float(container_fps), "container"
    return float(default_fps), "default"


def _error_reason(exc: BaseException) -> str:
    """A short reason from an FFmpeg, OS or image error, without the file name it repeats."""
    text = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return text.rstrip(".").split(": '")[0]
