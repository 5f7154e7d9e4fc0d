"""Resizing: the same sizes and pixels as transformers' Qwen processors; absurd sizes refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hieroaction.errors import VideoError
from hieroaction.video.resize import (
    check_frame_size,
    resize_clip,
    resize_frame,
    resize_frames,
    smart_resize,
    smart_resize_video,
    target_size,
)
from hieroaction.video.sample import Clip, FrameConfig

# transformers' PIL backend of the Qwen2-VL image processor imports without torchvision.
qwen2_pil = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")
qwen3_video = pytest.importorskip("transformers.models.qwen3_vl.video_processing_qwen3_vl")

SIZES = [(48, 64), (720, 1280), (1080, 1920), (256, 455), (28, 28), (13, 900), (2000, 37), (1, 150)]


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 5000),
    w=st.integers(1, 5000),
    factor=st.sampled_from([14, 28, 32]),
    lo=st.integers(1, 300_000),
    span=st.integers(0, 3_000_000),
)
def test_smart_resize_equals_transformers(h: int, w: int, factor: int, lo: int, span: int) -> None:
    try:
        expected = qwen2_pil.smart_resize(h, w, factor=factor, min_pixels=lo, max_pixels=lo + span)
    except ValueError:
        with pytest.raises(VideoError):
            smart_resize(h, w, factor, lo, lo + span)
        return
    assert smart_resize(h, w, factor, lo, lo + span) == expected


@settings(max_examples=150, deadline=None)
@given(
    t=st.integers(1, 64),
    h=st.integers(1, 4000),
    w=st.integers(1, 4000),
    factor=st.sampled_from([28, 32]),
    lo=st.integers(1, 300_000),
    span=st.integers(0, 20_000_000),
)
def test_smart_resize_video_equals_transformers(
    t: int, h: int, w: int, factor: int, lo: int, span: int
) -> None:
    try:
        expected = qwen3_video.smart_resize(t, h, w, temporal_factor=2, factor=factor,
                                            min_pixels=lo, max_pixels=lo + span)
    except ValueError:
        with pytest.raises(VideoError):
            smart_resize_video(t, h, w, 2, factor, lo, lo + span)
        return
    assert smart_resize_video(t, h, w, 2, factor, lo, lo + span) == expected


def test_default_budgets() -> None:
    # 720p at Qwen2.5-VL's video budget (602112 px per frame) and Qwen3-VL's 16-frame clip budget.
    assert target_size(720, 1280, 16, FrameConfig()) == (560, 1008)
    assert target_size(720, 1280, 16, FrameConfig.for_family("qwen3_vl")) == (160, 288)
    assert target_size(720, 1280, 16, FrameConfig(resize=False)) == (720, 1280)


@pytest.mark.parametrize(("h", "w"), SIZES[:6])
def test_pixels_equal_transformers_pil_processor(h: int, w: int) -> None:
    from transformers.image_utils import PILImageResampling, SizeDict

    rng = np.random.default_rng(h * w)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    processor = qwen2_pil.Qwen2VLImageProcessorPil()
    size = SizeDict(shortest_edge=128 * 28 * 28, longest_edge=768 * 28 * 28)
    expected = processor.resize(
        frame.transpose(2, 0, 1), size=size, resample=PILImageResampling.BICUBIC, factor=28
    )
    th, tw = smart_resize(h, w, 28, 128 * 28 * 28, 768 * 28 * 28)
    ours = resize_frame(frame, th, tw)
    assert expected.shape == (3, th, tw)
    np.testing.assert_array_equal(ours, np.asarray(expected).transpose(1, 2, 0).astype(np.uint8))


def test_resize_frames_and_clip() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
    out = resize_frames(frames, 56, 84)
    assert out.shape == (3, 56, 84, 3) and out.dtype == np.uint8
    clip = Clip(frames=frames, indices=np.arange(3), timestamps=np.zeros(3), fps=25.0,
                fps_source="default", source="x", start_frame=0, end_frame=2, decoder="pyav",
                source_size=(48, 64))
    resized = resize_clip(clip, FrameConfig())
    assert resized.frames.shape == (3, 280, 392, 3)
    assert resized.indices is clip.indices
    assert resize_clip(clip, FrameConfig(resize=False)) is clip


@pytest.mark.parametrize(
    ("h", "w", "match"),
    [(0, 64, "empty side"), (48, -5, "empty side"), (1, 201, "aspect ratio"),
     (40000, 30000, "beyond"), (2.5, 64, "integers")],
)
def test_absurd_sizes_are_video_errors(h: float, w: float, match: str) -> None:
    with pytest.raises(VideoError, match=match):
        check_frame_size(h, w, where="clip.mp4")
    with pytest.raises(VideoError, match=r"clip\.mp4"):
        smart_resize(h, w, where="clip.mp4")
    with pytest.raises(VideoError):
        target_size(h, w, 16, FrameConfig.for_family("qwen3_vl"))


def test_clip_budget_needs_a_temporal_patch() -> None:
    with pytest.raises(VideoError, match="temporal patch"):
        smart_resize_video(1, 720, 1280)
