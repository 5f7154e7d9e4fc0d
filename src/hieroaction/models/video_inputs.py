"""Model-ready video tensors for the Qwen VL families, without torchvision.

transformers 5.x prepares videos with ``Qwen2VLVideoProcessor`` / ``Qwen3VLVideoProcessor``,
which need torchvision (its PyPI wheel does not import on a CPU-only machine). This module does
the same steps with torch and numpy alone, in the same order and with the same arithmetic:

1. resize every frame to the family's grid (``smart_resize``; Qwen3-VL's pixel budget covers the
   whole clip), bicubic with antialiasing on uint8, the kernel torchvision itself calls on CPU;
2. rescale by 1/255 and normalise with the family's mean and std (fused, as transformers does);
3. pad the frame count to a multiple of the temporal patch size by repeating the last frame;
4. cut into ``temporal x patch x patch`` patches in the vision tower's merge order, giving
   ``pixel_values_videos`` of shape ``(t*h*w, 3*temporal*patch*patch)`` and ``video_grid_thw``.

The frame times travel with the frames: Qwen2.5-VL gets ``second_per_grid_ts`` (seconds per
temporal patch) and Qwen3-VL gets one ``<t seconds>`` stamp per temporal patch. Both come from
the true timestamps of the sampled frames, never from transformers' 24 fps fallback.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hieroaction.errors import ConfigError, VideoError
from hieroaction.models.families import ModelFamily, PixelBudget
from hieroaction.video.resize import smart_resize, smart_resize_video

# PIL's code for bicubic resampling, as stored in transformers' processor configs.
_PIL_BICUBIC = 3


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoSettings:
    """How a family's video processor turns frames into patches (one checkpoint's values)."""

    patch_size: int
    merge_size: int
    temporal_patch_size: int
    min_pixels: int
    max_pixels: int
    pixel_budget: PixelBudget
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    rescale_factor: float = 1 / 255
    do_resize: bool = True
    do_rescale: bool = True
    do_normalize: bool = True

    @property
    def factor(self) -> int:
        """Side of one merged visual token in pixels."""
        return self.patch_size * self.merge_size

    @classmethod
    def for_family(
        cls, family: ModelFamily, min_pixels: int | None = None, max_pixels: int | None = None
    ) -> VideoSettings:
        """The family's default settings, with optional pixel budgets."""
        return cls(
            patch_size=family.patch_size,
            merge_size=family.merge_size,
            temporal_patch_size=family.temporal_patch_size,
            min_pixels=family.min_pixels if min_pixels is None else int(min_pixels),
            max_pixels=family.max_pixels if max_pixels is None else int(max_pixels),
            pixel_budget=family.pixel_budget,
            image_mean=family.image_mean,
            image_std=family.image_std,
        )

    def with_budget(self, min_pixels: int, max_pixels: int) -> VideoSettings:
        """A copy with other pixel budgets (same meaning: per frame or per clip)."""
        if not 0 < min_pixels <= max_pixels:
            raise ConfigError(
                "pixel budget must satisfy 0 < min_pixels <= max_pixels, "
                f"got {min_pixels} and {max_pixels}"
            )
        return replace(self, min_pixels=int(min_pixels), max_pixels=int(max_pixels))

    def target_size(self, num_frames: int, height: int, width: int) -> tuple[int, int]:
        """The (height, width) every frame of a ``num_frames`` clip is resized to (transformers'
        ``smart_resize`` rules, from :mod:`hieroaction.video.resize`)."""
        if self.pixel_budget == "per_clip":
            return smart_resize_video(
                num_frames,
                height,
                width,
                self.temporal_patch_size,
                self.factor,
                self.min_pixels,
                self.max_pixels,
            )
        return smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels)

    def for_frames(self, frame_config: Any) -> VideoSettings:
        """A copy with the pixel budgets of the frame pipeline's ``FrameConfig``, so frames from
        the cache are not resized a second time; raises :class:`ConfigError` when the frames were
        gridded for another family (other factor, budget scope or temporal patch)."""
        clip_budget = self.pixel_budget == "per_clip"
        mismatch = [
            f"{name}={got!r} (model expects {want!r})"
            for name, got, want in (
                ("factor", frame_config.factor, self.factor),
                ("clip_budget", frame_config.clip_budget, clip_budget),
                ("temporal_factor", frame_config.temporal_factor, self.temporal_patch_size),
            )
            if got != want
        ]
        if mismatch:
            raise ConfigError(
                f"frame settings do not fit the model: {', '.join(mismatch)}; leave them out of "
                "the recipe to take the model's own"
            )
        return self.with_budget(frame_config.min_pixels, frame_config.max_pixels)

    def to_processor_dict(self, family: ModelFamily) -> dict[str, Any]:
        """The video processor config transformers' ``family.video_processor_class`` reads
        (``video_preprocessor_config.json``)."""
        return {
            "video_processor_type": family.video_processor_class_name,
            "do_resize": self.do_resize,
            "size": {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels},
            "resample": _PIL_BICUBIC,
            "do_rescale": self.do_rescale,
            "rescale_factor": self.rescale_factor,
            "do_normalize": self.do_normalize,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "do_convert_rgb": True,
            "patch_size": self.patch_size,
            "temporal_patch_size": self.temporal_patch_size,
            "merge_size": self.merge_size,
            # HieroAction samples frames itself and passes their true times.
            "do_sample_frames": False,
            # The uncapped rule (transformers 5.24's behaviour when unset), stated so it is not
            # changed by a later default.
            "cap_pixels_per_frame": False,
            "return_metadata": False,
        }

    @classmethod
    def from_processor_dict(
        cls, data: dict[str, Any], family: ModelFamily, source: str = "<dict>"
    ) -> VideoSettings:
        """Settings from a saved video (or image) processor config of ``family``."""
        size = data.get("size") or {}
        min_pixels = size.get("shortest_edge", data.get("min_pixels"))
        max_pixels = size.get("longest_edge", data.get("max_pixels"))
        if data.get("cap_pixels_per_frame"):
            raise ConfigError(
                f"{source}: cap_pixels_per_frame=true is not supported; HieroAction bounds pixels "
                "with min_pixels/max_pixels (size.shortest_edge/longest_edge)"
            )
        resample = data.get("resample", _PIL_BICUBIC)
        if resample != _PIL_BICUBIC:
            raise ConfigError(
                f"{source}: resample={resample!r} is not supported; expected 3 (bicubic)"
            )
        try:
            base = cls.for_family(
                family,
                min_pixels=None if min_pixels is None else int(min_pixels),
                max_pixels=None if max_pixels is None else int(max_pixels),
            )
            return replace(
                base,
                patch_size=int(data.get("patch_size", base.patch_size)),
                merge_size=int(data.get("merge_size", base.merge_size)),
                temporal_patch_size=int(data.get("temporal_patch_size", base.temporal_patch_size)),
                image_mean=_triple(data.get("image_mean", base.image_mean)),
                image_std=_triple(data.get("image_std", base.image_std)),
                rescale_factor=float(data.get("rescale_factor", base.rescale_factor)),
                do_resize=bool(data.get("do_resize", True)),
                do_rescale=bool(data.get("do_rescale", True)),
                do_normalize=bool(data.get("do_normalize", True)),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: not a valid video processor config ({exc})") from None


def _triple(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return a, b, c


# ---------------------------------------------------------------------------------------------
# Pixel steps
# ---------------------------------------------------------------------------------------------


def as_video_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Frames ``(T, H, W, 3)`` (or ``(T, H, W)`` grey) uint8 as a ``(T, 3, H, W)`` uint8 tensor."""
    video = torch.as_tensor(np.asarray(frames)) if not isinstance(frames, torch.Tensor) else frames
    if video.dtype != torch.uint8:
        raise VideoError(f"frames must be uint8 (0-255), got {video.dtype}")
    if video.ndim == 3:
        video = video.unsqueeze(-1)
    if video.ndim != 4 or video.shape[-1] not in (1, 3) or video.shape[0] == 0:
        raise VideoError(
            f"frames must have shape (T, H, W, 3) with T >= 1, got {tuple(video.shape)}"
        )
    if video.shape[-1] == 1:
        video = video.expand(-1, -1, -1, 3)
    return video.permute(0, 3, 1, 2).contiguous()


def resize_video(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize ``(T, 3, H, W)`` uint8 frames, exactly as torchvision's ``resize`` does on CPU for
    bicubic uint8 (antialiased, PIL-style integer kernel; unchanged when the size already fits)."""
    if tuple(video.shape[-2:]) == (height, width):
        return video
    return F.interpolate(
        video, size=(height, width), mode="bicubic", antialias=True, align_corners=False
    )


def normalize_video(video: torch.Tensor, settings: VideoSettings) -> torch.Tensor:
    """Rescale and normalise to float32 the way transformers fuses them (mean and std scaled by
    1/rescale_factor, then one subtract and one divide)."""
    x = video.to(torch.float32)
    if settings.do_normalize:
        scale = 1.0 / settings.rescale_factor if settings.do_rescale else 1.0
        mean = torch.tensor(settings.image_mean, dtype=torch.float32) * scale
        std = torch.tensor(settings.image_std, dtype=torch.float32) * scale
        return (x - mean[:, None, None]) / std[:, None, None]
    if settings.do_rescale:
        return x * settings.rescale_factor
    return x


def patchify(
    video: torch.Tensor, patch_size: int, merge_size: int, temporal_patch_size: int
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Cut ``(T, C, H, W)`` frames into flat patches in the order the vision tower merges them.

    T is padded to a multiple of ``temporal_patch_size`` with copies of the last frame. Returns
    ``(patches, (grid_t, grid_h, grid_w))`` with patches of shape
    ``(grid_t*grid_h*grid_w, C*temporal_patch_size*patch_size**2)``.
    """
    num_frames, channels, height, width = video.shape
    if height % (patch_size * merge_size) or width % (patch_size * merge_size):
        raise VideoError(
            f"frame size {height}x{width} is not a multiple of the "
            f"{patch_size * merge_size}-pixel grid"
        )
    if pad := -num_frames % temporal_patch_size:
        video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)], dim=0)
        num_frames += pad
    grid_t, grid_h, grid_w = (
        num_frames // temporal_patch_size,
        height // patch_size,
        width // patch_size,
    )
    x = video.reshape(
        grid_t,
        temporal_patch_size,
        channels,
        grid_h // merge_size,
        merge_size,
        patch_size,
        grid_w // merge_size,
        merge_size,
        patch_size,
    )
    # (t, block_row, block_col, row_in_block, col_in_block) | (channel, time_in_patch, py, px)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    patches = x.reshape(
        grid_t * grid_h * grid_w, channels * temporal_patch_size * patch_size * patch_size
    )
    return patches, (grid_t, grid_h, grid_w)


def unpatchify(
    patches: torch.Tensor,
    grid_thw: Sequence[int],
    patch_size: int,
    merge_size: int,
    temporal_patch_size: int,
    channels: int = 3,
) -> torch.Tensor:
    """The inverse of :func:`patchify`: ``(grid_t*temporal_patch_size, C, H, W)`` frames
    (padding frames included)."""
    grid_t, grid_h, grid_w = (int(v) for v in grid_thw)
    x = patches.reshape(
        grid_t,
        grid_h // merge_size,
        grid_w // merge_size,
        merge_size,
        merge_size,
        channels,
        temporal_patch_size,
        patch_size,
        patch_size,
    )
    x = x.permute(0, 6, 5, 1, 3, 7, 2, 4, 8)
    return x.reshape(
        grid_t * temporal_patch_size, channels, grid_h * patch_size, grid_w * patch_size
    )


# ---------------------------------------------------------------------------------------------
# Frame times
# ---------------------------------------------------------------------------------------------


def check_timestamps(timestamps: Sequence[float], num_frames: int, fps: float) -> list[float]:
    """The frame times as floats; raises :class:`VideoError` unless there is one finite,
    non-decreasing time per frame and ``fps`` is positive."""
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise VideoError(f"the clip's fps must be a positive number, got {fps!r}")
    times = [float(t) for t in timestamps]
    if len(times) != num_frames:
        raise VideoError(f"got {len(times)} timestamps for {num_frames} frames")
    if not all(math.isfinite(t) for t in times) or any(b < a for a, b in itertools.pairwise(times)):
        raise VideoError("frame timestamps must be finite and in increasing order")
    return times


def sampled_fps(timestamps: Sequence[float], fps: float) -> float:
    """Frames per second of the sampled frames: the mean rate between the first and last
    timestamp, or the source ``fps`` for a single frame (or frames with equal times)."""
    if len(timestamps) > 1 and timestamps[-1] > timestamps[0]:
        return (len(timestamps) - 1) / (timestamps[-1] - timestamps[0])
    return float(fps)


def seconds_per_grid(timestamps: Sequence[float], fps: float, temporal_patch_size: int) -> float:
    """Qwen2.5-VL's ``second_per_grid_ts``: the seconds one temporal patch spans (transformers:
    ``temporal_patch_size / sampled_fps``)."""
    return temporal_patch_size / sampled_fps(timestamps, fps)


def patch_timestamps(timestamps: Sequence[float], temporal_patch_size: int) -> list[float]:
    """Qwen3-VL's time of each temporal patch: the mean of its first and last frame, after
    padding the times like the frames (repeat the last one)."""
    times = [float(t) for t in timestamps]
    if pad := -len(times) % temporal_patch_size:
        times.extend([times[-1]] * pad)
    return [
        (times[i] + times[i + temporal_patch_size - 1]) / 2
        for i in range(0, len(times), temporal_patch_size)
    ]


# ---------------------------------------------------------------------------------------------
# Whole clip
# ---------------------------------------------------------------------------------------------


@dataclass
class VideoFeatures:
    """One clip, ready for the model: patches, grid and the times of its temporal patches."""

    pixel_values_videos: torch.Tensor
    video_grid_thw: tuple[int, int, int]
    frame_size: tuple[int, int]
    second_per_grid_t: float
    patch_times: list[float]

    def num_tokens(self, merge_size: int) -> int:
        """How many ``<|video_pad|>`` tokens the clip takes in the prompt."""
        t, h, w = self.video_grid_thw
        return t * h * w // merge_size**2


def process_video(
    frames: np.ndarray | torch.Tensor,
    timestamps: Sequence[float],
    fps: float,
    settings: VideoSettings,
) -> VideoFeatures:
    """Frames (uint8, ``(T, H, W, 3)``), their times in seconds and the source fps -> the tensors
    and times the model needs (see the module docstring for the steps)."""
    video = as_video_tensor(frames)
    times = check_timestamps(timestamps, video.shape[0], fps)
    if settings.do_resize:
        height, width = settings.target_size(video.shape[0], video.shape[2], video.shape[3])
        video = resize_video(video, height, width)
    pixels = normalize_video(video, settings)
    patches, grid = patchify(
        pixels, settings.patch_size, settings.merge_size, settings.temporal_patch_size
    )
    return VideoFeatures(
        pixel_values_videos=patches,
        video_grid_thw=grid,
        frame_size=(int(video.shape[2]), int(video.shape[3])),
        second_per_grid_t=seconds_per_grid(times, fps, settings.temporal_patch_size),
        patch_times=patch_timestamps(times, settings.temporal_patch_size),
    )
