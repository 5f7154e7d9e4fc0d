"""The pixel limit per frame (``max_frame_pixels``, project issue 13): checked from the header
before anything is decoded, the same sentence everywhere, configurable; and the bounded path
that large-but-allowed frames take (fewer decoder threads, RGB conversion at a smaller size)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hieroaction.cli import main
from hieroaction.config import load_config
from hieroaction.data.records import Record, VideoRef, write_jsonl
from hieroaction.errors import ConfigError, VideoError
from hieroaction.video import FrameConfig, check_frame_pixels, read_clip
from hieroaction.video.decode import (
    DecordReader,
    PyAVReader,
    decord_available,
    open_reader,
)
from hieroaction.video.pyav import _decoder_threads, header_frame_size
from hieroaction.video.reader import SHRINK_ABOVE_PIXELS, ResizeTo, shrink_size
from hieroaction.video.resize import resize_frame
from hieroaction.video.sample import MAX_FRAME_PIXELS
from tests.video.media import (
    OpenedContainers,
    make_black_video,
    make_frames,
    make_video,
)

# 8192x4096: 33.5 million pixels a frame, four times the default limit, in a file of ~100 KB.
HUGE = (8192, 4096)


@pytest.fixture(scope="module")
def huge_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_black_video(tmp_path_factory.mktemp("huge") / "huge.mp4", *HUGE)


def test_the_default_limit_lets_every_4k_video_through() -> None:
    assert FrameConfig().max_frame_pixels == MAX_FRAME_PIXELS
    for height, width in [(2160, 3840), (3840, 2160), (2160, 4096), (1080, 1920)]:
        check_frame_pixels(height, width, MAX_FRAME_PIXELS)
    with pytest.raises(VideoError):
        check_frame_pixels(2304, 4096, MAX_FRAME_PIXELS)


def test_the_sentence_names_the_size_the_limit_and_the_setting() -> None:
    with pytest.raises(VideoError) as info:
        check_frame_pixels(8192, 16384, 8_847_360, where="big.mp4")
    message = str(info.value)
    assert message.startswith("big.mp4: its frames are 16384x8192 pixels (width x height)")
    assert "134,217,728 pixels each" in message and "limit of 8,847,360 pixels per frame" in message
    assert "raise max_frame_pixels" in message and message.count(".") == 1  # one sentence (the name's dot)
    check_frame_pixels(8192, 16384, None)  # no limit


@pytest.mark.parametrize("value", [0, -1, 2.5, "many", True])
def test_the_setting_must_be_a_positive_integer(value: object) -> None:
    with pytest.raises(ConfigError, match="max_frame_pixels"):
        FrameConfig(max_frame_pixels=value)  # type: ignore[arg-type]


def test_the_header_tells_the_size_without_decoding(huge_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = OpenedContainers().install(monkeypatch)
    assert header_frame_size(huge_video) == (HUGE[1], HUGE[0])
    assert opened.header_only and opened.calls == []


def test_a_huge_video_is_refused_from_its_header_before_any_frame_is_decoded(
    huge_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = OpenedContainers().install(monkeypatch)
    with pytest.raises(VideoError) as info:
        read_clip(VideoRef(path=str(huge_video)))
    message = str(info.value)
    assert message.startswith(f"{huge_video}: its frames are 8192x4096 pixels")
    assert "limit of 8,847,360 pixels per frame" in message
    # Opened once, header only (FFmpeg's probe did not decode), and nothing demuxed or decoded.
    assert len(opened.options) == 1 and opened.header_only and opened.calls == []


def test_every_reader_applies_the_limit_it_is_given(
    tmp_path: Path, huge_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = OpenedContainers().install(monkeypatch)
    with pytest.raises(VideoError, match="max_frame_pixels"):
        PyAVReader(huge_video, max_frame_pixels=MAX_FRAME_PIXELS)
    with pytest.raises(VideoError, match="max_frame_pixels"):
        open_reader(VideoRef(path=str(huge_video)), max_frame_pixels=HUGE[0] * HUGE[1] - 1)
    assert opened.header_only and opened.calls == []
    if decord_available():
        with pytest.raises(VideoError, match="max_frame_pixels"):
            DecordReader(huge_video, max_frame_pixels=MAX_FRAME_PIXELS)
    # Without a limit a reader only opens it (the header's size is within max_source_side).
    small = make_video(tmp_path / "small.mp4", n=3)
    assert PyAVReader(small, max_frame_pixels=64 * 48).info.width == 64


def test_a_frame_folder_is_refused_from_the_first_images_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    folder = make_frames(tmp_path / "frames", range(5), template="{:05d}.png")
    loads: list[object] = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(self) or real_load(self))
    with pytest.raises(VideoError) as info:
        read_clip(VideoRef(frames_dir=str(folder)), FrameConfig(max_frame_pixels=64 * 48 - 1))
    assert str(info.value).startswith(f"{folder / '00000.png'}: its frames are 64x48 pixels")
    assert loads == []  # PIL read the size from the header; no pixels were decoded
    clip = read_clip(VideoRef(frames_dir=str(folder)), FrameConfig(max_frame_pixels=64 * 48, num_frames=2))
    assert clip.num_frames == 2


def test_data_frames_takes_the_limit_from_its_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_video(tmp_path / "a.mp4", n=10)
    write_jsonl([Record(id="a", video="a.mp4")], tmp_path / "r.jsonl")
    args = ["data", "frames", "--data", str(tmp_path / "r.jsonl"), "--no-progress", "--num_frames", "2"]
    assert main([*args, "--cache", str(tmp_path / "c1"), "--max_frame_pixels", "3000"]) == 1
    capsys.readouterr()
    failures = [json.loads(line) for line in (tmp_path / "c1" / "failures.jsonl").read_text().splitlines()]
    assert len(failures) == 1 and "limit of 3,000 pixels per frame" in json.dumps(failures[0])
    assert main([*args, "--cache", str(tmp_path / "c2"), "--max_frame_pixels", "3072"]) == 0
    config = load_config(FrameConfig, None, ["--max_frame_pixels", "3072"])
    assert config.max_frame_pixels == 3072


# -- large frames within the limit --------------------------------------------------------------


def test_decoder_threads_shrink_for_large_frames() -> None:
    assert _decoder_threads(0, 48, 64) == 0  # FFmpeg's own choice
    assert _decoder_threads(6, 1080, 1920) == 6
    assert 1 <= _decoder_threads(0, 2160, 4096) <= 3
    assert _decoder_threads(16, 8192, 8192) == 1


def test_only_large_resized_frames_are_shrunk_while_converted() -> None:
    assert shrink_size(1080, 1920, ResizeTo(420, 756)) is None  # up to about 1080p: as before
    assert shrink_size(2160, 3840, lambda a: a) is None  # an arbitrary transform: full size
    assert shrink_size(2160, 3840, None) is None
    assert shrink_size(2160, 3840, ResizeTo(420, 756)) == (840, 1512)
    assert shrink_size(2160, 3840, ResizeTo(1400, 2500)) is None  # less than halving: full size
    assert 1152 * 2048 == SHRINK_ABOVE_PIXELS


def test_a_large_frame_is_converted_at_twice_its_final_size_and_matches_the_full_path(tmp_path: Path) -> None:
    path = make_video(tmp_path / "large.mp4", n=3, width=2560, height=1440, options={"crf": "12"})
    target = ResizeTo(196, 336)
    reader = PyAVReader(path, max_frame_pixels=MAX_FRAME_PIXELS)
    shrunk = reader.read([0, 2], target)
    assert reader.stats["rgb_size"] == (392, 672)
    full = reader.read([0, 2], lambda a: resize_frame(a, 196, 336))  # not a ResizeTo: full size
    assert reader.stats["rgb_size"] == (1440, 2560)
    for a, b in zip(shrunk, full):
        assert a.shape == b.shape == (196, 336, 3)
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3
    clip = read_clip(VideoRef(path=str(path)), FrameConfig(num_frames=2, min_pixels=56 * 56, max_pixels=196 * 336))
    assert clip.frames.shape[1:3] == (168, 336) and clip.source_size == (1440, 2560)
