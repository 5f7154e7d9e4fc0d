"""Which frames of a clip the model sees: the frame settings, the sampling strategies and ``Clip``.

Every strategy is a pure function of the action window, the source fps, the annotated steps and
:class:`FrameConfig`, so the same record and settings always give the same frames:

- ``uniform``: ``num_frames`` frames spread over the window with ``linspace`` (rounded, the rule
  of Qwen3-VL's own sampler), so the first and the last frame of the window are always shown and
  the model sees the whole action, including its end (a dive's entry). A window shorter than
  ``num_frames`` gives each of its frames once (never a repeated frame).
- ``fps``: one frame every ``1 / fps`` seconds from the window start; when that gives more than
  ``max_frames`` frames, ``max_frames`` frames spread uniformly instead, so long clips stay
  inside the token budget while still covering the whole window.
- ``steps`` (for training): at least ``min_frames_per_step`` frames inside every annotated step
  (spread over the step, centre-of-segment), then the rest of the ``num_frames`` budget given to
  the frames farthest from any chosen frame, so the clip stays evenly covered. A record without
  steps falls back to ``uniform``.

Chosen frames travel in a :class:`Clip` with their absolute frame indices and their times in
seconds from the window start, ``(index - start_frame) / fps``, so prompts and rewards use true
times.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hieroaction.errors import ConfigError, DataError

Strategy = Literal["uniform", "fps", "steps"]
DecoderName = Literal["auto", "pyav", "decord"]
FpsSource = Literal["record", "container", "default"]

# Sides beyond this are treated as a corrupt header rather than a real video (FFmpeg's own
# decoders refuse frames much larger than this).
MAX_SOURCE_SIDE = 16384

# Default bound on a source frame's pixels (width x height), checked from the stream header
# before anything is decoded: DCI 4K (4096x2160), so every 4K recording (UHD 3840x2160, either
# orientation) passes, while a small file that declares huge frames (16384x8192 black frames
# compress to a few hundred KB) is refused instead of costing gigabytes to decode.
MAX_FRAME_PIXELS = 4096 * 2160

# The model families' default frame budgets, read from transformers' video processors
# (Qwen2VLVideoProcessor.size, used by Qwen2.5-VL; Qwen3VLVideoProcessor.size). Qwen2.5-VL's
# budget is per frame; Qwen3-VL's covers the whole clip (frames x height x width).
FAMILY_FRAME_SETTINGS: dict[str, dict[str, Any]] = {
    "qwen2_5_vl": {
        "factor": 28, "min_pixels": 128 * 28 * 28, "max_pixels": 768 * 28 * 28,
        "clip_budget": False, "temporal_factor": 2,
    },
    "qwen3_vl": {
        "factor": 32, "min_pixels": 128 * 32 * 32, "max_pixels": 768 * 32 * 32,
        "clip_budget": True, "temporal_factor": 2,
    },
}

# The frame settings that belong to the model: its patch grid (factor, temporal_factor), the
# scope of its pixel budget (clip_budget) and the budget itself. A recipe may leave any of them
# out: it then takes the value of the model it trains (FrameConfig.fit, called by SFT and HPL once
# the model's family is known), so one recipe fits Qwen2.5-VL and Qwen3-VL alike. A value a
# recipe sets is kept, and refused with one sentence when the model cannot use it. Until fitted,
# an unset field holds the DEFAULT_FAMILY's value.
MODEL_FIELDS = ("factor", "min_pixels", "max_pixels", "clip_budget", "temporal_factor")
DEFAULT_FAMILY = "qwen2_5_vl"


@dataclass
class FrameConfig:
    """Every setting of the frame pipeline (decode, sample, resize); all of it keys the cache.

    Attributes:
        strategy: ``uniform``, ``fps`` or ``steps`` (see the module docstring).
        num_frames: frames per clip for ``uniform`` and ``steps``.
        fps: target frames per second for ``fps``.
        max_frames: most frames ``fps`` may give.
        min_frames_per_step: frames guaranteed inside every annotated step for ``steps``.
        resize: resize frames to the pixel budget (off: frames keep the source size).
        factor: sides are rounded to multiples of this (28 for Qwen2.5-VL, 32 for Qwen3-VL).
        min_pixels: smallest budget, per frame (or per clip with ``clip_budget``).
        max_pixels: largest budget, per frame (or per clip with ``clip_budget``).
        clip_budget: the budget covers ``frames x height x width`` of the whole clip (Qwen3-VL).
        temporal_factor: frames per temporal patch, used by the clip budget's rounding.
            These five (:data:`MODEL_FIELDS`) may be left unset (``None``): they then come
            from the model's family (:meth:`fit`); until then they hold Qwen2.5-VL's values.
        decoder: ``auto``, ``pyav`` or ``decord`` (``auto`` picks PyAV; see docs/video.md).
        default_fps: fps used when neither the record nor the container gives one.
        max_source_side: a source side above this is an error (corrupt header, not a video).
        max_frame_pixels: a source whose frames have more pixels (width x height) than this is
            refused from its header, before any frame is decoded (default DCI 4K, 4096x2160;
            decoding cost and memory grow with it: see docs/video.md).
    """

    strategy: Strategy = "uniform"
    num_frames: int = 16
    fps: float = 2.0
    max_frames: int = 64
    min_frames_per_step: int = 2
    resize: bool = True
    factor: int | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    clip_budget: bool | None = None
    temporal_factor: int | None = None
    decoder: DecoderName = "auto"
    default_fps: float = 25.0
    max_source_side: int = MAX_SOURCE_SIDE
    max_frame_pixels: int = MAX_FRAME_PIXELS

    def __post_init__(self) -> None:
        # Which model fields were left unset (not a dataclass field: it keys no cache and is not
        # saved; a saved or copied config has every field set).
        self._unset = tuple(name for name in MODEL_FIELDS if getattr(self, name) is None)
        for name in self._unset:
            setattr(self, name, FAMILY_FRAME_SETTINGS[DEFAULT_FAMILY][name])
        if self.strategy not in ("uniform", "fps", "steps"):
            raise ConfigError(
                f"frame strategy must be 'uniform', 'fps' or 'steps', got {self.strategy!r}"
            )
        if self.decoder not in ("auto", "pyav", "decord"):
            raise ConfigError(f"decoder must be 'auto', 'pyav' or 'decord', got {self.decoder!r}")
        for name in ("num_frames", "max_frames", "factor", "min_pixels", "max_pixels",
                     "temporal_factor", "max_source_side", "max_frame_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"frame setting {name!r} must be a positive integer, got {value!r}")
        if isinstance(self.min_frames_per_step, bool) or self.min_frames_per_step < 0:
            raise ConfigError(
                f"frame setting 'min_frames_per_step' must be >= 0, got {self.min_frames_per_step!r}"
            )
        for name in ("fps", "default_fps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (
                isinstance(value, (int, float)) and math.isfinite(value) and value > 0
            ):
                raise ConfigError(f"frame setting {name!r} must be a positive number, got {value!r}")
            # 5 and 5.0 are the same setting: store one form so cache keys agree.
            setattr(self, name, float(value))
        # with a bound left to the model, the pair is checked once fitted
        if self.min_pixels > self.max_pixels and not {"min_pixels", "max_pixels"} & set(self._unset):
            raise ConfigError(
                f"min_pixels ({self.min_pixels}) must not exceed max_pixels ({self.max_pixels})"
            )

    @classmethod
    def for_family(cls, family: str, **overrides: Any) -> FrameConfig:
        """The budgets of a model family (``qwen2_5_vl`` or ``qwen3_vl``), with overrides."""
        if family not in FAMILY_FRAME_SETTINGS:
            raise ConfigError(
                f"unknown model family {family!r} for frame settings; "
                f"expected one of {sorted(FAMILY_FRAME_SETTINGS)}"
            )
        return cls(**{**FAMILY_FRAME_SETTINGS[family], **overrides})

    @property
    def unset(self) -> tuple[str, ...]:
        """The :data:`MODEL_FIELDS` this config left to the model (none after :meth:`fit`)."""
        return getattr(self, "_unset", ())

    def fit(self, family: str, **model: Any) -> FrameConfig:
        """A copy whose unset :data:`MODEL_FIELDS` are the model's: ``family``'s grid and
        default budget, or the values given in ``model`` (e.g. ``min_pixels`` and
        ``max_pixels`` of a model's own processor). Fields the config set are kept as they are
        (whether the model can use them is ``VideoSettings.for_frames``'s check)."""
        if family not in FAMILY_FRAME_SETTINGS:
            raise ConfigError(
                f"unknown model family {family!r} for frame settings; "
                f"expected one of {sorted(FAMILY_FRAME_SETTINGS)}"
            )
        values = {**FAMILY_FRAME_SETTINGS[family], **model}
        return dataclasses.replace(self, **{name: values[name] for name in self.unset})

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping of every field (what keys the cache)."""
        return dataclasses.asdict(self)


@dataclass
class Clip:
    """Sampled (and usually resized) frames of one action window, with where they came from.

    Attributes:
        frames: ``uint8`` array ``(T, H, W, 3)``, RGB.
        indices: absolute frame index of each frame in the source, ``int64`` ``(T,)``.
        timestamps: seconds from the window start, ``(index - start_frame) / fps``, ``(T,)``.
        fps: frames per second used for the timestamps.
        fps_source: where ``fps`` came from: ``record``, ``container`` or ``default``.
        source: the video file or frame folder.
        start_frame: first frame of the action window (absolute, inclusive).
        end_frame: last frame of the action window (absolute, inclusive).
        decoder: what produced the pixels (``pyav``, ``decord`` or ``images``).
        source_size: ``(height, width)`` of the source frames before resizing.
        record_id: the record the clip belongs to, when known.
    """

    frames: np.ndarray
    indices: np.ndarray
    timestamps: np.ndarray
    fps: float
    fps_source: FpsSource
    source: str
    start_frame: int
    end_frame: int
    decoder: str
    source_size: tuple[int, int]
    record_id: str | None = None

    @property
    def num_frames(self) -> int:
        """Frames in the clip."""
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        """Height of every frame."""
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        """Width of every frame."""
        return int(self.frames.shape[2])

    @property
    def duration(self) -> float:
        """Length of the action window in seconds."""
        return (self.end_frame - self.start_frame + 1) / self.fps

    def metadata(self) -> dict[str, Any]:
        """Everything but the arrays, as JSON-ready values."""
        return {
            "fps": self.fps,
            "fps_source": self.fps_source,
            "source": self.source,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "decoder": self.decoder,
            "source_size": list(self.source_size),
            "record_id": self.record_id,
        }


def timestamps_for(indices: Sequence[int] | np.ndarray, start_frame: int, fps: float) -> np.ndarray:
    """Seconds from the window start of each absolute frame index."""
    return (np.asarray(indices, dtype=np.float64) - start_frame) / fps


def uniform_indices(start: int, end: int, num_frames: int) -> np.ndarray:
    """``num_frames`` absolute indices spread over ``[start, end]`` (linspace, rounded).

    The first and last frame of the window are always included; a window of fewer frames than
    ``num_frames`` gives each of its frames once.
    """
    _check_window(start, end)
    length = end - start + 1
    if num_frames >= length:
        return np.arange(start, end + 1, dtype=np.int64)
    if num_frames == 1:
        # One frame stands for the whole window best from its middle.
        return np.array([start + (length - 1) // 2], dtype=np.int64)
    picked = np.linspace(start, end, num_frames).round().astype(np.int64)
    # With num_frames < length, linspace steps exceed 1, so rounded values never collide.
    return picked


def fps_indices(
    start: int, end: int, source_fps: float, target_fps: float, max_frames: int
) -> np.ndarray:
    """Frames every ``1 / target_fps`` seconds from ``start``; uniform ``max_frames`` when more.

    The count is ``floor((length - 1) * target_fps / source_fps) + 1``: the frames at times
    ``0, 1/target_fps, 2/target_fps, ...`` that fall inside the window. A target above the
    source fps gives every frame once.
    """
    _check_window(start, end)
    length = end - start + 1
    step = source_fps / target_fps
    # The epsilon keeps exact multiples (e.g. 90 / 15) from flooring one short.
    count = length if step <= 1 else math.floor((length - 1) / step + 1e-9) + 1
    if count > max_frames:
        return uniform_indices(start, end, max_frames)
    if step <= 1:
        return np.arange(start, end + 1, dtype=np.int64)
    offsets = np.floor(np.arange(count) * step + 0.5).astype(np.int64)
    return start + np.minimum(offsets, length - 1)


def step_indices(
    start: int,
    end: int,
    steps: Sequence[tuple[int, int]],
    num_frames: int,
    min_per_step: int,
) -> np.ndarray:
    """At least ``min_per_step`` frames inside every step, the rest spread over the window.

    ``steps`` are ``(first, last)`` absolute inclusive frame ranges inside ``[start, end]``.
    Within a step, frames sit at the centres of equal segments (one frame: the step's middle).
    The remaining budget goes, one frame at a time, to the window frame farthest from every
    frame already chosen (ties: the earliest), which spreads it evenly around the step frames.
    The result is sorted and has ``num_frames`` frames (fewer only when the window is shorter);
    :class:`ConfigError` when the steps alone need more than ``num_frames``, :class:`DataError`
    when a step lies outside the window.
    """
    _check_window(start, end)
    length = end - start + 1
    chosen: set[int] = set()
    needed = 0
    for first, last in steps:
        if first < start or last > end or last < first:
            raise DataError(
                f"step frames {first}..{last} are not inside the action window {start}..{end}"
            )
        span = last - first + 1
        k = min(min_per_step, span)
        needed += k
        for j in range(k):
            chosen.add(first + math.floor((j + 0.5) * span / k))
    if needed > num_frames:
        raise ConfigError(
            f"{len(steps)} steps x min_frames_per_step={min_per_step} need {needed} frames, "
            f"more than num_frames={num_frames}; raise num_frames or lower min_frames_per_step"
        )
    target = min(num_frames, length)
    if len(chosen) >= target:
        return np.array(sorted(chosen), dtype=np.int64)
    positions = np.arange(start, end + 1, dtype=np.int64)
    if chosen:
        picked = np.array(sorted(chosen), dtype=np.int64)
        distance = np.min(np.abs(positions[:, None] - picked[None, :]), axis=1)
    else:
        # Nothing chosen yet: start from the window ends, like the uniform strategy.
        chosen.add(start)
        distance = np.abs(positions - start)
    while len(chosen) < target:
        best = int(np.argmax(distance))  # argmax returns the earliest of equal maxima
        chosen.add(int(positions[best]))
        distance = np.minimum(distance, np.abs(positions - positions[best]))
    return np.array(sorted(chosen), dtype=np.int64)


def sample_indices(
    start: int,
    end: int,
    config: FrameConfig,
    source_fps: float,
    steps: Sequence[tuple[int, int]] = (),
) -> np.ndarray:
    """The absolute frame indices ``config.strategy`` picks in the window ``[start, end]``.

    ``steps`` are absolute inclusive ranges (only the ``steps`` strategy reads them).
    """
    if config.strategy == "uniform":
        return uniform_indices(start, end, config.num_frames)
    if config.strategy == "fps":
        return fps_indices(start, end, source_fps, config.fps, config.max_frames)
    if not steps:
        return uniform_indices(start, end, config.num_frames)
    return step_indices(start, end, steps, config.num_frames, config.min_frames_per_step)


def _check_window(start: int, end: int) -> None:
    if start < 0 or end < start:
        raise ConfigError(f"frame window {start}..{end} is empty or negative")
