"""Decoding: exact frame counts and identical pixels on every codec and container, sparse reads,
seeking, dropping non-reference frames, frame folders, fps sources and decord agreement."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from hieroaction.data.records import Record, Step, VideoRef
from hieroaction.video import pyav
from hieroaction.video.decode import (
    DecordReader,
    FrameFolderReader,
    PyAVReader,
    decord_available,
    open_reader,
    read_clip,
)
from hieroaction.video.sample import FrameConfig
from tests.video.media import (
    CODEC_CASES,
    decode_all,
    encoder_available,
    make_case,
    make_frames,
    make_video,
    pattern,
)

AVAILABLE = [name for name, case in CODEC_CASES.items() if encoder_available(case[0])]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    out = {name: make_case(folder, name) for name in AVAILABLE}
    # A rate that changes every frame: 20, 33, 50 and 80 ms.
    out["vfr.mp4"] = make_video(folder / "vfr.mp4", frame_ms=[20, 33, 50, 80])
    out["vfr.mkv"] = make_video(folder / "vfr.mkv", frame_ms=[20, 33, 50, 80])
    # Raw H.264 has no container timestamps: frames are counted by decoding.
    out["raw.h264"] = make_video(folder / "raw.h264", fmt="h264")
    return out


@pytest.fixture(scope="module")
def reference(clips: dict[str, Path]) -> dict[str, list[np.ndarray]]:
    return {name: decode_all(path) for name, path in clips.items()}


def test_codec_matrix_has_the_asked_for_codecs() -> None:
    # H.264, MJPEG and MPEG-4 are the common codecs the issue names; all must be testable here.
    for name in ("h264.mp4", "mjpeg.avi", "mpeg4.avi", "anim.gif"):
        assert name in AVAILABLE


@pytest.mark.parametrize("name", [*AVAILABLE, "vfr.mp4", "vfr.mkv", "raw.h264"])
def test_frame_count_is_exact(name: str, clips: dict[str, Path], reference: dict) -> None:
    reader = PyAVReader(clips[name])
    assert reader.info.num_frames == len(reference[name]) == 30


@pytest.mark.parametrize("name", [*AVAILABLE, "vfr.mp4", "vfr.mkv", "raw.h264"])
@pytest.mark.parametrize("seek_gap", [0, 10_000])
def test_sparse_reads_match_full_decoding(
    name: str, seek_gap: int, clips: dict[str, Path], reference: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # seek_gap 0 seeks before every run of frames; a huge gap never seeks.
    monkeypatch.setattr(pyav, "_SEEK_GAP_PACKETS", seek_gap)
    reader = PyAVReader(clips[name])
    rng = np.random.default_rng(len(name) + seek_gap)
    for _ in range(6):
        wanted = rng.choice(30, size=int(rng.integers(1, 7)), replace=False).tolist()
        frames = reader.read(wanted)
        for i, frame in zip(wanted, frames):
            np.testing.assert_array_equal(frame, reference[name][i], err_msg=f"{name} frame {i}")
        if name != "raw.h264":
            assert reader.stats["fallback"] is False
    if seek_gap == 0 and name != "raw.h264":
        reader.read([20, 29])
        assert reader.stats["seeks"] >= 1


def test_raw_stream_without_timestamps_falls_back_to_counting(clips: dict[str, Path]) -> None:
    reader = PyAVReader(clips["raw.h264"])
    reader.read([3])
    assert reader.stats["fallback"] is True


def test_reads_return_the_asked_order_with_repeats(clips: dict[str, Path], reference: dict) -> None:
    reader = PyAVReader(clips["h264.mp4"])
    frames = reader.read([9, 2, 9])
    for frame, i in zip(frames, [9, 2, 9]):
        np.testing.assert_array_equal(frame, reference["h264.mp4"][i])


def test_non_reference_frames_are_skipped_not_decoded(tmp_path: Path) -> None:
    path = make_video(tmp_path / "long.mp4", n=120, options={"bf": "3", "g": "250"})
    reader = PyAVReader(path)
    assert reader._index.droppable.sum() > 0
    full = decode_all(path)
    wanted = [0, 40, 80, 119]
    frames = reader.read(wanted)
    for i, frame in zip(wanted, frames):
        np.testing.assert_array_equal(frame, full[i])
    # Everything up to the last frame would be 120 packets; non-reference ones were skipped.
    assert reader.stats["decoded_packets"] < 120


def test_short_gop_reads_decode_only_around_the_wanted_frames(tmp_path: Path) -> None:
    path = make_video(tmp_path / "gop.mp4", n=240, options={"g": "10", "bf": "0"})
    reader = PyAVReader(path)
    frames = reader.read([5, 125, 235])
    full = decode_all(path)
    for i, frame in zip([5, 125, 235], frames):
        np.testing.assert_array_equal(frame, full[i])
    assert reader.stats["decoded_packets"] <= 3 * 10
    assert reader.stats["seeks"] >= 2


def test_container_decides_not_the_extension(tmp_path: Path, reference: dict, clips: dict[str, Path]) -> None:
    disguised = tmp_path / "actually_matroska.mp4"
    shutil.copy(clips["h264.mkv"], disguised)
    frames = PyAVReader(disguised).read([0, 29])
    np.testing.assert_array_equal(frames[1], reference["h264.mkv"][29])
    gif_named_avi = tmp_path / "anim.avi"
    shutil.copy(clips["anim.gif"], gif_named_avi)
    assert PyAVReader(gif_named_avi).info.codec == "gif"


def test_transform_runs_on_every_frame(clips: dict[str, Path]) -> None:
    frames = PyAVReader(clips["h264.mp4"]).read([1, 2, 3], transform=lambda a: a[:10, :20])
    assert all(f.shape == (10, 20, 3) for f in frames)


@pytest.mark.parametrize(
    ("record_fps", "expected", "source"),
    [(12.5, 12.5, "record"), (None, 30.0, "container")],
)
def test_fps_comes_from_the_record_then_the_container(
    clips: dict[str, Path], record_fps: float | None, expected: float, source: str
) -> None:
    clip = read_clip(VideoRef(path=str(clips["h264.mp4"]), fps=record_fps), FrameConfig(num_frames=4))
    assert clip.fps == expected
    assert clip.fps_source == source


def test_window_and_timestamps(clips: dict[str, Path], reference: dict) -> None:
    ref = VideoRef(path=str(clips["h264.mkv"]), start_frame=10, end_frame=25, fps=10.0)
    clip = read_clip(ref, FrameConfig(num_frames=4, resize=False))
    assert clip.indices.tolist() == [10, 15, 20, 25]
    np.testing.assert_allclose(clip.timestamps, [0.0, 0.5, 1.0, 1.5])
    assert (clip.start_frame, clip.end_frame) == (10, 25)
    np.testing.assert_array_equal(clip.frames[2], reference["h264.mkv"][20])
    assert clip.frames.dtype == np.uint8 and clip.frames.shape == (4, 48, 64, 3)


def test_relative_paths_resolve_against_base_dir(clips: dict[str, Path]) -> None:
    path = clips["h264.mp4"]
    clip = read_clip(VideoRef(path=path.name), FrameConfig(num_frames=2), base_dir=path.parent)
    assert clip.num_frames == 2


def test_read_clip_resizes_to_the_budget(clips: dict[str, Path]) -> None:
    clip = read_clip(VideoRef(path=str(clips["h264.mp4"])), FrameConfig(num_frames=8))
    # 48x64 is below Qwen2.5-VL's 100352-pixel minimum: scaled up onto the 28-pixel grid.
    assert clip.frames.shape == (8, 280, 392, 3)
    assert clip.source_size == (48, 64)


def test_steps_strategy_reads_the_records_steps(clips: dict[str, Path]) -> None:
    record = Record(
        id="r",
        video=VideoRef(path=str(clips["h264.mp4"]), start_frame=5, end_frame=24),
        steps=[Step(label="a", start_frame=0, end_frame=1), Step(label="b", start_frame=2, end_frame=19)],
    )
    clip = read_clip(record, FrameConfig(strategy="steps", num_frames=6, min_frames_per_step=2, resize=False))
    assert clip.record_id == "r"
    assert clip.num_frames == 6
    assert sum(5 <= i <= 6 for i in clip.indices) >= 2


# --- frame folders -------------------------------------------------------------------------


def test_finediving_layout(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "FINADiving_x" / "8", range(100, 140), "{:05d}.png")
    ref = VideoRef(frames_dir=str(folder), frame_template="{:05d}.png", start_frame=110, end_frame=129)
    clip = read_clip(ref, FrameConfig(num_frames=5, resize=False))
    assert clip.indices.tolist() == [110, 115, 120, 124, 129]
    np.testing.assert_array_equal(clip.frames[2], pattern(120, 48, 64))  # PNG is lossless
    assert clip.fps_source == "default" and clip.fps == 25.0
    assert clip.decoder == "images"


def test_mtl_aqa_layout_with_open_window(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "01", range(0, 30), "{:06d}.jpg")
    reader = open_reader(VideoRef(frames_dir=str(folder), frame_template="{:06d}.jpg", start_frame=20))
    assert reader.window(20, None) == (20, 29)
    clip = read_clip(
        VideoRef(frames_dir=str(folder), frame_template="{:06d}.jpg", start_frame=20, fps=30.0),
        FrameConfig(num_frames=3, resize=False),
    )
    assert clip.indices.tolist() == [20, 24, 29]
    # JPEG is lossy: close to the pattern, not equal.
    assert np.abs(clip.frames[0].astype(int) - pattern(20, 48, 64)).mean() < 8


def test_template_folder_window_defaults_to_present_frames(tmp_path: Path) -> None:
    folder = make_frames(tmp_path / "f", range(50, 60), "{:05d}.png")
    reader = FrameFolderReader(folder, "{:05d}.png")
    assert reader.window(None, None) == (50, 59)


def test_sorted_images_use_natural_order(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    make_frames(folder, range(12), "frame_{}.png")
    (folder / "notes.txt").write_text("not a frame")
    clip = read_clip(VideoRef(frames_dir=str(folder)), FrameConfig(num_frames=12, resize=False))
    assert clip.num_frames == 12
    # frame_10.png is the 11th frame, not the 3rd (lexicographic order would put it there).
    np.testing.assert_array_equal(clip.frames[10], pattern(10, 48, 64))


# --- decord --------------------------------------------------------------------------------


# decord 0.6 returns other frames than PyAV on some streams (found by this test): MPEG-4 Part 2
# with B-frames (AVI and MP4) and open-GOP H.264. That is why decoder "auto" uses PyAV.
# strict: a decord that gets these right shows up here as an unexpected pass.
DECORD_WRONG = pytest.mark.xfail(strict=True, reason="decord 0.6 returns wrong frames on this stream")


@pytest.mark.skipif(not decord_available(), reason="decord is not installed")
@pytest.mark.parametrize(
    "name",
    ["h264.mp4", "h264.mkv", "h264.mov", "h264_gop5.mp4", "mjpeg.avi", "vp9.webm", "vfr.mp4",
     pytest.param("h264_opengop.mp4", marks=DECORD_WRONG),
     pytest.param("mpeg4.mp4", marks=DECORD_WRONG),
     pytest.param("mpeg4.avi", marks=DECORD_WRONG)],
)
def test_decord_gives_the_same_frames_as_pyav(name: str, clips: dict[str, Path], reference: dict) -> None:
    if name not in clips:
        pytest.skip(f"{name} could not be encoded here")
    reader = DecordReader(clips[name])
    assert reader.info.num_frames == len(reference[name])
    wanted = [0, 7, 13, 29]
    for i, frame in zip(wanted, reader.read(wanted)):
        np.testing.assert_array_equal(frame, reference[name][i])


@pytest.mark.skipif(not decord_available(), reason="decord is not installed")
def test_decoder_setting_picks_the_reader(clips: dict[str, Path]) -> None:
    ref = VideoRef(path=str(clips["h264.mp4"]))
    assert read_clip(ref, FrameConfig(decoder="decord", num_frames=2)).decoder == "decord"
    assert read_clip(ref, FrameConfig(decoder="auto", num_frames=2)).decoder == "pyav"
    assert read_clip(ref, FrameConfig(decoder="pyav", num_frames=2)).decoder == "pyav"
