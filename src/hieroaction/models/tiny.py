"""Offline tiny models: randomly initialised Qwen VL models of the real classes, from a config.

:func:`build_tiny` writes a checkpoint folder (model, tokenizer, chat template, processor configs,
generation config) that loads with ``from_pretrained`` like a released checkpoint; nothing is
downloaded. Tests and the CPU demo use size ``tiny``; ``medium`` and ``small`` are wider. The architectures are data
(``models/data/tiny_sizes.yaml``).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from hieroaction.errors import ConfigError
from hieroaction.models.families import (
    ModelFamily,
    _read_data,
    get_family,
)
from hieroaction.models.processor import VideoChatProcessor
from hieroaction.models.tokenizer import build_tokenizer
from hieroaction.models.video_inputs import VideoSettings

# Embedding rows are padded to a multiple of this, as released Qwen vocabularies are.
_VOCAB_MULTIPLE = 64


@lru_cache(maxsize=1)
def _sizes() -> dict[str, Any]:
    return yaml.safe_load(_read_data("tiny_sizes.yaml"))


@dataclass(frozen=True)
class TinySpec:
    """One family at one size: config fields of the text and vision towers, the BPE vocabulary
    target and the pixel budgets of the saved video processor. ``embedding_rows``: at least this
    many embedding rows (a released vocabulary size; default: the tokenizer's size rounded up to
    64); ``tie_word_embeddings``: the output head shares the embedding, as small released
    checkpoints do."""

    family: ModelFamily
    size: str
    vocab_size: int
    text: dict[str, Any]
    vision: dict[str, Any]
    min_pixels: int
    max_pixels: int
    embedding_rows: int = 0
    tie_word_embeddings: bool = False


def tiny_spec(family: str | ModelFamily, size: str = "tiny") -> TinySpec:
    """The architecture of ``family`` at ``size``; raises :class:`ConfigError` for unknown names."""
    fam = get_family(family) if isinstance(family, str) else family
    sizes = _sizes()
    if size not in sizes:
        raise ConfigError(f"unknown model size {size!r}; expected one of {list(sizes)}")
    entry = sizes[size]
    if fam.name not in entry:
        raise ConfigError(f"tiny_sizes.yaml has no {size!r} architecture for family {fam.name!r}")
    arch = entry[fam.name]
    return TinySpec(
        family=fam,
        size=size,
        vocab_size=int(entry["vocab_size"]),
        text=dict(arch["text"]),
        vision=dict(arch["vision"]),
        min_pixels=int(arch["video"]["min_pixels"]),
        max_pixels=int(arch["video"]["max_pixels"]),
        embedding_rows=int(arch.get("embedding_rows", 0)),
        tie_word_embeddings=bool(arch.get("tie_word_embeddings", False)),
    )


def tiny_config(spec: TinySpec, tokenizer: Any) -> Any:
    """The transformers config of ``spec`` with every token id taken from ``tokenizer``."""
    fam = spec.family
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in fam.special_tokens}
    eos_ids = [ids.get(t, tokenizer.convert_tokens_to_ids(t)) for t in fam.eos_tokens]
    pad_id = ids[fam.pad_token]
    # every token id is below len(tokenizer); rows past it are never produced by text
    vocab_size = max(-(-len(tokenizer) // _VOCAB_MULTIPLE) * _VOCAB_MULTIPLE, spec.embedding_rows)

    text = dict(spec.text)
    mrope_section = text.pop("mrope_section")
    rope: dict[str, Any] = {"rope_type": "default", "mrope_section": list(mrope_section)}
    vision = dict(spec.vision)
    vision.update(
        patch_size=fam.patch_size,
        spatial_merge_size=fam.merge_size,
        temporal_patch_size=fam.temporal_patch_size,
        out_hidden_size=text["hidden_size"],
    )
    if fam.name == "qwen2_5_vl":
        rope["rope_theta"] = 1000000.0
        vision["tokens_per_second"] = fam.tokens_per_second
    else:
        rope["rope_theta"] = 5000000.0
        rope["mrope_interleaved"] = True
    text.update(vocab_size=vocab_size, rope_parameters=rope, pad_token_id=pad_id, dtype="float32")
    if fam.name == "qwen2_5_vl":
        # Released Qwen2.5-VL text configs name <|endoftext|> as bos and <|im_end|> as eos;
        # Qwen3-VL's text config has neither field (generation_config.json holds them).
        text.update(bos_token_id=pad_id, eos_token_id=eos_ids[0])
    config = fam.config_class(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=spec.tie_word_embeddings,
    )
    return config


def build_tiny(
    family: str,
    out_dir: str | Path,
    size: str = "tiny",
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Build a randomly initialised model of ``family``'s real class and save a full checkpoint.

    Args:
        family: ``qwen2_5_vl`` or ``qwen3_vl``.
        out_dir: folder to write (created; must be empty unless ``overwrite``).
        size: ``tiny`` (tests and the CPU demo, 0.45 M parameters), ``medium`` (1.4 M), ``small``
            (about 10 M) or ``real3b_2layer`` (Qwen2.5-VL-3B's widths and 151,936-row vocabulary,
            2 layers per tower, about 0.54 B; Qwen2.5-VL only).
        seed: seeds the weight initialisation (the tokenizer does not depend on it).
        overwrite: replace the contents of a non-empty ``out_dir``.

    Returns:
        The checkpoint folder; it loads with :func:`load_model_and_processor` (anywhere) and
        with transformers' ``AutoModelForImageTextToText`` / ``AutoProcessor`` (where
        torchvision is installed).
    """
    import torch
    from transformers import GenerationConfig

    spec = tiny_spec(family, size)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{out}: folder is not empty; choose another --out or pass --overwrite"
            )
        shutil.rmtree(out)
    fam = spec.family
    tokenizer = build_tokenizer(fam, vocab_size=spec.vocab_size)
    config = tiny_config(spec, tokenizer)
    torch.manual_seed(seed)
    model = fam.model_class(config).eval()
    eos_ids = [tokenizer.convert_tokens_to_ids(t) for t in fam.eos_tokens]
    model.generation_config = GenerationConfig(
        eos_token_id=eos_ids,
        pad_token_id=tokenizer.convert_tokens_to_ids(fam.pad_token),
        bos_token_id=getattr(config.text_config, "bos_token_id", None),
        do_sample=False,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    video = VideoSettings.for_family(fam, min_pixels=spec.min_pixels, max_pixels=spec.max_pixels)
    VideoChatProcessor(fam, tokenizer, video=video).save_pretrained(out)
    return out


def count_parameters(model: Any) -> dict[str, int]:
    """Parameter counts: ``total``, ``vision`` (the vision tower), ``language`` (the rest)."""
    total = sum(p.numel() for p in model.parameters())
    visual = sum(p.numel() for n, p in model.named_parameters() if ".visual." in f".{n}")
    return {"total": total, "vision": visual, "language": total - visual}


def checkpoint_parameters(path: str | Path) -> int:
    """Number of parameters stored in a checkpoint folder's safetensors files (no model built)."""
    from safetensors import safe_open

    total = 0
    for file in sorted(Path(path).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                total += math.prod(handle.get_slice(name).get_shape())
    return total
