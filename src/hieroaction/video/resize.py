"""Frame sizes on a model family's patch grid, and the resize itself.

The size rules are those of transformers' Qwen processors, reproduced here so that nothing
needs torchvision:

- :func:`smart_resize` (Qwen2-VL / Qwen2.5-VL, ``qwen2_vl/image_processing_qwen2_vl.py``): each
  frame gets sides that are multiples of ``factor`` with ``min_pixels <= h * w <= max_pixels``,
  keeping the aspect ratio as closely as possible;
- :func:`smart_resize_video` (Qwen3-VL, ``qwen3_vl/video_processing_qwen3_vl.py``): the budget
  bounds ``frames x h x w`` of the whole clip, with the frame count rounded to the temporal
  patch, and frames smaller than one grid cell are first scaled up.

Frames are resized with PIL's bicubic filter (with its antialiasing on downscale), the
``resample=BICUBIC`` that the Qwen processor configs name. Impossible sizes (zero, negative,
an aspect ratio over 200, sides beyond ``max_side``) raise :class:`VideoError`, and so do
frames with more pixels than the ``max_frame_pixels`` setting (:func:`check_frame_pixels`, which
the readers apply to a source's header before decoding it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from hieroaction.errors import VideoError
from hieroaction.video.sample import MAX_SOURCE_SIDE, Clip, FrameConfig

# transformers rejects frames more elongated than this (both Qwen generations).
MAX_ASPECT_RATIO = 200


def check_frame_size(
    height: int,
    width: int,
    *,
    max_side: int = MAX_SOURCE_SIDE,
    where: str = "frame",
    check_ratio: bool = True,
) -> None:
    """Raise :class:`VideoError` unless ``height x width`` is a size a video frame can have."""
    if isinstance(height, bool) or isinstance(width, bool):
        raise VideoError(f"{where}: size {height}x{width} is not a pair of integers")
    try:
        h, w = int(height), int(width)
    except (TypeError, ValueError):
        raise VideoError(f"{where}: size {height}x{width} is not a pair of integers") from None
    if h != height or w != width:
        raise VideoError(f"{where}: size {height}x{width} is not a pair of integers")
    if h <= 0 or w <= 0:
        raise VideoError(f"{where}: size {h}x{w} (height x width) has an empty side")
    if h > max_side or w > max_side:
        raise VideoError(
            f"{where}: size {h}x{w} (height x width) is beyond the {max_side}-pixel limit "
            "(a corrupt header or not a real video)"
        )
    if check_ratio and max(h, w) / min(h, w) > MAX_ASPECT_RATIO:
        raise VideoError(
            f"{where}: size {h}x{w} has an aspect ratio over {MAX_ASPECT_RATIO}, "
            "which the model's processor cannot grid"
        )


def check_frame_pixels(height: int, width: int, max_pixels: int | None, *, where: str = "frame") -> None:
    """Raise :class:`VideoError` when ``height x width`` exceeds ``max_pixels`` (``None``: no
    limit), with one sentence naming the size, the limit and the setting that raises it."""
    if max_pixels is None or int(height) * int(width) <= max_pixels:
        return
    raise VideoError(
        f"{where}: its frames are {width}x{height} pixels (width x height), "
        f"{int(height) * int(width):,} pixels each, more than the limit of {max_pixels:,} pixels "
        "per frame (the frame setting max_frame_pixels); downscale the video, or raise "
        "max_frame_pixels to read it"
    )


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 56 * 56,
    max_pixels: int = 14 * 14 * 4 * 1280,
    *,
    max_side: int = MAX_SOURCE_SIDE,
    where: str = "frame",
) -> tuple[int, int]:
    """Per-frame target ``(height, width)``: multiples of ``factor`` within the pixel budget.

    Same rule and defaults as transformers' Qwen2-VL ``smart_resize``.
    """
    check_frame_size(height, width, max_side=max_side, where=where)
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def smart_resize_video(
    num_frames: int,
    height: int,
    width: int,
    temporal_factor: int = 2,
    factor: int = 32,
    min_pixels: int = 128 * 32 * 32,
    max_pixels: int = 768 * 32 * 32,
    *,
    max_side: int = MAX_SOURCE_SIDE,
    where: str = "frame",
) -> tuple[int, int]:
    """Target ``(height, width)`` when the budget covers the whole clip (Qwen3-VL's rule).

    Same arithmetic as transformers' Qwen3-VL video ``smart_resize``; defaults are the Qwen3-VL
    video processor's budget. A clip of fewer than ``temporal_factor`` frames is an error there
    and here.
    """
    # transformers checks the aspect ratio after scaling tiny frames up, so do the same.
    check_frame_size(height, width, max_side=max_side, where=where, check_ratio=False)
    if num_frames < temporal_factor:
        raise VideoError(
            f"{where}: a clip of {num_frames} frame(s) is shorter than the temporal patch "
            f"({temporal_factor} frames) that a clip-level budget needs"
        )
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height = int(height * scale)
        width = int(width * scale)
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise VideoError(
            f"{where}: size {height}x{width} has an aspect ratio over {MAX_ASPECT_RATIO}, "
            "which the model's processor cannot grid"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    t_bar = round(num_frames / temporal_factor) * temporal_factor
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt((num_frames * height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (num_frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def target_size(
    height: int, width: int, num_frames: int, config: FrameConfig, *, where: str = "frame"
) -> tuple[int, int]:
    """The size every frame of a ``num_frames`` clip gets under ``config``."""
    if not config.resize:
        check_frame_size(height, width, max_side=config.max_source_side, where=where)
        return int(height), int(width)
    if config.clip_budget:
        return smart_resize_video(
            num_frames, height, width, config.temporal_factor, config.factor,
            config.min_pixels, config.max_pixels, max_side=config.max_source_side, where=where,
        )
    return smart_resize(
        height, width, config.factor, config.min_pixels, config.max_pixels,
        max_side=config.max_source_side, where=where,
    )


def resize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 RGB frame resized to ``height x width`` (PIL bicubic)."""
    if frame.shape[0] == height and frame.shape[1] == width:
        return frame
    image = Image.fromarray(np.ascontiguousarray(frame), mode="RGB")
    return np.asarray(image.resize((width, height), Image.Resampling.BICUBIC))


def resize_frames(frames: np.ndarray | Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 frames resized to ``(T, height, width, 3)`` (PIL bicubic)."""
    check_frame_size(height, width)
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = resize_frame(frame, height, width)
    return out


def resize_clip(clip: Clip, config: FrameConfig) -> Clip:
    """A copy of ``clip`` with its frames resized as ``config`` asks (a no-op when sized)."""
    height, width = target_size(
        clip.height, clip.width, clip.num_frames, config, where=clip.source
    )
    if (height, width) == (clip.height, clip.width):
        return clip
    return dataclasses.replace(clip, frames=resize_frames(clip.frames, height, width))
