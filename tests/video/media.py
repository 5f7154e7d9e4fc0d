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


def make_black_video(path: Path, width: int, height: int, n: int = 2) -> Path:
    """``n`` black H.264 frames of ``width x height``: a file of a few hundred KB that declares
    frames of any size (the memory amplification of project issue 13)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "ultrafast", "tune": "zerolatency"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        frame = av.VideoFrame(width, height, "yuv420p")
        for i, plane in enumerate(frame.planes):
            np.frombuffer(plane, np.uint8)[:] = 16 if i == 0 else 128
        for i in range(n):
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


class OpenedContainers:
    """Every ``av.open`` of a test, with its options, and the frames decoded or packets demuxed
    through the containers it returned (install with :meth:`install`)."""

    def __init__(self) -> None:
        self.options: list[dict[str, str]] = []
        self.calls: list[str] = []

    def install(self, monkeypatch: object) -> OpenedContainers:
        real_open = av.open

        def recording_open(file: object, *args: object, **kwargs: object) -> object:
            self.options.append(dict(kwargs.get("options") or {}))  # type: ignore[call-overload]
            return _Counted(real_open(file, *args, **kwargs), self.calls)

        monkeypatch.setattr(av, "open", recording_open)  # type: ignore[attr-defined]
        return self

    @property
    def header_only(self) -> bool:
        """Whether every open kept FFmpeg's stream probe from decoding (``skip_frame=all``)."""
        return all(o.get("skip_frame") == "all" for o in self.options)


class _Counted:
    def __init__(self, container: object, calls: list[str]) -> None:
        self._container = container
        self._calls = calls

    def __getattr__(self, name: str) -> object:
        return getattr(self._container, name)

    def decode(self, *args: object, **kwargs: object) -> object:
        self._calls.append("decode")
        return self._container.decode(*args, **kwargs)  # type: ignore[attr-defined]

    def demux(self, *args: object, **kwargs: object) -> object:
        self._calls.append("demux")
        return self._container.demux(*args, **kwargs)  # type: ignore[attr-defined]

    def __enter__(self) -> _Counted:
        return self

    def __exit__(self, *exc: object) -> None:
        self._container.close()  # type: ignore[attr-defined]
