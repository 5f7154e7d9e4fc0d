"""Tiny models: built offline from a config, saved, reloaded, and run on video on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from hieroaction.errors import ConfigError
from hieroaction.models.families import get_family
from hieroaction.models import load_model_and_processor
from hieroaction.models.tiny import (
    build_tiny,
    checkpoint_parameters,
    count_parameters,
    tiny_spec,
)
from tests.models.clips import make_clip, video_messages

FAMILIES = ("qwen2_5_vl", "qwen3_vl")
STANDARD_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "processor_config.json",
}


@pytest.mark.parametrize("name", FAMILIES)
def test_checkpoint_files_and_real_class(name, tiny_dirs, loaded):
    family = get_family(name)
    assert STANDARD_FILES <= {p.name for p in tiny_dirs[name].iterdir()}
    model, processor = loaded[name]
    assert type(model) is family.model_class
    assert processor.family is family
    counts = count_parameters(model)
    assert counts["vision"] > 0 and counts["language"] > 0
    assert counts["total"] == checkpoint_parameters(tiny_dirs[name]) < 1_000_000


@pytest.mark.parametrize("name", FAMILIES)
def test_config_token_ids_match_tokenizer(name, loaded):
    model, processor = loaded[name]
    tok, cfg = processor.tokenizer, model.config
    assert (
        cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>") == processor.video_token_id
    )
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert len(tok) <= cfg.text_config.vocab_size
    gen = model.generation_config
    assert gen.eos_token_id == [
        tok.convert_tokens_to_ids("<|im_end|>"),
        tok.convert_tokens_to_ids("<|endoftext|>"),
    ]
    assert gen.pad_token_id == tok.pad_token_id
    # Every special token is one token, and ordinary text never produces one.
    for token in get_family(name).special_tokens:
        assert tok(token)["input_ids"] == [tok.convert_tokens_to_ids(token)]
    sar = (
        '<step label="take-off" start="1.2" end="2.0" quality="7.5">clean</step>'
        "<score>74.40</score>"
    )
    ids = tok(sar)["input_ids"]
    assert tok.decode(ids) == sar and max(ids) < tok.convert_tokens_to_ids("<|endoftext|>")


@pytest.mark.parametrize("name", FAMILIES)
def test_processor_saved_configs_load_with_transformers(name, tiny_dirs):
    """The saved files are transformers' standard ones (classes that import without torchvision)."""
    from transformers import AutoConfig, AutoTokenizer

    folder = tiny_dirs[name]
    assert AutoConfig.from_pretrained(folder).model_type == name
    tok = AutoTokenizer.from_pretrained(folder)
    assert "<|video_pad|>" in tok.apply_chat_template(video_messages(), tokenize=False)
    nested = json.loads((folder / "processor_config.json").read_text())
    assert nested["processor_class"] == get_family(name).processor_class_name
    if name == "qwen3_vl":
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import (
            Qwen3VLVideoProcessor,
        )

        video = Qwen3VLVideoProcessor.from_pretrained(folder)
        spec = tiny_spec(name)
        assert (video.size["shortest_edge"], video.size["longest_edge"]) == (
            spec.min_pixels,
            spec.max_pixels,
        )
        assert video.do_sample_frames is False and video.patch_size == 16


@pytest.mark.parametrize("name", FAMILIES)
def test_forward_and_generate_with_video(name, loaded):
    model, processor = loaded[name]
    inputs = processor(video_messages(), make_clip(8, seed=1))
    with torch.no_grad():
        out = model(**inputs)
        generated = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.logits.shape == (
        1,
        inputs["input_ids"].shape[1],
        model.config.text_config.vocab_size,
    )
    assert torch.isfinite(out.logits).all()
    new = generated[0, inputs["input_ids"].shape[1] :]
    assert 1 <= new.numel() <= 6
    assert isinstance(processor.decode(new), str)


@pytest.mark.parametrize("name", FAMILIES)
def test_a_different_clip_changes_the_logits(name, loaded):
    model, processor = loaded[name]
    a = processor(video_messages(), make_clip(8, seed=1))
    b = processor(video_messages(), make_clip(8, seed=2))
    assert torch.equal(a["input_ids"], b["input_ids"])
    with torch.no_grad():
        la, lb = model(**a).logits[0, -1], model(**b).logits[0, -1]
        again = model(**a).logits[0, -1]
    assert torch.equal(la, again)
    assert (la - lb).abs().max() > 1e-4


@pytest.mark.parametrize("name", FAMILIES)
def test_rope_positions_are_3d(name, loaded):
    model, processor = loaded[name]
    inputs = processor(video_messages(), make_clip(8, seed=1))
    extra = (
        {"second_per_grid_ts": inputs["second_per_grid_ts"]}
        if "second_per_grid_ts" in inputs
        else {}
    )
    positions, _ = model.model.get_rope_index(
        inputs["input_ids"],
        inputs["mm_token_type_ids"],
        video_grid_thw=inputs["video_grid_thw"],
        attention_mask=inputs["attention_mask"],
        **extra,
    )
    video = inputs["mm_token_type_ids"][0] == 2
    pos = positions[:, 0]
    one_d = torch.arange(pos.shape[1])
    # Video tokens get distinct height and width positions; text tokens share one position.
    assert not torch.equal(pos[1, video], pos[2, video])
    assert torch.equal(pos[0, ~video], pos[1, ~video]) and torch.equal(
        pos[1, ~video], pos[2, ~video]
    )
    assert not torch.equal(pos[0], one_d)
    # The video's positions are compressed: the sequence ends before its 1-D length.
    assert pos.max() < inputs["input_ids"].shape[1] - 1
    if name == "qwen2_5_vl":
        # Without mm_token_type_ids the model silently falls back to 1-D positions.
        no_types = {k: v for k, v in inputs.items() if k != "mm_token_type_ids"}
        with torch.no_grad():
            assert not torch.allclose(model(**inputs).logits, model(**no_types).logits)
    else:
        with pytest.raises(ValueError, match="mm_token_type_ids"):
            model(**{k: v for k, v in inputs.items() if k != "mm_token_type_ids"})


def test_qwen25_temporal_positions_follow_frame_times(loaded):
    """Temporal rope id of patch k = tokens_per_second * second_per_grid_ts * k (after text)."""
    model, processor = loaded["qwen2_5_vl"]
    tps = model.config.vision_config.tokens_per_second
    for fps, step in ((25.0, 25), (25.0, 50)):  # one frame per second, one every two seconds
        inputs = processor(video_messages(), make_clip(8, fps=fps, step=step))
        positions, _ = model.model.get_rope_index(
            inputs["input_ids"],
            inputs["mm_token_type_ids"],
            video_grid_thw=inputs["video_grid_thw"],
            second_per_grid_ts=inputs["second_per_grid_ts"],
            attention_mask=inputs["attention_mask"],
        )
        video = inputs["mm_token_type_ids"][0] == 2
        temporal = positions[0, 0, video]
        t = int(inputs["video_grid_thw"][0, 0])
        per_patch = temporal.reshape(t, -1)[:, 0] - temporal[0]
        seconds = inputs["second_per_grid_ts"].item()
        assert seconds == pytest.approx(2 * step / fps)
        assert per_patch.tolist() == [int(k * tps * seconds) for k in range(t)]


def test_seed_controls_the_weights(tmp_path):
    a = build_tiny("qwen3_vl", tmp_path / "a", seed=1)
    b = build_tiny("qwen3_vl", tmp_path / "b", seed=1)
    c = build_tiny("qwen3_vl", tmp_path / "c", seed=2)
    blob = lambda p: (p / "model.safetensors").read_bytes()
    assert blob(a) == blob(b) != blob(c)
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()


def test_bad_requests_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown model family 'qwen9'"):
        build_tiny("qwen9", tmp_path / "x")
    with pytest.raises(ConfigError, match="unknown model size 'huge'"):
        build_tiny("qwen3_vl", tmp_path / "x", size="huge")
    assert not (tmp_path / "x").exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty.*--overwrite"):
        build_tiny("qwen3_vl", full)
    assert (full / "keep.txt").exists()
    build_tiny("qwen3_vl", full, overwrite=True)
    assert not (full / "keep.txt").exists() and (full / "config.json").is_file()
    with pytest.raises(ConfigError, match="no such model folder"):
        load_model_and_processor(tmp_path / "missing")


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_small_size_is_10_to_30m_and_generates(name, tmp_path):
    path = build_tiny(name, tmp_path / name, size="small")
    model, processor = load_model_and_processor(path)
    assert 10_000_000 <= count_parameters(model)["total"] <= 30_000_000
    inputs = processor(video_messages(), make_clip(16, 128, 128))
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
