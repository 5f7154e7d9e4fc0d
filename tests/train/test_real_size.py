"""Real-size shapes on CPU: Qwen2.5-VL-3B's widths, its 151,936-token vocabulary and its vision
tower's width, cut to 2 layers per tower (``real3b_2layer``, random weights): one LoRA SFT step
and one LoRA GRPO step (G = 2) end with finite losses and changed LoRA weights.

In bf16 where the machine multiplies bf16 natively (a GPU, a CPU with AVX512-BF16 or AMX),
else in fp32: on an AVX2 CPU torch's fallback bf16 kernel makes one bf16 step take up to an
hour (``bench_real_size.native_bf16``). ``HIEROACTION_REAL_SIZE_PRECISION=bf16`` forces bf16.

The steps are slow (minutes and several GB of memory; docs/training.md#real-size-shapes-on-cpu gives the
measured time and peak memory): ``pytest -m slow tests/train/test_real_size.py``. The set-up is
benchmarks/bench_real_size.py's, so the benchmark measures exactly what this test checks.
"""

from __future__ import annotations

import math
import os

import pytest

from tests.conftest import benchmark_module




def test_the_size_pads_the_embedding_to_the_released_vocabulary():
    """Fast (no weights): the tiny tokenizer keeps its ids, the embedding gets 151,936 rows."""
    from hieroaction.errors import ConfigError
    from hieroaction.models.families import get_family
    from hieroaction.models.tiny import tiny_config, tiny_spec
    from hieroaction.models.tokenizer import build_tokenizer

    spec = tiny_spec("qwen2_5_vl", "real3b_2layer")
    tokenizer = build_tokenizer(spec.family, vocab_size=spec.vocab_size)
    config = tiny_config(spec, tokenizer)
    assert len(tokenizer) < 2048 and config.text_config.vocab_size == 151936
    assert config.tie_word_embeddings
    assert config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>") < len(tokenizer)
    # the other sizes keep the tokenizer's size rounded up to 64 rows, untied
    tiny = tiny_config(tiny_spec("qwen2_5_vl", "tiny"), tokenizer)
    assert tiny.text_config.vocab_size == 1024 and not tiny.tie_word_embeddings
    with pytest.raises(ConfigError, match="no 'real3b_2layer' architecture"):
        tiny_spec(get_family("qwen3_vl"), "real3b_2layer")


@pytest.fixture(scope="module")
def bench():
    with benchmark_module("bench_real_size") as module:
        yield module


@pytest.fixture(scope="module")
def precision(bench):
    return os.environ.get("HIEROACTION_REAL_SIZE_PRECISION") or bench.default_precision()


@pytest.fixture(scope="module")
def real(bench, tmp_path_factory):
    """(checkpoint folder, data section): the real-width model and two-line prompts on 4 frames
    of 56x56 (16 visual tokens, through the 1280-wide vision tower)."""
    root = tmp_path_factory.mktemp("real_size")
    model = bench.build_model(root / "model")
    records = bench.build_data(root / "synth")
    template = root / "short.yaml"
    template.write_text(bench.SHORT_TEMPLATE, encoding="utf-8")
    return model, bench.data_section(records, root / "frames", template, 4, 56)


@pytest.mark.slow
def test_the_checkpoint_has_the_released_3b_shapes(real):
    from transformers import AutoConfig

    from hieroaction.models.tiny import checkpoint_parameters

    model, _ = real
    config = AutoConfig.from_pretrained(model)
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_attention_heads, text.num_key_value_heads,
            text.vocab_size, text.num_hidden_layers) == (2048, 11008, 16, 2, 151936, 2)
    assert (vision.hidden_size, vision.intermediate_size, vision.num_heads, vision.out_hidden_size,
            vision.patch_size, vision.spatial_merge_size, vision.window_size, vision.depth) == (
        1280, 3420, 16, 2048, 14, 2, 112, 2)
    assert vision.fullatt_block_indexes == [1]  # block 0 windowed, block 1 full attention
    assert config.tie_word_embeddings
    assert 0.5e9 < checkpoint_parameters(model) < 0.6e9


@pytest.mark.slow
def test_one_lora_sft_step(bench, real, precision, tmp_path):
    model, data = real
    out = bench.run_sft(bench.sft_settings(model, data, tmp_path / "sft", precision))
    assert math.isfinite(out["loss"]) and out["loss"] > 0
    assert out["lora_tensors"] > 0 and out["lora_tensors_changed"] > 0


@pytest.mark.slow
def test_one_lora_grpo_step(bench, real, precision, tmp_path):
    model, data = real
    out = bench.run_grpo(bench.hpl_args(model, data, tmp_path / "grpo", 8, precision))
    assert math.isfinite(out["loss"]) and math.isfinite(out["grad_norm"]) and out["grad_norm"] > 0
    assert out["lora_tensors"] > 0 and out["lora_tensors_changed"] > 0
