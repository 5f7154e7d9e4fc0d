"""Reading the frames of an action window from a video file or a frame folder.

Video files are opened by PyAV (FFmpeg); the container format is found from the file's bytes,
never from its extension. Only the frames that were asked for are decoded, streaming:

1. An index pass demuxes the stream's packets without decoding them (cheap: no pixels) and
   records each packet's timestamp, whether it is a keyframe and whether it is *droppable*
   (an H.264 non-reference picture, or a packet the demuxer marks disposable). A frame's index
   is the rank of its presentation timestamp among all frames, so counting is exact for any
   frame rate, constant or variable. Files whose packets lack timestamps are counted by
   decoding them once (the same count transformers' and decord's readers use).
2. The wanted frames are grouped into runs that each start at the last keyframe before them;
   the reader seeks to a run's keyframe when it is far ahead (never decoding what lies between
   runs), decodes every packet of the run except droppable ones that were not asked for, and
   converts to RGB and resizes only the wanted frames, in worker threads, while the decoder
   goes on. Nothing holds more than a few decoded frames at a time.
3. A wanted frame that this plan did not produce (an unusual stream) is decoded again by
   reading the file from the start; if it is still missing the file is truncated or corrupt and
   :class:`VideoError` says which frames are missing.

decord is an optional second decoder (``decoder="decord"``); ``auto`` picks PyAV: decord 0.6
returns wrong frames on some streams (MPEG-4 with B-frames, open-GOP H.264; see the tests) and
was slower in every measurement in docs/video.md. Frame folders hold one image per frame, named by
``VideoRef.frame_template`` from the absolute frame index (FineDiving ``{:05d}.jpg``, MTL-AQA
``{:06d}.jpg``), or, without a template, the folder's images in natural order.

Every problem a user's file can cause (missing, empty, truncated, not a video, a window past its
end, a missing or unreadable image, absurd dimensions) raises :class:`VideoError` naming the file.
"""

from __future__ import annotations

import functools
import os
import re
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from hieroaction.data.records import Record, VideoRef
from hieroaction.errors import VideoError
from hieroaction.video.resize import check_frame_size, resize_frame, target_size
from hieroaction.video.sample import (
    MAX_SOURCE_SIDE,
    Clip,
    FpsSource,
    FrameConfig,
    sample_indices,
    timestamps_for,
)

Transform = Callable[[np.ndarray], np.ndarray]

# Image files a frame folder may hold (when no frame_template names them).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Seeking costs a container lookup and a decoder flush; skipping a few packets by demuxing them
# (no decoding) is cheaper, so the reader only seeks across gaps longer than this.
_SEEK_GAP_PACKETS = 48

# Source indexes kept per process, so several windows of one long video share one index pass.
_INDEX_CACHE_SIZE = 32


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


# ---------------------------------------------------------------------------------------------
# Opening a source
# ---------------------------------------------------------------------------------------------


def resolve_source(value: str, base_dir: str | Path | None = None) -> Path:
    """A record's video path or frame folder as a path (relative to ``base_dir`` when given)."""
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def decord_available() -> bool:
    """Whether the optional decord decoder imports here."""
    try:
        import decord  # noqa: F401
    except Exception:  # decord's native library can fail to load with errors other than ImportError
        return False
    return True


def open_reader(
    ref: VideoRef,
    *,
    decoder: str = "auto",
    default_fps: float = 25.0,
    max_source_side: int = MAX_SOURCE_SIDE,
    base_dir: str | Path | None = None,
    threads: int = 0,
) -> FrameReader:
    """A reader for a record's video file (``ref.path``) or frame folder (``ref.frames_dir``).

    Args:
        ref: the record's video reference.
        decoder: ``auto`` (PyAV), ``pyav`` or ``decord`` for video files.
        default_fps: fps when neither ``ref.fps`` nor the container gives one.
        max_source_side: sides beyond this are an error.
        base_dir: folder that relative paths are relative to (the records file's folder).
        threads: decoder and worker threads (0: as many as the machine has, up to a few).
    """
    if ref.path:
        path = resolve_source(ref.path, base_dir)
        if decoder == "decord":
            return DecordReader(path, ref.fps, default_fps, max_source_side, threads)
        if decoder not in ("auto", "pyav"):
            raise VideoError(f"unknown decoder {decoder!r}; expected 'auto', 'pyav' or 'decord'")
        return PyAVReader(path, ref.fps, default_fps, max_source_side, threads)
    if ref.frames_dir:
        folder = resolve_source(ref.frames_dir, base_dir)
        return FrameFolderReader(
            folder, ref.frame_template, ref.start_frame, ref.end_frame, ref.fps, default_fps,
            max_source_side, threads,
        )
    raise VideoError("the record names no video: set video.path or video.frames_dir")


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


def _check_video_file(path: Path) -> int:
    """Raise :class:`VideoError` for a path that cannot be a video file; returns its size."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise VideoError(f"{path}: no such video file") from None
    except OSError as exc:
        raise VideoError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if path.is_dir():
        raise VideoError(f"{path}: is a folder, not a video file (use video.frames_dir for frames)")
    if st.st_size == 0:
        raise VideoError(f"{path}: the video file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{path}: cannot be read (permission denied)")
    return st.st_size


# ---------------------------------------------------------------------------------------------
# PyAV
# ---------------------------------------------------------------------------------------------


def _av_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return text.rstrip(".").split(": '")[0]


def _open_container(path: Path) -> Any:
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise VideoError(
            f"{path}: not a video FFmpeg can read ({_av_reason(exc)}; "
            "the file is corrupt, truncated or not a video)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise VideoError(f"{path}: cannot be opened as a video ({_av_reason(exc)})") from None


def _probe(container: Any, path: Path, max_side: int) -> tuple[int, int, str, float | None]:
    """``(height, width, codec, container fps)`` of the first video stream, checked."""
    if not container.streams.video:
        raise VideoError(f"{path}: the file has no video stream")
    stream = container.streams.video[0]
    height, width = stream.codec_context.height, stream.codec_context.width
    check_frame_size(height, width, max_side=max_side, where=str(path))
    rate = _fraction_to_float(stream.average_rate or stream.guessed_rate)
    return height, width, stream.codec_context.name, rate


def _h264_nal_length_size(extradata: bytes | None) -> int | None:
    """Length-prefix size of AVC-format (mp4/mkv) H.264 packets, None for Annex B streams."""
    if extradata and len(extradata) >= 7 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    return None


def _h264_nonref(data: memoryview, length_size: int | None) -> bool:
    """True when every slice NAL unit of an H.264 access unit has ``nal_ref_idc == 0``.

    Such a picture is never a reference for another, so skipping it leaves every other
    decoded frame bit-identical (FFmpeg's own ``skip_frame=nonref`` relies on the same rule).
    """
    saw_slice = False
    n = len(data)
    if length_size is not None:
        i = 0
        while i + length_size < n:
            size = int.from_bytes(data[i:i + length_size], "big")
            header = data[i + length_size]
            if 1 <= header & 0x1F <= 5:
                if header & 0x60:
                    return False
                saw_slice = True
            i += length_size + size
        return saw_slice
    raw = bytes(data)
    for match in re.finditer(b"\x00\x00\x01", raw):
        j = match.end()
        if j < n:
            header = raw[j]
            if 1 <= header & 0x1F <= 5:
                if header & 0x60:
                    return False
                saw_slice = True
    return saw_slice


@dataclass(frozen=True)
class _PacketIndex:
    """The packets of a video stream in decode order (no pixels)."""

    pts: np.ndarray  # presentation timestamp of each packet
    key: np.ndarray  # keyframe flag
    droppable: np.ndarray  # decodable-to-skip: no other frame references it
    display: np.ndarray  # frame index of each packet (-1: a discarded packet, no frame)
    position: np.ndarray  # decode position of each frame index
    exact: bool  # False: timestamps are missing or repeated; count by decoding instead

    @property
    def num_frames(self) -> int:
        return int(self.position.shape[0])


def _build_index(path: Path, container: Any) -> _PacketIndex:
    """Index the video stream of ``container`` (left at its end; the caller closes it)."""
    import av

    try:
        stream = container.streams.video[0]
        length_size: int | None = None
        is_h264 = stream.codec_context.name == "h264"
        if is_h264:
            length_size = _h264_nal_length_size(stream.codec_context.extradata)
        pts: list[int] = []
        key: list[bool] = []
        drop: list[bool] = []
        discard: list[bool] = []
        exact = True
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None:
                exact = False
            pts.append(packet.pts if packet.pts is not None else -1)
            key.append(packet.is_keyframe)
            discard.append(packet.is_discard)
            droppable = packet.is_disposable
            if is_h264 and not droppable and not packet.is_keyframe:
                droppable = _h264_nonref(memoryview(packet), length_size)
            drop.append(droppable)
        declared = _declared_seconds(container, stream)
        time_base = stream.time_base
        rate = _fraction_to_float(stream.average_rate or stream.guessed_rate)
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: the file is corrupt or truncated ({_av_reason(exc)})") from None
    if exact and pts and declared and time_base and rate:
        # A file cut short still demuxes, as a shorter video; its header's duration tells.
        shown_pts = [p for p, d in zip(pts, discard) if not d] or pts
        covered = float((max(shown_pts) - min(shown_pts)) * time_base) + 1 / rate
        if covered < declared - max(3 / rate, 0.02 * declared):
            raise VideoError(
                f"{path}: the file is truncated (its header says {declared:.2f} s of video, "
                f"but the frames stop at {covered:.2f} s)"
            )
    pts_arr = np.asarray(pts, dtype=np.int64)
    discard_arr = np.asarray(discard, dtype=bool)
    shown = np.flatnonzero(~discard_arr)
    if exact and len(np.unique(pts_arr)) != len(pts_arr):
        exact = False
    display = np.full(len(pts_arr), -1, dtype=np.int64)
    position = shown[np.argsort(pts_arr[shown], kind="stable")]
    display[position] = np.arange(len(position))
    return _PacketIndex(
        pts=pts_arr,
        key=np.asarray(key, dtype=bool),
        droppable=np.asarray(drop, dtype=bool),
        display=display,
        position=position,
        exact=exact,
    )


def _declared_seconds(container: Any, stream: Any) -> float | None:
    """The video's duration as its header states it, when the header states one."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    # The container's duration covers every stream: only trust it for a video-only file.
    if container.duration and len(container.streams) == 1:
        return container.duration / 1_000_000
    return None


# Per process, (resolved path, size, mtime_ns) -> the file's index, and the decoded frame count
# of files without usable timestamps. Size and modification time are in the key so that a
# rewritten file is indexed again.
_SourceKey = tuple[str, int, int]
_INDEXES: OrderedDict[_SourceKey, _PacketIndex] = OrderedDict()
_COUNTS: OrderedDict[_SourceKey, int] = OrderedDict()


def _remember(table: OrderedDict[_SourceKey, Any], key: _SourceKey, value: Any) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > _INDEX_CACHE_SIZE:
        table.popitem(last=False)


def clear_index_cache() -> None:
    """Forget every video index kept by this process (benchmarks time cold reads with it)."""
    _INDEXES.clear()
    _COUNTS.clear()


def _count_by_decoding(path: Path) -> int:
    import av

    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        count = 0
        for _ in container.decode(stream):
            count += 1
        return count
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: the file is corrupt or truncated ({_av_reason(exc)})") from None
    finally:
        container.close()


class _Converter:
    """Turns decoded frames into (transformed) RGB arrays in worker threads, a bounded few at
    a time, so decoding goes on while earlier frames are converted and resized."""

    def __init__(self, wanted: Sequence[int], transform: Transform | None, workers: int) -> None:
        self.wanted = set(wanted)
        self.transform = transform
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frames")
        self.limit = 2 * workers
        self.pending: deque[Future[None]] = deque()
        self.results: dict[int, np.ndarray] = {}
        self.seen: set[int] = set()

    def _work(self, frame: Any, index: int) -> None:
        array = frame.to_ndarray(format="rgb24")
        if self.transform is not None:
            array = self.transform(array)
        self.results[index] = array

    def submit(self, frame: Any, index: int) -> None:
        """Convert ``frame`` if it is a wanted frame not converted yet."""
        if index not in self.wanted or index in self.seen:
            return
        self.seen.add(index)
        while len(self.pending) >= self.limit:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self._work, frame, index))

    def finish(self) -> dict[int, np.ndarray]:
        """Wait for every conversion; the arrays by frame index."""
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True)
        return self.results


class PyAVReader(FrameReader):
    """Decodes chosen frames of a video file with PyAV (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        record_fps: float | None = None,
        default_fps: float = 25.0,
        max_source_side: int = MAX_SOURCE_SIDE,
        threads: int = 0,
    ) -> None:
        self.path = path
        self.threads = threads
        size = _check_video_file(path)
        # One container serves the probe, the index pass and the first read: opening a file
        # probes its streams, which costs as much as decoding a few frames.
        self._container: Any = _open_container(path)
        try:
            height, width, codec, container_fps = _probe(self._container, path, max_source_side)
            key = (str(path.resolve()), size, path.stat().st_mtime_ns)
            index = _INDEXES.get(key)
            if index is None:
                index = _build_index(path, self._container)
            _remember(_INDEXES, key, index)
            self._index = index
            count = index.num_frames
            if not index.exact:
                counted = _COUNTS.get(key)
                count = _count_by_decoding(path) if counted is None else counted
                _remember(_COUNTS, key, count)
        except BaseException:
            self.close()
            raise
        if count == 0:
            self.close()
            raise VideoError(f"{path}: the video stream holds no frames")
        fps, fps_source = _pick_fps(record_fps, container_fps, default_fps)
        self.info = SourceInfo(
            source=str(path), kind="video", first_frame=0, num_frames=count, fps=fps,
            fps_source=fps_source, height=height, width=width, codec=codec, decoder="pyav",
        )
        # What the last read() did: packets sent to the decoder, seeks, and whether it had to
        # fall back to decoding from the start (for tests and benchmarks).
        self.stats: dict[str, int | bool] = {}

    def close(self) -> None:
        """Close the file."""
        if self._container is not None:
            self._container.close()
            self._container = None

    def read(self, indices: Sequence[int], transform: Transform | None = None) -> list[np.ndarray]:
        wanted = sorted({int(i) for i in indices})
        if not wanted:
            return []
        self.window(wanted[0], wanted[-1])
        self.stats = {"decoded_packets": 0, "seeks": 0, "fallback": False}
        got: dict[int, np.ndarray] = {}
        if self._index.exact:
            got = self._decode(wanted, transform, sparse=True)
        missing = [i for i in wanted if i not in got]
        if missing:
            self.stats["fallback"] = True
            # Either the file has no usable timestamps, or the sparse plan did not produce a
            # frame (an unusual stream): decode from the start, which works for any intact file.
            got.update(self._decode(missing, transform, sparse=False))
            missing = [i for i in wanted if i not in got]
        if missing:
            shown = ", ".join(str(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise VideoError(
                f"{self.path}: frames {shown} could not be decoded (the file is truncated or corrupt)"
            )
        return [got[int(i)] for i in indices]

    def _decode(
        self, wanted: list[int], transform: Transform | None, sparse: bool
    ) -> dict[int, np.ndarray]:
        import av

        converter = _Converter(wanted, transform, _worker_count(self.threads))
        try:
            if sparse:
                self._decode_sparse(wanted, converter)
            else:
                self._decode_sequential(wanted, converter)
        except av.FFmpegError as exc:
            converter.finish()
            raise VideoError(
                f"{self.path}: the file is corrupt or truncated ({_av_reason(exc)})"
            ) from None
        except BaseException:
            converter.finish()
            raise
        return converter.finish()

    def _open_stream(self, fresh: bool = False) -> tuple[Any, Any]:
        """The reader's container (opened again if closed, or ``fresh``) and video stream."""
        if fresh or self._container is None:
            self.close()
            self._container = _open_container(self.path)
        container = self._container
        stream = container.streams.video[0]
        if not stream.codec_context.is_open:
            # Frame threading decodes several frames at once; slice threading (PyAV's
            # default) does nothing for the usual one-slice-per-frame H.264.
            stream.thread_type = "AUTO"
            stream.thread_count = self.threads
        return container, stream

    def _decode_sequential(self, wanted: list[int], converter: _Converter) -> None:
        container, stream = self._open_stream(fresh=True)
        index = self._index
        by_pts = (
            {int(index.pts[p]): i for i, p in enumerate(index.position)} if index.exact else None
        )
        last = wanted[-1]
        try:
            for count, frame in enumerate(container.decode(stream)):
                if by_pts is None:
                    converter.submit(frame, count)
                    if count >= last:
                        break
                elif frame.pts is not None and frame.pts in by_pts:
                    converter.submit(frame, by_pts[frame.pts])
        finally:
            self.close()

    def _plan(self, wanted: list[int]) -> list[tuple[int, int]]:
        """Runs of packets (decode positions, inclusive) that produce the wanted frames."""
        index = self._index
        keys = np.flatnonzero(index.key)
        runs: list[tuple[int, int]] = []
        for d in sorted(int(index.position[i]) for i in wanted):
            # The last keyframe at or before this packet that is not shown after it: frames
            # shown before their keyframe (open-GOP leading pictures) need the previous one.
            k = 0
            for cand in keys[: np.searchsorted(keys, d, side="right")][::-1]:
                if index.pts[cand] <= index.pts[d]:
                    k = int(cand)
                    break
            if runs and k <= runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], max(runs[-1][1], d))
            else:
                runs.append((k, d))
        return runs

    def _decode_sparse(self, wanted: list[int], converter: _Converter) -> None:
        index = self._index
        pos_of_pts = {int(p): i for i, p in enumerate(index.pts)}
        wanted_pos = {int(index.position[i]) for i in wanted}
        display = index.display

        def take(frame: Any) -> None:
            pos = pos_of_pts.get(frame.pts) if frame.pts is not None else None
            if pos is not None and display[pos] >= 0:
                converter.submit(frame, int(display[pos]))

        container, stream = self._open_stream()
        # The container may be anywhere (at its end after the index pass, or after an earlier
        # read), so the first run always seeks.
        packets: Iterator[tuple[int, Any]] | None = None
        current = -1
        for start, end in self._plan(wanted):
            if packets is None or start - current > _SEEK_GAP_PACKETS:
                packets = _seek_to(container, stream, pos_of_pts, int(index.pts[start]), start)
                if packets is None:
                    return  # an unseekable file: read() decodes the rest from the start
                self.stats["seeks"] += 1
            for pos, packet in packets:
                current = pos
                if pos < start:
                    continue
                if pos in wanted_pos or not index.droppable[pos]:
                    self.stats["decoded_packets"] += 1
                    for frame in stream.decode(packet):
                        take(frame)
                if pos >= end:
                    break
            # Drain the decoder so the run's last frames come out, and reset it for a run that
            # starts at a later keyframe.
            for frame in stream.decode(None):
                take(frame)
            stream.codec_context.flush_buffers()


def _positions(container: Any, stream: Any, pos_of_pts: dict[int, int]) -> Iterator[tuple[int, Any]]:
    """Demuxed packets with their decode position in the index."""
    for packet in container.demux(stream):
        if packet.size == 0 or packet.pts is None:
            continue
        pos = pos_of_pts.get(packet.pts)
        if pos is not None:
            yield pos, packet


def _seek_to(
    container: Any, stream: Any, pos_of_pts: dict[int, int], pts: int, start: int
) -> Iterator[tuple[int, Any]] | None:
    """Packets from a keyframe at or before decode position ``start`` (timestamp ``pts``);
    None when the container cannot seek there."""
    import av

    for target in (pts, None):
        try:
            if target is None:
                # The container could not land early enough: read from the beginning.
                container.seek(0, backward=True, any_frame=False)
            else:
                container.seek(target, stream=stream, backward=True, any_frame=False)
        except av.FFmpegError:
            continue
        packets = _positions(container, stream, pos_of_pts)
        first = next(packets, None)
        if first is not None and first[0] <= start:
            return _chain_first(first, packets)
    return None


def _chain_first(first: tuple[int, Any], rest: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    yield first
    yield from rest


def _fraction_to_float(value: Fraction | float | None) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ZeroDivisionError):
        return None
    return out if np.isfinite(out) and out > 0 else None


# ---------------------------------------------------------------------------------------------
# decord (optional)
# ---------------------------------------------------------------------------------------------


class DecordReader(FrameReader):
    """Chosen frames of a video file through decord (optional; ``decoder="decord"``).

    The stream's size and fps come from a PyAV probe (no decoding); the frame count is
    decord's own, which a test checks against PyAV's on every codec.
    """

    # decord returns a batch as one array: keep batches small so memory stays bounded.
    _BATCH = 8

    def __init__(
        self,
        path: Path,
        record_fps: float | None = None,
        default_fps: float = 25.0,
        max_source_side: int = MAX_SOURCE_SIDE,
        threads: int = 0,
    ) -> None:
        if not decord_available():
            raise VideoError(
                f"{path}: decoder 'decord' was asked for but decord is not installed "
                "(pip install decord, or use decoder 'pyav')"
            )
        import decord

        self.path = path
        self.threads = threads
        _check_video_file(path)
        container = _open_container(path)
        try:
            height, width, codec, _ = _probe(container, path, max_source_side)
        finally:
            container.close()
        try:
            self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=threads)
            count = len(self._reader)
            container_fps = _fraction_to_float(self._reader.get_avg_fps())
        except decord.DECORDError as exc:
            raise VideoError(f"{path}: decord cannot read the video ({str(exc)[:120]})") from None
        if count == 0:
            raise VideoError(f"{path}: the video stream holds no frames")
        fps, fps_source = _pick_fps(record_fps, container_fps, default_fps)
        self.info = SourceInfo(
            source=str(path), kind="video", first_frame=0, num_frames=count, fps=fps,
            fps_source=fps_source, height=height, width=width, codec=codec, decoder="decord",
        )

    def read(self, indices: Sequence[int], transform: Transform | None = None) -> list[np.ndarray]:
        import decord

        wanted = sorted({int(i) for i in indices})
        if not wanted:
            return []
        self.window(wanted[0], wanted[-1])
        got: dict[int, np.ndarray] = {}
        with ThreadPoolExecutor(max_workers=_worker_count(self.threads)) as pool:
            for lo in range(0, len(wanted), self._BATCH):
                chunk = wanted[lo:lo + self._BATCH]
                try:
                    batch = self._reader.get_batch(chunk).asnumpy()
                except decord.DECORDError as exc:
                    raise VideoError(
                        f"{self.path}: decord cannot decode frames {chunk[0]}..{chunk[-1]} "
                        f"({str(exc)[:120]})"
                    ) from None
                frames = list(batch)
                if transform is not None:
                    frames = list(pool.map(transform, frames))
                got.update(zip(chunk, frames))
        return [got[int(i)] for i in indices]

    def close(self) -> None:
        self._reader = None


# ---------------------------------------------------------------------------------------------
# Frame folders
# ---------------------------------------------------------------------------------------------


def _natural_key(name: str) -> list[Any]:
    # "frame_2.jpg" before "frame_10.jpg": digit runs compare as numbers.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class FrameFolderReader(FrameReader):
    """Frames stored as one image per frame in a folder.

    With ``template`` (e.g. ``"{:05d}.jpg"``) frame ``i`` is ``folder / template.format(i)``;
    without it the folder's images in natural name order are frames ``0, 1, 2, ...``.
    """

    def __init__(
        self,
        folder: Path,
        template: str | None = None,
        start_frame: int | None = None,
        end_frame: int | None = None,
        record_fps: float | None = None,
        default_fps: float = 25.0,
        max_source_side: int = MAX_SOURCE_SIDE,
        threads: int = 0,
    ) -> None:
        self.folder = folder
        self.template = template
        self.threads = threads
        self.max_source_side = max_source_side
        if not folder.exists():
            raise VideoError(f"{folder}: no such frame folder")
        if not folder.is_dir():
            raise VideoError(f"{folder}: is a file, not a frame folder (use video.path for videos)")
        self._names: list[str] | None = None
        if template is not None:
            try:
                template.format(0)
            except (IndexError, KeyError, ValueError) as exc:
                raise VideoError(
                    f"{folder}: frame_template {template!r} cannot name a frame from its index ({exc})"
                ) from None
            if start_frame is None or end_frame is None:
                present = self._template_indices()
                if not present:
                    raise VideoError(f"{folder}: no frame images named like {template!r}")
                first = present[0] if start_frame is None else start_frame
                last = present[-1]
                if end_frame is None:
                    # The window runs to the end of the consecutive frames from its start.
                    have = set(present)
                    last = first
                    while last + 1 in have:
                        last += 1
                num_frames = last + 1
                first_frame = min(first, present[0])
            else:
                num_frames = end_frame + 1
                first_frame = start_frame
        else:
            self._names = self._listing()
            if not self._names:
                raise VideoError(
                    f"{folder}: the frame folder holds no images ({', '.join(IMAGE_EXTENSIONS)})"
                )
            num_frames = len(self._names)
            first_frame = 0
        probe = start_frame if start_frame is not None else first_frame
        if probe >= num_frames:
            probe = first_frame
        height, width = self._probe_size(probe)
        check_frame_size(height, width, max_side=max_source_side, where=str(self.frame_path(probe)))
        fps, fps_source = _pick_fps(record_fps, None, default_fps)
        self.info = SourceInfo(
            source=str(folder), kind="frames", first_frame=first_frame, num_frames=num_frames,
            fps=fps, fps_source=fps_source, height=height, width=width, codec=None,
            decoder="images",
        )

    def _listing(self) -> list[str]:
        try:
            names = [n for n in os.listdir(self.folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
        except OSError as exc:
            raise VideoError(f"{self.folder}: cannot list the frame folder ({exc.strerror})") from None
        return sorted(names, key=_natural_key)

    def _template_indices(self) -> list[int]:
        assert self.template is not None
        head, sep, tail = self.template.partition("{")
        _, sep2, rest = tail.partition("}")
        if not sep or not sep2:
            raise VideoError(f"{self.folder}: frame_template {self.template!r} has no {{}} field")
        try:
            names = os.listdir(self.folder)
        except OSError as exc:
            raise VideoError(f"{self.folder}: cannot list the frame folder ({exc.strerror})") from None
        found = []
        for name in names:
            if name.startswith(head) and name.endswith(rest) and len(name) > len(head) + len(rest):
                middle = name[len(head):len(name) - len(rest)]
                if middle.isdigit() and self.template.format(int(middle)) == name:
                    found.append(int(middle))
        return sorted(found)

    def frame_path(self, index: int) -> Path:
        """The image file of absolute frame ``index``."""
        if self.template is not None:
            return self.folder / self.template.format(index)
        assert self._names is not None
        return self.folder / self._names[index]

    def identity(self, start: int, end: int) -> list[Any]:
        """What the frames of ``[start, end]`` are: names, sizes and modification times."""
        out: list[Any] = [] if self._names is None else [len(self._names)]
        for i in range(start, end + 1):
            path = self.frame_path(i)
            try:
                st = path.stat()
            except OSError:
                out.append([path.name, None])
                continue
            out.append([path.name, st.st_size, st.st_mtime_ns])
        return out

    def _probe_size(self, index: int) -> tuple[int, int]:
        path = self.frame_path(index)
        image = self._open(path)
        with image:
            return image.height, image.width

    def _open(self, path: Path) -> Image.Image:
        try:
            return Image.open(path)
        except FileNotFoundError:
            raise VideoError(f"{path}: missing frame image") from None
        except Image.DecompressionBombError:
            raise VideoError(f"{path}: the frame image has absurd dimensions") from None
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise VideoError(f"{path}: unreadable frame image ({_av_reason(exc)})") from None

    def _load(self, index: int, transform: Transform | None) -> np.ndarray:
        path = self.frame_path(index)
        image = self._open(path)
        try:
            with image:
                if (image.height, image.width) != (self.info.height, self.info.width):
                    raise VideoError(
                        f"{path}: frame image is {image.height}x{image.width}, but the clip's "
                        f"frames are {self.info.height}x{self.info.width}"
                    )
                array = np.asarray(image.convert("RGB"))
        except VideoError:
            raise
        except Image.DecompressionBombError:
            raise VideoError(f"{path}: the frame image has absurd dimensions") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise VideoError(f"{path}: unreadable frame image ({_av_reason(exc)})") from None
        return transform(array) if transform is not None else array

    def read(self, indices: Sequence[int], transform: Transform | None = None) -> list[np.ndarray]:
        wanted = sorted({int(i) for i in indices})
        if not wanted:
            return []
        self.window(wanted[0], wanted[-1])
        with ThreadPoolExecutor(max_workers=_worker_count(self.threads)) as pool:
            loaded = dict(zip(wanted, pool.map(lambda i: self._load(i, transform), wanted)))
        return [loaded[int(i)] for i in indices]


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
        VideoError: the source cannot give the frames (the message names the file).
    """
    config = config or FrameConfig()
    ref = record.video if isinstance(record, Record) else record
    steps = record.steps if isinstance(record, Record) and config.strategy == "steps" else []
    with open_reader(
        ref, decoder=config.decoder, default_fps=config.default_fps,
        max_source_side=config.max_source_side, base_dir=base_dir, threads=threads,
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
            transform = functools.partial(resize_frame, height=height, width=width)
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
