"""Reading chosen frames of a video file with PyAV (FFmpeg): :class:`PyAVReader`.

The container format is found from the file's bytes, never from its extension. Only the frames
that were asked for are decoded, streaming:

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

Memory is bounded before anything is decoded: the frame size the stream header declares is
checked against ``max_source_side`` and ``max_frame_pixels`` (:func:`header_frame_size` opens
the file without letting FFmpeg's stream probe decode a frame). For large frames within the
limit, the decoder's frame threads, the frames waiting for conversion and the conversions in
flight are each cut to what :data:`~hieroaction.video.reader.FRAME_MEMORY_BUDGET` holds; and a
frame over :data:`~hieroaction.video.reader.SHRINK_ABOVE_PIXELS` that is resized anyway
(:class:`~hieroaction.video.reader.ResizeTo`) is converted to RGB by FFmpeg's scaler at twice
its final size instead of at full size.

The probe helpers here (:func:`_check_video_file`, :func:`_open_container`, :func:`_probe`)
also serve the decord reader, which takes a stream's size from PyAV.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from hieroaction.errors import VideoError
from hieroaction.video.reader import (
    CONVERSION_BYTES_PER_PIXEL,
    DECODER_THREAD_BYTES_PER_PIXEL,
    FrameReader,
    SourceInfo,
    Transform,
    _error_reason,
    _pick_fps,
    _worker_count,
    frames_within_budget,
    shrink_size,
)
from hieroaction.video.resize import check_frame_pixels, check_frame_size
from hieroaction.video.sample import MAX_SOURCE_SIDE

# Seeking costs a container lookup and a decoder flush; skipping a few packets by demuxing them
# (no decoding) is cheaper, so the reader only seeks across gaps longer than this.
_SEEK_GAP_PACKETS = 48

# Source indexes kept per process, so several windows of one long video share one index pass.
_INDEX_CACHE_SIZE = 32


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


def _open_container(path: Path) -> Any:
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise VideoError(
            f"{path}: not a video FFmpeg can read ({_error_reason(exc)}; "
            "the file is corrupt, truncated or not a video)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise VideoError(f"{path}: cannot be opened as a video ({_error_reason(exc)})") from None


# FFmpeg's stream probe (avformat_find_stream_info, run by av.open) decodes the first frames of
# an H.264 stream to complete its parameters, on one thread: at 16384x8192 that is 300 MB and a
# second spent before any check can run. With skip_frame=all it reads headers and packets only.
_HEADER_ONLY = {"skip_frame": "all"}


def header_frame_size(path: Path, fmt: str | None = None) -> tuple[int, int]:
    """``(height, width)`` that the first video stream's header declares, read without decoding
    a frame (``(0, 0)`` when the file has no video stream or its header does not say).

    ``fmt`` restricts FFmpeg to one demuxer. FFmpeg's errors propagate (``av.FFmpegError``,
    ``OSError``): callers open the file properly afterwards, which reports them.
    """
    import av

    with av.open(str(path), format=fmt, options=_HEADER_ONLY, metadata_errors="ignore") as container:
        if not container.streams.video:
            return 0, 0
        context = container.streams.video[0].codec_context
        if context is None:
            return 0, 0
        return int(context.height or 0), int(context.width or 0)


def _check_header(path: Path, max_side: int, max_pixels: int | None) -> None:
    """Refuse a file whose header declares frames over the limits, before anything is decoded."""
    import av

    try:
        height, width = header_frame_size(path)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return  # opening it properly next says what is wrong with the file
    if height and width:
        check_frame_size(height, width, max_side=max_side, where=str(path), check_ratio=False)
        check_frame_pixels(height, width, max_pixels, where=str(path))


def _probe(
    container: Any, path: Path, max_side: int, max_pixels: int | None = None
) -> tuple[int, int, str, float | None]:
    """``(height, width, codec, container fps)`` of the first video stream, its size checked
    against ``max_side`` and ``max_pixels``."""
    if not container.streams.video:
        raise VideoError(f"{path}: the file has no video stream")
    stream = container.streams.video[0]
    height, width = stream.codec_context.height, stream.codec_context.width
    check_frame_size(height, width, max_side=max_side, where=str(path))
    check_frame_pixels(height, width, max_pixels, where=str(path))
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
        raise VideoError(f"{path}: the file is corrupt or truncated ({_error_reason(exc)})") from None
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


def _decoder_threads(threads: int, height: int, width: int) -> int:
    """The decoder's thread count (0: FFmpeg's own choice), cut down so that the pictures its
    frame threads hold at ``height x width`` stay within the frame memory budget."""
    cap = frames_within_budget(height, width, DECODER_THREAD_BYTES_PER_PIXEL)
    if threads > 0:
        return min(threads, cap)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    # FFmpeg's automatic count for frame threading: one more than the cores, at most 16.
    return 0 if min(cpus + 1, 16) <= cap else cap


def _count_by_decoding(path: Path, threads: int = 0) -> int:
    import av

    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = _decoder_threads(
            threads, stream.codec_context.height, stream.codec_context.width
        )
        count = 0
        for _ in container.decode(stream):
            count += 1
        return count
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: the file is corrupt or truncated ({_error_reason(exc)})") from None
    finally:
        container.close()


class _Converter:
    """Turns decoded frames into (transformed) RGB arrays in worker threads, a bounded few at
    a time, so decoding goes on while earlier frames are converted and resized.

    ``size`` is the source's ``(height, width)``; ``shrink`` (from
    :func:`~hieroaction.video.reader.shrink_size`) is the smaller size that FFmpeg's scaler
    converts a large frame to, so no full-size RGB array is made. The frames waiting for a
    worker, and the workers converting at once, are at most what the frame memory budget holds
    at those sizes.
    """

    def __init__(
        self,
        wanted: Sequence[int],
        transform: Transform | None,
        workers: int,
        size: tuple[int, int],
    ) -> None:
        self.wanted = set(wanted)
        self.transform = transform
        self.shrink = shrink_size(*size, transform)
        self.limit = min(2 * workers, frames_within_budget(*size))
        converted = self.shrink or size
        workers = min(workers, self.limit, frames_within_budget(*converted, CONVERSION_BYTES_PER_PIXEL))
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frames")
        self.pending: deque[Future[None]] = deque()
        self.results: dict[int, np.ndarray] = {}
        self.seen: set[int] = set()

    def _work(self, frame: Any, index: int) -> None:
        if self.shrink is not None:
            height, width = self.shrink
            array = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
        else:
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
        *,
        max_frame_pixels: int | None = None,
    ) -> None:
        self.path = path
        self.threads = threads
        size = _check_video_file(path)
        if max_frame_pixels is not None:
            _check_header(path, max_source_side, max_frame_pixels)
        # One container serves the probe, the index pass and the first read: opening a file
        # probes its streams, which costs as much as decoding a few frames.
        self._container: Any = _open_container(path)
        try:
            height, width, codec, container_fps = _probe(
                self._container, path, max_source_side, max_frame_pixels
            )
            key = (str(path.resolve()), size, path.stat().st_mtime_ns)
            index = _INDEXES.get(key)
            if index is None:
                index = _build_index(path, self._container)
            _remember(_INDEXES, key, index)
            self._index = index
            count = index.num_frames
            if not index.exact:
                counted = _COUNTS.get(key)
                count = _count_by_decoding(path, threads) if counted is None else counted
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
        # What the last read() did: packets sent to the decoder, seeks, whether it had to fall
        # back to decoding from the start, and the size frames were converted to RGB at (for
        # tests and benchmarks).
        self.stats: dict[str, Any] = {}

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
        self.stats = {
            "decoded_packets": 0, "seeks": 0, "fallback": False,
            "rgb_size": shrink_size(self.info.height, self.info.width, transform)
            or (self.info.height, self.info.width),
        }
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

        converter = _Converter(
            wanted, transform, _worker_count(self.threads), (self.info.height, self.info.width)
        )
        try:
            if sparse:
                self._decode_sparse(wanted, converter)
            else:
                self._decode_sequential(wanted, converter)
        except av.FFmpegError as exc:
            converter.finish()
            raise VideoError(
                f"{self.path}: the file is corrupt or truncated ({_error_reason(exc)})"
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
            stream.thread_count = _decoder_threads(self.threads, self.info.height, self.info.width)
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
