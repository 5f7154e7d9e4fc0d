"""VideoChatProcessor: prompts, several clips, batching, loading errors."""

from __future__ import annotations

import pytest
import torch

from hieroaction.errors import ConfigError, VideoError
from hieroaction.models.processor import VideoChatProcessor, collate
from tests.models.clips import make_clip, video_messages


@pytest.mark.parametrize("name", ["qwen2_5_vl", "qwen3_vl"])
def test_rendered_text_and_messages_agree(name, loaded):
    _, processor = loaded[name]
    clip = make_clip(6)
    from_messages = processor(video_messages(), clip)
    from_text = processor(processor.apply_chat_template(video_messages()), clip)
    for key, value in from_messages.items():
        assert torch.equal(value, from_text[key]), key


@pytest.mark.parametrize("name", ["qwen2_5_vl", "qwen3_vl"])
def test_two_clips_in_one_prompt(name, loaded):
    model, processor = loaded[name]
    messages = [
        {
            "role": "user",
            "content": [{"type": "video"}, {"type": "text", "text": "versus"}, {"type": "video"}],
        }
    ]
    a, b = make_clip(4, seed=1), make_clip(6, 64, 64, seed=2)
    inputs = processor(messages, [a, b])
    one, two = processor.process_clip(a), processor.process_clip(b)
    assert inputs["video_grid_thw"].tolist() == [list(one.video_grid_thw), list(two.video_grid_thw)]
    assert torch.equal(
        inputs["pixel_values_videos"], torch.cat([one.pixel_values_videos, two.pixel_values_videos])
    )
    with torch.no_grad():
        assert torch.isfinite(model(**inputs).logits).all()


@pytest.mark.parametrize("name", ["qwen2_5_vl", "qwen3_vl"])
def test_left_padded_batch_matches_single_samples(name, loaded):
    model, processor = loaded[name]
    a = processor(video_messages(), make_clip(8, seed=1))
    b = processor(
        video_messages("Assess this dive and give its score."), make_clip(4, 64, 64, seed=2)
    )
    batch = collate([a, b], processor.tokenizer.pad_token_id, padding_side="left")
    assert batch["input_ids"].shape[0] == 2
    assert batch["attention_mask"][1].sum() == b["input_ids"].shape[1]
    with torch.no_grad():
        last = model(**batch).logits[:, -1]
        assert torch.allclose(last[0], model(**a).logits[0, -1], atol=1e-4)
        assert torch.allclose(last[1], model(**b).logits[0, -1], atol=1e-4)


def test_collate_right_pads_labels():
    a = {
        "input_ids": torch.tensor([[5, 6, 7]]),
        "attention_mask": torch.ones(1, 3, dtype=torch.long),
        "labels": torch.tensor([[-100, 6, 7]]),
    }
    b = {
        "input_ids": torch.tensor([[8]]),
        "attention_mask": torch.ones(1, 1, dtype=torch.long),
        "labels": torch.tensor([[8]]),
    }
    out = collate([a, b], pad_token_id=0, padding_side="right")
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert out["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ConfigError, match="padding_side"):
        collate([a], 0, padding_side="middle")


def test_text_only_prompt_has_no_video_tensors(loaded):
    _, processor = loaded["qwen3_vl"]
    out = processor([{"role": "user", "content": "Hello"}])
    assert set(out) == {"input_ids", "attention_mask", "mm_token_type_ids"}
    assert int(out["mm_token_type_ids"].sum()) == 0
    with pytest.raises(VideoError, match="1 <\\|video_pad\\|> placeholders but 0 clips"):
        processor(video_messages())


def test_from_pretrained_errors(tmp_path, tiny_dirs):
    with pytest.raises(ConfigError, match="no such model folder"):
        VideoChatProcessor.from_pretrained(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_dirs["qwen3_vl"].iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "processor_config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="processor_config.json: not a readable JSON file"):
        VideoChatProcessor.from_pretrained(broken)


def test_loads_a_released_style_folder(tmp_path, tiny_dirs):
    """Released Qwen2.5-VL folders hold only preprocessor_config.json (min/max_pixels) and
    chat_template.json; the processor reads its budgets and template from them."""
    import json

    folder = tmp_path / "released"
    folder.mkdir()
    for f in tiny_dirs["qwen2_5_vl"].iterdir():
        if f.name not in {
            "processor_config.json",
            "video_preprocessor_config.json",
            "chat_template.jinja",
            "preprocessor_config.json",
        }:
            (folder / f.name).write_bytes(f.read_bytes())
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Qwen2VLImageProcessor",
                "min_pixels": 3136,
                "max_pixels": 12845056,
                "patch_size": 14,
                "temporal_patch_size": 2,
                "merge_size": 2,
                "resample": 3,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
            }
        )
    )
    template = "{% for m in messages %}[{{ m['role'] }}]{% endfor %}"
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    processor = VideoChatProcessor.from_pretrained(folder)
    assert (processor.video.min_pixels, processor.video.max_pixels) == (3136, 12845056)
    assert processor.chat_template == template
    assert processor.apply_chat_template([{"role": "user", "content": "x"}]) == "[user]"


@pytest.mark.parametrize("name", ["qwen2_5_vl", "qwen3_vl"])
def test_clips_from_the_video_pipeline_are_not_resized_again(name, loaded):
    """A hieroaction.video Clip, gridded by the frame settings, enters the model as it is."""
    import numpy as np

    from hieroaction.models.video_inputs import normalize_video, patchify, process_video
    from hieroaction.video import Clip, FrameConfig, resize_clip

    model, processor = loaded[name]
    raw = make_clip(8, 180, 320, seed=4)
    indices = np.arange(0, 32, 4) + 100
    clip = Clip(
        frames=raw.frames,
        indices=indices,
        timestamps=(indices - 100) / 25.0,
        fps=25.0,
        fps_source="record",
        source="synthetic.mp4",
        start_frame=100,
        end_frame=140,
        decoder="pyav",
        source_size=(180, 320),
    )
    config = FrameConfig.for_family(name, min_pixels=3136, max_pixels=8 * 12544)
    cached = resize_clip(clip, config)
    settings = processor.video.for_frames(config)
    features = process_video(cached.frames, cached.timestamps, cached.fps, settings)
    assert features.frame_size == (cached.height, cached.width) != (180, 320)
    tensor = torch.from_numpy(cached.frames).permute(0, 3, 1, 2)
    expected, _ = patchify(
        normalize_video(tensor, settings),
        settings.patch_size,
        settings.merge_size,
        settings.temporal_patch_size,
    )
    assert torch.equal(features.pixel_values_videos, expected)
    processor_for_clip = VideoChatProcessor(processor.family, processor.tokenizer, video=settings)
    with torch.no_grad():
        assert torch.isfinite(model(**processor_for_clip(video_messages(), cached)).logits).all()
