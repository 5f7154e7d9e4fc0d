"""The video pipeline: decode an action window, sample frames, resize them, cache them.

Records name a video file or a frame folder and an action window; :func:`read_clip` turns one
into a :class:`Clip` (frames, their absolute indices and timestamps) under a
:class:`FrameConfig`, and :class:`FrameCache` stores each clip once so that training and
evaluation never decode video. ``hieroaction data frames`` fills the cache for a records file.
"""

from __future__ import annotations

from hieroaction.video.cache import FrameCache, PrecomputeSummary, precompute
from hieroaction.video.decode import FrameReader, SourceInfo, decord_available, open_reader, read_clip
from hieroaction.video.resize import (
    check_frame_pixels,
    check_frame_size,
    resize_clip,
    resize_frame,
    resize_frames,
    smart_resize,
    smart_resize_video,
    target_size,
)
from hieroaction.video.sample import (
    Clip,
    FrameConfig,
    fps_indices,
    sample_indices,
    step_indices,
    timestamps_for,
    uniform_indices,
)

__all__ = [
    "Clip",
    "FrameCache",
    "FrameConfig",
    "FrameReader",
    "PrecomputeSummary",
    "SourceInfo",
    "check_frame_pixels",
    "check_frame_size",
    "decord_available",
    "fps_indices",
    "open_reader",
    "precompute",
    "read_clip",
    "resize_clip",
    "resize_frame",
    "resize_frames",
    "sample_indices",
    "smart_resize",
    "smart_resize_video",
    "step_indices",
    "target_size",
    "timestamps_for",
    "uniform_indices",
]
