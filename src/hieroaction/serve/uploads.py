"""Receiving uploads safely: a private folder, a size limit, and a content check.

- :class:`UploadFolder`: a private (0700) temporary folder; each upload gets a random name
  there, never the client's file name, and is deleted after processing.
- :func:`read_form`: reads a ``multipart/form-data`` body as it streams in, writing the video
  part straight to the private folder. The body's size is checked from ``Content-Length`` before
  anything is read, and counted while it streams (a chunked body has no length), so a body over
  the limit is answered 413 without being read in full. The first bytes of the video decide its
  container format (:func:`sniff_format`); anything else is refused at once with 415.
- :func:`probe_video`: opens the file with FFmpeg restricted to the sniffed demuxer, checks the
  frame size its stream header declares against the pixel limit (a small file can declare
  frames of gigabytes), then decodes one frame on one thread, so a file that only starts like a
  video, or whose frames are too large, is refused (422) before it takes a place in front of the
  model.
- :class:`UploadSlots` and :class:`UploadPace`: uploads are received apart from the job queue,
  at most so many at once (one more is answered 429), and each must keep up a minimum rate
  after a grace period (:func:`paced`: a slower one is cut with 408 and its partial file
  deleted), so a client trickling bytes holds an upload slot for a bounded time and never a
  place in front of the model.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hieroaction.errors import HieroActionError
from hieroaction.serve.jobs import Busy, retry_after
from hieroaction.video import formats

# The containers, their magic numbers and FFmpeg demuxers are the one list of
# hieroaction.video.formats (what the command line reads); HEAD_BYTES of a file's start
# recognise any of them.
HEAD_BYTES = formats.HEAD_BYTES
sniff_format = formats.sniff_container

# Room for the multipart boundaries, part headers and small fields around the video itself.
FORM_OVERHEAD_BYTES = 64 * 1024

# Longest text field (domain name, example id) accepted.
MAX_FIELD_BYTES = 256

# Text fields the forms read; any other field is skipped (its bytes still count to the limit).
TEXT_FIELDS = ("domain", "example")
VIDEO_FIELD = "video"

# Weight of the newest upload in the running mean of upload durations (Retry-After).
_UPLOAD_SMOOTHING = 0.3


class Refused(HieroActionError):
    """A request the server refuses (a bad upload, an unknown job), with the HTTP status that
    says why.

    Attributes:
        status: the HTTP status code.
        headers: extra response headers (``Retry-After`` for a busy answer).
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


def display_name(filename: str | None, default: str = "upload") -> str:
    """A client's file name fit to show (never used as a path): its last component, without
    control characters, at most 80 characters."""
    if not filename:
        return default
    name = re.split(r"[\\/]", filename)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:80] or default


class UploadFolder:
    """A private temporary folder for uploads (mode 0700), removed by :meth:`cleanup`.

    Args:
        parent: folder to make it in (default: the system temporary folder).
    """

    def __init__(self, parent: str | Path | None = None) -> None:
        if parent is not None and not Path(parent).is_dir():
            raise HieroActionError(f"{parent}: upload_dir is not a folder")
        # mkdtemp already creates the folder 0700; chmod again in case of an unusual umask policy.
        self.path = Path(tempfile.mkdtemp(prefix="hieroaction-uploads-", dir=parent))
        os.chmod(self.path, 0o700)

    def new_file(self) -> tuple[Path, int]:
        """A new empty file with a random name (mode 0600) and its open descriptor."""
        while True:
            path = self.path / f"{secrets.token_hex(16)}.upload"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
            except FileExistsError:  # pragma: no cover - 128 random bits
                continue
            return path, fd

    def files(self) -> list[Path]:
        """Uploads present now (tests and health checks: it should be empty when idle)."""
        return sorted(self.path.iterdir()) if self.path.is_dir() else []

    def cleanup(self) -> None:
        """Remove the folder and everything in it."""
        shutil.rmtree(self.path, ignore_errors=True)


def remove_quietly(path: Path | None) -> None:
    """Delete ``path`` if it exists (an upload after processing, or a partial one)."""
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


@dataclass
class SavedVideo:
    """The video part of a form, written to the private folder.

    Attributes:
        path: where it was written (random name).
        name: the client's file name, for display only.
        size: bytes written.
        format: the container family :func:`sniff_format` found.
    """

    path: Path
    name: str
    size: int
    format: str


@dataclass
class UploadForm:
    """What :func:`read_form` read: text fields and, when sent, the saved video."""

    fields: dict[str, str] = field(default_factory=dict)
    video: SavedVideo | None = None


@dataclass
class UploadLimits:
    """The checks :func:`read_form` applies (from :class:`~hieroaction.serve.ServeConfig`)."""

    max_bytes: int
    accepted_formats: tuple[str, ...]

    @property
    def max_body_bytes(self) -> int:
        """Largest whole request body: the video plus the form's own bytes."""
        return self.max_bytes + FORM_OVERHEAD_BYTES


def _too_large(limits: UploadLimits) -> Refused:
    mib = limits.max_bytes / (1024 * 1024)
    return Refused(413, f"the upload is larger than the limit of {mib:g} MiB")


class _FormSink:
    """Callbacks of the streaming multipart parser: text fields into memory, the video part
    into a private file, checking size and format as bytes arrive."""

    def __init__(self, folder: UploadFolder, limits: UploadLimits) -> None:
        self.folder = folder
        self.limits = limits
        self.form = UploadForm()
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._part: str | None = None  # "video", a text field name, or "skip"
        self._text = bytearray()
        self._fd: int | None = None
        self._path: Path | None = None
        self._name = "upload"
        self._size = 0
        self._head = bytearray()
        self._format: str | None = None

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._add("_header_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_header_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _add(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def _part_begin(self) -> None:
        self._headers = {}
        self._part = None
        self._text = bytearray()

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name == VIDEO_FIELD:
            if self._path is not None:
                raise Refused(422, f"the form has more than one '{VIDEO_FIELD}' field; send one video")
            filename = params.get(b"filename")
            self._name = display_name(filename.decode("utf-8", "replace") if filename else None)
            self._path, self._fd = self.folder.new_file()
            self._part = VIDEO_FIELD
        elif name in TEXT_FIELDS:
            self._part = name
        else:
            self._part = "skip"

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._part == VIDEO_FIELD:
            self._size += len(chunk)
            if self._size > self.limits.max_bytes:
                raise _too_large(self.limits)
            if self._format is None and len(self._head) < HEAD_BYTES:
                self._head += chunk[: HEAD_BYTES - len(self._head)]
                if len(self._head) >= HEAD_BYTES:
                    self._check_format()
            assert self._fd is not None
            # Local-disk writes of one network chunk take microseconds; a thread hop would cost more.
            os.write(self._fd, chunk)
        elif self._part in TEXT_FIELDS:
            self._text += chunk
            if len(self._text) > MAX_FIELD_BYTES:
                raise Refused(422, f"the form field '{self._part}' is longer than {MAX_FIELD_BYTES} bytes")

    def _check_format(self) -> None:
        found = sniff_format(bytes(self._head))
        accepted = ", ".join(self.limits.accepted_formats)
        if found is None:
            raise Refused(
                415, f"{self._name}: not a video file (its bytes match no video container); accepted: {accepted}"
            )
        if found not in self.limits.accepted_formats:
            raise Refused(415, f"{self._name}: a {found} file, which this server does not accept; accepted: {accepted}")
        self._format = found

    def _part_end(self) -> None:
        if self._part == VIDEO_FIELD:
            self._close_file()
            if self._size == 0:
                raise Refused(422, f"{self._name}: the uploaded file is empty")
            if self._format is None:
                self._check_format()
            assert self._path is not None and self._format is not None
            self.form.video = SavedVideo(self._path, self._name, self._size, self._format)
        elif self._part in TEXT_FIELDS:
            self.form.fields[self._part] = bytes(self._text).decode("utf-8", "replace").strip()
        self._part = None

    def _close_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Close and delete a partly or fully written video (on any failure)."""
        self._close_file()
        remove_quietly(self._path)
        self._path = None
        self.form.video = None


class UploadSlots:
    """At most ``capacity`` uploads received at once, apart from the job queue.

    :meth:`take` gives a slot for one upload (a context manager that gives it back), or raises
    :class:`~hieroaction.serve.jobs.Busy` when every slot is in use, with a ``Retry-After``
    of the measured mean upload time less what the oldest upload in progress has already
    spent (:func:`~hieroaction.serve.jobs.retry_after` of one upload ahead).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}  # slot number -> when its upload began
        self._numbers = 0
        self._mean_s: float | None = None

    @property
    def active(self) -> int:
        """Uploads being received now."""
        with self._lock:
            return len(self._started)

    def stats(self) -> dict[str, Any]:
        """Counts for the health endpoint."""
        with self._lock:
            mean = None if self._mean_s is None else round(self._mean_s, 3)
            return {"capacity": self.capacity, "active": len(self._started), "mean_s": mean}

    def take(self) -> _UploadSlot:
        """A slot for one upload, or :class:`~hieroaction.serve.jobs.Busy`."""
        now = time.monotonic()
        with self._lock:
            if len(self._started) >= self.capacity:
                oldest = now - min(self._started.values())
                raise Busy(
                    f"the server is receiving as many uploads as it may ({self.capacity}); try again shortly",
                    retry_after(1, self._mean_s if self._mean_s is not None else 1.0, oldest),
                )
            self._numbers += 1
            number = self._numbers
            self._started[number] = now
        return _UploadSlot(self, number)

    def _give_back(self, number: int) -> None:
        with self._lock:
            began = self._started.pop(number, None)
            if began is None:
                return
            took = time.monotonic() - began
            self._mean_s = took if self._mean_s is None else (
                (1 - _UPLOAD_SMOOTHING) * self._mean_s + _UPLOAD_SMOOTHING * took
            )


class _UploadSlot:
    """One upload's slot; leaving the ``with`` block (or :meth:`release`) gives it back."""

    def __init__(self, owner: UploadSlots, number: int) -> None:
        self._owner = owner
        self._number = number

    def release(self) -> None:
        """Give the slot back (idempotent)."""
        self._owner._give_back(self._number)

    def __enter__(self) -> _UploadSlot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class UploadPace:
    """The minimum rate an upload must keep up (as Apache's ``mod_reqtimeout`` ``MinRate``):
    after ``grace_s`` seconds, by ``t`` seconds from its start the upload must have sent at
    least ``min_rate * (t - grace_s)`` bytes; every byte received buys ``1 / min_rate`` more
    seconds. ``min_rate`` 0: no minimum.

    Args:
        min_rate: bytes per second.
        grace_s: seconds at the start during which any rate is accepted (a connection's first
            round trips, a slow start).
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(self, min_rate: float, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_rate = min_rate
        self.grace_s = grace_s
        self._clock = clock
        self.start = clock()
        self.received = 0

    def add(self, size: int) -> None:
        """``size`` more bytes arrived."""
        self.received += size

    def time_left(self) -> float | None:
        """Seconds within which more bytes must arrive (<= 0: the upload is too slow already);
        ``None`` when there is no minimum."""
        if self.min_rate <= 0:
            return None
        return self.start + self.grace_s + self.received / self.min_rate - self._clock()

    def too_slow(self) -> Refused:
        """The 408 refusal of an upload that fell below the minimum rate."""
        elapsed = self._clock() - self.start
        return Refused(
            408,
            f"the upload was too slow: {self.received:,} bytes in {elapsed:.1f} s, under the "
            f"minimum of {self.min_rate:,.0f} bytes/s (after the first {self.grace_s:g} s); "
            "it was stopped",
        )


async def paced(chunks: AsyncIterator[bytes], pace: UploadPace) -> AsyncIterator[bytes]:
    """``chunks``, each awaited no longer than ``pace`` allows; raises the 408 of
    :meth:`UploadPace.too_slow` (which :func:`read_form` turns into a deleted partial file)
    as soon as the upload falls below the minimum rate, even while it sends nothing."""
    import anyio

    iterator = chunks.__aiter__()
    while True:
        left = pace.time_left()
        try:
            if left is None:
                chunk = await iterator.__anext__()
            else:
                with anyio.fail_after(max(left, 0.0)):
                    chunk = await iterator.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise pace.too_slow() from None
        pace.add(len(chunk))
        yield chunk


def check_declared_length(headers: Any, limits: UploadLimits) -> None:
    """Raise 413 when ``Content-Length`` already says the body is over the limit (so the body
    is never read), 400 when it is not a number."""
    declared = headers.get("content-length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        raise Refused(400, f"Content-Length must be a number of bytes, got {declared!r}") from None
    if length > limits.max_body_bytes:
        raise _too_large(limits)


async def read_form(
    content_type: str | None,
    chunks: AsyncIterator[bytes],
    folder: UploadFolder,
    limits: UploadLimits,
) -> UploadForm:
    """Read a ``multipart/form-data`` body as it streams in.

    Args:
        content_type: the request's ``Content-Type`` header.
        chunks: the body, chunk by chunk (``request.stream()``).
        folder: where the video part is written.
        limits: size limit and accepted container families.

    Raises:
        Refused: 415 for a body that is not multipart or a file that is not an accepted
            video, 413 for a body over the limit (as soon as the count passes it), 400 for a
            malformed body, 422 for a bad field. A partly written video is deleted first.
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Refused(
            415, f"the request body must be multipart/form-data with a '{VIDEO_FIELD}' file field, "
            f"got {content_type or 'no Content-Type'}"
        )
    sink = _FormSink(folder, limits)
    try:
        parser = MultipartParser(boundary, sink.callbacks(), max_header_count=8, max_header_size=4096)
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > limits.max_body_bytes:
                raise _too_large(limits)
            parser.write(chunk)
        parser.finalize()
        if sink._part is not None or sink._fd is not None:
            raise Refused(400, "the multipart body ended in the middle of a part")
    except BaseException as exc:
        # Whatever ends the read (a refusal, a timeout's cancellation, a disconnect), the
        # partial file goes.
        sink.discard()
        from python_multipart.exceptions import FormParserError

        if isinstance(exc, (FormParserError, ValueError)):
            raise Refused(400, f"the multipart body cannot be read ({exc.__class__.__name__})") from None
        raise
    return sink.form


def probe_video(path: Path, fmt: str, name: str, max_frame_pixels: int | None = None) -> None:
    """Check that ``path`` holds a video FFmpeg can decode, using only the ``fmt`` demuxer.

    The frame size in the stream header is checked against ``max_frame_pixels`` (and the
    absurd-size rules of :func:`~hieroaction.video.check_frame_size`) before anything is
    decoded; then one frame is decoded, on one thread.

    Raises:
        Refused: 415 when the file has no video stream, 422 when its frames are larger than
            the limit (one sentence naming the size and the limit) or when no frame can be
            decoded (a corrupt or truncated file).
    """
    import av

    from hieroaction.errors import VideoError
    from hieroaction.video.pyav import header_frame_size
    from hieroaction.video.resize import check_frame_pixels, check_frame_size

    demuxer = formats.container(fmt).demuxer
    try:
        # The header alone first: opening the file the usual way already decodes frames.
        height, width = header_frame_size(path, demuxer)
        if height and width:  # 0 when the header does not say: decoding tells below
            try:
                check_frame_size(height, width, where=name, check_ratio=False)
                check_frame_pixels(height, width, max_frame_pixels, where=name)
            except VideoError as exc:
                raise Refused(422, str(exc)) from None
        with av.open(str(path), format=demuxer, metadata_errors="ignore") as container:
            if not container.streams.video:
                raise Refused(415, f"{name}: the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"
            stream.thread_count = 1
            for _frame in container.decode(stream):
                return
    except Refused:
        raise
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        pass
    raise Refused(
        422,
        f"{name}: its bytes start like {fmt}, but no video frame can be decoded from it "
        "(the file is corrupt or truncated)",
    )
