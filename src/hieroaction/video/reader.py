"""What every frame source shares: :class:`FrameReader`, :class:`SourceInfo` and their helpers.

A reader opens one source (a video file or a frame folder), says what it holds in
:class:`SourceInfo` before decoding any pixels, checks action windows against it and reads
chosen frames. The backends live one per module: :mod:`hieroaction.video.pyav` (the default),
:mod:`hieroaction.video.decord_reader` (optional) and :mod:`hieroaction.video.frame_folder`;
:mod:`hieroaction.video.decode` picks one for a record.

Every problem a user's file can cause (missing, empty, truncated, not a video, a window past its
end, a missing or unreadable image, absurd dimensions, more pixels per frame than the
``max_frame_pixels`` limit) raises :class:`VideoError` naming the file.

Memory stays bounded for large frames: the size limits are checked from the source's header
before any pixel is decoded, readers hold only as many decoded frames at once as
:func:`frames_within_budget` allows, and a :class:`ResizeTo` transform tells a reader the final
size, so a large source frame can be shrunk while it is converted to RGB (never held as a
full-size RGB array).
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

# Memory that each of three things a reader runs at once may take: the decoder's frame threads,
# the decoded frames waiting for a worker, and the workers' conversions. Their counts shrink
# for large frames (never below one), so memory does not grow with the frame size times the
# cores; at 1080p and below nothing changes on a machine of up to 8 cores.
FRAME_MEMORY_BUDGET = 64 * 1024 * 1024
# What one of each costs, in bytes a pixel: a frame thread of FFmpeg's H.264 decoder (its
# picture and state: measured about 25 MB a thread at 4096x2160, docs/video.md); a decoded
# 8-bit 4:2:0 picture; a conversion (the RGB array and PIL's RGBX copy while it resizes), per
# pixel of the size it converts to.
DECODER_THREAD_BYTES_PER_PIXEL = 3.0
PICTURE_BYTES_PER_PIXEL = 1.5
CONVERSION_BYTES_PER_PIXEL = 7.0

# Source frames above this many pixels (a little over 1080p) are shrunk by the decoder's scaler
# to twice the final size while they are converted to RGB, then resized exactly (see
# :class:`ResizeTo`); smaller frames are converted at full size, as they always were.
SHRINK_ABOVE_PIXELS = 2048 * 1152

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


@dataclass(frozen=True)
class ResizeTo:
    """The transform that resizes a frame to ``height x width`` (PIL bicubic, as
    :func:`~hieroaction.video.resize.resize_frame`).

    Unlike an arbitrary transform it says its output size, which lets a reader produce the RGB
    array of a large source frame at a smaller size directly (:func:`shrink_size`).
    """

    height: int
    width: int

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from hieroaction.video.resize import resize_frame

        return resize_frame(frame, self.height, self.width)


def shrink_size(height: int, width: int, transform: Transform | None) -> tuple[int, int] | None:
    """The ``(height, width)`` at which to convert a ``height x width`` source frame to RGB
    before ``transform``, or ``None`` to convert it at full size.

    Only a :class:`ResizeTo` to at most half of each side of a source over
    :data:`SHRINK_ABOVE_PIXELS` gets one: twice its size, so the exact resize that follows still
    sees twice the detail it keeps.
    """
    if not isinstance(transform, ResizeTo) or height * width <= SHRINK_ABOVE_PIXELS:
        return None
    h, w = 2 * transform.height, 2 * transform.width
    if h > height or w > width:
        return None
    return h, w


def frames_within_budget(
    height: int,
    width: int,
    bytes_per_pixel: float = PICTURE_BYTES_PER_PIXEL,
    budget: int = FRAME_MEMORY_BUDGET,
) -> int:
    """How many ``height x width`` pictures (or decoder threads, with their
    ``bytes_per_pixel``) fit in ``budget`` bytes; at least one."""
    return max(1, int(budget // max(1.0, height * width * bytes_per_pixel)))


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
