"""Memory plans of the shipped recipes (hieroaction.train.plan) and ``hieroaction plan``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hieroaction.cli import main
from hieroaction.errors import ConfigError
from hieroaction.models.memory import GiB, kv_cache_bytes
from hieroaction.train.plan import (
    clip_frames,
    fit_table,
    plan_recipe,
    recipe_kind,
    shipped_recipes,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
GPU_RECIPES = [p for p in shipped_recipes(CONFIGS) if p.stem != "synth_small"]


@pytest.mark.parametrize("recipe", GPU_RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_recipe_has_a_plan(recipe):
    plan = plan_recipe(recipe, gpus=8)
    assert plan.kind == recipe.parent.name == recipe_kind(recipe)
    assert plan.method == ("lora" if "_lora" in recipe.stem else "full")
    size = recipe.stem.split("_")[-2] if "_steps" not in recipe.stem else "7b"
    if "_qwen3_vl_" in recipe.stem:
        assert plan.arch.name == f"Qwen/Qwen3-VL-{size.upper()}-Instruct"
        # 16 frames of a 720p source within the per-clip budget of 16 x 256 tokens of 32 x 32:
        # 8 x 12 x 21 merged tokens
        assert plan.frames == (16, 384, 672) and plan.visual_tokens == 2016
    else:
        assert plan.arch.name == f"Qwen/Qwen2.5-VL-{size.upper()}-Instruct"
        # 16 frames of a 720p source at the recipes' 256 tokens per frame: 8 x 24 x 42 / 4 merged
        assert plan.frames == (16, 336, 588) and plan.visual_tokens == 2016
    for method in ("lora", "full"):
        by = plan.estimates[method]
        assert by["zero3"].weights < by["zero2"].weights
        assert by["zero2"].optimizer < by["ddp"].optimizer or method == "lora"
    assert plan.estimates["lora"]["ddp"].total < plan.estimates["full"]["ddp"].total
    if plan.kind == "hpl":
        # group_size 8 x (prompt + 512) tokens of KV cache, on top of the prefill
        kv = kv_cache_bytes(plan.arch, 8, plan.prompt_tokens + 512, 2)
        assert kv < plan.estimates[plan.method]["ddp"].rollout < 3 * kv


def test_frames_and_visual_tokens_follow_the_recipe():
    recipe = CONFIGS / "sft" / "finediving_qwen2_5_vl_7b_lora.yaml"
    from hieroaction.train.sft import load_sft_config

    frames = load_sft_config(recipe).data.frames
    # FineDiving's 455x256 frames fit the budget: 448x252, 8 x 18 x 32 / 4 = 1152 tokens
    assert clip_frames(frames, (256, 455)) == (16, 252, 448)
    assert plan_recipe(recipe, source=(256, 455)).visual_tokens == 1152
    fps = load_sft_config(recipe, ["--data.frames.strategy", "fps", "--data.frames.max_frames", "32"]).data.frames
    assert clip_frames(fps, (256, 455))[0] == 32  # fps: the most frames it may give


def test_fit_table_and_known_answers():
    plans = {p.stem + p.parent.name: plan_recipe(p, gpus=8) for p in GPU_RECIPES}
    rows = {r["recipe"]: r for r in fit_table(list(plans.values()), gpus=8)}
    lora_3b = rows[str(CONFIGS / "sft" / "finediving_qwen2_5_vl_3b_lora.yaml")]
    assert lora_3b["24 GB"] == "1 GPU"
    full_7b = rows[str(CONFIGS / "sft" / "finediving_qwen2_5_vl_7b_full.yaml")]
    assert full_7b["24 GB"] == "no" and full_7b["141 GB"] == "1 GPU"
    assert full_7b["40 GB"].startswith("8 x ")


def test_checkpointing_and_batch_change_the_plan():
    recipe = CONFIGS / "sft" / "mtl_aqa_qwen2_5_vl_7b_full.yaml"
    base = plan_recipe(recipe).estimates["full"]["ddp"]
    off = plan_recipe(recipe, overrides=["--gradient_checkpointing", "false"]).estimates["full"]["ddp"]
    assert off.activations > 5 * base.activations and off.recompute == 0 < base.recompute
    batch = plan_recipe(recipe, overrides=["--batch_size", "2"]).estimates["full"]["ddp"]
    assert batch.logits == 2 * base.logits


def test_a_local_model_folder_is_read(tiny_models, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"base: {CONFIGS / 'sft' / 'synth_small.yaml'}\nmodel: {tiny_models['qwen2_5_vl']}\n")
    plan = plan_recipe(recipe, source=(112, 112))  # the synthetic clips' frames: 4 x 4 x 4 tokens
    assert plan.arch.source == "config.json" and plan.visual_tokens == 64


def test_the_command_prints_a_plan_and_the_table(capsys):
    recipe = CONFIGS / "hpl" / "finediving_qwen2_5_vl_7b_lora.yaml"
    assert main(["plan", "--config", str(recipe), "--gpus", "8", "--gpu-memory", "80"], groups=("plan",)) == 0
    out = capsys.readouterr().out
    assert "Qwen/Qwen2.5-VL-7B-Instruct [table]" in out and "| lora (recipe) | zero3 |" in out
    assert "rollout: hf, 8 completions per prompt" in out
    assert main(["plan", "--config", str(recipe), "--json", "group_size=4"], groups=("plan",)) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["estimates"]["lora"]) == {"ddp", "fsdp", "zero2", "zero3"}
    assert data["estimates"]["full"]["ddp"]["bytes"]["total"] > data["estimates"]["lora"]["ddp"]["bytes"]["total"]
    assert main(["plan", "--configs", str(CONFIGS), "--gpu-memory", "141"], groups=("plan",)) == 0
    out = capsys.readouterr().out
    assert "| 141 GB |" in out and "finediving_qwen2_5_vl_7b_full.yaml | full | 1 GPU |" in out
    assert "skipped" in out  # the CPU demo's tiny model is not built here


def test_bad_arguments_are_one_sentence(capsys):
    recipe = str(CONFIGS / "sft" / "finediving_qwen2_5_vl_3b_lora.yaml")
    assert main(["plan", "--config", recipe, "--source", "720p"], groups=("plan",)) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
    assert main(["plan", "--config", recipe, "--gpus", "0"], groups=("plan",)) == 2
    with pytest.raises(ConfigError, match="no recipes"):
        shipped_recipes(CONFIGS / "nothing")
    assert GiB == 1024**3
