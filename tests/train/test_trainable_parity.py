"""SFT and HPL make a model ready to learn in one way (hieroaction.models.loading): the same
``lora:`` and ``trainable:`` sections give the same trainable parameters in both trainers."""

from __future__ import annotations

import pytest

from hieroaction.config import load_config
from hieroaction.train.hpl import HPLConfig, HPLTrainer
from hieroaction.train.sft import SFTConfig, check_sft_config, load_for_training

FRAMES = ["data.frames.num_frames=4", "data.frames.min_pixels=3136", "data.frames.max_pixels=3136"]


def _trainable(model) -> list[str]:
    # PEFT wraps the model (base_model.model.*); HPL prepares it with accelerate: compare the
    # names the two trainers' models give their parameters after unwrapping
    return sorted(n.removeprefix("module.") for n, p in model.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("extra", [
    ["lora.enabled=true", "lora.r=4"],
    ["lora.enabled=true", "lora.r=4", "trainable.vision=true"],
    ["lora.enabled=false"],
], ids=["lora", "lora+vision", "full"])
def test_sft_and_hpl_train_the_same_parameters(tiny_models, synth_data, frame_cache, tmp_path, extra):
    common = [f"model={tiny_models['qwen2_5_vl']}", f"data.records={synth_data}",
              f"data.cache_dir={frame_cache}", *FRAMES, *extra]
    sft = load_config(SFTConfig, None, [*common, f"output_dir={tmp_path / 'sft'}", "precision=fp32"])
    sft_model, _ = load_for_training(check_sft_config(sft))
    hpl = load_config(HPLConfig, None, [*common, f"output_dir={tmp_path / 'hpl'}", "group_size=2",
                                        "data.eval_split=none", "precision=fp32"])
    hpl_model = HPLTrainer(hpl).policy

    names = _trainable(sft_model)
    assert names == _trainable(hpl_model)
    adapted_vision = [n for n in names if ".visual." in n and "lora_" in n and ".merger." not in n]
    if "lora.enabled=false" in extra:
        assert not any("lora_" in n for n in names)
        assert not any(".visual.blocks." in n for n in names)  # the vision tower stays frozen
        assert any(".visual.merger." in n for n in names)  # the projector learns
    elif "trainable.vision=true" in extra:
        assert adapted_vision  # the switch puts adapters on the vision tower
    else:
        assert not adapted_vision  # by default the vision tower gets no adapter
        assert any("lora_" in n for n in names)
