"""Model families: what each supported VLM family expects, looked up by name.

A :class:`ModelFamily` knows its transformers model class, its patch grid (patch size x merge
size: 28 for Qwen2.5-VL, 32 for Qwen3-VL), temporal patch size, normalisation constants,
default pixel budgets, special tokens, chat template, and how the model learns the time of each
frame (``second_per_grid_ts`` for Qwen2.5-VL, ``<t seconds>`` text for Qwen3-VL). The facts live
in ``models/data/families.yaml``; this module only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml

from hieroaction.errors import ConfigError

PixelBudget = Literal["per_frame", "per_clip"]
TimeEncoding = Literal["second_per_grid_ts", "timestamps"]

# The tokens every family must name: the processor and the model config rely on them.
VIDEO_TOKEN = "<|video_pad|>"
IMAGE_TOKEN = "<|image_pad|>"
VISION_START_TOKEN = "<|vision_start|>"
VISION_END_TOKEN = "<|vision_end|>"


@dataclass(frozen=True)
class ModelFamily:
    """One model family (e.g. ``qwen2_5_vl``) and everything its inputs depend on."""

    name: str
    description: str
    model_class_name: str
    config_class_name: str
    processor_class_name: str
    image_processor_class_name: str
    video_processor_class_name: str
    example_checkpoints: tuple[str, ...]
    patch_size: int
    merge_size: int
    temporal_patch_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    min_pixels: int
    max_pixels: int
    pixel_budget: PixelBudget
    time_encoding: TimeEncoding
    tokens_per_second: int | None
    chat_template_file: str
    special_tokens: tuple[str, ...]
    text_tokens: tuple[str, ...]
    eos_tokens: tuple[str, ...]
    pad_token: str

    @property
    def factor(self) -> int:
        """Side length in pixels of one merged visual token (frame sides are multiples of it)."""
        return self.patch_size * self.merge_size

    @property
    def model_class(self) -> type:
        """The transformers ``*ForConditionalGeneration`` class."""
        import transformers

        return getattr(transformers, self.model_class_name)

    @property
    def config_class(self) -> type:
        """The transformers configuration class of the model."""
        import transformers

        return getattr(transformers, self.config_class_name)

    @property
    def chat_template(self) -> str:
        """The family's chat template (Jinja) as shipped with HieroAction."""
        return _read_data(self.chat_template_file)

    def num_video_tokens(self, grid_thw: tuple[int, int, int]) -> int:
        """How many ``<|video_pad|>`` tokens a video of patch grid ``(t, h, w)`` takes."""
        t, h, w = (int(x) for x in grid_thw)
        return t * h * w // (self.merge_size**2)

    @classmethod
    def from_mapping(cls, name: str, data: dict[str, Any]) -> ModelFamily:
        """Build a family from its entry in ``families.yaml``."""
        try:
            family = cls(
                name=name,
                description=str(data["description"]),
                model_class_name=str(data["model_class"]),
                config_class_name=str(data["config_class"]),
                processor_class_name=str(data["processor_class"]),
                image_processor_class_name=str(data["image_processor_class"]),
                video_processor_class_name=str(data["video_processor_class"]),
                example_checkpoints=tuple(data.get("example_checkpoints") or ()),
                patch_size=int(data["patch_size"]),
                merge_size=int(data["merge_size"]),
                temporal_patch_size=int(data["temporal_patch_size"]),
                image_mean=tuple(float(x) for x in data["image_mean"]),  # type: ignore[arg-type]
                image_std=tuple(float(x) for x in data["image_std"]),  # type: ignore[arg-type]
                min_pixels=int(data["min_pixels"]),
                max_pixels=int(data["max_pixels"]),
                pixel_budget=data["pixel_budget"],
                time_encoding=data["time_encoding"],
                tokens_per_second=(
                    None
                    if data.get("tokens_per_second") is None
                    else int(data["tokens_per_second"])
                ),
                chat_template_file=str(data["chat_template"]),
                special_tokens=tuple(str(t) for t in data["special_tokens"]),
                text_tokens=tuple(str(t) for t in data.get("text_tokens") or ()),
                eos_tokens=tuple(str(t) for t in data["eos_tokens"]),
                pad_token=str(data["pad_token"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"families.yaml: entry {name!r} is not a valid model family ({exc})"
            ) from None
        if family.pixel_budget not in ("per_frame", "per_clip"):
            raise ConfigError(f"families.yaml: {name}.pixel_budget must be per_frame or per_clip")
        if family.time_encoding not in ("second_per_grid_ts", "timestamps"):
            raise ConfigError(
                f"families.yaml: {name}.time_encoding must be second_per_grid_ts or timestamps"
            )
        missing = [
            t
            for t in (
                VIDEO_TOKEN,
                IMAGE_TOKEN,
                VISION_START_TOKEN,
                VISION_END_TOKEN,
                family.pad_token,
            )
            if t not in family.special_tokens
        ]
        if missing:
            raise ConfigError(f"families.yaml: {name}.special_tokens lacks {missing}")
        return family


def _read_data(filename: str) -> str:
    return (
        resources.files("hieroaction.models").joinpath("data", filename).read_text(encoding="utf-8")
    )


@lru_cache(maxsize=1)
def _families() -> dict[str, ModelFamily]:
    raw = yaml.safe_load(_read_data("families.yaml"))
    return {name: ModelFamily.from_mapping(name, entry) for name, entry in raw.items()}


def family_names() -> list[str]:
    """Names of the supported families, e.g. ``['qwen2_5_vl', 'qwen3_vl']``."""
    return sorted(_families())


def get_family(name: str) -> ModelFamily:
    """The family called ``name``; raises :class:`ConfigError` for an unknown name."""
    families = _families()
    if name not in families:
        raise ConfigError(f"unknown model family {name!r}; expected one of {sorted(families)}")
    return families[name]


def family_of_config(config: Any) -> ModelFamily:
    """The family of a loaded transformers model config (by its ``model_type``)."""
    model_type = getattr(config, "model_type", None)
    for family in _families().values():
        if family.name == model_type:
            return family
    raise ConfigError(
        f"model type {model_type!r} is not a supported family; expected one of {family_names()}"
    )
