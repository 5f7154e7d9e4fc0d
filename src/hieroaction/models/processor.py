"""Chat messages plus sampled clips -> the input tensors of a Qwen VL model, without torchvision.

:class:`VideoChatProcessor` does what transformers' ``Qwen2_5_VLProcessor`` /
``Qwen3VLProcessor`` do for text and video (tests compare the two): render the chat template,
expand each ``<|video_pad|>`` into one token per merged visual patch (Qwen3-VL: the template's
whole ``<|vision_start|><|video_pad|><|vision_end|>`` item becomes one
``<t seconds><|vision_start|>...<|vision_end|>`` block per temporal patch, with no extra pair
around them, as Qwen3-VL's own processor, vLLM and transformers >= 5.25 write it), tokenise, and return
``input_ids``, ``attention_mask``, ``mm_token_type_ids`` (without it the model silently falls
back to 1-D positions), ``pixel_values_videos``, ``video_grid_thw`` and, for Qwen2.5-VL,
``second_per_grid_ts``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from hieroaction.errors import ConfigError, VideoError
from hieroaction.io import read_json_object
from hieroaction.models.families import (
    IMAGE_TOKEN,
    VIDEO_TOKEN,
    VISION_END_TOKEN,
    VISION_START_TOKEN,
    ModelFamily,
    family_of_config,
)
from hieroaction.models.video_inputs import VideoFeatures, VideoSettings, process_video

# transformers' modality codes in mm_token_type_ids.
TEXT_TYPE, IMAGE_TYPE, VIDEO_TYPE = 0, 1, 2

# The standard file names transformers reads a processor from.
VIDEO_PROCESSOR_FILE = "video_preprocessor_config.json"
IMAGE_PROCESSOR_FILE = "preprocessor_config.json"
PROCESSOR_FILE = "processor_config.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"


class ClipLike(Protocol):
    """What the processor needs of a sampled clip (``hieroaction.video``'s ``Clip`` has it)."""

    frames: np.ndarray
    timestamps: Sequence[float]
    fps: float


Messages = Sequence[Mapping[str, Any]]


class VideoChatProcessor:
    """Tokenizer + torchvision-free video processor of one model family.

    Args:
        family: the model family.
        tokenizer: a transformers tokenizer holding the family's special tokens.
        video: how frames become patches (budgets, grid, normalisation).
        chat_template: Jinja chat template; defaults to the tokenizer's, then the family's.
    """

    def __init__(
        self,
        family: ModelFamily,
        tokenizer: Any,
        video: VideoSettings | None = None,
        chat_template: str | None = None,
    ) -> None:
        self.family = family
        self.tokenizer = tokenizer
        self.video = video or VideoSettings.for_family(family)
        self.chat_template = (
            chat_template or getattr(tokenizer, "chat_template", None) or family.chat_template
        )
        ids = tokenizer.convert_tokens_to_ids(
            [VIDEO_TOKEN, IMAGE_TOKEN, VISION_START_TOKEN, VISION_END_TOKEN]
        )
        unknown = [
            t
            for t, i in zip((VIDEO_TOKEN, IMAGE_TOKEN, VISION_START_TOKEN, VISION_END_TOKEN), ids)
            if i is None or i == getattr(tokenizer, "unk_token_id", -1)
        ]
        if unknown:
            raise ConfigError(f"the tokenizer lacks the {family.name} special tokens {unknown}")
        (
            self.video_token_id,
            self.image_token_id,
            self.vision_start_token_id,
            self.vision_end_token_id,
        ) = ids

    # ----- text -------------------------------------------------------------------------------

    def apply_chat_template(
        self, messages: Messages, add_generation_prompt: bool = True, **template_kwargs: Any
    ) -> str:
        """The prompt text of ``messages`` (HF chat format; a ``{"type": "video"}`` content item
        stands for one clip)."""
        return self.tokenizer.apply_chat_template(
            list(messages),
            chat_template=self.chat_template,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            **template_kwargs,
        )

    def video_placeholder(self, features: VideoFeatures) -> str:
        """The text that replaces one video of the prompt for this clip (Qwen3-VL: the whole
        ``<|vision_start|><|video_pad|><|vision_end|>`` item; Qwen2.5-VL: the ``<|video_pad|>``
        inside it)."""
        if self.family.time_encoding == "timestamps":
            t = features.video_grid_thw[0]
            frame_tokens = (
                features.video_grid_thw[1] * features.video_grid_thw[2]
            ) // self.video.merge_size**2
            return "".join(
                f"<{features.patch_times[i]:.1f} seconds>"
                + VISION_START_TOKEN
                + VIDEO_TOKEN * frame_tokens
                + VISION_END_TOKEN
                for i in range(t)
            )
        return VIDEO_TOKEN * features.num_tokens(self.video.merge_size)

    def expand_video_tokens(self, text: str, videos: Sequence[VideoFeatures]) -> str:
        """Replace the i-th ``<|video_pad|>`` of ``text`` by the placeholder of ``videos[i]``.

        Qwen3-VL wraps every temporal patch in its own ``<|vision_start|>...<|vision_end|>``, so
        a ``<|video_pad|>`` that the chat template wrapped in a pair is replaced together with
        that pair: one pair per temporal patch and none around the whole video, as Qwen3-VL's
        released processor (transformers 4.57), vLLM and transformers >= 5.25 do.
        transformers 5.0-5.24 kept the template's pair around the blocks (one more
        ``<|vision_start|>`` before the first time stamp and ``<|vision_end|>`` after the last
        block); earlier versions of this processor did the same, so Qwen3-VL models fine-tuned
        with them saw that extra pair (docs/models.md).
        Qwen2.5-VL keeps the pair: its pads sit inside it.
        """
        parts = text.split(VIDEO_TOKEN)
        if len(parts) - 1 != len(videos):
            raise VideoError(
                f"the prompt holds {len(parts) - 1} {VIDEO_TOKEN} placeholders but "
                f"{len(videos)} clips were given"
            )
        per_patch_pairs = self.family.time_encoding == "timestamps"
        out = [parts[0]]
        for i, features in enumerate(videos):
            rest = parts[i + 1]
            if (
                per_patch_pairs
                and out[-1].endswith(VISION_START_TOKEN)
                and rest.startswith(VISION_END_TOKEN)
            ):
                out[-1] = out[-1][: -len(VISION_START_TOKEN)]
                rest = rest[len(VISION_END_TOKEN) :]
            out.append(self.video_placeholder(features))
            out.append(rest)
        return "".join(out)

    # ----- video ------------------------------------------------------------------------------

    def process_clip(self, clip: ClipLike) -> VideoFeatures:
        """Patches, grid and times of one sampled clip."""
        return process_video(clip.frames, clip.timestamps, clip.fps, self.video)

    # ----- everything -------------------------------------------------------------------------

    def __call__(
        self,
        prompt: str | Messages,
        videos: Sequence[ClipLike] | ClipLike | None = None,
        add_generation_prompt: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Model inputs for one sample (batch dimension 1).

        Args:
            prompt: chat messages, or prompt text already rendered with the chat template
                (one ``<|video_pad|>`` per clip).
            videos: the sampled clips, in the order of the prompt's video items.
            add_generation_prompt: end with the assistant header (when ``prompt`` is messages).
        """
        if videos is None:
            clips: list[ClipLike] = []
        elif hasattr(videos, "frames"):
            clips = [videos]  # type: ignore[list-item]
        else:
            clips = list(videos)  # type: ignore[arg-type]
        text = (
            prompt
            if isinstance(prompt, str)
            else self.apply_chat_template(prompt, add_generation_prompt)
        )
        features = [self.process_clip(c) for c in clips]
        text = self.expand_video_tokens(text, features)
        ids = self.tokenizer(text)["input_ids"]
        input_ids = torch.tensor([ids], dtype=torch.long)
        out: dict[str, torch.Tensor] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "mm_token_type_ids": self.mm_token_type_ids(input_ids),
        }
        if features:
            out["pixel_values_videos"] = torch.cat([f.pixel_values_videos for f in features], dim=0)
            out["video_grid_thw"] = torch.tensor(
                [f.video_grid_thw for f in features], dtype=torch.long
            )
            if self.family.time_encoding == "second_per_grid_ts":
                out["second_per_grid_ts"] = torch.tensor(
                    [f.second_per_grid_t for f in features], dtype=torch.float32
                )
        n_video = int((input_ids == self.video_token_id).sum())
        expected = sum(f.num_tokens(self.video.merge_size) for f in features)
        if n_video != expected:
            raise VideoError(
                f"the tokenized prompt holds {n_video} {VIDEO_TOKEN} tokens but its clips need "
                f"{expected}; video placeholders must come only from video items"
            )
        return out

    def mm_token_type_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """0 for text, 1 for image placeholder tokens, 2 for video placeholder tokens."""
        types = torch.zeros_like(input_ids)
        types[input_ids == self.image_token_id] = IMAGE_TYPE
        types[input_ids == self.video_token_id] = VIDEO_TYPE
        return types

    def decode(
        self, token_ids: Sequence[int] | torch.Tensor, skip_special_tokens: bool = True
    ) -> str:
        """Text of generated token ids."""
        return self.tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = True) -> list[str]:
        """Texts of a batch of generated sequences."""
        return self.tokenizer.batch_decode(sequences, skip_special_tokens=skip_special_tokens)

    # ----- files ------------------------------------------------------------------------------

    def save_pretrained(self, out_dir: str | Path) -> None:
        """Write the tokenizer, chat template and processor configs in transformers' standard
        file names, so ``AutoProcessor.from_pretrained`` works where torchvision is installed."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(out)
        (out / CHAT_TEMPLATE_FILE).write_text(self.chat_template, encoding="utf-8")
        video_cfg = self.video.to_processor_dict(self.family)
        image_cfg = {
            "image_processor_type": self.family.image_processor_class_name,
            "do_resize": True,
            # Images keep the family's per-image rule; the tiny models see images at video size.
            "size": {"shortest_edge": self.video.min_pixels, "longest_edge": self.video.max_pixels},
            "resample": video_cfg["resample"],
            "do_rescale": True,
            "rescale_factor": self.video.rescale_factor,
            "do_normalize": True,
            "image_mean": list(self.video.image_mean),
            "image_std": list(self.video.image_std),
            "do_convert_rgb": True,
            "patch_size": self.video.patch_size,
            "temporal_patch_size": self.video.temporal_patch_size,
            "merge_size": self.video.merge_size,
        }
        _write_json(out / VIDEO_PROCESSOR_FILE, video_cfg)
        _write_json(
            out / IMAGE_PROCESSOR_FILE,
            {**image_cfg, "processor_class": self.family.processor_class_name},
        )
        _write_json(
            out / PROCESSOR_FILE,
            {
                "processor_class": self.family.processor_class_name,
                "image_processor": image_cfg,
                "video_processor": video_cfg,
            },
        )

    @classmethod
    def from_pretrained(
        cls, path: str | Path, family: ModelFamily | None = None
    ) -> VideoChatProcessor:
        """Load from a checkpoint folder: the tokenizer with ``AutoTokenizer``, the video settings
        from its processor config (nested ``processor_config.json``, then
        ``video_preprocessor_config.json``, then ``preprocessor_config.json``)."""
        from transformers import AutoTokenizer

        folder = Path(path)
        if not folder.is_dir():
            raise ConfigError(
                f"{path}: no such model folder (a Hub id loads with "
                "hieroaction.models.load_model_and_processor)"
            )
        if family is None:
            family = family_of_config(read_model_config(folder))
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{folder}: cannot load a tokenizer ({exc.__class__.__name__})"
            ) from None
        video_cfg, source = _find_video_config(folder)
        video = (
            VideoSettings.for_family(family)
            if video_cfg is None
            else VideoSettings.from_processor_dict(video_cfg, family, source=source)
        )
        return cls(family, tokenizer, video=video, chat_template=_find_chat_template(folder))


def read_model_config(folder: Path) -> Any:
    """The transformers config of a checkpoint folder; :class:`ConfigError` if unreadable."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{folder}: cannot read the model config ({exc.__class__.__name__})"
        ) from None


def _find_chat_template(folder: Path) -> str | None:
    # transformers 5 saves chat_template.jinja; older processors saved chat_template.json.
    jinja, legacy = folder / CHAT_TEMPLATE_FILE, folder / "chat_template.json"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    if legacy.is_file():
        template = read_json_object(legacy).get("chat_template")
        return template if isinstance(template, str) else None
    return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _find_video_config(folder: Path) -> tuple[dict[str, Any] | None, str]:
    nested = folder / PROCESSOR_FILE
    if nested.is_file():
        data = read_json_object(nested)
        if isinstance(data.get("video_processor"), dict):
            return data["video_processor"], f"{nested}:video_processor"
    for name in (VIDEO_PROCESSOR_FILE, IMAGE_PROCESSOR_FILE):
        file = folder / name
        if file.is_file():
            return read_json_object(file), str(file)
    return None, ""


def collate(
    samples: Sequence[Mapping[str, torch.Tensor]], pad_token_id: int, padding_side: str = "left"
) -> dict[str, torch.Tensor]:
    """Batch the outputs of :meth:`VideoChatProcessor.__call__`: pad the token rows
    (``padding_side`` ``"left"`` for generation, ``"right"`` for training) and concatenate the
    video tensors in sample order."""
    if padding_side not in ("left", "right"):
        raise ConfigError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    length = max(int(s["input_ids"].shape[1]) for s in samples)
    pads = {
        "input_ids": pad_token_id,
        "attention_mask": 0,
        "mm_token_type_ids": TEXT_TYPE,
        "labels": -100,
    }
    out: dict[str, torch.Tensor] = {}
    for key, value in pads.items():
        if not all(key in s for s in samples):
            continue
        rows = []
        for s in samples:
            row = s[key]
            fill = row.new_full((1, length - row.shape[1]), value)
            rows.append(torch.cat([fill, row] if padding_side == "left" else [row, fill], dim=1))
        out[key] = torch.cat(rows, dim=0)
    for key in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts"):
        parts = [s[key] for s in samples if key in s]
        if parts:
            out[key] = torch.cat(parts, dim=0)
    return out
