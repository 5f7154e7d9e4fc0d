"""Reading the frames of an action window from a video file or a frame folder.

This module is the front door: :func:`open_reader` picks a backend for a record's video and
:func:`read_clip` decodes, samples and resizes its action window. The backends live one per
module, behind :class:`~hieroaction.video.reader.FrameReader`:

- :mod:`hieroaction.video.pyav`: video files through PyAV (FFmpeg), with a packet index that
  decodes only the frames asked for (the default, ``decoder="auto"`` or ``"pyav"``);
- :mod:`hieroaction.video.decord_reader`: video files through decord (optional,
  ``decoder="decord"``); ``auto`` picks PyAV: decord 0.6 returns wrong frames on some streams
  (MPEG-4 with B-frames, open-GOP H.264; see the tests) and was slower in every measurement in
  docs/video.md;
- :mod:`hieroaction.video.frame_folder`: frame folders, one image per frame, named by
  ``VideoRef.frame_template`` from the absolute frame index, or in natural order.

The names those modules share are exported here too, so ``from hieroaction.video.decode import
PyAVReader`` keeps working.

Every problem a user's file can cause (missing, empty, truncated, not a video, a window past its
end, a missing or unreadable image, absurd dimensions, frames over ``max_frame_pixels``) raises
:class:`VideoError` naming the file. The frame size limits are checked from the source's header
(the video stream's codec parameters, or the first image's header) before any frame is decoded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hieroaction.data.records import Record, VideoRef
from hieroaction.errors import VideoError
from hieroaction.video.decord_reader import DecordReader, decord_available
from hieroaction.video.frame_folder import FrameFolderReader
from hieroaction.video.pyav import PyAVReader, clear_index_cache
from hieroaction.video.reader import IMAGE_EXTENSIONS, FrameReader, ResizeTo, SourceInfo, Transform
from hieroaction.video.resize import target_size
from hieroaction.video.sample import (
    MAX_SOURCE_SIDE,
    Clip,
    FrameConfig,
    sample_indices,
    timestamps_for,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "DecordReader",
    "FrameFolderReader",
    "FrameReader",
    "PyAVReader",
    "ResizeTo",
    "SourceInfo",
    "Transform",
    "clear_index_cache",
    "decord_available",
    "open_reader",
    "read_clip",
    "resolve_source",
]

# ---------------------------------------------------------------------------------------------
# Opening a source
# ---------------------------------------------------------------------------------------------


def resolve_source(value: str, base_dir: str | Path | None = None) -> Path:
    """A record's video path or frame folder as a path (relative to ``base_dir`` when given)."""
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def open_reader(
    ref: VideoRef,
    *,
    decoder: str = "auto",
    default_fps: float = 25.0,
    max_source_side: int = MAX_SOURCE_SIDE,
    base_dir: str | Path | None = None,
    threads: int = 0,
    max_frame_pixels: int | None = None,
) -> FrameReader:
    """A reader for a record's video file (``ref.path``) or frame folder (``ref.frames_dir``).

    Args:
        ref: the record's video reference.
        decoder: ``auto`` (PyAV), ``pyav`` or ``decord`` for video files.
        default_fps: fps when neither ``ref.fps`` nor the container gives one.
        max_source_side: sides beyond this are an error.
        base_dir: folder that relative paths are relative to (the records file's folder).
        threads: decoder and worker threads (0: as many as the machine has, up to a few).
        max_frame_pixels: frames with more pixels than this are an error, raised from the
            header before anything is decoded (``None``: no limit; :func:`read_clip` passes
            ``FrameConfig.max_frame_pixels``).
    """
    if ref.path:
        path = resolve_source(ref.path, base_dir)
        if decoder == "decord":
            return DecordReader(
                path, ref.fps, default_fps, max_source_side, threads, max_frame_pixels=max_frame_pixels
            )
        if decoder not in ("auto", "pyav"):
            raise VideoError(f"unknown decoder {decoder!r}; expected 'auto', 'pyav' or 'decord'")
        return PyAVReader(
            path, ref.fps, default_fps, max_source_side, threads, max_frame_pixels=max_frame_pixels
        )
    if ref.frames_dir:
        folder = resolve_source(ref.frames_dir, base_dir)
        return FrameFolderReader(
            folder, ref.frame_template, ref.start_frame, ref.end_frame, ref.fps, default_fps,
            max_source_side, threads, max_frame_pixels=max_frame_pixels,
        )
    raise VideoError("the record names no video: set video.path or video.frames_dir")


# ---------------------------------------------------------------------------------------------
# A record's clip
# ---------------------------------------------------------------------------------------------


def read_clip(
    record: Record | VideoRef,
    config: FrameConfig | None = None,
    *,
    base_dir: str | Path | None = None,
    threads: int = 0,
) -> Clip:
    """Decode, sample and resize the frames of a record's action window.

    Args:
        record: a record (its steps feed the ``steps`` strategy) or just its video reference.
        config: frame settings (defaults: 16 uniform frames at the Qwen2.5-VL budget).
        base_dir: folder that relative video paths are relative to.
        threads: decoder and worker threads (0: automatic).

    Raises:
        VideoError: the source cannot give the frames (the message names the file), or its
            frames have more pixels than ``config.max_frame_pixels`` (found from the header,
            before anything is decoded).
    """
    config = config or FrameConfig()
    ref = record.video if isinstance(record, Record) else record
    steps = record.steps if isinstance(record, Record) and config.strategy == "steps" else []
    with open_reader(
        ref, decoder=config.decoder, default_fps=config.default_fps,
        max_source_side=config.max_source_side, base_dir=base_dir, threads=threads,
        max_frame_pixels=config.max_frame_pixels,
    ) as reader:
        info = reader.info
        start, end = reader.window(ref.start_frame, ref.end_frame)
        indices = sample_indices(
            start, end, config, info.fps,
            [(start + s.start_frame, start + s.end_frame) for s in steps],
        )
        height, width = target_size(info.height, info.width, len(indices), config, where=info.source)
        transform: Transform | None = None
        if (height, width) != (info.height, info.width):
            # A ResizeTo says its size, so a reader can shrink large frames as it converts them.
            transform = ResizeTo(height, width)
        frames = reader.read(indices.tolist(), transform)
    for i, frame in zip(indices, frames):
        if frame.shape != (height, width, 3):
            # Only possible without resizing, when the stream changes size mid-way.
            raise VideoError(
                f"{info.source}: frame {i} is {frame.shape[0]}x{frame.shape[1]}, but the clip's "
                f"frames are {height}x{width}; enable resizing to mix frame sizes"
            )
    return Clip(
        frames=np.stack(frames) if frames else np.zeros((0, height, width, 3), np.uint8),
        indices=indices,
        timestamps=timestamps_for(indices, start, info.fps),
        fps=info.fps,
        fps_source=info.fps_source,
        source=info.source,
        start_frame=start,
        end_frame=end,
        decoder=info.decoder,
        source_size=(info.height, info.width),
        record_id=record.id if isinstance(record, Record) else None,
    )
