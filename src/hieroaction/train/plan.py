"""Memory plans of SFT and HPL recipes: what one device holds, per strategy, and which GPUs fit.

:func:`plan_recipe` reads a recipe (``configs/sft/*.yaml`` or ``configs/hpl/*.yaml``), finds the
model's architecture (:func:`hieroaction.models.memory.find_architecture`: the model folder's
``config.json``, else the table of released architectures), turns the recipe's frame settings,
batch and (for HPL) group into token counts, and estimates the per-device memory of LoRA and of
full fine-tuning under DDP, FSDP, ZeRO-2 and ZeRO-3 (:func:`hieroaction.models.memory.estimate_memory`).
:func:`fit_table` says, for a set of recipes, which GPU sizes run them. ``hieroaction plan`` is
the command; docs/training.md ("Memory planning") has the rules and their measured error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from hieroaction.config import read_recipe
from hieroaction.errors import ConfigError
from hieroaction.models.memory import (
    STRATEGIES,
    Architecture,
    GiB,
    MemoryEstimate,
    Rollout,
    Strategy,
    Workload,
    checkpoint_dtype_bytes,
    estimate_memory,
    find_architecture,
)

# A 720p broadcast: frames are resized from it to the recipe's pixel budget (--source changes it).
DEFAULT_SOURCE = (720, 1280)
# Text tokens of the prompt around the video (system turn, instructions, vocabulary, chat
# markup) and of an SFT answer, with the Qwen tokenizers: the diving prompt is about 2,300
# characters, a SAR answer for five steps with judges about 400-500 tokens.
DEFAULT_PROMPT_TOKENS = 640
DEFAULT_ANSWER_TOKENS = 512
# Qwen3-VL writes "<t seconds>" and a vision start/end pair per temporal patch.
TIMESTAMP_TOKENS = 9
GPU_SIZES_GB = (24, 40, 80, 141)
Method = Literal["lora", "full"]
HPL_KEYS = ("group_size", "prompts_per_step", "max_completion_length", "rewards", "rollout_backend")


@dataclass
class RecipePlan:
    """The plan of one recipe: its shape, token counts and per-strategy estimates by method."""

    recipe: str
    kind: Literal["sft", "hpl"]
    arch: Architecture
    method: Method  # the recipe's own
    workloads: dict[str, Workload]  # by method
    frames: tuple[int, int, int]  # frames, height, width after resizing
    visual_tokens: int
    prompt_tokens: int  # text + visual
    completion_tokens: int
    gpus: int
    device_bytes: int | None
    estimates: dict[str, dict[str, MemoryEstimate]] = field(default_factory=dict)  # method -> strategy
    notes: list[str] = field(default_factory=list)

    def best(self, device_bytes: int, gpus: int | None = None) -> tuple[int, Strategy] | None:
        """The cheapest way to run the recipe's method on devices of ``device_bytes``: one GPU
        with plain training, else the least sharded strategy on ``gpus`` (default: the plan's)."""
        single = self._estimate(self.method, "ddp", 1, device_bytes)
        if single.fits(device_bytes):
            return 1, "ddp"
        n = gpus or self.gpus
        if n < 2:
            return None
        for strategy in ("ddp", "zero2", "fsdp", "zero3"):
            if self._refused(strategy):
                continue
            if self._estimate(self.method, strategy, n, device_bytes).fits(device_bytes):
                return n, strategy
        return None

    def _refused(self, strategy: str) -> bool:
        rollout = self.workloads[self.method].rollout
        return rollout is not None and rollout.backend == "vllm" and strategy in ("fsdp", "zero3")

    def _estimate(self, method: str, strategy: Strategy, gpus: int, device_bytes: int) -> MemoryEstimate:
        return estimate_memory(self.arch, self.workloads[method], strategy, gpus, device_bytes=device_bytes)


def recipe_kind(path: str | Path) -> Literal["sft", "hpl"]:
    """``hpl`` for a recipe with GRPO settings (group size, rewards, ...), else ``sft``."""
    merged = read_recipe(path)
    return "hpl" if any(key in merged for key in HPL_KEYS) else "sft"


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> tuple[str, Any]:
    """``(kind, config)``: the recipe read and checked by its trainer's config class."""
    kind = recipe_kind(path)
    if kind == "hpl":
        from hieroaction.config import load_config
        from hieroaction.train.hpl import HPLConfig

        return kind, load_config(HPLConfig, path, list(overrides))
    from hieroaction.train.sft import load_sft_config

    return kind, load_sft_config(path, list(overrides))


def clip_frames(frames: Any, source: tuple[int, int] = DEFAULT_SOURCE) -> tuple[int, int, int]:
    """``(frames, height, width)`` of a clip under a recipe's ``data.frames``: ``num_frames``
    (``fps``: ``max_frames``, the most it may give), resized from a ``source`` (height, width)."""
    from hieroaction.video.resize import target_size

    count = frames.max_frames if frames.strategy == "fps" else frames.num_frames
    height, width = target_size(source[0], source[1], count, frames)
    return count, height, width


def plan_recipe(
    path: str | Path,
    gpus: int = 1,
    gpu_memory_gb: float | None = None,
    *,
    source: tuple[int, int] = DEFAULT_SOURCE,
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
    answer_tokens: int = DEFAULT_ANSWER_TOKENS,
    arch: str | None = None,
    overrides: Sequence[str] = (),
) -> RecipePlan:
    """The memory plan of a recipe on ``gpus`` devices (of ``gpu_memory_gb`` GiB, if given).

    Args:
        path: an SFT or HPL recipe.
        gpus: devices of the sharded strategies.
        gpu_memory_gb: the device size (needed for a vLLM engine's share; else 80).
        source: the videos' frame size (height, width) before resizing.
        prompt_tokens: text tokens of the prompt (the visual tokens are added).
        answer_tokens: tokens of an SFT answer (HPL: ``max_completion_length``).
        arch: a table architecture to use instead of the model's own.
        overrides: ``--key value`` overrides of the recipe.
    """
    kind, config = load_recipe(path, overrides)
    architecture = find_architecture(config.model, arch)
    count, height, width = clip_frames(config.data.frames, source)
    visual = architecture.visual_tokens(count, height, width)
    text = prompt_tokens
    if architecture.family == "qwen3_vl":
        text += -(-count // architecture.vision.temporal_patch_size) * TIMESTAMP_TOKENS
    prompt = text + visual
    precision = config.precision if config.precision != "auto" else "bf16"  # every GPU listed has bf16
    compute = 4 if precision == "fp32" else 2
    notes = []
    if kind == "hpl":
        completion = config.max_completion_length
        saved = checkpoint_dtype_bytes(config.model)
        weight_bytes = saved or 2
        if saved is None:
            notes.append(f"{config.model}: not here; its weights are taken to be saved in bf16 (as SFT saves them)")
        sequences = config.forward_batch_size or config.group_size
        backend = config.rollout_backend
        rollout = Rollout(config.group_size, prompt, completion, backend,
                          getattr(config.vllm, "gpu_memory_utilization", 0.3))
        base = Workload(
            weight_bytes=weight_bytes, compute_bytes=compute, sequences=sequences,
            tokens=prompt + completion, visual_tokens=visual, logit_tokens=completion + 1, loss="grpo",
            rollout=rollout,
        )
    else:
        completion = answer_tokens
        base = Workload(
            weight_bytes=2 if precision == "bf16" else 4, compute_bytes=compute, sequences=config.batch_size,
            tokens=prompt + completion, visual_tokens=visual, logit_tokens=prompt + completion, loss="causal_lm",
        )
    attention = config.attn_implementation if kind == "sft" and config.attn_implementation else "sdpa"
    base = replace(
        base,
        lora_targets=tuple(config.lora.target_modules), lora_dropout=config.lora.dropout,
        train_vision=config.trainable.vision, train_merger=config.trainable.merger,
        gradient_checkpointing=config.gradient_checkpointing, attention=attention,
    )
    workloads = {"lora": replace(base, lora_r=config.lora.r), "full": replace(base, lora_r=0)}
    method: Method = "lora" if config.lora.enabled else "full"
    device = int(gpu_memory_gb * GiB) if gpu_memory_gb else None
    plan = RecipePlan(
        recipe=str(path), kind=kind, arch=architecture, method=method, workloads=workloads,
        frames=(count, height, width), visual_tokens=visual, prompt_tokens=prompt,
        completion_tokens=completion, gpus=gpus, device_bytes=device, notes=notes,
    )
    for name, workload in workloads.items():
        plan.estimates[name] = {
            s: estimate_memory(architecture, workload, s, gpus, device_bytes=device or 80 * GiB) for s in STRATEGIES
        }
    return plan


def shipped_recipes(configs: str | Path = "configs") -> list[Path]:
    """The SFT and HPL recipes under ``configs`` (``sft/*.yaml``, ``hpl/*.yaml``)."""
    root = Path(configs)
    recipes = sorted((root / "sft").glob("*.yaml")) + sorted((root / "hpl").glob("*.yaml"))
    if not recipes:
        raise ConfigError(f"{root}: no recipes under sft/ or hpl/ (run from the repository root, or pass --configs)")
    return recipes


def fit_table(
    plans: Sequence[RecipePlan], sizes: Sequence[float] = GPU_SIZES_GB, gpus: int = 8
) -> list[dict[str, Any]]:
    """One row per plan: for each device size, ``"1 GPU"``, ``"N x strategy"`` or ``"no"``."""
    rows = []
    for plan in plans:
        row: dict[str, Any] = {"recipe": plan.recipe, "method": plan.method, "kind": plan.kind}
        for size in sizes:
            best = plan.best(int(size * GiB), gpus)
            row[f"{size:g} GB"] = "no" if best is None else ("1 GPU" if best[0] == 1 else f"{best[0]} x {best[1]}")
        rows.append(row)
    return rows


__all__ = [
    "DEFAULT_ANSWER_TOKENS",
    "DEFAULT_PROMPT_TOKENS",
    "DEFAULT_SOURCE",
    "GPU_SIZES_GB",
    "RecipePlan",
    "clip_frames",
    "fit_table",
    "load_recipe",
    "plan_recipe",
    "recipe_kind",
    "shipped_recipes",
]
