"""vLLM as an optional rollout backend of :class:`~hieroaction.train.hpl.HPLTrainer` (GPU only).

``rollout_backend: vllm`` samples the G completions of each prompt with a vLLM engine colocated
in every training process (tensor parallel 1, the same model folder as the policy, part of the
same GPU), instead of Hugging Face ``generate``. Per step:

1. the policy's current weights are pushed into the engine (LoRA adapters merged on the fly:
   ``base + delta`` is sent, the policy itself is not modified), :meth:`VLLMRollout.load_weights`;
2. the engine samples from the full distribution ``softmax(logits / T)`` with every vision
   special token excluded (``allowed_token_ids``), and reports each sampled token's
   log-probability after those processors (``logprobs_mode="processed_logprobs"``);
3. the trainer scores the completions again with a no-grad forward pass of the policy on the
   same video tensors as its loss pass: those are the "old" log-probabilities of the ratio, and
   ``min(exp(old - vllm), cap)`` weights each token's surrogate (truncated importance sampling,
   :func:`~hieroaction.train.objective.truncated_importance_weights`).

The video reaches vLLM as the frames the training processor patches (the cached frames, already
at the pixel budget; vLLM's processor is told not to resize them), with metadata that reproduce
the training processor's frame times, and the engine's prompt tokens are compared with the
training processor's on the first request: a difference (another number of visual tokens, other
time stamps) stops the run with one sentence rather than training on rollouts of another prompt.

Nothing here imports vLLM at module import time: only :class:`VLLMRollout` does, when it is
built. Written against the Python API of vLLM 0.31-0.33 (``LLM``, ``SamplingParams``, the
in-process engine of ``distributed_executor_backend="external_launcher"`` and the weight-sync
path TRL 1.16 uses with it); it has not been run: no GPU was available while it was written.
The pure functions (request building, output conversion, merged LoRA weights, the start-up
check) are tested on CPU.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from hieroaction.errors import ConfigError, VideoError
from hieroaction.models.families import VIDEO_TOKEN, VISION_END_TOKEN, VISION_START_TOKEN, ModelFamily
from hieroaction.models.video_inputs import VideoSettings, as_video_tensor, resize_video, sampled_fps
from hieroaction.train.objective import completion_mask

INSTALL_HINT = 'install it with pip install -e ".[vllm]" on a machine with a CUDA GPU (versions: docs/hpl.md)'

# How the chat templates write one video item; vLLM's Qwen VL processors look for this text.
VIDEO_ITEM = VISION_START_TOKEN + VIDEO_TOKEN + VISION_END_TOKEN

# How a request's prompt reaches the engine (see VideoRequest.to_vllm).
PromptForm = Literal["text", "token_ids"]


@dataclass
class VLLMSettings:
    """The ``vllm:`` section of an HPL recipe (used only with ``rollout_backend: vllm``).

    Attributes:
        gpu_memory_utilization: share of the GPU the colocated engine may take (weights, KV
            cache, activations); the training process keeps the rest.
        max_model_len: context of the engine (prompt + completion); ``None``: the model's.
        max_num_batched_tokens: tokens per engine step; ``None``: vLLM's default.
        enforce_eager: no CUDA graphs (less memory, slower sampling).
        dtype: the engine's weight dtype; ``auto``: the checkpoint's.
        importance_sampling_cap: truncation of the per-token importance weight
            ``min(exp(old - vllm), cap)`` (at least 1).
    """

    gpu_memory_utilization: float = 0.3
    max_model_len: int | None = None
    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    importance_sampling_cap: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ConfigError(
                f"vllm.gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}"
            )
        for name in ("max_model_len", "max_num_batched_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"vllm.{name} must be at least 1 (or null), got {value}")
        if not self.importance_sampling_cap >= 1.0:
            raise ConfigError(
                f"vllm.importance_sampling_cap must be at least 1, got {self.importance_sampling_cap}"
            )


def vllm_unavailable_reason() -> str | None:
    """Why vLLM rollouts cannot run on this machine (one sentence), or ``None`` when they can.

    Checks that the ``vllm`` package is installed and that a CUDA device is visible, without
    importing vLLM.
    """
    if importlib.util.find_spec("vllm") is None:
        return f"rollout_backend 'vllm' needs the vllm package, which is not installed; {INSTALL_HINT}"
    if not torch.cuda.is_available():
        return (
            "rollout_backend 'vllm' needs a CUDA GPU and none is visible; "
            "use rollout_backend 'hf' on this machine"
        )
    return None


# ---------------------------------------------------------------------------------------------
# The request: prompt text, frames and the processor settings that reproduce our inputs
# ---------------------------------------------------------------------------------------------


@dataclass
class VideoRequest:
    """One prompt for vLLM, built once per example.

    Attributes:
        prompt: the chat-templated prompt text with one ``<|vision_start|><|video_pad|>
            <|vision_end|>`` video item (unexpanded: vLLM's processor expands it).
        frames: the clip's frames, uint8 ``(T, H, W, 3)``, at the size the training processor
            patches them (``do_resize: False`` in ``mm_processor_kwargs``).
        metadata: the video metadata vLLM's Qwen VL processors read (frame indices, fps).
        mm_processor_kwargs: keyword arguments of the Hugging Face processor inside vLLM.
        prompt_token_ids: the expanded prompt of the training processor, which the engine's
            prompt must equal.
    """

    prompt: str
    frames: np.ndarray
    metadata: dict[str, Any]
    mm_processor_kwargs: dict[str, Any]
    prompt_token_ids: list[int] = field(default_factory=list)

    def to_vllm(self, form: PromptForm = "text", tokenizer: Any = None) -> dict[str, Any]:
        """The prompt as vLLM's ``LLM.generate`` takes it (a ``TextPrompt`` or ``TokensPrompt``
        mapping), the video item unexpanded in both forms.

        * ``"text"``: the prompt text. With vLLM's multimodal processor cache (its default) the
          engine tokenizes it and replaces the video item by its own rule (Qwen3-VL: the whole
          ``<|vision_start|><|video_pad|><|vision_end|>`` by one ``<t seconds><|vision_start|>
          ...<|vision_end|>`` block per temporal patch, the training processor's layout).
          Without that cache it lets the engine's transformers processor expand the item, and
          transformers 5.0-5.24 keep one more pair around Qwen3-VL's blocks.
        * ``"token_ids"``: the same prompt tokenized here with ``tokenizer`` (the engine's). vLLM
          expands a token prompt with its own rule whatever transformers it runs with.
        """
        if form == "text":
            prompt: dict[str, Any] = {"prompt": self.prompt}
        elif form == "token_ids":
            if tokenizer is None:
                raise ValueError("the token_ids form of a vLLM prompt needs the engine's tokenizer")
            prompt = {"prompt_token_ids": [int(i) for i in tokenizer.encode(self.prompt, add_special_tokens=False)]}
        else:
            raise ValueError(f"unknown vLLM prompt form {form!r} (text or token_ids)")
        return {
            **prompt,
            "multi_modal_data": {"video": (self.frames, dict(self.metadata))},
            "mm_processor_kwargs": dict(self.mm_processor_kwargs),
        }


def prompt_variants(family: ModelFamily) -> tuple[PromptForm, ...]:
    """The prompt forms to try, in order, for a family (see :meth:`VideoRequest.to_vllm`): the
    first whose engine prompt equals the training prompt is kept for the rest of the run.

    Qwen2.5-VL's item expands the same way on every path. Qwen3-VL's text prompt gets the
    training layout (one vision pair per temporal patch, none around the video) from vLLM's own
    replacement or transformers >= 5.25, but an extra outer pair where the engine runs without
    its processor cache on transformers 5.22-5.24 (vLLM 0.34 accepts only < 5.23): the token
    prompt is then expanded by vLLM's own rule."""
    if family.time_encoding == "timestamps":
        return ("text", "token_ids")
    return ("text",)


def video_metadata(
    timestamps: Sequence[float], fps: float, family: ModelFamily
) -> dict[str, Any]:
    """Metadata of a clip such that vLLM's processor reproduces the training processor's times.

    * Qwen3-VL writes ``<t seconds>`` per temporal patch from ``frames_indices[i] / fps``
      (averaged over the patch): the indices are the frames' offsets from the window start on
      the clip's own clock, which gives back the clip's timestamps exactly.
    * Qwen2.5-VL's ``second_per_grid_ts`` is ``temporal_patch_size / sampled_fps`` with
      transformers 5's ``sampled_fps = len(frames_indices) / total_num_frames * fps``;
      ``total_num_frames`` is chosen (not necessarily a whole number) so that this equals the
      training processor's sampled rate, ``(T - 1) / (t_last - t_first)``.
    """
    times = [float(t) for t in timestamps]
    if not times:
        raise VideoError("a clip without frames cannot be sent to vLLM")
    fps = float(fps)
    indices = [int(round(t * fps)) for t in times]
    if family.time_encoding == "second_per_grid_ts":
        total: float | int = len(times) * fps / sampled_fps(times, fps)
        if float(total).is_integer():
            total = int(total)
    else:
        total = max(indices) + 1
    return {
        "fps": fps,
        "total_num_frames": total,
        "frames_indices": indices,
        "duration": total / fps,
        "video_backend": "opencv",  # a label only; the frames are already decoded
        "do_sample_frames": False,
    }


def processor_kwargs(settings: VideoSettings) -> dict[str, Any]:
    """The pixel budget of the training processor, as the Hugging Face video processors inside
    vLLM take it (also given to ``LLM(mm_processor_kwargs=...)`` for its memory profiling)."""
    return {"size": {"shortest_edge": int(settings.min_pixels), "longest_edge": int(settings.max_pixels)}}


def build_request(
    prompt_text: str,
    clip: Any,
    settings: VideoSettings,
    family: ModelFamily,
    prompt_token_ids: Sequence[int] = (),
) -> VideoRequest:
    """The vLLM request of one example.

    Args:
        prompt_text: the chat template applied to the example's messages (generation prompt
            included), with its one video item.
        clip: the sampled clip (``frames``, ``timestamps``, ``fps``).
        settings: the training processor's video settings (the pixel budget of the frames).
        family: the model family.
        prompt_token_ids: the training processor's ``input_ids`` of the same prompt.
    """
    if prompt_text.count(VIDEO_ITEM) != 1:
        raise VideoError(
            f"vLLM rollouts need a prompt with exactly one video item ({VIDEO_ITEM}), "
            f"found {prompt_text.count(VIDEO_ITEM)}"
        )
    video = as_video_tensor(clip.frames)  # (T, 3, H, W) uint8
    if settings.do_resize:
        height, width = settings.target_size(video.shape[0], video.shape[2], video.shape[3])
        # frames from the cache are normally this size already; any others are resized here
        # with the training processor's kernel, and the engine's processor resizes nothing
        video = resize_video(video, height, width)
    frames = np.ascontiguousarray(video.permute(0, 2, 3, 1).numpy())
    kwargs: dict[str, Any] = {**processor_kwargs(settings), "do_resize": False, "do_sample_frames": False}
    if family.time_encoding == "second_per_grid_ts":
        # read by processors that take the rate from the call rather than from the metadata
        kwargs["fps"] = sampled_fps([float(t) for t in clip.timestamps], float(clip.fps))
    return VideoRequest(
        prompt=prompt_text,
        frames=frames,
        metadata=video_metadata(clip.timestamps, clip.fps, family),
        mm_processor_kwargs=kwargs,
        prompt_token_ids=[int(i) for i in prompt_token_ids],
    )


def prompt_mismatch(got: Sequence[int] | None, expected: Sequence[int], decode: Any) -> str | None:
    """``None`` when the engine's prompt tokens equal the training processor's, else where and
    how they differ (for the error message)."""
    if got is None:
        return "vLLM did not report the prompt's token ids"
    got, expected = [int(i) for i in got], [int(i) for i in expected]
    if got == expected:
        return None
    first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    lo = max(first - 4, 0)
    return (
        f"vLLM's prompt has {len(got)} tokens and the training processor's {len(expected)}; they first "
        f"differ at token {first}: vLLM {decode(got[lo:first + 6])!r}, training {decode(expected[lo:first + 6])!r}"
    )


# ---------------------------------------------------------------------------------------------
# Sampling parameters and outputs
# ---------------------------------------------------------------------------------------------


def allowed_token_ids(vocab_size: int, blocked_ids: Sequence[int]) -> list[int]:
    """Every token id of the model's output layer except the blocked (vision) ones."""
    blocked = set(int(i) for i in blocked_ids)
    return [i for i in range(int(vocab_size)) if i not in blocked]


def sampling_kwargs(
    n: int,
    temperature: float,
    max_tokens: int,
    allowed_ids: Sequence[int],
    eos_ids: Sequence[int],
) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams``: ``n`` samples of the full distribution
    ``softmax(logits / temperature)`` over the allowed tokens (no top-k, top-p, min-p or
    penalties), stopping at the end-of-turn tokens, each sampled token's log-probability
    returned (``logprobs=0``)."""
    return {
        "n": int(n),
        "temperature": float(temperature),
        "top_p": 1.0,
        "top_k": 0,  # 0 (or -1): every token
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "max_tokens": int(max_tokens),
        "logprobs": 0,  # the sampled token's own log-probability only
        "stop_token_ids": [int(i) for i in eos_ids],
        "allowed_token_ids": list(allowed_ids),
    }


def _logprob_value(entry: Any, token: int) -> float:
    """The log-probability of ``token`` in one position's entry of vLLM's ``logprobs`` (a mapping
    of token id to ``Logprob``), NaN when it is absent."""
    if entry is None:
        return float("nan")
    item = entry.get(token) if hasattr(entry, "get") else None
    if item is None:
        return float("nan")
    value = getattr(item, "logprob", item)
    return float("nan") if value is None else float(value)


def completions_to_tensors(
    completions: Sequence[Any], eos_ids: Sequence[int], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """vLLM's completions of one prompt (objects with ``token_ids`` and ``logprobs``, as in
    ``RequestOutput.outputs``) -> ``(ids, mask, sampler_logprobs)``, each ``(G, T)``.

    ``T`` is the longest completion; shorter ones are padded with ``pad_id``. ``mask`` follows
    the Hugging Face path: 1 up to and including the first end-of-turn token, 0 after it and on
    padding. ``sampler_logprobs`` holds vLLM's log-probability of each sampled token, NaN where
    vLLM gave none, 0 where ``mask`` is 0.
    """
    if not completions:
        raise ValueError("vLLM returned no completions")
    rows = [[int(t) for t in c.token_ids] for c in completions]
    length = max(1, max(len(r) for r in rows))
    ids = torch.full((len(rows), length), int(pad_id), dtype=torch.long)
    logp = torch.zeros((len(rows), length), dtype=torch.float32)
    valid = torch.zeros((len(rows), length), dtype=torch.bool)
    for i, (completion, row) in enumerate(zip(completions, rows)):
        if not row:
            continue
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        valid[i, : len(row)] = True
        entries = getattr(completion, "logprobs", None)
        values = [
            _logprob_value(entries[j] if entries is not None and j < len(entries) else None, token)
            for j, token in enumerate(row)
        ]
        logp[i, : len(row)] = torch.tensor(values, dtype=torch.float32)
    mask = completion_mask(ids, eos_ids) * valid.long()
    logp = torch.where(mask.bool(), logp, torch.zeros_like(logp))
    return ids, mask, logp


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------


def _lora_layers(model: Any) -> dict[str, Any]:
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # peft is a dependency; without it there is no adapter to merge
        return {}
    return {name: module for name, module in model.named_modules() if isinstance(module, LoraLayer)}


def is_peft_model(model: Any) -> bool:
    """Whether ``model`` is a PEFT model (adapters on a base model)."""
    return hasattr(model, "peft_config") and hasattr(model, "base_model")


def merged_weights(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """The policy's weights under the names of its Hugging Face checkpoint, one at a time.

    With LoRA (a PEFT model), each adapted layer's weight is ``base + delta`` of its active
    adapters, computed on the fly as PEFT's merge does, so the engine gets the merged model while
    the policy itself is not touched (merging in place and unmerging would leave rounding drift
    in the base weights of a bf16 model). Adapter parameters themselves are not yielded.
    """
    if not is_peft_model(model):
        for name, param in model.named_parameters():
            yield name.replace("_checkpoint_wrapped_module.", ""), param.detach()
        return
    layers = _lora_layers(model)
    for name, param in model.named_parameters():
        if ".lora_" in name or "original_module" in name:
            continue
        value = param.detach()
        owner, _, leaf = name.rpartition(".")
        if owner.endswith(".base_layer") and leaf == "weight":
            layer = layers.get(owner[: -len(".base_layer")])
            if layer is not None:
                value = value + _delta(layer).to(value.dtype)
        clean = name.removeprefix("base_model.model.").replace(".base_layer", "")
        clean = clean.replace("modules_to_save.default.", "").replace("_checkpoint_wrapped_module.", "")
        yield clean, value


def _delta(layer: Any) -> torch.Tensor:
    """The summed weight delta of a LoRA layer's active adapters (zero when merged or disabled)."""
    base = layer.get_base_layer().weight
    delta = torch.zeros_like(base)
    if getattr(layer, "merged", False) or getattr(layer, "disable_adapters", False):
        return delta
    for adapter in layer.active_adapters:
        if adapter not in layer.lora_A:
            continue
        if adapter in getattr(layer, "lora_variant", {}):
            raise ConfigError("vLLM rollouts support plain LoRA adapters only (not DoRA or other variants)")
        delta = delta + layer.get_delta_weight(adapter).to(delta.dtype)
    return delta


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------


def llm_kwargs(model_path: str, settings: VLLMSettings, seed: int, mm_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for an engine colocated in one training process."""
    kwargs: dict[str, Any] = {
        "model": str(model_path),
        "tensor_parallel_size": 1,
        # in-process engine on the process's own GPU; every training process holds one
        "distributed_executor_backend": "external_launcher",
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "dtype": settings.dtype,
        "enforce_eager": settings.enforce_eager,
        "seed": int(seed),
        "limit_mm_per_prompt": {"image": 0, "video": 1},
        "mm_processor_kwargs": dict(mm_kwargs),
        # log-probabilities after temperature and the allowed-token mask: the distribution sampled
        "logprobs_mode": "processed_logprobs",
        # no sampling defaults or extra stop tokens from the checkpoint's generation_config
        "generation_config": "vllm",
    }
    if settings.max_model_len is not None:
        kwargs["max_model_len"] = settings.max_model_len
    if settings.max_num_batched_tokens is not None:
        kwargs["max_num_batched_tokens"] = settings.max_num_batched_tokens
    return kwargs


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def distributed_env(process_index: int, local_process_index: int, num_processes: int) -> dict[str, str]:
    """The environment vLLM's ``external_launcher`` reads (torchrun / accelerate set most of it;
    a single process started with ``python`` has none)."""
    env = {
        "RANK": str(process_index),
        "LOCAL_RANK": str(local_process_index),
        "WORLD_SIZE": str(num_processes),
    }
    if "MASTER_ADDR" not in os.environ:
        env["MASTER_ADDR"] = "127.0.0.1"
    if "MASTER_PORT" not in os.environ:
        env["MASTER_PORT"] = str(_free_port())
    return env


class VLLMRollout:
    """A vLLM engine colocated in this training process, sampling from the policy's weights.

    Args:
        model_path: the policy's model folder (the engine loads its config, tokenizer,
            processor config and initial weights from it).
        settings: the ``vllm:`` section.
        family: the model family.
        video_settings: the training processor's video settings (pixel budget).
        seed: the engine's sampling seed (different in every process).
        process_index, local_process_index, num_processes: this process in the run.
        decode: token ids -> text (for the prompt check's message).
    """

    def __init__(
        self,
        model_path: str,
        settings: VLLMSettings,
        family: ModelFamily,
        video_settings: VideoSettings,
        seed: int,
        process_index: int = 0,
        local_process_index: int = 0,
        num_processes: int = 1,
        decode: Any = repr,
    ) -> None:
        reason = vllm_unavailable_reason()
        if reason:
            raise ConfigError(reason)
        os.environ.update(distributed_env(process_index, local_process_index, num_processes))
        from vllm import LLM

        self.settings = settings
        self.family = family
        self.decode = decode
        self.llm = LLM(**llm_kwargs(model_path, settings, seed, processor_kwargs(video_settings)))
        self._variant: PromptForm | None = None  # the prompt form that reproduces our prompt
        self._params: dict[tuple[Any, ...], Any] = {}

    def _engine_model(self) -> Any:
        """The engine's model module (in-process engine of ``external_launcher``)."""
        try:
            return self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        except AttributeError:
            raise ConfigError(
                "this vLLM version does not expose the colocated engine's model "
                "(llm.llm_engine.model_executor.driver_worker.model_runner.model); the weight sync was "
                "written for vLLM 0.31-0.33"
            ) from None

    @torch.no_grad()
    def load_weights(self, model: Any) -> int:
        """Push ``model``'s current weights (LoRA merged) into the engine; returns how many
        tensors were sent. The prefix cache is reset afterwards (its keys were computed with
        the old weights)."""
        target = self._engine_model()
        count = 0
        for name, tensor in merged_weights(model):
            target.load_weights([(name, tensor)])
            count += 1
        self.llm.reset_prefix_cache()
        return count

    def _sampling_params(self, kwargs: dict[str, Any]) -> Any:
        from vllm import SamplingParams

        key = (kwargs["n"], kwargs["temperature"], kwargs["max_tokens"])
        if key not in self._params:
            self._params[key] = SamplingParams(**kwargs)
        return self._params[key]

    def sample(self, request: VideoRequest, kwargs: dict[str, Any]) -> list[Any]:
        """The completions (``RequestOutput.outputs``) of one prompt, sampled with
        ``SamplingParams(**kwargs)`` (:func:`sampling_kwargs`).

        On the first call the engine's prompt tokens are compared with the training processor's
        (trying :func:`prompt_variants` in order); none matching is a :class:`ConfigError`.
        """
        params = self._sampling_params(kwargs)
        variants = (self._variant,) if self._variant is not None else prompt_variants(self.family)
        problem = None
        for variant in variants:
            tokenizer = self.llm.get_tokenizer() if variant == "token_ids" else None
            prompt = request.to_vllm(variant, tokenizer)
            output = self.llm.generate([prompt], sampling_params=params, use_tqdm=False)[0]
            problem = prompt_mismatch(output.prompt_token_ids, request.prompt_token_ids, self.decode)
            if problem is None:
                self._variant = variant
                return list(output.outputs)
        raise ConfigError(
            f"vLLM built another prompt than the training processor ({problem}); rollouts would "
            "come from a different input, so the run stops: use rollout_backend 'hf' or a vLLM version "
            "whose processor matches"
        )
