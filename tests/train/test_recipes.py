"""Every SFT recipe in configs/sft/ loads as written and trains for a step with the tiny model of
its family (Qwen2.5-VL or Qwen3-VL) and the synthetic benchmark swapped in through command-line
overrides; the accelerate configs are valid accelerate files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hieroaction.errors import ConfigError
from hieroaction.config import config_to_dict, read_recipe
from hieroaction.train.sft import load_sft_config, train_sft

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = sorted((CONFIGS / "sft").glob("*.yaml"))
ACCELERATE = sorted((CONFIGS / "accelerate").glob("*.yaml"))
# The released checkpoints of each family's recipes: size in the file name -> model id.
MODEL_IDS = {
    "qwen2_5_vl": {"7b": "Qwen/Qwen2.5-VL-7B-Instruct", "3b": "Qwen/Qwen2.5-VL-3B-Instruct"},
    "qwen3_vl": {"8b": "Qwen/Qwen3-VL-8B-Instruct", "4b": "Qwen/Qwen3-VL-4B-Instruct"},
}
# Each family's frame grid: (factor, clip_budget).
GRIDS = {"qwen2_5_vl": (28, False), "qwen3_vl": (32, True)}


def family_of(name: str) -> str:
    """The model family a recipe's file name names (synth_small: Qwen2.5-VL)."""
    return "qwen3_vl" if "_qwen3_vl_" in name else "qwen2_5_vl"


def test_the_recipe_set_is_complete():
    names = {p.stem for p in RECIPES}
    for dataset in ("finediving", "mtl_aqa"):
        for family, sizes in MODEL_IDS.items():
            for size in sizes:
                for method in ("lora", "full"):
                    assert f"{dataset}_{family}_{size}_{method}" in names
    assert "synth_small" in names
    assert {p.stem for p in ACCELERATE} >= {"1gpu", "8gpu_zero3", "multinode_zero3", "8gpu_zero2", "8gpu_fsdp"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads_as_written(recipe):
    config = load_sft_config(recipe)
    name = recipe.stem
    if name != "synth_small":
        size, method = name.removesuffix("_steps").split("_")[-2:]
        family = family_of(name)
        assert config.model == MODEL_IDS[family][size]
        assert config.lora.enabled == (method == "lora")
        assert config.output_dir == f"runs/sft/{name}"
        assert config.data.eval_split is None  # no validation split: never select on test
        # the grid is set on purpose, for the family the recipe is named after
        frames = config.data.frames
        assert (frames.factor, frames.clip_budget) == GRIDS[family] and frames.unset == ()
        assert config.data.records.startswith(f"data/{name.split('_qwen')[0]}/")
        assert config.gradient_checkpointing
        # Frames are sampled as evaluate/assess/serve sample them, except in the explicit
        # step-placement ablation (docs/training.md, "Frame sampling").
        expected = "steps" if name.endswith("_steps") else "uniform"
        assert config.data.frames.strategy == expected
    assert config.resume == "auto"
    assert "tensorboard" in config.report_to


def test_the_steps_ablation_differs_from_its_recipe_only_in_frame_placement():
    steps = config_to_dict(load_sft_config(CONFIGS / "sft" / "finediving_qwen2_5_vl_7b_lora_steps.yaml"))
    plain = config_to_dict(load_sft_config(CONFIGS / "sft" / "finediving_qwen2_5_vl_7b_lora.yaml"))
    assert steps["data"]["frames"].pop("strategy") == "steps"
    assert plain["data"]["frames"].pop("strategy") == "uniform"
    assert steps.pop("output_dir").endswith("_steps")
    plain.pop("output_dir")
    assert steps == plain


def test_sft_and_hpl_recipes_sample_the_same_frames():
    # HPL starts from the SFT checkpoint: the same frames keep its prompts like the ones SFT
    # trained on (and share the frame cache); both are what inference samples.
    from hieroaction.config import load_config
    from hieroaction.train.hpl import HPLConfig

    for recipe in RECIPES:
        if recipe.stem == "synth_small" or recipe.stem.endswith("_steps"):
            continue
        hpl = CONFIGS / "hpl" / recipe.name
        sft_frames = load_sft_config(recipe).data.frames.to_dict()
        hpl_frames = load_config(HPLConfig, hpl, []).data.frames.to_dict()
        assert sft_frames == hpl_frames, recipe.stem


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_trains_a_step_with_the_tiny_model(recipe, tiny_models, synth_data, frame_cache, short_template, tmp_path):
    family = family_of(recipe.stem)
    # 6 frames of the smallest grid cell: 56x56 per frame (Qwen2.5-VL), 32x32 per frame within
    # the per-clip budget (Qwen3-VL)
    budget = "3136" if family == "qwen2_5_vl" else str(6 * 32 * 32)
    overrides = [
        "--model", str(tiny_models[family]),
        "--output_dir", str(tmp_path / "run"),
        "--data.records", str(synth_data),
        "--data.cache_dir", str(frame_cache),
        "--data.max_train_samples", "2",
        "--data.max_eval_samples", "1",
        "--data.decode_workers", "1",
        # 3 steps x 2 frames fit the step-aware strategy of the _steps ablation.
        "--data.frames.num_frames", "6",
        "--data.frames.min_pixels", budget,
        "--data.frames.max_pixels", budget,
        "--data.prompt.template", str(short_template),
        "--max_steps", "1",
        "--save_steps", "1",
        "--dataloader_num_workers", "0",
        "--report_to", "[none]",
    ]
    config = load_sft_config(recipe, overrides)
    result = train_sft(config, progress=False)
    assert result.global_step == 1
    assert (result.output_dir / "config.json").is_file()
    assert (result.output_dir / "checkpoint-1").is_dir()
    if config.lora.enabled:
        assert (result.output_dir / "adapter" / "adapter_config.json").is_file()
    if config.data.eval_split:
        assert any("eval_loss" in h for h in result.log_history)


def test_recipe_bases_merge_in_order_and_loops_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("learning_rate: 0.1\ndata: {records: a.jsonl, train_split: x}\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\ndata: {train_split: y}\n")
    (tmp_path / "c.yaml").write_text("base: [b.yaml]\nlearning_rate: 0.2\n")
    merged = read_recipe(tmp_path / "c.yaml")
    assert merged == {"learning_rate": 0.2, "data": {"records": "a.jsonl", "train_split": "y"}}
    assert load_sft_config(tmp_path / "c.yaml", ["--learning_rate", "0.3"]).learning_rate == 0.3
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="loop"):
        read_recipe(tmp_path / "loop.yaml")
    with pytest.raises(ConfigError, match="no such config file"):
        read_recipe(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.stem)
def test_accelerate_config_is_valid(path):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    config = load_config_from_file(str(path))
    assert config.num_processes == 8 * config.num_machines or path.stem == "1gpu"
    if "zero" in path.stem:
        assert config.distributed_type == DistributedType.DEEPSPEED
        assert config.deepspeed_config["zero_stage"] == int(path.stem[-1])
    if "zero3" in path.stem:
        # Saving a from_pretrained folder under ZeRO-3 needs the gathered 16-bit weights.
        assert config.deepspeed_config["zero3_save_16bit_model"] is True
    if "fsdp" in path.stem:
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
