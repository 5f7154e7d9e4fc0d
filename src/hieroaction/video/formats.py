"""The video containers hieroaction accepts: one list, recognised from a file's first bytes.

:data:`CONTAINERS` is the single list that the command line (``hieroaction assess --help``),
the web server (its known and default ``accepted_formats``, the upload check and the FFmpeg
demuxer it probes with) and the documentation (docs/video.md and docs/serve.md, checked by a
test) take their containers from. Each container is decoded by PyAV and covered by the
decoding tests.

A container is recognised from its magic numbers (:func:`sniff_container`), never from the
file's name: a Matroska file called ``clip.mp4`` is Matroska, a text file called ``clip.mp4``
is no video.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bytes of a file's start that are enough to recognise every container below (an MPEG
# transport stream needs its sync bytes at 0, 188 and 376, or at 4, 196 and 388 for the
# 192-byte packets of M2TS).
HEAD_BYTES = 512


@dataclass(frozen=True)
class Container:
    """One accepted container family.

    Attributes:
        name: the family's name in settings (the server's ``accepted_formats``) and messages.
        demuxer: the FFmpeg demuxer that reads it (the only one the server lets FFmpeg try).
        title: what people call it, for help texts and the docs.
        extensions: the usual file name endings (a hint for file pickers; never trusted).
    """

    name: str
    demuxer: str
    title: str
    extensions: tuple[str, ...]


CONTAINERS: tuple[Container, ...] = (
    Container("mp4", "mp4", "MP4, MOV, M4V, 3GP (ISO media)", (".mp4", ".mov", ".m4v", ".3gp")),
    Container("matroska", "matroska", "Matroska, WebM", (".mkv", ".webm")),
    Container("avi", "avi", "AVI", (".avi",)),
    Container("mpegts", "mpegts", "MPEG transport stream (also M2TS)", (".ts", ".mts", ".m2ts")),
    Container("mpeg", "mpeg", "MPEG program stream", (".mpg", ".mpeg")),
    Container("ogg", "ogg", "Ogg", (".ogv", ".ogg")),
    Container("gif", "gif", "animated GIF", (".gif",)),
    Container("h264", "h264", "raw H.264 stream (Annex B)", (".h264", ".264")),
)

# The names of :data:`CONTAINERS`, in order.
CONTAINER_NAMES: tuple[str, ...] = tuple(c.name for c in CONTAINERS)

_BY_NAME = {c.name: c for c in CONTAINERS}

# Top-level ISO BMFF / QuickTime box types a file may start with.
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")

# H.264 NAL unit types a raw stream starts with: SEI, SPS, access unit delimiter.
_H264_FIRST_NALS = (6, 7, 9)


def container(name: str) -> Container:
    """The container called ``name`` (``KeyError`` for a name not in :data:`CONTAINERS`)."""
    return _BY_NAME[name]


def _ts_sync(head: bytes, offset: int, packet: int) -> bool:
    last = offset + 2 * packet
    return len(head) > last and head[offset] == head[offset + packet] == head[last] == 0x47


def _h264_start(head: bytes) -> bool:
    for code in (b"\x00\x00\x00\x01", b"\x00\x00\x01"):
        if head.startswith(code) and len(head) > len(code):
            nal = head[len(code)]
            return nal & 0x80 == 0 and nal & 0x1F in _H264_FIRST_NALS
    return False


def sniff_container(head: bytes) -> str | None:
    """The name of the container whose magic numbers ``head`` (a file's first
    :data:`HEAD_BYTES` bytes, or all of a shorter file) starts with, or ``None``."""
    if len(head) >= 8 and head[4:8] in _ISO_BOXES:
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if _ts_sync(head, 0, 188) or _ts_sync(head, 4, 192):
        return "mpegts"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if _h264_start(head):
        return "h264"
    return None


def describe(names: tuple[str, ...] | list[str] = CONTAINER_NAMES) -> str:
    """``names`` for a help text: ``"MP4, MOV, M4V, 3GP (ISO media); Matroska, WebM; ..."``."""
    return "; ".join(_BY_NAME[n].title for n in names)


def file_picker_accept(names: tuple[str, ...] | list[str] = CONTAINER_NAMES) -> str:
    """An HTML ``accept`` attribute for ``names``: ``video/*`` plus their file endings (GIF is
    an image type, and browsers do not all know ``.ts`` or ``.h264``)."""
    endings = [e for n in names for e in _BY_NAME[n].extensions]
    return ",".join(["video/*", *endings])


__all__ = [
    "CONTAINERS",
    "CONTAINER_NAMES",
    "HEAD_BYTES",
    "Container",
    "container",
    "describe",
    "file_picker_accept",
    "sniff_container",
]
