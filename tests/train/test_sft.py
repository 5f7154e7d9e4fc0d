"""SFT on the tiny models and the synthetic benchmark: learning, checkpoints, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hieroaction import cli
from hieroaction.config import config_from_dict, save_config
from hieroaction.errors import ConfigError
from hieroaction.models import load_model_and_processor
from hieroaction.train.data import SupervisedCollator, SupervisedDataset, load_examples
from hieroaction.train.sft import (
    SFTConfig,
    check_sft_config,
    complete_checkpoints,
    read_data_order,
    train_sft,
)


def _losses(result) -> dict[int, float]:
    return {h["step"]: h["loss"] for h in result.log_history if "loss" in h}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_loss_falls_and_the_output_reloads(sft_settings, tiny_models):
    settings = sft_settings(max_steps=8, save_steps=4, batch_size=2, report_to=["tensorboard"])
    result = train_sft(config_from_dict(SFTConfig, settings), progress=False)
    losses = _losses(result)
    assert result.global_step == 8 and len(losses) == 8
    assert losses[8] < losses[1] - 0.5, losses

    out = result.output_dir
    assert [p.name for p in result.checkpoints] == ["checkpoint-4", "checkpoint-8"]
    model, processor = load_model_and_processor(out)
    assert processor.video.max_pixels == settings["data"]["frames"]["max_pixels"]
    assert processor.family.name == "qwen2_5_vl"
    # The last checkpoint holds the same weights and loads the same way.
    last, _ = load_model_and_processor(out / "checkpoint-8")
    for (name, value), (_, other) in zip(model.state_dict().items(), last.state_dict().items()):
        assert torch.equal(value, other), name
    load_model_and_processor(out / "checkpoint-4")

    # Default trainable parts: the vision tower stays frozen, the projector and language model learn.
    before, after = _weights(tiny_models["qwen2_5_vl"]), _weights(out)
    vision = [n for n in before if "visual.blocks." in n]
    merger = [n for n in before if "visual.merger." in n]
    language = [n for n in before if "model.layers." in n]
    assert vision and all(torch.equal(before[n], after[n]) for n in vision)
    assert any(not torch.equal(before[n], after[n]) for n in merger)
    assert any(not torch.equal(before[n], after[n]) for n in language)

    assert list((out / "runs").rglob("events.out.tfevents.*")), "no TensorBoard log"
    order = read_data_order(out)
    assert sorted(order) == list(range(1, 9)) and all(len(ids) == 2 for ids in order.values())


class _Crash(Exception):
    pass


def _crash_at(step: int):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise _Crash(f"simulated crash after step {step}")

    return Crash()


@pytest.mark.parametrize("method", ["full", "lora"])
def test_resume_continues_at_the_step_with_the_same_data_order(method, sft_settings, tmp_path):
    # 3 examples, micro-batches of 1, 2 per step: step 3 starts in the middle of epoch 2, so
    # resuming must skip exactly the batches already seen. The restored weights must be the
    # checkpoint's (transformers 5.24's own reload leaves full models untouched).
    common = dict(max_steps=5, save_steps=2, gradient_accumulation_steps=2, data={"max_train_samples": 3})
    if method == "lora":
        common.update(lora={"enabled": True, "r": 4}, learning_rate=1e-2)
    reference = train_sft(
        config_from_dict(SFTConfig, sft_settings(output_dir=str(tmp_path / "ref"), **common)), progress=False
    )
    crashed_dir = tmp_path / "crashed"
    config = config_from_dict(SFTConfig, sft_settings(output_dir=str(crashed_dir), **common))
    with pytest.raises(_Crash):
        train_sft(config, callbacks=[_crash_at(3)], progress=False)
    assert [p.name for p in complete_checkpoints(crashed_dir)] == ["checkpoint-2"]

    # A fresh run into the same folder is refused; resume: auto continues from step 2.
    with pytest.raises(ConfigError, match="resume: auto"):
        check_sft_config(config)
    resumed = train_sft(
        config_from_dict(SFTConfig, sft_settings(output_dir=str(crashed_dir), resume="auto", **common)),
        progress=False,
    )
    assert resumed.resumed_from == crashed_dir / "checkpoint-2"
    assert resumed.global_step == 5
    # Every step ran once (the crashed step 3 is logged again, not twice), on the same records.
    assert read_data_order(crashed_dir) == read_data_order(reference.output_dir)
    ref_losses = _losses(reference)
    assert sorted(_losses(resumed)) == sorted(ref_losses) == [1, 2, 3, 4, 5]
    for step, loss in _losses(resumed).items():
        assert loss == pytest.approx(ref_losses[step], rel=1e-4), step
    for name, value in _weights(reference.output_dir).items():
        torch.testing.assert_close(_weights(crashed_dir)[name], value, rtol=1e-4, atol=1e-5)
    # and the run trained: its weights moved from the model it started from (the losses of steps
    # 1 and 5 come from different examples, so comparing them says little)
    start = _weights(Path(sft_settings()["model"]))
    trained = _weights(reference.output_dir)
    assert trained.keys() == start.keys()
    assert max(float((trained[name] - start[name]).abs().max()) for name in start) > 1e-3


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_the_video_reaches_the_model(family, sft_settings, tiny_models):
    settings = sft_settings(family)
    config = config_from_dict(SFTConfig, settings)
    examples = load_examples(config.data, progress=False)["train"]
    model, processor = load_model_and_processor(tiny_models[family])
    processor.video = processor.video.for_frames(config.data.frames)
    dataset = SupervisedDataset(examples, processor)
    collate = SupervisedCollator(pad_token_id=0)
    batch = collate([dataset[0]])
    batch.pop("example_index")
    other = examples[1].clip.frames
    assert other.shape == examples[0].clip.frames.shape and not (other == examples[0].clip.frames).all()
    swapped = dict(batch)
    swapped["pixel_values_videos"] = collate([dataset[1]])["pixel_values_videos"]
    assert swapped["pixel_values_videos"].shape == batch["pixel_values_videos"].shape
    with torch.no_grad():
        logits = model(**batch).logits
        logits_other = model(**swapped).logits
    answer = batch["labels"][0] != -100
    assert not torch.allclose(logits[0, answer], logits_other[0, answer])


def test_lora_run_merges_and_keeps_the_adapter(sft_settings, tiny_models):
    settings = sft_settings(max_steps=2, save_steps=2, lora={"enabled": True, "r": 4, "alpha": 8})
    result = train_sft(config_from_dict(SFTConfig, settings), progress=False)
    out = result.output_dir
    assert result.adapter_dir == out / "adapter"
    assert (out / "adapter" / "adapter_config.json").is_file()
    model, processor = load_model_and_processor(out)  # a plain merged model
    assert not any("lora" in n for n, _ in model.named_parameters())
    before, after = _weights(tiny_models["qwen2_5_vl"]), _weights(out)
    assert all(torch.equal(before[n], after[n]) for n in before if "visual.blocks." in n)
    assert any(not torch.equal(before[n], after[n]) for n in before if "q_proj" in n)
    assert any(not torch.equal(before[n], after[n]) for n in before if "visual.merger." in n)
    # The LoRA checkpoint resumes like a full one.
    assert (out / "checkpoint-2" / "adapter_model.safetensors").is_file()


def test_lora_without_merge_saves_the_adapter_in_output_dir(sft_settings, tmp_path):
    settings = sft_settings(max_steps=1, save_steps=1, lora={"enabled": True, "r": 2, "merge": False})
    result = train_sft(config_from_dict(SFTConfig, settings), progress=False)
    assert result.adapter_dir == result.output_dir
    config = json.loads((result.output_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == settings["model"]
    # the adapter folder loads as a model: its base with the adapter merged in
    from peft import PeftModel

    from hieroaction.inference import Assessor

    merged, processor = load_model_and_processor(result.output_dir)
    base, _ = load_model_and_processor(settings["model"])
    before = {name: value.clone() for name, value in base.state_dict().items()}
    expected = PeftModel.from_pretrained(base, str(result.output_dir)).merge_and_unload().state_dict()
    assert set(merged.state_dict()) == set(before)  # no lora_A/lora_B left
    for name, value in merged.state_dict().items():
        assert torch.equal(value, expected[name]), name
    assert any(not torch.equal(merged.state_dict()[n], v) for n, v in before.items())  # the adapter changed it
    assessor = Assessor.from_pretrained(result.output_dir)  # with the folder's inference settings
    assert assessor.config.domain == "synth"
    # an adapter whose base model cannot be found: one sentence naming the folder
    (result.output_dir / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(tmp_path / "gone")}))
    with pytest.raises(ConfigError, match="the LoRA adapter's base model cannot be loaded"):
        load_model_and_processor(result.output_dir)
    with pytest.raises(ConfigError, match="do not fit the model"):
        bad = sft_settings(output_dir=str(tmp_path / "bad"), lora={"enabled": True, "target_modules": ["nope_proj"]})
        train_sft(config_from_dict(SFTConfig, bad), progress=False)


# ----- bad input: one sentence, before any model is loaded -------------------------------------


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``hieroaction train sft`` through the real CLI entry point; (status, stderr)."""
    import hieroaction.models.loading as loading
    import hieroaction.train.sft as sft

    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(loading, "load_model_and_processor", must_not_load)
    monkeypatch.setattr(sft, "load_model_and_processor", must_not_load)

    def run(recipe: Path, *overrides: str) -> tuple[int, str]:
        status = cli.main(["train", "sft", "--config", str(recipe), "--quiet", *overrides])
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("hieroaction: error:")]
        assert len(errors) == (1 if status else 0), err
        return status, errors[0] if errors else ""

    return run


@pytest.fixture
def recipe(sft_settings, tmp_path) -> Path:
    path = tmp_path / "recipe.yaml"
    save_config(config_from_dict(SFTConfig, sft_settings()), path)
    return path


def test_bad_config_key_and_type(run_cli, recipe):
    status, error = run_cli(recipe, "--lora.rank", "8")
    assert status == 2 and "unknown config key 'lora.rank'" in error
    status, error = run_cli(recipe, "--batch_size", "two")
    assert status == 2 and "'batch_size' must be an integer" in error
    status, error = run_cli(recipe, "--learning_rate", "-1")
    assert status == 2 and "'learning_rate' must be positive" in error
    status, error = run_cli(recipe, "--data.frames.factor", "32")
    assert status == 2 and "frame settings do not fit the model" in error


def test_missing_model_path(run_cli, recipe, tmp_path):
    status, error = run_cli(recipe, "--model", str(tmp_path / "no-such-model"))
    assert status == 2 and f"model {tmp_path / 'no-such-model'}: no such model folder" in error
    empty = tmp_path / "empty"
    empty.mkdir()
    status, error = run_cli(recipe, "--model", str(empty))
    assert status == 2 and "no config.json" in error


def test_bad_dataset(run_cli, recipe, synth_data, tmp_path):
    lines = synth_data.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], "{broken"] + lines[1:]) + "\n")
    status, error = run_cli(recipe, "--data.records", str(bad))
    assert status == 2 and f"{bad}:2: not a valid record" in error and "bad_records: skip" in error


def test_check_only_validates(run_cli, recipe):
    status, _ = run_cli(recipe, "--check")
    assert status == 0


def test_resume_refuses_a_changed_recipe(sft_settings, tmp_path):
    out = tmp_path / "run"
    config = config_from_dict(SFTConfig, sft_settings(output_dir=str(out)))
    checkpoint = out / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    save_config(config, out / "sft_config.yaml")
    (out / "checkpoint-4").mkdir()  # a save cut short: no trainer state
    assert complete_checkpoints(out) == []
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    assert complete_checkpoints(out) == [checkpoint]

    changed = config_from_dict(SFTConfig, sft_settings(output_dir=str(out), resume="auto", learning_rate=1e-4))
    with pytest.raises(ConfigError, match="cannot resume: learning_rate was 0.002"):
        check_sft_config(changed)
    longer = config_from_dict(SFTConfig, sft_settings(output_dir=str(out), resume="auto", max_steps=10))
    assert check_sft_config(longer).resume_from == checkpoint
    with pytest.raises(ConfigError, match="not a complete checkpoint"):
        check_sft_config(config_from_dict(SFTConfig, sft_settings(output_dir=str(out), resume=str(out / "checkpoint-4"))))


def test_the_output_folder_says_how_to_prompt_the_model(sft_settings, tmp_path):
    """assess/serve/evaluate start from the frames and prompt the model was trained with."""
    import argparse

    from hieroaction.cli.assess import config_from_args
    from hieroaction.data.records import read_jsonl
    from hieroaction.inference import Assessor
    from hieroaction.inference.saved import PROMPT_FILE, SETTINGS_FILE
    from hieroaction.prompts import build_prompt

    settings = sft_settings(max_steps=1, save_steps=1, data={"frames": {"strategy": "steps", "num_frames": 6}})
    # a copy of the shared template, deleted below
    template = tmp_path / "own_template.yaml"
    template.write_text(Path(settings["data"]["prompt"]["template"]).read_text())
    settings["data"]["prompt"]["template"] = str(template)
    config = config_from_dict(SFTConfig, settings)
    out = train_sft(config, progress=False).output_dir
    assert (out / SETTINGS_FILE).is_file()
    assert (out / PROMPT_FILE).read_text() == template.read_text()
    record = next(r for r in read_jsonl(settings["data"]["records"]) if r.split == "train")
    example = load_examples(config.data, targets=False, progress=False)["train"][0]
    trained_prompt = build_prompt(record, example.clip, config.data.prompt)
    template.unlink()  # the model folder holds its own copy: it works without the recipe's file

    assessor = Assessor.from_pretrained(out)
    used = assessor.config
    assert used.prompt.template == str((out / PROMPT_FILE).resolve())
    assert used.domain == "synth"
    # frames placed by the annotated steps cannot be had for a new clip: as many, uniformly
    assert used.frames["strategy"] == "uniform" and used.frames["num_frames"] == 6
    assert used.frames["max_pixels"] == config.data.frames.max_pixels
    assert build_prompt(used.domain, example.clip, used.prompt) == trained_prompt
    assert build_prompt(used.domain, example.clip) != trained_prompt  # the default prompt differs
    result = assessor.assess(record.video.path, keep_clip=True)
    assert result.error is None and len(result.clip.frames) == 6

    # the command line: the folder's settings, then --set, then flags
    args = argparse.Namespace(model=str(out), config=None, set=["frames.num_frames=8"], domain=None,
                              batch_size=None, max_new_tokens=None, device=None, dtype=None)
    from_cli = config_from_args(args)
    assert from_cli.frames["num_frames"] == 8 and from_cli.frames["strategy"] == "uniform"
    assert from_cli.prompt.template == used.prompt.template and from_cli.domain == "synth"
    args.domain = "diving"
    assert config_from_args(args).domain == "diving"


def test_frame_grid_and_budget_left_out_are_the_model_familys(sft_settings):
    # a recipe without a frame grid or budget fits either family's model
    for family, grid in (("qwen2_5_vl", (28, False, 100352)), ("qwen3_vl", (32, True, 131072))):
        config = config_from_dict(SFTConfig, sft_settings(family, data={"frames": {"num_frames": 4}}))
        plan = check_sft_config(config)
        frames = plan.config.data.frames
        assert (frames.factor, frames.clip_budget, frames.min_pixels) == grid, family
    # a grid the recipe sets on purpose is kept, and refused by a model that cannot use it
    q25_grid = {"num_frames": 4, "factor": 28, "clip_budget": False}
    config = config_from_dict(SFTConfig, sft_settings("qwen3_vl", data={"frames": q25_grid}))
    with pytest.raises(ConfigError, match=r"frame settings do not fit the model: factor=28 \(model expects 32\), "
                                          r"clip_budget=False \(model expects True\)"):
        check_sft_config(config)
