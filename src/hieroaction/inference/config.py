"""Settings of inference: which frames the model sees, the prompt, generation, device.

:class:`InferenceConfig` is the ``inference`` section of the evaluation recipe and the settings
of :class:`~hieroaction.inference.Assessor`. Its ``frames`` mapping holds only the
:class:`~hieroaction.video.FrameConfig` fields to change: the patch grid and the pixel budgets
come from the loaded model's processor, so the frames always fit the model they are shown to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hieroaction.config import config_from_dict
from hieroaction.errors import ConfigError
from hieroaction.prompts import PromptConfig
from hieroaction.video import FrameConfig

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class InferenceConfig:
    """How a model is run on clips.

    Attributes:
        frames: :class:`FrameConfig` fields over the model's own grid and pixel budgets, e.g.
            ``{"num_frames": 16}``. The ``steps`` strategy is refused: it places frames by the
            annotated steps, which would show the answer to the model.
        prompt: prompt settings (template override, vocabulary, timestamps).
        max_new_tokens: longest answer generated (a SAR answer for five steps is about 400
            tokens with the Qwen tokenizers).
        batch_size: clips per ``generate`` call.
        device: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda`` (or ``cuda:N``).
        dtype: the precision: ``auto`` (bfloat16 on a CUDA device that supports it, float16 on
            one that does not, float32 on CPU), ``bf16``, ``fp16`` or ``fp32`` (the spellings
            ``bfloat16``, ``float16``, ``float32`` are the same); see
            :func:`hieroaction.models.resolve_precision`.
        domain: the domain of clips given without one (``assess`` without ``--domain``).
    """

    frames: dict[str, Any] = field(default_factory=dict)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    max_new_tokens: int = 1024
    batch_size: int = 4
    device: str = "auto"
    dtype: str = "auto"
    domain: str = "generic"

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ConfigError(f"device must be one of {list(DEVICES)} or cuda:N, got {self.device!r}")
        from hieroaction.models.loading import normalise_precision  # the models package loads torch

        normalise_precision(self.dtype, setting="dtype")
        if self.frames.get("strategy") == "steps":
            raise ConfigError(
                "frames.strategy 'steps' places frames by the annotated steps and would show the "
                "answer to the model; use 'uniform' or 'fps' for inference"
            )

    def frame_config(self, video: Any) -> FrameConfig:
        """The frame settings for a processor's video settings (``VideoSettings``): its grid,
        budget scope and pixel budgets, then this config's ``frames`` fields."""
        base = {
            "factor": video.factor,
            "clip_budget": video.pixel_budget == "per_clip",
            "temporal_factor": video.temporal_patch_size,
            "min_pixels": video.min_pixels,
            "max_pixels": video.max_pixels,
        }
        return config_from_dict(FrameConfig, {**base, **self.frames})
