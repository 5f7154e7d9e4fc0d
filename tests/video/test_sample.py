"""Sampling strategies: deterministic, inside the window, and true to their rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hieroaction.config import config_from_dict, load_config
from hieroaction.errors import ConfigError, DataError
from hieroaction.video.sample import (
    FrameConfig,
    fps_indices,
    sample_indices,
    step_indices,
    timestamps_for,
    uniform_indices,
)


def test_uniform_spans_the_window_ends() -> None:
    assert uniform_indices(10, 25, 4).tolist() == [10, 15, 20, 25]
    idx = uniform_indices(100, 399, 16)
    assert idx[0] == 100 and idx[-1] == 399 and len(idx) == 16
    assert np.all(np.diff(idx) > 0)


def test_uniform_matches_qwen3_vl_sampler_rule() -> None:
    # Qwen3VLVideoProcessor.sample_frames: np.linspace(0, total - 1, n).round().astype(int)
    for total, n in [(300, 16), (101, 16), (17, 16), (1000, 7)]:
        expected = np.linspace(0, total - 1, n).round().astype(int)
        assert uniform_indices(0, total - 1, n).tolist() == expected.tolist()


def test_uniform_short_window_gives_each_frame_once() -> None:
    assert uniform_indices(5, 9, 16).tolist() == [5, 6, 7, 8, 9]
    assert uniform_indices(3, 3, 16).tolist() == [3]


def test_uniform_single_frame_is_the_middle() -> None:
    assert uniform_indices(0, 100, 1).tolist() == [50]


def test_fps_strategy_steps_by_time() -> None:
    # 30 fps source, 2 fps target: every 15th frame; 91 frames (3 s) -> t = 0, 0.5, ..., 3.0.
    assert fps_indices(0, 90, 30.0, 2.0, 64).tolist() == [0, 15, 30, 45, 60, 75, 90]
    assert fps_indices(10, 100, 30.0, 2.0, 64).tolist() == [10, 25, 40, 55, 70, 85, 100]
    # 25 fps to 2 fps: 12.5-frame steps, rounded half up.
    assert fps_indices(0, 50, 25.0, 2.0, 64).tolist() == [0, 13, 25, 38, 50]


def test_fps_strategy_caps_at_max_frames_with_uniform_coverage() -> None:
    idx = fps_indices(0, 1799, 30.0, 2.0, 16)
    assert len(idx) == 16 and idx[0] == 0 and idx[-1] == 1799


def test_fps_above_the_source_rate_gives_every_frame() -> None:
    assert fps_indices(0, 9, 10.0, 30.0, 64).tolist() == list(range(10))


def test_steps_strategy_covers_every_step() -> None:
    steps = [(0, 9), (10, 14), (15, 99)]
    idx = step_indices(0, 99, steps, 12, 2)
    assert len(idx) == 12 and len(set(idx.tolist())) == 12
    for first, last in steps:
        assert np.sum((idx >= first) & (idx <= last)) >= 2
    # The short middle step gets its frames at the centres of two halves.
    assert {11, 13} <= set(idx.tolist())


def test_steps_strategy_spreads_the_rest() -> None:
    idx = step_indices(0, 99, [(0, 4)], 6, 2)
    # Two frames in the first step; the rest land far from them, reaching the window end.
    assert np.sum(idx <= 4) == 2
    assert idx[-1] == 99
    gaps = np.diff(idx)
    assert gaps.max() <= 2 * gaps[gaps > 2].min() + 2


def test_steps_strategy_rejects_impossible_budgets() -> None:
    with pytest.raises(ConfigError, match="min_frames_per_step"):
        step_indices(0, 99, [(0, 9), (10, 19), (20, 99)], 4, 2)
    with pytest.raises(DataError, match="not inside the action window"):
        step_indices(0, 99, [(90, 120)], 8, 2)


def test_steps_strategy_without_steps_is_uniform() -> None:
    config = FrameConfig(strategy="steps", num_frames=5)
    assert sample_indices(0, 40, config, 25.0, []).tolist() == uniform_indices(0, 40, 5).tolist()


def test_timestamps_are_seconds_from_the_window_start() -> None:
    np.testing.assert_allclose(timestamps_for([10, 35, 60], 10, 25.0), [0.0, 1.0, 2.0])


@settings(max_examples=150, deadline=None)
@given(
    start=st.integers(0, 500),
    length=st.integers(1, 400),
    num=st.integers(1, 40),
    k=st.integers(0, 3),
    cuts=st.lists(st.floats(0.01, 0.99), max_size=4),
)
def test_every_strategy_stays_in_the_window_and_is_deterministic(
    start: int, length: int, num: int, k: int, cuts: list[float]
) -> None:
    end = start + length - 1
    bounds = sorted({start + int(c * length) for c in cuts} - {start})
    edges = [start, *bounds, end + 1]
    steps = [(a, b - 1) for a, b in zip(edges[:-1], edges[1:]) if b - 1 >= a]
    for strategy in ("uniform", "fps", "steps"):
        config = FrameConfig(strategy=strategy, num_frames=max(num, k * len(steps)), fps=3.0,
                             max_frames=num, min_frames_per_step=k)
        a = sample_indices(start, end, config, 25.0, steps)
        b = sample_indices(start, end, config, 25.0, steps)
        assert a.tolist() == b.tolist()
        assert a.dtype == np.int64
        assert len(a) >= 1 and a.min() >= start and a.max() <= end
        assert np.all(np.diff(a) > 0), "sorted, no repeated frame"
        if strategy == "steps":
            assert len(a) == min(config.num_frames, length)
            for first, last in steps:
                assert np.sum((a >= first) & (a <= last)) >= min(k, last - first + 1)
        if strategy == "uniform":
            assert len(a) == min(config.num_frames, length)


# --- FrameConfig ---------------------------------------------------------------------------


def test_frame_config_loads_from_a_mapping_and_yaml(tmp_path) -> None:
    config = config_from_dict(FrameConfig, {"strategy": "fps", "fps": 4, "max_pixels": 200704})
    assert config.strategy == "fps" and config.fps == 4.0 and config.max_pixels == 200704
    path = tmp_path / "frames.yaml"
    path.write_text("num_frames: 8\nclip_budget: true\nfactor: 32\n")
    loaded = load_config(FrameConfig, path, ["--decoder", "pyav"])
    assert (loaded.num_frames, loaded.clip_budget, loaded.factor, loaded.decoder) == (8, True, 32, "pyav")


@pytest.mark.parametrize(
    "bad",
    [{"strategy": "random"}, {"num_frames": 0}, {"fps": -1}, {"min_pixels": 10, "max_pixels": 5},
     {"decoder": "opencv"}, {"colour": "red"}],
)
def test_frame_config_rejects_bad_settings(bad: dict) -> None:
    with pytest.raises(ConfigError):
        config_from_dict(FrameConfig, bad)


def test_family_presets_follow_the_processors() -> None:
    q25 = FrameConfig.for_family("qwen2_5_vl")
    assert (q25.factor, q25.min_pixels, q25.max_pixels, q25.clip_budget) == (28, 100352, 602112, False)
    q3 = FrameConfig.for_family("qwen3_vl", num_frames=8)
    assert (q3.factor, q3.min_pixels, q3.max_pixels, q3.clip_budget, q3.num_frames) == (
        32, 131072, 786432, True, 8)
    with pytest.raises(ConfigError, match="unknown model family"):
        FrameConfig.for_family("llava")


def test_grid_and_budget_left_out_come_from_the_model_family() -> None:
    # nothing set: Qwen2.5-VL's values until fitted, then the family's
    plain = config_from_dict(FrameConfig, {"num_frames": 8})
    assert (plain.factor, plain.clip_budget, plain.min_pixels) == (28, False, 100352)
    assert set(plain.unset) == {"factor", "min_pixels", "max_pixels", "clip_budget", "temporal_factor"}
    q3 = plain.fit("qwen3_vl")
    assert q3 == FrameConfig.for_family("qwen3_vl", num_frames=8) and q3.unset == ()
    assert plain.fit("qwen2_5_vl") == FrameConfig.for_family("qwen2_5_vl", num_frames=8)
    # a model's own budget (e.g. its processor's) for the fields left out
    assert plain.fit("qwen3_vl", min_pixels=32768, max_pixels=131072).max_pixels == 131072
    # what a recipe sets is kept, fitted or not (the model then refuses a grid it cannot use)
    explicit = config_from_dict(FrameConfig, {"factor": 28, "clip_budget": False, "max_pixels": 200704})
    fitted = explicit.fit("qwen3_vl")
    assert (fitted.factor, fitted.clip_budget, fitted.max_pixels) == (28, False, 200704)
    assert (fitted.min_pixels, fitted.temporal_factor) == (131072, 2)
    assert fitted.fit("qwen2_5_vl") == fitted  # fitted once: every field is set
    # one bound set: checked against the other once it is known
    assert config_from_dict(FrameConfig, {"min_pixels": 700000}).fit("qwen3_vl").max_pixels == 786432
    with pytest.raises(ConfigError, match="must not exceed"):
        config_from_dict(FrameConfig, {"min_pixels": 700000}).fit("qwen2_5_vl")
    with pytest.raises(ConfigError, match="unknown model family"):
        plain.fit("llava")
    # the cache key does not depend on whether a value was set or fitted
    assert q3.to_dict() == FrameConfig(**q3.to_dict()).to_dict()
