"""Receiving uploads: the private folder, the streaming size limit, the content check, the
upload slots and the minimum upload rate."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import av
import numpy as np
import pytest

from hieroaction.serve.jobs import Busy
from hieroaction.serve.uploads import (
    HEAD_BYTES,
    Refused,
    UploadFolder,
    UploadLimits,
    UploadPace,
    UploadSlots,
    check_declared_length,
    display_name,
    paced,
    probe_video,
    read_form,
    sniff_format,
)
from tests.serve.client import multipart, require_serve_extra

require_serve_extra()

MP4_ONLY = ("mp4",)


def write_video(path: Path, container: str, codec: str = "mpeg4", frames: int = 3) -> Path:
    """A few grey frames in ``container`` (PyAV), whatever the file is called."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


async def _chunks(data: bytes, size: int, consumed: list[int]) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        consumed.append(len(piece))
        yield piece


def read(body: bytes, content_type: str, folder: UploadFolder, limits: UploadLimits,
         chunk: int = 4096) -> tuple[object, int]:
    """Run read_form over ``body`` in chunks; returns the form and the bytes the reader pulled."""
    consumed: list[int] = []
    form = asyncio.run(read_form(content_type, _chunks(body, chunk, consumed), folder, limits))
    return form, sum(consumed)


def read_refused(body: bytes, content_type: str, folder: UploadFolder, limits: UploadLimits,
                 chunk: int = 4096) -> tuple[Refused, int]:
    consumed: list[int] = []
    with pytest.raises(Refused) as info:
        asyncio.run(read_form(content_type, _chunks(body, chunk, consumed), folder, limits))
    return info.value, sum(consumed)


@pytest.fixture()
def folder(tmp_path) -> Iterable[UploadFolder]:
    f = UploadFolder(tmp_path)
    yield f
    f.cleanup()


def test_formats_are_recognised_by_their_bytes_not_their_names(tmp_path, clips):
    assert sniff_format(clips[0].read_bytes()[:HEAD_BYTES]) == "mp4"
    assert sniff_format(write_video(tmp_path / "a.txt", "matroska").read_bytes()[:HEAD_BYTES]) == "matroska"
    assert sniff_format(write_video(tmp_path / "b.mp4", "avi").read_bytes()[:HEAD_BYTES]) == "avi"
    ts = write_video(tmp_path / "c.bin", "mpegts", codec="mpeg2video")
    assert sniff_format(ts.read_bytes()[:HEAD_BYTES]) == "mpegts"
    assert sniff_format(b"OggS\x00\x02" + bytes(40)) == "ogg"
    assert sniff_format(b"\x00\x00\x01\xba" + bytes(40)) == "mpeg"
    for not_video in (b"", b"hello world\n" * 50, b"\x89PNG\r\n\x1a\n" + bytes(100), b"%PDF-1.7\n" + bytes(100),
                      b"RIFF\x00\x00\x00\x00WAVEfmt "):
        assert sniff_format(not_video) is None


def test_the_private_folder_is_0700_and_files_get_random_names(folder):
    assert stat.S_IMODE(folder.path.stat().st_mode) == 0o700
    path_a, fd_a = folder.new_file()
    path_b, fd_b = folder.new_file()
    os.close(fd_a), os.close(fd_b)
    assert path_a != path_b and path_a.parent == folder.path
    assert stat.S_IMODE(path_a.stat().st_mode) == 0o600
    assert len(path_a.stem) == 32  # 128 random bits in hex, nothing from the client
    folder.cleanup()
    assert not folder.path.exists()


def test_client_file_names_are_only_shown_never_used_as_paths():
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("C:\\Users\\me\\dive 1.mp4") == "dive 1.mp4"
    assert display_name("a\x00b\nc.mp4") == "abc.mp4"
    assert display_name("") == "upload" and display_name(None) == "upload"
    assert len(display_name("x" * 500)) == 80


def test_a_good_form_is_streamed_into_the_private_folder(folder, clips):
    data = clips[0].read_bytes()
    body, ctype = multipart({"domain": "diving"}, {"video": ("../evil/dive.mp4", data)})
    form, pulled = read(body, ctype, folder, UploadLimits(len(data), MP4_ONLY))
    assert pulled == len(body)
    assert form.fields == {"domain": "diving"}
    video = form.video
    assert video.name == "dive.mp4" and video.format == "mp4" and video.size == len(data)
    assert video.path.parent == folder.path and "dive" not in video.path.name
    assert video.path.read_bytes() == data
    probe_video(video.path, video.format, video.name)  # decodes


def test_an_oversized_body_is_refused_while_streaming_and_nothing_is_kept(folder, clips):
    data = clips[0].read_bytes() + bytes(200_000)
    body, ctype = multipart({}, {"video": ("big.mp4", data)})
    limits = UploadLimits(50_000, MP4_ONLY)
    error, pulled = read_refused(body, ctype, folder, limits)
    assert error.status == 413 and "limit of" in str(error)
    # stopped as soon as the count passed the limit, long before the end of the body
    assert pulled <= limits.max_bytes + 4096 * 2 < len(body)
    assert folder.files() == []


def test_content_length_over_the_limit_is_refused_before_reading():
    limits = UploadLimits(1000, MP4_ONLY)
    check_declared_length({"content-length": str(limits.max_body_bytes)}, limits)
    with pytest.raises(Refused) as info:
        check_declared_length({"content-length": str(limits.max_body_bytes + 1)}, limits)
    assert info.value.status == 413
    with pytest.raises(Refused) as info:
        check_declared_length({"content-length": "lots"}, limits)
    assert info.value.status == 400


def test_a_text_file_named_mp4_is_refused_after_its_first_bytes(folder):
    text = b"just some notes, not a video\n" * 20_000
    body, ctype = multipart({}, {"video": ("clip.mp4", text)})
    error, pulled = read_refused(body, ctype, folder, UploadLimits(10 * len(text), MP4_ONLY))
    assert error.status == 415 and "clip.mp4: not a video file" in str(error)
    assert pulled < 3 * 4096  # decided on the first bytes, the rest never read
    assert folder.files() == []


def test_a_container_outside_the_accepted_list_is_refused(folder, tmp_path):
    mkv = write_video(tmp_path / "clip.mp4", "matroska").read_bytes()
    body, ctype = multipart({}, {"video": ("clip.mp4", mkv)})
    error, _ = read_refused(body, ctype, folder, UploadLimits(len(mkv), MP4_ONLY))
    assert error.status == 415 and "matroska" in str(error)
    form, _ = read(body, ctype, folder, UploadLimits(len(mkv), ("mp4", "matroska")))
    assert form.video.format == "matroska"


def test_a_corrupt_file_that_starts_like_mp4_fails_the_probe(tmp_path):
    path = tmp_path / "x.upload"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64)
    assert sniff_format(path.read_bytes()) == "mp4"
    with pytest.raises(Refused) as info:
        probe_video(path, "mp4", "broken.mp4")
    assert info.value.status == 422 and "broken.mp4" in str(info.value) and str(tmp_path) not in str(info.value)


def test_an_mp4_without_a_video_stream_is_refused(tmp_path):
    path = tmp_path / "song.upload"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert sniff_format(path.read_bytes()) == "mp4"  # the container is right ...
    with pytest.raises(Refused) as info:
        probe_video(path, "mp4", "song.m4a")
    assert info.value.status == 415 and "song.m4a: the file has no video stream" == str(info.value)


def test_the_probe_only_lets_ffmpeg_try_the_sniffed_demuxer(tmp_path, clips):
    # an MP4 probed as Matroska must fail: FFmpeg is not allowed to guess another format
    with pytest.raises(Refused):
        probe_video(clips[0], "matroska", "clip")
    probe_video(clips[0], "mp4", "clip")


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (b"video=abc", "application/x-www-form-urlencoded", 415),
        (b"{}", None, 415),
        (b'--b\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\n\x00\x00\x00\x18ftyp',
         "multipart/form-data; boundary=b", 400),
    ],
    ids=["urlencoded", "no-content-type", "cut-short"],
)
def test_bodies_that_are_not_a_complete_multipart_form_are_refused(folder, body, ctype, status):
    error, _ = read_refused(body, ctype, folder, UploadLimits(10_000, MP4_ONLY))
    assert error.status == status
    assert folder.files() == []


def test_two_videos_or_an_overlong_field_are_refused(folder, clips):
    data = clips[0].read_bytes()
    body, ctype = multipart({}, {"video": ("a.mp4", data)})
    closing = f"--{ctype.split('boundary=')[1]}--\r\n".encode()
    parts = body[: -len(closing)]
    two = parts + parts + closing  # the same video part twice
    error, _ = read_refused(two, ctype, folder, UploadLimits(10 * len(data), MP4_ONLY))
    assert error.status == 422 and "more than one" in str(error)
    body, ctype = multipart({"domain": "d" * 1000}, {"video": ("a.mp4", data)})
    error, _ = read_refused(body, ctype, folder, UploadLimits(len(data), MP4_ONLY))
    assert error.status == 422 and "'domain'" in str(error)
    assert folder.files() == []


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_minimum_rate_is_owed_only_after_the_grace_period():
    clock = Clock()
    pace = UploadPace(min_rate=1000, grace_s=5, clock=clock)
    assert pace.time_left() == 5  # nothing owed during the grace period
    clock.now += 4
    assert pace.time_left() == pytest.approx(1)
    pace.add(3000)  # 3000 bytes buy 3 s more
    assert pace.time_left() == pytest.approx(4)
    clock.now += 5
    assert pace.time_left() < 0  # 3000 bytes in 9 s: under 1000 bytes/s past the first 5 s
    refusal = pace.too_slow()
    assert refusal.status == 408 and "3,000 bytes in 9.0 s" in str(refusal) and "1,000 bytes/s" in str(refusal)
    assert UploadPace(min_rate=0, grace_s=5, clock=clock).time_left() is None  # 0: no minimum


def test_a_trickling_body_is_cut_and_its_partial_file_deleted(folder, clips):
    """A body that starts well and then sends a byte now and then is cut with 408 once it falls
    under the rate (grace 0.1 s, 2000 bytes/s), while it is still sending; nothing is kept."""
    body, ctype = multipart({"domain": "synth"}, {"video": ("a.mp4", clips[0].read_bytes())})
    sent: list[int] = []

    async def trickle() -> AsyncIterator[bytes]:
        yield body[:600]  # the head, the video's first bytes: its file is open now
        for i in range(600, len(body)):
            sent.append(1)
            await asyncio.sleep(0.05)  # 20 bytes/s
            yield body[i:i + 1]

    limits = UploadLimits(10 * 1024 * 1024, MP4_ONLY)
    pace = UploadPace(min_rate=2000, grace_s=0.1)
    with pytest.raises(Refused) as info:
        asyncio.run(read_form(ctype, paced(trickle(), pace), folder, limits))
    assert info.value.status == 408 and "too slow" in str(info.value)
    assert len(sent) < len(body) - 600 and folder.files() == []


def test_a_body_that_stops_sending_is_cut_without_another_byte(folder):
    """The cut does not wait for the next chunk: a connection that goes silent is cut too."""

    async def silent() -> AsyncIterator[bytes]:
        yield b"--xyz\r\nContent-Disposition: form-data; name=\"video\"; filename=\"a.mp4\"\r\n\r\n"
        yield b"\x00\x00\x00\x18ftypmp42"
        await asyncio.Event().wait()  # never sends again
        yield b""

    limits = UploadLimits(1024 * 1024, MP4_ONLY)
    with pytest.raises(Refused) as info:
        asyncio.run(read_form("multipart/form-data; boundary=xyz", paced(silent(), UploadPace(1000, 0.05)), folder, limits))
    assert info.value.status == 408 and folder.files() == []


def test_a_body_at_a_good_rate_passes_untouched(folder, clips):
    body, ctype = multipart({"domain": "synth"}, {"video": ("a.mp4", clips[0].read_bytes())})
    consumed: list[int] = []
    pace = UploadPace(min_rate=1, grace_s=60)
    form = asyncio.run(read_form(ctype, paced(_chunks(body, 4096, consumed), pace), folder, UploadLimits(10**7, MP4_ONLY)))
    assert form.video is not None and form.video.path.read_bytes() == clips[0].read_bytes()
    assert pace.received == len(body)


def test_upload_slots_are_bounded_and_given_back():
    slots = UploadSlots(2)
    first, second = slots.take(), slots.take()
    assert slots.active == 2 and slots.stats()["capacity"] == 2
    with pytest.raises(Busy) as info:
        slots.take()
    assert info.value.retry_after >= 1 and "uploads" in str(info.value)
    first.release()
    first.release()  # idempotent
    with slots.take():
        assert slots.active == 2
    second.release()
    assert slots.active == 0 and slots.stats()["mean_s"] is not None
