"""Draw a synthetic action clip frame by frame and write it as a video file.

The scene is a dark sky, a grey board on the left and blue water at the bottom. A figure (a
thick bar in the take-off's colour with a white head) goes through the action's three steps:

* take-off: it stands on the board, bouncing; it leans towards the water by
  ``lean_deg_per_point`` degrees per quality point lost;
* turns: it spins ``count`` full turns inside ``count`` white rings around a dot (the axis);
  its centre swings off the axis by ``wobble_per_point`` of the frame per point lost;
* entry: it drops into the water head or feet first, tilted off vertical by
  ``entry_tilt_deg_per_point`` degrees per point lost; once in, a white splash grows whose
  width is ``splash_base + splash_width_per_point`` per point lost: a tall column in front of
  the figure for a head-first entry, a low dome behind it for a feet-first one.

Quality therefore reaches the model only through pixels. Geometry is given in fractions of the
frame side so one config serves every frame size; frames are drawn ``supersample`` times larger
and reduced, which smooths edges so that half a quality point still moves pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from hieroaction.errors import ConfigError, VideoError
from hieroaction.io import atomic_path

RGB = tuple[int, int, int]


@dataclass
class RenderConfig:
    """How the scene looks and how strongly each quality shows (lengths: fractions of the side)."""

    size: int = 112  # frame width and height in pixels (even, for yuv420p video)
    supersample: int = 2
    background: tuple[int, int, int] = (14, 16, 38)
    water_colour: tuple[int, int, int] = (25, 90, 205)
    water_line: float = 0.82
    board_colour: tuple[int, int, int] = (150, 150, 150)
    board_end: float = 0.26
    board_top: float = 0.40
    board_thickness: float = 0.035
    board_bounce: float = 0.03
    takeoff_x: float = 0.17
    # None: the rings take a darker shade of the figure's (take-off) colour, so the take-off
    # kind also shows as large rings during the turns, and the figure stays distinct from them
    ring_colour: tuple[int, int, int] | None = None
    ring_shade: float = 0.7
    axis_colour: tuple[int, int, int] = (235, 235, 235)
    ring_centre: tuple[float, float] = (0.60, 0.42)
    ring_first_radius: float = 0.16
    ring_spacing: float = 0.08
    ring_width: float = 0.04
    axis_radius: float = 0.018
    body_length: float = 0.26
    body_width: float = 0.10
    head_radius: float = 0.08
    head_colour: tuple[int, int, int] = (255, 255, 255)
    splash_colour: tuple[int, int, int] = (240, 248, 255)
    # How visible each quality point lost is.
    lean_deg_per_point: float = 7.0
    wobble_per_point: float = 0.02
    entry_tilt_deg_per_point: float = 7.0
    splash_base: float = 0.03
    splash_width_per_point: float = 0.035
    # The splash's shape tells the entry kind: a tall column for head-first entries, a low
    # dome for feet-first ones; its width tells the quality.
    splash_height_ratio: float = 0.5
    head_first_splash_height_ratio: float = 1.3
    # Above 0: the fully grown head-first column rises at least this high, however clean the
    # entry, and in front of the figure (0: as tall as its width makes it, behind the figure).
    # A clean entry's splash is narrow: without a floor its column is a few pixels tall, and
    # the figure's trailing end in front of it hides it (docs/synth.md).
    head_first_splash_min_height: float = 0.18
    # Entry timing: where the leading end starts, when (fraction of the step) it meets the
    # water, and how long (fraction of the step) the splash takes to reach full size.
    entry_start_y: float = 0.50
    entry_contact: float = 0.65
    splash_rise: float = 0.3
    # Speed after contact as a fraction of the fall's: below 1 the trailing end stays above the
    # splash to the end of the clip (the head for feet-first entries, the coloured feet for
    # head-first ones), so the entry kind shows in the last frame too.
    sink_speed: float = 0.15

    def __post_init__(self) -> None:
        if self.size < 32 or self.size % 2:
            raise ConfigError(
                f"render.size must be an even number of pixels >= 32, got {self.size}"
            )
        if self.supersample < 1:
            raise ConfigError(f"render.supersample must be >= 1, got {self.supersample}")
        if not 0.0 < self.entry_contact < 1.0:
            raise ConfigError(f"render.entry_contact must be in (0, 1), got {self.entry_contact}")


@dataclass(frozen=True)
class ClipSpec:
    """Everything that decides a clip's pixels (and nothing else).

    ``step_frames`` are the frame counts of take-off, turns and entry; ``qualities`` their
    qualities in ``[0, quality_max]``; ``swing_side`` and ``tilt_sign`` (+1 or -1) choose the
    side of the swing off the axis and of the entry tilt, varying how a fault looks without
    changing its size.
    """

    colour: RGB
    turns: int
    head_first: bool
    step_frames: tuple[int, int, int]
    qualities: tuple[float, float, float]
    swing_side: int = 1
    tilt_sign: int = 1
    quality_max: float = 10.0

    @property
    def num_frames(self) -> int:
        """Frames in the clip."""
        return sum(self.step_frames)


class _Canvas:
    """One frame being drawn, in fractions of the side."""

    def __init__(self, config: RenderConfig) -> None:
        self.cfg = config
        self.px = config.size * config.supersample
        self.image = Image.new("RGB", (self.px, self.px), config.background)
        self.draw = ImageDraw.Draw(self.image)

    def _xy(self, point: tuple[float, float]) -> tuple[float, float]:
        return (point[0] * self.px, point[1] * self.px)

    def disc(self, centre: tuple[float, float], radius: float, colour: RGB) -> None:
        x, y = self._xy(centre)
        r = radius * self.px
        self.draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)

    def ring(self, centre: tuple[float, float], radius: float, width: float, colour: RGB) -> None:
        x, y = self._xy(centre)
        r = radius * self.px
        self.draw.ellipse((x - r, y - r, x + r, y + r), outline=colour,
                          width=max(1, round(width * self.px)))

    def rect(self, x0: float, y0: float, x1: float, y1: float, colour: RGB) -> None:
        self.draw.rectangle((x0 * self.px, y0 * self.px, x1 * self.px, y1 * self.px), fill=colour)

    def body(self, tail: tuple[float, float], head: tuple[float, float], colour: RGB) -> None:
        """A thick bar with round ends from ``tail`` to ``head``, and the white head."""
        cfg = self.cfg
        width = cfg.body_width
        self.draw.line((*self._xy(tail), *self._xy(head)), fill=colour,
                       width=max(1, round(width * self.px)))
        self.disc(tail, width / 2, colour)
        self.disc(head, cfg.head_radius, cfg.head_colour)

    def pixels(self) -> np.ndarray:
        image = self.image
        if self.cfg.supersample > 1:
            image = image.reduce(self.cfg.supersample)
        return np.asarray(image, dtype=np.uint8)


def _scene(config: RenderConfig, board_dip: float = 0.0) -> _Canvas:
    canvas = _Canvas(config)
    c = config
    canvas.rect(0.0, c.board_top + board_dip, c.board_end, c.board_top + board_dip
                + c.board_thickness, c.board_colour)
    return canvas


def _water(canvas: _Canvas) -> None:
    # Drawn after the figure, so the part under the surface disappears.
    canvas.rect(0.0, canvas.cfg.water_line, 1.0, 1.0, canvas.cfg.water_colour)


def _takeoff_frame(spec: ClipSpec, config: RenderConfig, t: float) -> np.ndarray:
    lost = spec.quality_max - spec.qualities[0]
    lean = math.radians(lost * config.lean_deg_per_point)
    dip = config.board_bounce * math.sin(2.0 * math.pi * t) ** 2
    canvas = _scene(config, dip)
    feet = (config.takeoff_x, config.board_top + dip)
    head = (feet[0] + config.body_length * math.sin(lean),
            feet[1] - config.body_length * math.cos(lean))
    canvas.body(feet, head, spec.colour)
    _water(canvas)
    return canvas.pixels()


def ring_colour(spec: ClipSpec, config: RenderConfig) -> RGB:
    """The rings' colour: ``config.ring_colour``, or the take-off colour's shade."""
    if config.ring_colour is not None:
        return config.ring_colour
    return tuple(round(c * config.ring_shade) for c in spec.colour)


def _turns_frame(spec: ClipSpec, config: RenderConfig, t: float) -> np.ndarray:
    canvas = _scene(config)
    cx, cy = config.ring_centre
    for k in range(spec.turns):
        canvas.ring((cx, cy), config.ring_first_radius + k * config.ring_spacing,
                    config.ring_width, ring_colour(spec, config))
    canvas.disc((cx, cy), config.axis_radius, config.axis_colour)
    lost = spec.quality_max - spec.qualities[1]
    angle = 2.0 * math.pi * spec.turns * t
    swing = spec.swing_side * lost * config.wobble_per_point
    half = config.body_length / 2
    dx, dy = half * math.sin(angle), -half * math.cos(angle)
    # The body is pushed sideways off the axis (perpendicular to itself), so in every frame the
    # gap between the axis dot and the body's line is the full swing, whatever the angle.
    centre = (cx + swing * math.cos(angle), cy + swing * math.sin(angle))
    canvas.body((centre[0] - dx, centre[1] - dy), (centre[0] + dx, centre[1] + dy), spec.colour)
    _water(canvas)
    return canvas.pixels()


def _entry_frame(spec: ClipSpec, config: RenderConfig, t: float) -> np.ndarray:
    canvas = _scene(config)
    lost = spec.quality_max - spec.qualities[2]
    tilt = spec.tilt_sign * math.radians(lost * config.entry_tilt_deg_per_point)
    speed = (config.water_line - config.entry_start_y) / config.entry_contact
    x = config.ring_centre[0]
    depth = speed * min(t, config.entry_contact)
    depth += speed * config.sink_speed * max(0.0, t - config.entry_contact)
    lead = (x, config.entry_start_y + depth)
    # The body points down from its trailing end to its leading end, tilted by ``tilt``.
    trail = (lead[0] - config.body_length * math.sin(tilt),
             lead[1] - config.body_length * math.cos(tilt))

    def figure() -> None:
        if spec.head_first:
            canvas.body(trail, lead, spec.colour)
        else:
            canvas.body(lead, trail, spec.colour)

    figure()
    _water(canvas)
    if t >= config.entry_contact:
        grown = min(1.0, (t - config.entry_contact) / config.splash_rise + 0.34)
        width = (config.splash_base + lost * config.splash_width_per_point) * grown
        ratio = config.head_first_splash_height_ratio if spec.head_first else config.splash_height_ratio
        height = width * ratio
        if spec.head_first:
            height = max(height, config.head_first_splash_min_height * grown)
        column = spec.head_first and config.head_first_splash_min_height > 0  # drawn in front
        canvas.draw.ellipse(
            ((x - width) * canvas.px, (config.water_line - height) * canvas.px,
             (x + width) * canvas.px, (config.water_line + height / 4) * canvas.px),
            fill=config.splash_colour,
        )
        if config.sink_speed < 1.0:
            # the part still above the water is in front of the splash (which then rests on
            # the water line), or behind a head-first column
            if not column:
                figure()
            _water(canvas)
    return canvas.pixels()


_STEP_DRAWERS = (_takeoff_frame, _turns_frame, _entry_frame)


def render_clip(spec: ClipSpec, config: RenderConfig | None = None) -> np.ndarray:
    """The clip's frames as a ``(T, H, W, 3)`` uint8 RGB array (pure: same spec, same pixels)."""
    config = config or RenderConfig()
    frames = []
    for drawer, count in zip(_STEP_DRAWERS, spec.step_frames):
        if count < 1:
            raise ConfigError(f"every step needs at least one frame, got {spec.step_frames}")
        for k in range(count):
            # Frame centres, so a step's first and last frames sit inside it symmetrically.
            frames.append(drawer(spec, config, (k + 0.5) / count))
    return np.stack(frames)


@dataclass
class VideoConfig:
    """How clips are encoded."""

    codecs: tuple[str, ...] = ("libx264", "h264", "mpeg4")  # the first one available is used
    crf: int = 8  # x264 constant rate factor: 0 lossless, 8 visually lossless at these sizes
    preset: str = "veryfast"
    bit_rate: int = 4_000_000  # for codecs without a CRF (mpeg4): high enough to keep the cues
    # The newest x264 instruction set to use ("auto": all the CPU has). On our 2-core VM,
    # under CPU contention, x264's AVX-512 code now and then encoded identical yuv frames to
    # different bytes (single-threaded; the frames and the rgb->yuv conversion stayed
    # identical), while capped at AVX2 it never did; AVX-512 is no faster at these sizes.
    x264_asm: str = "AVX2"

    def __post_init__(self) -> None:
        if self.x264_asm != "auto" and self.x264_asm not in _X264_ASM_FEATURES:
            raise ConfigError(
                f"video.x264_asm must be 'auto' or one of {sorted(_X264_ASM_FEATURES)}, "
                f"got {self.x264_asm!r}"
            )


# x264's names for its instruction-set levels -> NumPy's name of the same CPU feature, which
# says whether this CPU has it: x264 trusts a forced level, so one the CPU lacks would crash.
# Lower levels (SSE2, none) are left out: they fall back to code that encodes differently.
_X264_ASM_FEATURES = {"SSSE3": "SSSE3", "SSE4.2": "SSE42", "AVX": "AVX", "AVX2": "AVX2"}


def _x264_asm_option(level: str) -> str | None:
    """The x264 ``asm=`` setting for ``level``, or None to keep x264's own CPU detection."""
    if level == "auto":
        return None
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # another NumPy layout: cannot tell what the CPU has, so do not force
        return None
    return f"asm={level}" if features.get(_X264_ASM_FEATURES[level]) else None


def pick_codec(codecs: Sequence[str]) -> str:
    """The first encoder in ``codecs`` that this PyAV's FFmpeg provides."""
    for name in codecs:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001 - PyAV raises several types for a missing codec
            continue
        return name
    raise VideoError(f"none of the video encoders {list(codecs)} is available in this PyAV build")


def write_video(
    frames: np.ndarray, path: str | Path, fps: float, codec: str, config: VideoConfig | None = None
) -> None:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames to an mp4 at ``path`` (written atomically).

    Encoding runs on one thread so that the bytes depend only on the frames; the generator
    gets its speed from encoding many clips in parallel instead.
    """
    config = config or VideoConfig()
    rate = Fraction(fps).limit_denominator(1001)
    try:
        with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = 1
            if codec in ("libx264", "h264"):
                # threads=1 here as well: x264 reads its own thread settings from the options
                options = {"crf": str(config.crf), "preset": config.preset, "threads": "1"}
                if codec == "libx264" and (asm := _x264_asm_option(config.x264_asm)):
                    options["x264-params"] = asm
                stream.options = options
            else:
                stream.bit_rate = config.bit_rate
            for index, array in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
                frame.pts = index
                frame.time_base = 1 / rate
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    except (OSError, av.FFmpegError) as exc:
        raise VideoError(f"{path}: cannot write the video ({exc})") from None
