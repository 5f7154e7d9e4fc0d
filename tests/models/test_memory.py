"""The memory estimate (hieroaction.models.memory) on hand-computed cases, and the architecture
table against the real transformers classes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from hieroaction.errors import ConfigError
from hieroaction.models.memory import (
    Architecture,
    GiB,
    Rollout,
    TextArchitecture,
    VisionArchitecture,
    Workload,
    architecture_from_config,
    estimate_memory,
    find_architecture,
    known_architectures,
    kv_cache_bytes,
    layer_activation_elements,
)

# A toy Qwen2.5-VL small enough to count by hand.
TOY = Architecture(
    name="toy",
    family="qwen2_5_vl",
    text=TextArchitecture(hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                          num_key_value_heads=1, head_dim=4, vocab_size=32),
    vision=VisionArchitecture(depth=1, hidden_size=4, intermediate_size=8, num_heads=1, out_hidden_size=8,
                              patch_size=2),
)
# full fine-tuning of language model and projector, bf16, one sequence of 10 tokens (2 visual)
FULL = Workload(weight_bytes=2, compute_bytes=2, sequences=1, tokens=10, visual_tokens=2, logit_tokens=10,
                gradient_checkpointing=False)


def test_parameter_counts_by_hand():
    # layer: q 8x8, k 8x4, v 8x4, o 8x8 (192) + q/k/v biases (16) + MLP 3x8x16 (384) + 2 norms (16)
    assert TOY.text.layer_parameters() == 608
    # embedding 32x8 + 2 layers + final norm + untied head 32x8
    assert TOY.language_parameters == 256 + 2 * 608 + 8 + 256 == 1736
    # patch embedding 3x2x2x2 -> 4 (96); block: 2 norms (8), qkv 4x12+12, proj 4x4+4, gated MLP
    # 2x(4x8+8) + 8x4+4 (116): 204
    assert TOY.vision.tower_parameters() == 96 + 204 == 300
    # projector: norm (4), 16x16+16, 16x8+8
    assert TOY.vision.merger_parameters() == 4 + 272 + 136 == 412
    assert TOY.total_parameters == 2448


def test_static_terms_per_strategy_by_hand():
    trainable, frozen = 1736 + 412, 300
    ddp = estimate_memory(TOY, FULL, "ddp", 1, overhead=0)
    assert (ddp.weights, ddp.gradients, ddp.optimizer) == (2448 * 2, trainable * 2, trainable * 4)
    # DDP on several processes adds its gradient buckets
    assert estimate_memory(TOY, FULL, "ddp", 4, overhead=0).gradients == trainable * 4
    zero2 = estimate_memory(TOY, FULL, "zero2", 4, overhead=0)
    assert (zero2.weights, zero2.gradients, zero2.optimizer) == (4896, 1074, 6444)  # 2, 2/N, 12/N
    zero3 = estimate_memory(TOY, FULL, "zero3", 4, overhead=0)
    assert (zero3.weights, zero3.gradients, zero3.optimizer) == (1224, 1074, 6444)
    assert zero3.gathered == 2 * 608 * 2 + 256 * 2  # two layers and the embedding, 16 bit
    fsdp = estimate_memory(TOY, FULL, "fsdp", 4, overhead=0)
    # trainable upcast to fp32 (4 + 4 + 8) and frozen bf16 weights, all sharded
    assert (fsdp.weights, fsdp.gradients, fsdp.optimizer) == ((trainable * 4 + frozen * 2) // 4, trainable, trainable * 2)
    assert fsdp.gathered == 2 * 608 * 2 + 608 * 4


def test_training_pass_by_hand():
    est = estimate_memory(TOY, FULL, "ddp", 1, overhead=0)
    # per layer: 4h + 3 q + 3 kv + 4 I = 32 + 24 + 12 + 64
    assert layer_activation_elements(TOY.text, FULL) == 132
    assert est.activations == 10 * (2 * 132 + 4 * 8) * 2 == 5920
    assert est.logits == 10 * 32 * (2 + 12) == 4480
    # 8 patches: pixels 24 values each in fp32 + bf16; the projector keeps 3 x width per patch
    assert est.visual == 8 * 24 * 6 + 8 * 4 * 3 * 2 == 1344
    assert est.recompute == 0
    assert est.total == 4896 + 8592 + (4296 + 1344 + 5920 + 4480) == 29528
    assert est.fits(29528 / 0.95 + 1) and not est.fits(29528)

    ckpt = estimate_memory(TOY, replace(FULL, gradient_checkpointing=True), "ddp", 1, overhead=0)
    assert ckpt.activations == 10 * (2 * 8 + 32) * 2  # layer inputs only
    assert ckpt.recompute == 10 * 132 * 2  # one layer at a time
    assert ckpt.training_pass == ckpt.gradients + ckpt.visual + ckpt.activations + max(ckpt.logits, ckpt.recompute)
    assert ckpt.total < est.total


def test_padding_masks_and_lora_inputs_add_to_each_layer():
    padded = replace(FULL, sequences=2)  # several sequences are padded: SDPA gets a mask
    assert layer_activation_elements(TOY.text, padded) == 132 + 10
    assert layer_activation_elements(TOY.text, replace(padded, attention="flash_attention_2")) == 132
    lora = replace(FULL, lora_r=2)
    # dropped-out inputs: q, k, v, gate, up (5h), o (q width), down (I)
    assert layer_activation_elements(TOY.text, lora) == 132 + 40 + 8 + 16
    assert layer_activation_elements(TOY.text, replace(lora, lora_dropout=0.0)) == 132


def test_lora_terms_by_hand():
    est = estimate_memory(TOY, replace(FULL, lora_r=2), "ddp", 1, overhead=0)
    # r x (in + out) per module: q 32, k 24, v 24, o 32, gate 48, up 48, down 48 = 256 a layer
    adapters = 2 * 256
    # bf16 base + trainable projector copy (modules_to_save) + fp32 adapters
    assert est.weights == (2448 + 412) * 2 + adapters * 4
    assert est.gradients == 412 * 2 + adapters * 4
    assert est.optimizer == 412 * 4 + adapters * 8


def test_rollout_and_grpo_logits_by_hand():
    work = replace(FULL, sequences=2, tokens=9, logit_tokens=4, loss="grpo", padded=False,
                   rollout=Rollout(group_size=4, prompt_tokens=6, completion_tokens=3))
    est = estimate_memory(TOY, work, "ddp", 1, overhead=0)
    # KV: 4 x 9 tokens x 2 layers x 2 x 1 head x 4 x 2 bytes; prefill 4 x 6 x (2h + 2I) x 2;
    # the last position's fp32 logits
    assert kv_cache_bytes(TOY, 4, 9, 2) == 1152
    assert est.rollout == 1152 + 4 * 6 * 48 * 2 + 4 * 32 * 4 == 3968
    # logits of 2 x 4 positions (bf16 + fp32 tempered copy) and one sequence's fp32 gradients
    assert est.logits == 8 * 32 * 6 + 4 * 32 * 8
    assert est.visual == 8 * 24 * 6 + 8 * 4 * 3 * 2  # the group's clip is encoded once
    vllm = replace(work, rollout=replace(work.rollout, backend="vllm", gpu_memory_utilization=0.25))
    engine = estimate_memory(TOY, vllm, "ddp", 1, device_bytes=4 * GiB, overhead=0)
    assert engine.engine == GiB and engine.rollout == 0
    assert any("refused" in n for n in estimate_memory(TOY, vllm, "zero3", 2, device_bytes=GiB).notes)


def test_kv_cache_of_a_qwen2_5_vl_7b_group():
    # 8 completions x 3000 tokens x 28 layers x 2 x 4 KV heads x 128 x 2 bytes
    arch = known_architectures()["Qwen/Qwen2.5-VL-7B-Instruct"]
    assert kv_cache_bytes(arch, 8, 3000, 2) == 8 * 3000 * 28 * 2 * 4 * 128 * 2 == 1_376_256_000


def test_sharding_orders_the_strategies_for_a_7b_full_run():
    arch = known_architectures()["Qwen/Qwen2.5-VL-7B-Instruct"]
    work = Workload(tokens=3000, visual_tokens=2000, logit_tokens=3000)
    totals = {s: estimate_memory(arch, work, s, 8).total for s in ("ddp", "zero2", "zero3")}
    assert totals["ddp"] > totals["zero2"] > totals["zero3"]
    assert totals["ddp"] > 80 * GiB > totals["zero3"]
    lora = estimate_memory(arch, replace(work, lora_r=32), "ddp", 1)
    assert lora.total < 40 * GiB < totals["ddp"]
    with pytest.raises(ConfigError, match="strategy"):
        estimate_memory(arch, work, "zero1", 8)


def test_known_architectures_match_the_real_classes():
    """Every table entry, built with transformers on the meta device: the same parameter count
    for the vision tower, the projector and the language model (published totals: 3.75 B,
    8.29 B, 2.13 B, 4.44 B, 8.77 B, 33.4 B)."""
    import re
    from importlib import resources

    import torch
    import transformers
    import yaml

    table = yaml.safe_load(resources.files("hieroaction.models").joinpath("data/architectures.yaml").read_text())
    for name, arch in known_architectures().items():
        entry = table[name]
        text = dict(entry["text"])
        tie = text.pop("tie_word_embeddings")
        if arch.family == "qwen2_5_vl":
            config = transformers.Qwen2_5_VLConfig(text_config=text, vision_config=entry["vision"], tie_word_embeddings=tie)
            model_class = transformers.Qwen2_5_VLForConditionalGeneration
        else:
            config = transformers.Qwen3VLConfig(text_config=text, vision_config=entry["vision"], tie_word_embeddings=tie)
            model_class = transformers.Qwen3VLForConditionalGeneration
        with torch.device("meta"):
            model = model_class(config)
        counts = {"vision": 0, "merger": 0, "language": 0}
        for param_name, param in model.named_parameters():
            if re.search(r"visual\.(merger|deepstack_merger_list)", param_name):
                counts["merger"] += param.numel()
            elif "visual." in param_name:
                counts["vision"] += param.numel()
            else:
                counts["language"] += param.numel()
        expected = arch.parameter_counts()
        assert counts == {k: expected[k] for k in counts}, name


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_a_model_folder_is_read_from_its_config(family, tmp_path):
    from hieroaction.models import build_tiny
    from hieroaction.models.tiny import checkpoint_parameters

    folder = build_tiny(family, tmp_path / "m")
    arch = find_architecture(str(folder))
    assert arch.source == "config.json" and arch.family == family
    assert arch.total_parameters == checkpoint_parameters(folder)
    config = json.loads((folder / "config.json").read_text())
    assert arch.text.vocab_size == config["text_config"]["vocab_size"]
    assert arch.visual_tokens(8, 112, 112) == 4 * (112 // arch.vision.patch_size) ** 2 // 4


def test_names_find_table_entries():
    assert find_architecture("Qwen/Qwen2.5-VL-7B-Instruct").text.hidden_size == 3584
    # an SFT run folder that is not on this machine: its name says the architecture
    assert find_architecture("runs/sft/finediving_qwen2_5_vl_3b_lora").name == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert find_architecture("anything", arch="Qwen3-VL-8B-Instruct").name == "Qwen/Qwen3-VL-8B-Instruct"
    with pytest.raises(ConfigError, match="--arch"):
        find_architecture("runs/models/my_model")
    with pytest.raises(ConfigError, match="unknown architecture"):
        find_architecture("x", arch="llama")


def test_older_configs_with_text_fields_at_the_top_level():
    config = {"model_type": "qwen2_5_vl", "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
              "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 32,
              "vision_config": {"depth": 1, "hidden_size": 4, "intermediate_size": 8, "num_heads": 1,
                                "out_hidden_size": 8, "patch_size": 2, "in_chans": 3}}
    arch = architecture_from_config(config)
    assert arch.total_parameters == TOY.total_parameters
    with pytest.raises(ConfigError, match="family"):
        architecture_from_config({"model_type": "llava"})
