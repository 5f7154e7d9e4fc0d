"""Every HPL recipe in configs/ runs a step with the tiny model of its family and a small
synthetic set."""

from pathlib import Path

import pytest

from hieroaction.config import load_config
from hieroaction.train.hpl import HPLConfig, HPLTrainer

CONFIGS = Path(__file__).parents[2] / "configs"
RECIPES = sorted((CONFIGS / "hpl").glob("*.yaml")) + sorted(
    p for p in (CONFIGS / "ablations").glob("*.yaml") if "sft" not in p.name
)


@pytest.fixture(scope="module")
def small_world(tmp_path_factory, tiny_models, synth_set):
    """(the session's tiny models by family, 10 clips of seed 0, a folder for the frame cache)."""
    return tiny_models, synth_set(10, 0) / "records.jsonl", tmp_path_factory.mktemp("recipes")


def test_there_are_recipes_for_both_datasets_and_sizes():
    names = {p.name for p in RECIPES}
    for ds in ("finediving", "mtl_aqa"):
        for family, size in (("qwen2_5_vl", "7b"), ("qwen2_5_vl", "3b"), ("qwen3_vl", "8b"), ("qwen3_vl", "4b")):
            for method in ("lora", "full"):
                assert f"{ds}_{family}_{size}_{method}.yaml" in names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_runs_a_step_with_the_tiny_model(recipe, small_world, tmp_path):
    models, records, root = small_world
    family = "qwen3_vl" if "_qwen3_vl_" in recipe.stem else "qwen2_5_vl"
    # 4 frames of the smallest grid cell (Qwen3-VL's budget covers the whole clip)
    budget = 3136 if family == "qwen2_5_vl" else 4 * 32 * 32
    config = load_config(HPLConfig, recipe, [
        f"model={models[family]}", f"output_dir={tmp_path / 'run'}", f"data.records={records}",
        f"data.cache_dir={root / 'cache'}", "data.decode_workers=1", "data.frames.num_frames=4",
        f"data.frames.min_pixels={budget}", f"data.frames.max_pixels={budget}", "max_steps=1", "group_size=2",
        "prompts_per_step=1", "max_completion_length=6", "eval_samples=1", "lora.r=4",
        "gradient_checkpointing=false",
    ])
    result = HPLTrainer(config).train()
    assert result.global_step == 1
    assert (tmp_path / "run" / "final" / "config.json").is_file()
