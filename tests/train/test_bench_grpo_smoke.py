"""The GRPO benchmark (benchmarks/bench_grpo.py): its TRL adapter and a two-step run of both
trainers (slow)."""

from __future__ import annotations


import numpy as np
import pytest

from tests.conftest import benchmark_module



@pytest.fixture(scope="module")
def bench():
    with benchmark_module("bench_grpo") as module:
        yield module


def test_video_item_becomes_image_placeholders(bench):
    messages = [
        {"role": "system", "content": "Judge it."},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Frames at 0, 1 s."}]},
    ]
    out = bench.frames_as_images(messages, 3)
    assert out[0] == messages[0]
    assert out[1]["content"] == [{"type": "image"}] * 3 + [{"type": "text", "text": "Frames at 0, 1 s."}]
    assert messages[1]["content"][0] == {"type": "video"}  # the input is left as it was


def test_frames_as_images_take_twice_the_visual_tokens_of_the_video(bench, tiny_models):
    """The claim the benchmark rests on: TRL's image path pads each frame to the temporal patch
    size, so the same frames cost twice the tokens and patches of the video path."""
    from PIL import Image
    from trl.data_utils import prepare_multimodal_messages

    from hieroaction.models import load_model_and_processor

    _, ours = load_model_and_processor(tiny_models["qwen2_5_vl"])
    theirs = bench.images_only_processor(tiny_models["qwen2_5_vl"], ours.chat_template)
    frames = np.random.default_rng(0).integers(0, 256, (4, 56, 56, 3), dtype=np.uint8)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Assess it."}]}]

    class Clip:
        timestamps = [0.0, 0.5, 1.0, 1.5]
        fps = 2.0

    Clip.frames = frames
    video = ours(messages, Clip())
    images = [Image.fromarray(f) for f in frames]
    prompt = prepare_multimodal_messages(bench.frames_as_images(messages, 4), images=images)
    image_inputs = theirs.apply_chat_template([prompt], add_generation_prompt=True, tokenize=True, return_dict=True)

    video_tokens = int((video["input_ids"] == ours.video_token_id).sum())
    image_tokens = int((np.asarray(image_inputs["input_ids"][0]) == theirs.image_token_id).sum())
    assert video_tokens == 2 * 2 * 2  # 2 temporal patches of 2x2 merged tokens
    assert image_tokens == 2 * video_tokens
    assert image_inputs["pixel_values"].shape[0] == 2 * video["pixel_values_videos"].shape[0]


@pytest.mark.slow
def test_both_trainers_run_and_the_table_compares_them(bench, tmp_path):
    config = bench.BenchConfig(
        sizes=["tiny"], group_sizes=[2], num_frames=4, min_pixels=3136, max_pixels=3136,
        max_completion_length=8, warmup=1, steps=1, clips=6,
    )
    bench.prepare(config, tmp_path)
    runs = [bench.run_worker(config, impl, "tiny", 2, tmp_path) for impl in bench.IMPLEMENTATIONS]
    ours, trl = runs
    assert trl["visual_tokens"] == 2 * ours["visual_tokens"] == 16
    for run in runs:
        assert len(run["step_times"]) == 2
        assert all(t > 0 for t in run["step_times"])
        assert 0 < run["reward_share"] < 1
        assert 0 < run["mean_completion_length"] <= 8
        assert run["peak_rss_mb"] > 0
        assert run["median_generate_cpu_s"] > 0 and run["median_loss_forward_cpu_s"] > 0
    assert 0 < ours["sar_reward_cpu_s"] < ours["median_cpu_step_s"]
    table = bench.table(runs, config.num_frames)
    assert "| qwen2_5_vl tiny | 2 | 4 | 8 / 16 |" in table
