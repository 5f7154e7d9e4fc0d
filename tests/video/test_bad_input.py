"""Bad input: every problem a user's file can cause is a VideoError naming the file and the problem."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from hieroaction.data.records import VideoRef
from hieroaction.errors import VideoError
from hieroaction.video.decode import read_clip
from hieroaction.video.sample import FrameConfig
from tests.video.media import make_frames, make_video

CONFIG = FrameConfig(num_frames=4, resize=False)


def _fails(ref: VideoRef, *needles: str, config: FrameConfig = CONFIG) -> str:
    with pytest.raises(VideoError) as info:
        read_clip(ref, config)
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    return message


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    _fails(VideoRef(path=str(path)), str(path), "empty (0 bytes)")


def test_missing_file(tmp_path: Path) -> None:
    _fails(VideoRef(path=str(tmp_path / "nope.mp4")), "nope.mp4", "no such video file")


def test_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is a text file, not a video\n" * 20)
    _fails(VideoRef(path=str(path)), "notes.mp4", "not a video")


@pytest.mark.parametrize("name", ["cut.mp4", "cut_faststart.mp4", "cut.mkv"])
def test_truncated_file(tmp_path: Path, name: str) -> None:
    options = {"movflags": "faststart"} if "faststart" in name else {}
    whole = make_video(tmp_path / f"whole_{name}", n=60, options=options)
    data = whole.read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    _fails(VideoRef(path=str(path)), name, "truncated")


def test_folder_given_as_video(tmp_path: Path) -> None:
    _fails(VideoRef(path=str(tmp_path)), str(tmp_path), "is a folder")


@pytest.mark.parametrize(
    ("start", "end", "needle"),
    [(10, 45, "ends at frame 45, past the end"), (40, 45, "starts at frame 40, past the end"),
     (None, 30, "ends at frame 30")],
)
def test_window_past_the_end(tmp_path: Path, start: int | None, end: int, needle: str) -> None:
    path = make_video(tmp_path / "clip.mp4", n=30)
    message = _fails(VideoRef(path=str(path), start_frame=start, end_frame=end), "clip.mp4", needle)
    assert "30 frames" in message


def test_window_past_the_end_of_a_frame_folder(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "frames", range(10), "{:05d}.png")
    _fails(VideoRef(frames_dir=str(folder), start_frame=5, end_frame=20), "frames", "past the end")


def test_missing_frame_image(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "frames", range(20), "{:05d}.jpg")
    (folder / "00007.jpg").unlink()
    ref = VideoRef(frames_dir=str(folder), frame_template="{:05d}.jpg", start_frame=0, end_frame=19)
    _fails(ref, "00007.jpg", "missing frame image", config=FrameConfig(num_frames=20, resize=False))


def test_window_end_frame_image_missing(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "frames", range(20), "{:05d}.jpg")
    ref = VideoRef(frames_dir=str(folder), frame_template="{:05d}.jpg", start_frame=0, end_frame=25)
    _fails(ref, "00025.jpg", "missing frame image")


def test_unreadable_frame_image(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "frames", range(10), "{:05d}.jpg")
    (folder / "00009.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    ref = VideoRef(frames_dir=str(folder), frame_template="{:05d}.jpg", start_frame=0, end_frame=9)
    _fails(ref, "00009.jpg", "unreadable frame image")


def test_frame_image_that_is_a_folder(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "frames", range(10), "{:05d}.jpg")
    (folder / "00004.jpg").unlink()
    (folder / "00004.jpg").mkdir()
    ref = VideoRef(frames_dir=str(folder), frame_template="{:05d}.jpg", start_frame=0, end_frame=9)
    _fails(ref, "00004.jpg", "unreadable frame image", config=FrameConfig(num_frames=10, resize=False))


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_frame(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "frames", range(10), "{:05d}.jpg")
    (folder / "00009.jpg").chmod(0)
    ref = VideoRef(frames_dir=str(folder), frame_template="{:05d}.jpg", start_frame=0, end_frame=9)
    _fails(ref, "00009.jpg")


def test_missing_frame_folder(tmp_path: Path) -> None:
    _fails(VideoRef(frames_dir=str(tmp_path / "nothing")), "nothing", "no such frame folder")


def test_empty_frame_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _fails(VideoRef(frames_dir=str(tmp_path / "empty")), "empty", "holds no images")


def test_frame_of_another_size(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "frames", range(10), "{:05d}.png")
    make_frames(folder, [6], "{:05d}.png", height=30, width=30)
    ref = VideoRef(frames_dir=str(folder), frame_template="{:05d}.png", start_frame=0, end_frame=9)
    _fails(ref, "00006.png", "30x30", config=FrameConfig(num_frames=10))


def test_absurd_frame_dimensions(tmp_path: Path) -> None:
    # A 2x500 "video": an aspect ratio no model processor can grid.
    folder = make_frames(tmp_path / "thin", range(4), "{:05d}.png", height=2, width=500)
    ref = VideoRef(frames_dir=str(folder), frame_template="{:05d}.png")
    _fails(ref, "00000.png", "aspect ratio")


def test_record_without_video() -> None:
    with pytest.raises(VideoError, match="names no video"):
        read_clip(VideoRef(), CONFIG)


def test_bad_frame_template(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "frames", range(4), "{:05d}.png")
    _fails(VideoRef(frames_dir=str(folder), frame_template="{name}.png"), "frame_template")
