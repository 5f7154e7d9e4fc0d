"""The demo's recipes load as ordinary SFT / HPL recipes, and its prompt and targets are compact."""

from __future__ import annotations

from pathlib import Path

import pytest

from hieroaction.demo.config import RecipeFiles, find_recipe
from hieroaction.demo.runner import hpl_recipe, sft_recipe
from hieroaction.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_recipes_load_with_the_demo_settings_filled_in(tmp_path):
    files = RecipeFiles()
    sft = sft_recipe(find_recipe(files.sft), model=tmp_path / "m", output_dir=tmp_path / "sft",
                     records=str(tmp_path / "r.jsonl"), seed=3)
    assert sft.seed == 3 and sft.data.records == str(tmp_path / "r.jsonl")
    # the template and phrase files are found wherever the demo runs from
    assert Path(sft.data.prompt.template).is_file()
    assert Path(sft.data.target.phrases).is_file()
    hpl = hpl_recipe(find_recipe(files.hpl), model=tmp_path / "sft", output_dir=tmp_path / "hpl",
                     records=sft.data.records, seed=3, steps=60, validations=2, val_clips=100)
    assert hpl.max_steps == 60 and hpl.max_seconds is None and hpl.model == str(tmp_path / "sft")
    # fixed work: validated at the start, at step 30 and at the end, on 100 clips
    assert hpl.eval_steps == 30 and hpl.eval_samples == 100 and hpl.eval_at_start
    assert hpl.shuffle_rewards is False and hpl.selection.metric == "spearman"
    # HPL samples answers to exactly the prompt and frames SFT trained on
    assert hpl.data.frames == sft.data.frames
    assert hpl.data.prompt == sft.data.prompt
    ablation = hpl_recipe(find_recipe(files.ablation), model=tmp_path / "sft", output_dir=tmp_path / "a",
                          records=sft.data.records, seed=3, steps=60, validations=2, val_clips=100,
                          shuffle_rewards=True)
    assert ablation.shuffle_rewards is True
    assert {k for k, w in ablation.rewards.weights.items() if w > 0} == {"score"}
    assert ablation.rewards.composition.mode == "sum"
    assert {k for k, w in hpl.rewards.weights.items() if w > 0} > {"score", "recognition", "sequence"}


def test_recipes_are_found_from_another_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_recipe(RecipeFiles().sft) == ROOT / RecipeFiles().sft
    with pytest.raises(ConfigError, match="no such recipe file"):
        find_recipe("configs/demo/nothing.yaml")


def test_compact_prompt_and_targets_fit_the_cpu_token_budget(tmp_path):
    """< 100 prompt tokens (without the video) and < 200 target tokens with the small model's
    tokenizer, for every action kind of a generated benchmark."""
    from hieroaction.models.tokenizer import build_tokenizer
    from hieroaction.models import get_family
    from hieroaction.prompts import build_prompt
    from hieroaction.prompts.builder import ClipInfo
    from hieroaction.sar.targets import build_target
    from hieroaction.synth import SynthConfig, build_record, sample_clip

    sft = sft_recipe(find_recipe(RecipeFiles().sft), model=tmp_path, output_dir=tmp_path,
                     records="r.jsonl", seed=0)
    family = get_family("qwen2_5_vl")
    tokenizer = build_tokenizer(family, vocab_size=2048)
    records = [build_record(sample_clip(i, 0, SynthConfig()), "train", f"v{i}.mp4", 12.0) for i in range(40)]
    target_config = sft.data.target_config()
    prompt_lengths, target_lengths = [], []
    for record in records:
        duration = (record.video.end_frame + 1) / 12.0
        messages = build_prompt(record, ClipInfo.evenly_spaced(8, duration), sft.data.prompt)
        text = "".join(part["text"] for m in messages for part in m["content"] if part["type"] == "text")
        prompt_lengths.append(len(tokenizer(text)["input_ids"]))
        target = build_target(record, target_config)
        assert record.action.label in target and "<score>" in target
        target_lengths.append(len(tokenizer(target)["input_ids"]))
    assert max(prompt_lengths) < 100
    assert max(target_lengths) < 200
