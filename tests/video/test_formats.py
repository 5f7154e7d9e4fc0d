"""The one list of accepted containers (hieroaction.video.formats): every container in it is
recognised from its bytes and decoded, and the docs and the command line name the same list."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest

from hieroaction.data.records import VideoRef
from hieroaction.video import open_reader
from hieroaction.video.formats import (
    CONTAINER_NAMES,
    CONTAINERS,
    HEAD_BYTES,
    container,
    describe,
    file_picker_accept,
    sniff_container,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"

# container name -> (file name, encoder, pixel format, PyAV muxer, muxer options)
SAMPLES: dict[str, tuple[str, str, str, str, dict[str, str]]] = {
    "mp4": ("clip.mov", "libx264", "yuv420p", "mov", {}),
    "matroska": ("clip.webm", "libvpx-vp9", "yuv420p", "webm", {}),
    "avi": ("clip.avi", "mjpeg", "yuvj420p", "avi", {}),
    "mpegts": ("clip.ts", "libx264", "yuv420p", "mpegts", {}),
    "mpeg": ("clip.mpg", "mpeg2video", "yuv420p", "mpeg", {}),
    "ogg": ("clip.ogv", "libtheora", "yuv420p", "ogg", {}),
    "gif": ("clip.gif", "gif", "rgb8", "gif", {}),
    "h264": ("clip.h264", "libx264", "yuv420p", "h264", {}),
}


def _sample(folder: Path, name: str) -> Path:
    filename, codec, pix_fmt, muxer, options = SAMPLES[name]
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    path = folder / filename
    with av.open(str(path), "w", format=muxer, options=options) as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30 * i, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_the_samples_cover_the_list():
    assert set(SAMPLES) == set(CONTAINER_NAMES)


@pytest.mark.parametrize("name", CONTAINER_NAMES)
def test_each_container_is_recognised_from_its_bytes_and_decoded(tmp_path, name):
    path = _sample(tmp_path, name)
    assert sniff_container(path.read_bytes()[:HEAD_BYTES]) == name
    # named like another container: the bytes decide
    renamed = path.rename(tmp_path / "named.mp4")
    assert sniff_container(renamed.read_bytes()[:HEAD_BYTES]) == name
    # its demuxer alone reads it (the server opens uploads with nothing else)
    with av.open(str(renamed), format=container(name).demuxer) as opened:
        assert sum(1 for _ in opened.decode(video=0)) == 6
    # and the decoder the command line uses reads it
    with open_reader(VideoRef(path=str(renamed))) as reader:
        assert reader.info.num_frames == 6
        assert reader.read([0, 5])[1].shape == (48, 64, 3)


def test_m2ts_192_byte_packets_are_mpegts(tmp_path):
    path = tmp_path / "clip.m2ts"
    with av.open(str(path), "w", format="mpegts", options={"mpegts_m2ts_mode": "1"}) as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(4):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
        out.mux(stream.encode(None))
    head = path.read_bytes()[:HEAD_BYTES]
    assert head[0] != 0x47 and head[4] == 0x47  # a 4-byte timestamp before each packet
    assert sniff_container(head) == "mpegts"


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"just some notes\n" * 40,
        b"\x89PNG\r\n\x1a\n" + bytes(100),
        b"\xff\xd8\xff\xe0" + bytes(100),  # a JPEG image
        b"GIF8" + bytes(100),  # a GIF signature cut short
        b"\x00\x00\x00\x01\xe7" + bytes(100),  # a start code, then a byte no NAL header has
        b"\x00\x00\x01\xb3" + bytes(100),  # an MPEG-1/2 video elementary stream: not listed
        b"G" + bytes(187) + b"G" + bytes(100),  # two TS sync bytes are not three
    ],
    ids=["empty", "text", "png", "jpeg", "gif-cut", "bad-nal", "mpeg-es", "ts-short"],
)
def test_anything_else_is_no_container(head):
    assert sniff_container(head) is None


def test_program_stream_is_not_taken_for_raw_h264():
    assert sniff_container(b"\x00\x00\x01\xba" + bytes(40)) == "mpeg"


def _table_names(text: str, heading: str) -> list[str]:
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `([a-z0-9]+)` \|", section, flags=re.MULTILINE)


def test_video_docs_list_the_same_containers():
    text = (DOCS / "video.md").read_text(encoding="utf-8")
    assert _table_names(text, "### Containers") == list(CONTAINER_NAMES)
    rows = {m[0]: m[1] for m in re.findall(r"^\| `([a-z0-9]+)` \| ([^|]+) \|", text, flags=re.MULTILINE)}
    assert all(rows[c.name].strip() == c.title for c in CONTAINERS)


def test_serve_docs_default_is_the_same_list():
    text = (DOCS / "serve.md").read_text(encoding="utf-8")
    (default,) = re.findall(r"^\| `accepted_formats` \| `\[([^\]]*)\]` \|", text, flags=re.MULTILINE)
    assert [n.strip() for n in default.split(",")] == list(CONTAINER_NAMES)


def test_the_command_line_help_names_every_container(capsys):
    from hieroaction import cli

    with pytest.raises(SystemExit):
        cli.main(["assess", "--help"], groups=("assess",))
    help_text = " ".join(capsys.readouterr().out.split())
    assert " ".join(describe().split()) in help_text
    assert all(c.title in describe() for c in CONTAINERS)


def test_file_picker_accept_offers_gif_and_ts():
    accept = file_picker_accept().split(",")
    assert accept[0] == "video/*" and ".gif" in accept and ".ts" in accept
    assert file_picker_accept(["mp4"]) == "video/*,.mp4,.mov,.m4v,.3gp"
