"""How much memory training a Qwen VL model takes per device: architectures and the estimate.

:class:`Architecture` holds what the estimate needs of a checkpoint (widths, depths, heads,
vocabulary, vision tower), read from its ``config.json`` (:func:`architecture_from_config`) or,
for a checkpoint not on this machine, from the table of released architectures in
``models/data/architectures.yaml`` (:func:`find_architecture`). :func:`estimate_memory` turns an
architecture, a :class:`Workload` (what trains, how long the sequences are, precision,
rollouts) and a distribution strategy (DDP, FSDP, DeepSpeed ZeRO-2/3) into a
:class:`MemoryEstimate` per device, term by term. The rules, and how far they are from measured
peaks, are in docs/training.md ("Memory planning"); :mod:`hieroaction.train.plan` builds
workloads from recipes.

Everything here is arithmetic on integers: no torch, no model is built.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from hieroaction.errors import ConfigError

GiB = 1024**3

Strategy = Literal["ddp", "fsdp", "zero2", "zero3"]
STRATEGIES: tuple[Strategy, ...] = ("ddp", "fsdp", "zero2", "zero3")
LossKind = Literal["causal_lm", "grpo"]

# Non-model memory of a CUDA process: context, cuBLAS workspaces, NCCL buffers (measured values
# are 0.5-1.5 GiB; the larger one is used so a plan errs on the safe side).
CUDA_OVERHEAD = int(1.5 * GiB)
# Share of a device's memory a plan may use (the rest is left to allocator fragmentation).
USABLE_FRACTION = 0.95
# The LoRA target modules whose input is the hidden state (width h); o_proj's input has width
# heads x head_dim and down_proj's the MLP width.
_HIDDEN_INPUT_MODULES = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")


# ---------------------------------------------------------------------------------------------
# Architectures
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextArchitecture:
    """The language model (decoder) of a Qwen VL checkpoint (``text_config`` fields)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    head_dim: int = 0  # 0: hidden_size // num_attention_heads
    tie_word_embeddings: bool = False
    qkv_bias: bool = True  # Qwen2.5-VL: biased q/k/v; Qwen3-VL: none, plus q/k RMSNorms
    qk_norm: bool = False

    def __post_init__(self) -> None:
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)

    @property
    def q_width(self) -> int:
        return self.num_attention_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.num_key_value_heads * self.head_dim

    def layer_parameters(self) -> int:
        """Parameters of one decoder layer."""
        h, i = self.hidden_size, self.intermediate_size
        attention = h * self.q_width + 2 * h * self.kv_width + self.q_width * h
        if self.qkv_bias:
            attention += self.q_width + 2 * self.kv_width
        if self.qk_norm:
            attention += 2 * self.head_dim
        return attention + 3 * h * i + 2 * h  # gate/up/down, two RMSNorms

    def lora_parameters(self, r: int, targets: tuple[str, ...]) -> int:
        """LoRA parameters of one decoder layer: r x (in + out) per adapted module."""
        h, i = self.hidden_size, self.intermediate_size
        shapes = {
            "q_proj": (h, self.q_width), "k_proj": (h, self.kv_width), "v_proj": (h, self.kv_width),
            "o_proj": (self.q_width, h), "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h),
        }
        return sum(r * (a + b) for name, (a, b) in shapes.items() if name in targets)


@dataclass(frozen=True)
class VisionArchitecture:
    """The vision tower and projector (``vision_config`` fields)."""

    depth: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    out_hidden_size: int
    patch_size: int
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2
    in_channels: int = 3
    # Qwen2.5-VL: RMSNorm, SwiGLU MLP with biases; Qwen3-VL: LayerNorm, GELU MLP, learned
    # position embeddings and one extra projector per deepstack layer.
    gated_mlp: bool = True
    layer_norm: bool = False
    num_position_embeddings: int = 0
    deepstack_layers: int = 0

    @property
    def patch_inputs(self) -> int:
        """Values of one patch (channels x temporal x spatial x spatial)."""
        return self.in_channels * self.temporal_patch_size * self.patch_size**2

    def block_parameters(self) -> int:
        d, i = self.hidden_size, self.intermediate_size
        norms = 2 * (2 * d if self.layer_norm else d)
        attention = d * 3 * d + 3 * d + d * d + d
        mlp = (2 * d * i + 2 * i + i * d + d) if self.gated_mlp else (d * i + i + i * d + d)
        return norms + attention + mlp

    def tower_parameters(self) -> int:
        """Patch embedding, position embeddings and blocks (the projector excluded)."""
        patch = self.patch_inputs * self.hidden_size + (self.hidden_size if self.layer_norm else 0)
        return patch + self.num_position_embeddings * self.hidden_size + self.depth * self.block_parameters()

    def merger_parameters(self) -> int:
        """The projector(s) from merged patches to the language model's width."""
        d, merged = self.hidden_size, self.hidden_size * self.spatial_merge_size**2
        mlp = merged * merged + merged + merged * self.out_hidden_size + self.out_hidden_size
        main = (2 * d if self.layer_norm else d) + mlp
        return main + self.deepstack_layers * (2 * merged + mlp)  # deepstack: LayerNorm on merged


@dataclass(frozen=True)
class Architecture:
    """A Qwen VL checkpoint's shape: what the memory estimate needs."""

    name: str
    family: str
    text: TextArchitecture
    vision: VisionArchitecture
    source: str = "table"  # "config.json" when read from a model folder

    @property
    def embedding_parameters(self) -> int:
        return self.text.vocab_size * self.text.hidden_size

    @property
    def head_parameters(self) -> int:
        return 0 if self.text.tie_word_embeddings else self.embedding_parameters

    @property
    def language_parameters(self) -> int:
        """Embedding, decoder layers, final norm and (untied) head."""
        t = self.text
        return self.embedding_parameters + t.num_hidden_layers * t.layer_parameters() + t.hidden_size + self.head_parameters

    @property
    def total_parameters(self) -> int:
        return self.language_parameters + self.vision.tower_parameters() + self.vision.merger_parameters()

    def parameter_counts(self) -> dict[str, int]:
        return {
            "language": self.language_parameters,
            "vision": self.vision.tower_parameters(),
            "merger": self.vision.merger_parameters(),
            "total": self.total_parameters,
        }

    def visual_tokens(self, num_frames: int, height: int, width: int) -> int:
        """Merged visual tokens of a clip of ``num_frames`` frames already at ``height x width``
        (multiples of the patch grid): one per merge x merge patches per temporal patch."""
        v = self.vision
        t = -(-num_frames // v.temporal_patch_size)
        return t * (height // v.patch_size) * (width // v.patch_size) // v.spatial_merge_size**2


def _family_flags(family: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if family == "qwen2_5_vl":
        return {"qkv_bias": True, "qk_norm": False}, {"gated_mlp": True, "layer_norm": False}
    if family == "qwen3_vl":
        return {"qkv_bias": False, "qk_norm": True}, {"gated_mlp": False, "layer_norm": True}
    raise ConfigError(f"no memory model for the model family {family!r} (known: qwen2_5_vl, qwen3_vl)")


def _pick(source: dict[str, Any], keys: tuple[str, ...], *fallbacks: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in keys:
        for mapping in (source, *fallbacks):
            if key in mapping and mapping[key] is not None:
                out[key] = mapping[key]
                break
    return out


_TEXT_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "vocab_size", "head_dim", "tie_word_embeddings")
_VISION_KEYS = ("depth", "hidden_size", "intermediate_size", "num_heads", "out_hidden_size", "patch_size",
                "spatial_merge_size", "temporal_patch_size", "num_position_embeddings")


def architecture_from_config(config: dict[str, Any], name: str = "", source: str = "config.json") -> Architecture:
    """An :class:`Architecture` from a checkpoint's ``config.json`` contents (text fields under
    ``text_config`` or, in older files, at the top level)."""
    family = str(config.get("model_type", ""))
    text_flags, vision_flags = _family_flags(family)
    text_config = config.get("text_config") or {}
    vision_config = config.get("vision_config") or {}
    text = _pick(text_config, _TEXT_KEYS, config)
    vision = _pick(vision_config, _VISION_KEYS)
    vision["in_channels"] = vision_config.get("in_channels", vision_config.get("in_chans", 3))
    vision.setdefault("out_hidden_size", text.get("hidden_size"))
    vision["deepstack_layers"] = len(vision_config.get("deepstack_visual_indexes") or [])
    try:
        return Architecture(
            name=name or family,
            family=family,
            text=TextArchitecture(**text, **text_flags),
            vision=VisionArchitecture(**vision, **vision_flags),
            source=source,
        )
    except TypeError as exc:
        raise ConfigError(f"{name or 'config.json'}: not a Qwen VL configuration the planner can read ({exc})") from None


@lru_cache(maxsize=1)
def known_architectures() -> dict[str, Architecture]:
    """The released architectures of ``models/data/architectures.yaml``, by checkpoint id."""
    text = resources.files("hieroaction.models").joinpath("data/architectures.yaml").read_text()
    out = {}
    for name, entry in yaml.safe_load(text).items():
        vision = dict(entry["vision"])
        deepstack = vision.pop("deepstack_visual_indexes", None)
        config = {"model_type": entry["family"], "text_config": entry["text"],
                  "vision_config": {**vision, "deepstack_visual_indexes": deepstack}}
        out[name] = architecture_from_config(config, name=name, source="table")
    return out


def _match_keys() -> dict[str, str]:
    text = resources.files("hieroaction.models").joinpath("data/architectures.yaml").read_text()
    return {m: name for name, entry in yaml.safe_load(text).items() for m in entry.get("match", [])}


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower())


def find_architecture(model: str, arch: str | None = None) -> Architecture:
    """The architecture of ``model`` (a folder or a Hub id / run name).

    ``arch`` names a table entry explicitly. Otherwise a folder with ``config.json`` is read;
    else the first table entry whose id or ``match`` fragment occurs in the name (``.`` and
    ``-`` read as ``_``: ``runs/sft/finediving_qwen2_5_vl_7b_lora`` is Qwen2.5-VL-7B).
    """
    table = known_architectures()
    if arch:
        for name, value in table.items():
            if _normalise(name) == _normalise(arch) or _normalise(name).endswith(_normalise(arch)):
                return value
        raise ConfigError(f"unknown architecture {arch!r}; known: {', '.join(table)}")
    folder = Path(model).expanduser()
    if (folder / "config.json").is_file():
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{folder / 'config.json'}: cannot be read ({exc})") from None
        return architecture_from_config(config, name=str(model))
    key = _normalise(model)
    for fragment, name in _match_keys().items():
        if fragment in key:
            return table[name]
    raise ConfigError(
        f"{model}: no config.json there and no known architecture in its name; name one with "
        f"--arch (known: {', '.join(table)})"
    )


def checkpoint_dtype_bytes(model: str) -> int | None:
    """Bytes per weight a model folder is saved in (its config's ``dtype``), None if unknown."""
    path = Path(model).expanduser() / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    dtype = config.get("dtype") or config.get("torch_dtype") or (config.get("text_config") or {}).get("dtype")
    return {"float32": 4, "bfloat16": 2, "float16": 2}.get(str(dtype))


# ---------------------------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rollout:
    """GRPO sampling: ``group_size`` completions of one prompt at a time."""

    group_size: int
    prompt_tokens: int
    completion_tokens: int
    backend: Literal["hf", "vllm"] = "hf"
    gpu_memory_utilization: float = 0.3  # vLLM: the engine's share of the device


@dataclass(frozen=True)
class Workload:
    """What one device holds and computes in a training step.

    Attributes:
        lora_r: LoRA rank (0: full fine-tuning of the language model).
        lora_targets, lora_dropout: the adapted module names; dropout > 0 keeps a dropped-out
            copy of each adapted module's input for the backward pass.
        train_vision, train_merger: the vision tower / the projector learn.
        weight_bytes: bytes per weight as loaded (2: bf16/fp16, 4: fp32).
        compute_bytes: bytes per activation (2 under bf16/fp16 autocast, 4 in fp32).
        sequences: sequences in one forward/backward pass (micro-batch).
        tokens: tokens per sequence (text + visual).
        visual_tokens: merged visual tokens per sequence (part of ``tokens``).
        logit_tokens: positions whose logits are computed per sequence.
        loss: ``causal_lm`` (transformers' loss over all positions) or ``grpo`` (HPL's
            token log-probabilities of the completion).
        gradient_checkpointing: decoder layers (and vision blocks) recompute in the backward.
        rollout: GRPO sampling (HPL), or None.
        attention: ``sdpa``/``flash_attention_2`` (no score matrix kept) or ``eager``.
        padded: the batch has padding, so SDPA gets an attention mask (None: when
            ``sequences`` > 1); flash attention never keeps one.
    """

    lora_r: int = 0
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    lora_dropout: float = 0.05
    train_vision: bool = False
    train_merger: bool = True
    weight_bytes: int = 2
    compute_bytes: int = 2
    sequences: int = 1
    tokens: int = 2048
    visual_tokens: int = 1024
    logit_tokens: int = 2048
    loss: LossKind = "causal_lm"
    gradient_checkpointing: bool = True
    rollout: Rollout | None = None
    attention: str = "sdpa"
    padded: bool | None = None

    @property
    def lora(self) -> bool:
        return self.lora_r > 0

    @property
    def masked(self) -> bool:
        """A (sequence x sequence) mask reaches every attention call: eager attention, or SDPA
        with padding (torch turns the boolean mask into one in compute precision per call)."""
        if self.attention == "eager":
            return True
        padded = self.sequences > 1 if self.padded is None else self.padded
        return padded and self.attention != "flash_attention_2"


@dataclass
class MemoryEstimate:
    """Per-device memory of one strategy, in bytes, term by term.

    ``static`` terms live through the whole run (weights, optimizer states, the vLLM engine);
    the step's peak adds the larger of the training pass and the rollout (KV cache, prefill).
    The training pass holds the gradients, the visual inputs and the kept activations, and on
    top of them either the logits and the loss's buffers (the start of the backward pass) or,
    with gradient checkpointing, one recomputed layer (later in the backward pass, when the
    logits are gone), whichever is larger.
    """

    strategy: Strategy
    gpus: int
    weights: int
    optimizer: int
    gradients: int
    activations: int  # kept for the backward pass (with checkpointing: the layer inputs)
    logits: int
    visual: int
    recompute: int = 0  # gradient checkpointing: one layer recomputed in the backward pass
    rollout: int = 0
    engine: int = 0  # vLLM's reserved share of the device (needs the device size)
    gathered: int = 0  # ZeRO-3/FSDP: the unsharded layers being computed (and prefetched)
    overhead: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def training_pass(self) -> int:
        return self.gradients + self.visual + self.activations + max(self.logits, self.recompute)

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.gathered + self.engine + self.overhead + max(
            self.training_pass, self.rollout
        )

    def terms(self) -> dict[str, int]:
        return {
            "weights": self.weights, "optimizer": self.optimizer, "gradients": self.gradients,
            "activations": self.activations, "recompute": self.recompute, "logits": self.logits,
            "visual": self.visual, "rollout": self.rollout, "engine": self.engine, "gathered": self.gathered,
            "overhead": self.overhead, "total": self.total,
        }

    def fits(self, device_bytes: int) -> bool:
        return self.total <= device_bytes * USABLE_FRACTION


def layer_activation_elements(text: TextArchitecture, workload: Workload) -> int:
    """Activation values one decoder layer keeps per token for its backward pass.

    Input RMSNorm: input and output (2h); q, k before and after rotary embedding, v
    (2 q + 3 kv widths); attention output (q width; SDPA/flash keep no score matrix, eager adds
    heads x sequence scores and probabilities); post-attention RMSNorm (2h); SwiGLU MLP: gate,
    up, SiLU(gate) and their product (4 x intermediate). A padded batch under SDPA (and eager
    attention) adds the layer's own copy of the (T x T) mask: T values per token. LoRA with
    dropout adds the dropped-out input of every adapted module.
    """
    h, i = text.hidden_size, text.intermediate_size
    elements = 4 * h + 3 * text.q_width + 3 * text.kv_width + 4 * i
    if workload.attention == "eager":
        elements += 2 * text.num_attention_heads * workload.tokens
    if workload.masked:
        elements += workload.tokens  # the layer's (T x T) mask in compute precision, per token
    if workload.lora and workload.lora_dropout > 0:
        widths = {name: h for name in _HIDDEN_INPUT_MODULES}
        widths.update(o_proj=text.q_width, down_proj=i)
        elements += sum(widths.get(name, 0) for name in workload.lora_targets)
    return elements


def vision_block_activation_elements(vision: VisionArchitecture) -> int:
    """Values one vision block keeps per patch: two norms (in and out), q/k/v and rotary q/k,
    attention output, MLP (SwiGLU: 4 x width, GELU: 2 x width)."""
    d, i = vision.hidden_size, vision.intermediate_size
    return 4 * d + 5 * d + d + (4 * i if vision.gated_mlp else 2 * i)


def activation_bytes(arch: Architecture, workload: Workload) -> int:
    """Decoder activations one micro-batch keeps for its backward pass (without logits): every
    layer's (:func:`layer_activation_elements`), or with gradient checkpointing each layer's
    input only; plus the embeddings, their merge with the visual features and the final norm
    (4h per token)."""
    text = arch.text
    extra = 4 * text.hidden_size
    if workload.gradient_checkpointing:
        per_token = text.num_hidden_layers * text.hidden_size + extra
    else:
        per_token = text.num_hidden_layers * layer_activation_elements(text, workload) + extra
    return workload.sequences * workload.tokens * per_token * workload.compute_bytes


def recompute_bytes(arch: Architecture, workload: Workload) -> int:
    """With gradient checkpointing: the one layer whose activations the backward pass
    recomputes at a time."""
    if not workload.gradient_checkpointing:
        return 0
    per_layer = layer_activation_elements(arch.text, workload)
    return workload.sequences * workload.tokens * per_layer * workload.compute_bytes


def logits_bytes(arch: Architecture, workload: Workload) -> int:
    """The language-model head's outputs and the loss over them, one micro-batch.

    ``causal_lm``: at the start of the backward pass the logits (compute precision), their
    fp32 log-softmax kept for the backward, its fp32 gradient and the fp32 gradient of the
    logits: (compute bytes + 12) x vocabulary per position (16 in fp32, which the CPU runs of
    benchmarks/bench_plan.py bear out). ``grpo`` (HPL's ``token_logprobs``): the logits plus one
    fp32 tempered copy kept per sequence, and one sequence's fp32 gradients in the backward.
    """
    v, b = arch.text.vocab_size, workload.compute_bytes
    positions = workload.sequences * workload.logit_tokens
    if workload.loss == "causal_lm":
        return positions * v * (b + 12)
    return positions * v * (b + 4) + workload.logit_tokens * v * 8


def visual_bytes(arch: Architecture, workload: Workload) -> int:
    """Pixels of the clip(s) and what the vision side keeps for the backward pass.

    The pixels (fp32, plus a copy in compute precision); with a trainable projector its inputs
    (merged patches) and hidden layer; with a trainable vision tower every block's activations
    (or, with checkpointing, the block inputs and one block).
    """
    v, b = arch.vision, workload.compute_bytes
    clips = workload.sequences if workload.rollout is None else 1  # HPL encodes a group's clip once
    patches = workload.visual_tokens * v.spatial_merge_size**2 * clips
    total = patches * v.patch_inputs * (4 + b)
    if workload.train_merger or workload.train_vision:
        total += patches * v.hidden_size * 3 * b
    if workload.train_vision:
        block = vision_block_activation_elements(v)
        per_patch = v.depth * v.hidden_size + block if workload.gradient_checkpointing else v.depth * block
        total += patches * per_patch * b
    return total


def kv_cache_bytes(arch: Architecture, sequences: int, tokens: int, value_bytes: int) -> int:
    """The KV cache of ``sequences`` x ``tokens``: x layers x 2 (K and V) x KV heads x head_dim
    x bytes per value."""
    text = arch.text
    return sequences * tokens * text.num_hidden_layers * 2 * text.num_key_value_heads * text.head_dim * value_bytes


def rollout_bytes(arch: Architecture, workload: Workload) -> int:
    """Hugging Face ``generate`` of one group: the KV cache, group_size x (prompt + completion)
    tokens x layers x 2 (K, V) x kv heads x head_dim x bytes, plus the prefill's working set
    (one layer's activations over the group's prompts) and the last position's logits."""
    r = workload.rollout
    if r is None or r.backend != "hf":
        return 0
    text, b = arch.text, workload.compute_bytes
    kv = kv_cache_bytes(arch, r.group_size, r.prompt_tokens + r.completion_tokens, b)
    prefill = r.group_size * r.prompt_tokens * (2 * text.hidden_size + 2 * text.intermediate_size) * b
    return kv + prefill + r.group_size * text.vocab_size * 4


def _trainable(arch: Architecture, workload: Workload) -> tuple[int, int, int]:
    """(trainable parameters in the weights' dtype, trainable fp32 LoRA parameters, frozen).

    Full fine-tuning trains the language model (embeddings and head included) plus the parts
    named; LoRA trains adapters (fp32: PEFT keeps adapters of 16-bit layers in fp32), a
    trainable copy of the projector (``modules_to_save``) and the vision tower's adapters when
    the tower trains.
    """
    counts = arch.parameter_counts()
    merger, vision = counts["merger"], counts["vision"]
    if not workload.lora:
        trainable = counts["language"] + (merger if workload.train_merger else 0) + (vision if workload.train_vision else 0)
        return trainable, 0, counts["total"] - trainable
    t = arch.text
    adapters = t.num_hidden_layers * t.lora_parameters(workload.lora_r, workload.lora_targets)
    if workload.train_vision and arch.vision.gated_mlp:
        # of the default targets only Qwen2.5-VL's vision MLP names match (gate/up/down_proj)
        v = arch.vision
        mlp = sum(1 for name in ("gate_proj", "up_proj", "down_proj") if name in workload.lora_targets)
        adapters += v.depth * mlp * workload.lora_r * (v.hidden_size + v.intermediate_size)
    copy = merger if workload.train_merger else 0
    return copy, adapters, counts["total"]


def estimate_memory(
    arch: Architecture,
    workload: Workload,
    strategy: Strategy = "ddp",
    gpus: int = 1,
    device_bytes: int | None = None,
    overhead: int = CUDA_OVERHEAD,
) -> MemoryEstimate:
    """Per-device memory of training ``arch`` on ``workload`` under ``strategy`` on ``gpus``.

    Bytes per trainable parameter (weights + gradients + AdamW's two moments, and DeepSpeed's
    fp32 master copy), N = gpus:

    * ``ddp``: nothing sharded. Weights and gradients in the loaded dtype; torch's AdamW keeps
      its moments in the parameter's dtype (bf16 weights: 2 + 2; fp32: 4 + 4). With more than
      one process DDP adds its gradient buckets (one more copy of the gradients).
    * ``zero2``: DeepSpeed bf16 weights replicated (2), gradients (2) and the fp32 master
      weights and moments (12) sharded over N.
    * ``zero3``: all of ZeRO-2's terms sharded over N, plus the gathered parameters of the
      layers being computed (two decoder layers, and the embedding matrix when it is gathered).
    * ``fsdp`` (FSDP2): accelerate upcasts the trainable parameters to fp32 under mixed
      precision; fp32 weights, gradients and moments (4 + 4 + 8) and the frozen weights sharded
      over N, plus two gathered decoder layers in compute precision and one layer's fp32
      gradient before its reduce-scatter.

    Frozen parameters cost their weights only (sharded where weights are). LoRA adapters are
    fp32 with fp32 moments. Activations, logits and visual inputs are never sharded.
    ``device_bytes`` is needed for the vLLM engine's share; ``overhead`` is the CUDA process's
    own memory (0 for a CPU estimate).
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if gpus < 1:
        raise ConfigError(f"gpus must be at least 1, got {gpus}")
    n, w = gpus, workload.weight_bytes
    trainable, adapters, frozen = _trainable(arch, workload)
    notes: list[str] = []
    t = arch.text
    layer = t.layer_parameters()
    gathered = 0
    if strategy == "ddp":
        weights = (trainable + frozen) * w + adapters * 4
        gradients = trainable * w + adapters * 4
        optimizer = trainable * 2 * w + adapters * 8
        if n > 1:
            gradients *= 2
    elif strategy in ("zero2", "zero3"):
        # DeepSpeed's bf16/fp16 engine holds 16-bit weights (an fp32 run: 4 bytes, no master)
        w16 = 2 if workload.compute_bytes == 2 else 4
        master = 4 if w16 == 2 else 0
        weights = (trainable + frozen + adapters) * w16
        gradients = (trainable + adapters) * w16
        optimizer = (trainable + adapters) * (8 + master) // n
        if strategy == "zero2":
            gradients //= n
        else:
            weights //= n
            gradients //= n
            gathered = 2 * layer * w16 + (arch.embedding_parameters * w16 if not workload.lora else 0)
    else:  # fsdp
        weights = ((trainable + adapters) * 4 + frozen * w) // n
        gradients = (trainable + adapters) * 4 // n
        optimizer = (trainable + adapters) * 8 // n
        gathered = 2 * layer * workload.compute_bytes + layer * 4
    engine = 0
    rollout = workload.rollout
    if rollout is not None and rollout.backend == "vllm":
        if device_bytes is None:
            notes.append("vLLM engine not counted: the device size is unknown")
        else:
            engine = int(rollout.gpu_memory_utilization * device_bytes)
        if strategy in ("fsdp", "zero3"):
            notes.append("rollout_backend vllm is refused with FSDP and ZeRO-3 (docs/hpl.md)")
    return MemoryEstimate(
        strategy=strategy,
        gpus=n,
        weights=weights,
        optimizer=optimizer,
        gradients=gradients,
        activations=activation_bytes(arch, workload),
        recompute=recompute_bytes(arch, workload),
        logits=logits_bytes(arch, workload),
        visual=visual_bytes(arch, workload),
        rollout=rollout_bytes(arch, workload),
        engine=engine,
        gathered=gathered,
        overhead=overhead,
        notes=notes,
    )


__all__ = [
    "CUDA_OVERHEAD",
    "STRATEGIES",
    "USABLE_FRACTION",
    "Architecture",
    "GiB",
    "MemoryEstimate",
    "Rollout",
    "TextArchitecture",
    "VisionArchitecture",
    "Workload",
    "activation_bytes",
    "architecture_from_config",
    "checkpoint_dtype_bytes",
    "estimate_memory",
    "find_architecture",
    "known_architectures",
    "kv_cache_bytes",
    "layer_activation_elements",
    "logits_bytes",
    "recompute_bytes",
    "rollout_bytes",
    "visual_bytes",
]
