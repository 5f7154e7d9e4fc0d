"""The one home of checkpoints: resolving, loading, precision."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from hieroaction.errors import ConfigError
from hieroaction.models.loading import (
    LoraSettings,
    TrainableParts,
    apply_lora,
    checkpoint_family,
    load_model_and_processor,
    looks_like_hub_id,
    normalise_precision,
    resolve_checkpoint,
    resolve_precision,
    torch_dtype,
)


def test_resolve_checkpoint_says_what_is_wrong(tmp_path, tiny_dirs):
    assert resolve_checkpoint(tiny_dirs["qwen2_5_vl"]) == tiny_dirs["qwen2_5_vl"]
    with pytest.raises(ConfigError, match="no model given"):
        resolve_checkpoint("")
    file = tmp_path / "weights.bin"
    file.write_bytes(b"x")
    with pytest.raises(ConfigError, match="is a file"):
        resolve_checkpoint(file)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no config.json"):
        resolve_checkpoint(tmp_path / "empty")
    with pytest.raises(ConfigError, match="no such model folder"):
        resolve_checkpoint(tmp_path / "runs" / "sft" / "best")


def test_hub_ids_and_local_paths_are_told_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert looks_like_hub_id("Qwen/Qwen2.5-VL-7B-Instruct")
    assert not looks_like_hub_id("./Qwen/model") and not looks_like_hub_id("a/b/c")
    (tmp_path / "runs").mkdir()
    # runs/ exists here: "runs/sft" is a mistyped local folder, not an organisation's model
    assert not looks_like_hub_id("runs/sft")
    with pytest.raises(ConfigError, match="no such model folder"):
        resolve_checkpoint("runs/sft")


def test_precision_has_one_vocabulary():
    assert normalise_precision("bfloat16") == "bf16" and normalise_precision("fp32") == "fp32"
    with pytest.raises(ConfigError, match="precision must be auto, bf16, fp16 or fp32, got 'half'"):
        normalise_precision("half")
    assert torch_dtype("bf16") is torch.bfloat16 and torch_dtype("float32") is torch.float32
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16", torch.device("cpu"))


def test_an_adapter_folder_loads_as_its_base_with_the_adapter_merged(tmp_path, tiny_dirs):
    base = tiny_dirs["qwen2_5_vl"]
    model, processor = load_model_and_processor(base)
    peft_model = apply_lora(model, LoraSettings(enabled=True, r=2), TrainableParts(), seed=0)
    with torch.no_grad():  # LoRA starts as a no-op (B = 0): move it so the merge shows
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.fill_(0.01)
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    assert checkpoint_family(adapter).name == "qwen2_5_vl"
    merged, merged_processor = load_model_and_processor(adapter)
    expected = peft_model.merge_and_unload().state_dict()
    for name, value in merged.state_dict().items():
        assert torch.allclose(value, expected[name]), name
    assert merged_processor.tokenizer.get_vocab() == processor.tokenizer.get_vocab()

    # an adapter whose base is gone: one sentence naming the adapter
    moved = tmp_path / "moved"
    shutil.copytree(adapter, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone")
    (moved / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="adapter's base model cannot be loaded"):
        load_model_and_processor(moved)


def test_a_folder_without_a_processor_is_refused_before_loading(tmp_path, tiny_dirs):
    folder = tmp_path / "no_processor"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        shutil.copy(tiny_dirs["qwen2_5_vl"] / name, folder / name)
    with pytest.raises(ConfigError, match="has no processor"):
        load_model_and_processor(folder)
