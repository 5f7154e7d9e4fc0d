"""Tiny generated videos and frame folders for the video tests (written into tmp folders)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

# name -> (encoder, container format or None for "from the extension", pixel format, options)
CODEC_CASES: dict[str, tuple[str, str | None, str, dict[str, str]]] = {
    "h264.mp4": ("libx264", None, "yuv420p", {}),
    "h264.mkv": ("libx264", None, "yuv420p", {}),
    "h264.mov": ("libx264", None, "yuv420p", {}),
    "h264_gop5.mp4": ("libx264", None, "yuv420p", {"g": "5", "bf": "3"}),
    "h264_opengop.mp4": ("libx264", None, "yuv420p", {"x264-params": "keyint=8:open-gop=1:bframes=3"}),
    "h264.ts": ("libx264", "mpegts", "yuv420p", {}),
    "mjpeg.avi": ("mjpeg", None, "yuvj420p", {}),
    "mpeg4.avi": ("mpeg4", None, "yuv420p", {"bf": "2", "g": "10"}),
    "mpeg4.mp4": ("mpeg4", None, "yuv420p", {"bf": "2", "g": "10"}),
    "vp9.webm": ("libvpx-vp9", None, "yuv420p", {}),
    "anim.gif": ("gif", None, "rgb8", {}),
}


def pattern(i: int, height: int, width: int) -> np.ndarray:
    """Frame ``i`` of a moving test pattern: a gradient, a frame-dependent tint, a moving square."""
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = (i * 8) % 256
    img[..., 1] = (np.arange(width)[None, :] * 255 // max(1, width - 1)).astype(np.uint8)
    img[..., 2] = (np.arange(height)[:, None] * 255 // max(1, height - 1)).astype(np.uint8)
    y, x = (i * 3) % max(1, height - 8), (i * 5) % max(1, width - 8)
    img[y:y + 8, x:x + 8] = 255
    return img


def encoder_available(name: str) -> bool:
    """Whether this PyAV build can encode with ``name``."""
    return name in av.codecs_available


def make_video(
    path: Path,
    codec: str = "libx264",
    *,
    fmt: str | None = None,
    n: int = 30,
    width: int = 64,
    height: int = 48,
    fps: int = 30,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    frame_ms: list[int] | None = None,
) -> Path:
    """Encode ``n`` pattern frames; ``frame_ms`` gives each frame's duration (variable rate)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), "w", format=fmt)
    stream = container.add_stream(codec, rate=fps, options=options or {})
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    if frame_ms is not None:
        stream.codec_context.time_base = Fraction(1, 1000)
    t = 0
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(pattern(i, height, width), format="rgb24")
        if frame_ms is not None:
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            t += frame_ms[i % len(frame_ms)]
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def make_case(folder: Path, name: str, n: int = 30) -> Path:
    """The clip of :data:`CODEC_CASES` ``name`` in ``folder``."""
    codec, fmt, pix_fmt, options = CODEC_CASES[name]
    return make_video(folder / name, codec, fmt=fmt, n=n, pix_fmt=pix_fmt, options=options)


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame, decoded front to back by plain PyAV (the reference)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def make_frames(
    folder: Path,
    indices: range | list[int],
    template: str = "{:05d}.jpg",
    height: int = 48,
    width: int = 64,
) -> Path:
    """A frame folder holding ``template.format(i)`` for every ``i`` (JPEG or PNG by suffix)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in indices:
        Image.fromarray(pattern(i, height, width)).save(folder / template.format(i))
    return folder
