"""Model families: facts, lookup errors, and agreement with transformers' own classes."""

from __future__ import annotations

import pytest

from hieroaction.errors import ConfigError
from hieroaction.models.families import family_names, get_family


def test_known_families():
    assert family_names() == ["qwen2_5_vl", "qwen3_vl"]
    q25, q3 = get_family("qwen2_5_vl"), get_family("qwen3_vl")
    assert (q25.factor, q3.factor) == (28, 32)
    assert (q25.pixel_budget, q3.pixel_budget) == ("per_frame", "per_clip")
    assert (q25.time_encoding, q3.time_encoding) == ("second_per_grid_ts", "timestamps")
    assert q25.num_video_tokens((4, 6, 10)) == 60


def test_unknown_family_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown model family 'llava'; expected one of"):
        get_family("llava")


@pytest.mark.parametrize("name", ["qwen2_5_vl", "qwen3_vl"])
def test_classes_are_transformers_classes(name):
    import transformers

    family = get_family(name)
    assert family.model_class is getattr(transformers, family.model_class_name)
    assert family.config_class.model_type == name
    assert family.model_class.config_class is family.config_class


def test_qwen3_values_match_its_video_processor():
    """Qwen3VLVideoProcessor imports without torchvision: its class defaults are the family's."""
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import (
        Qwen3VLVideoProcessor as P,
    )

    family = get_family("qwen3_vl")
    assert (P.patch_size, P.merge_size, P.temporal_patch_size) == (
        family.patch_size,
        family.merge_size,
        family.temporal_patch_size,
    )
    assert (P.size["shortest_edge"], P.size["longest_edge"]) == (
        family.min_pixels,
        family.max_pixels,
    )
    assert tuple(P.image_mean) == family.image_mean and tuple(P.image_std) == family.image_std


def test_qwen25_values_match_transformers_constants():
    """Qwen2VLVideoProcessor needs torchvision to import; check the values it is built from."""
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
    from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import (
        Qwen2_5_VLVisionConfig,
    )
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    family = get_family("qwen2_5_vl")
    vision = Qwen2_5_VLVisionConfig()
    assert (vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size) == (
        family.patch_size,
        family.merge_size,
        family.temporal_patch_size,
    )
    assert family.image_mean == tuple(OPENAI_CLIP_MEAN) and family.image_std == tuple(
        OPENAI_CLIP_STD
    )
    image = Qwen2VLImageProcessorPil()
    assert tuple(image.image_mean) == family.image_mean
    # Qwen2VLVideoProcessor.size: 128 and 768 merged 28-pixel tokens per frame.
    assert (family.min_pixels, family.max_pixels) == (128 * 28 * 28, 768 * 28 * 28)


def test_chat_templates_render_video_items():
    for name in family_names():
        family = get_family(name)
        from jinja2 import Template

        text = Template(family.chat_template).render(
            messages=[
                {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Go."}]}
            ],
            add_generation_prompt=True,
        )
        assert "<|vision_start|><|video_pad|><|vision_end|>Go.<|im_end|>" in text
        assert text.endswith("<|im_start|>assistant\n")
        assert ("You are a helpful assistant." in text) == (name == "qwen2_5_vl")
