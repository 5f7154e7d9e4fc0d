"""Hierarchical Policy Learning: GRPO with the hierarchical rewards and first-class video.

A compact trainer on accelerate (DDP, FSDP or DeepSpeed through ``accelerate launch``), written
for video VLMs rather than adapted to them:

* frames come from the frame cache and are turned into model inputs once per clip; no step
  decodes video;
* every vision special token is blocked while sampling, and sampling uses the full
  distribution (no top-k / top-p / penalties: an explicit generation config, never the
  checkpoint's own), so the sampling policy is exactly ``softmax(logits / T)``;
* the loss forward pass receives the SAME ``pixel_values_videos``, ``video_grid_thw`` and
  position fields (``mm_token_type_ids``, ``second_per_grid_ts``) as generation, and the
  log-probabilities of sampled tokens at generation time equal the training pass's (a test
  checks both, and that the vision tower receives gradient);
* checkpoints are atomic and hold the optimizer, scheduler, data position and every process's
  random state, so a run killed with ``kill -9`` resumes with no lost or repeated step;
* on GPU machines, ``rollout_backend: vllm`` samples with a vLLM engine colocated in each process
  (:mod:`hieroaction.train.vllm_rollout`); the sampling-time log-probabilities are then those of a
  no-grad forward pass of the policy, with vLLM's own as a truncated importance-sampling weight.

Override points for a variant: :meth:`HPLTrainer.rollout`, :meth:`HPLTrainer.rewards_for`,
:meth:`HPLTrainer.loss_for_group`, :meth:`HPLTrainer.evaluate`.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from hieroaction.config import save_config
from hieroaction.data.records import Record, read_jsonl
from hieroaction.errors import ConfigError
from hieroaction.io import write_atomic
from hieroaction.inference.saved import write_settings as write_inference_settings
from hieroaction.models.families import IMAGE_TOKEN, VIDEO_TOKEN, VISION_END_TOKEN, VISION_START_TOKEN
from hieroaction.models.video_inputs import VideoSettings
from hieroaction.rewards import HierarchicalReward, RewardsConfig, reward_columns
from hieroaction.rewards.compose import reward_variance_share
from hieroaction.train import checkpoint as ckpt
from hieroaction.train import distributed
from hieroaction.train.objective import (
    LossType,
    group_advantages,
    policy_loss,
    token_logprobs,
    truncated_importance_weights,
    zero_spread_groups,
)
from hieroaction.train.objective import completion_mask as _completion_mask  # the name is a parameter below
from hieroaction.train.data import DataConfig, ExampleSet, LoadedData, load_examples
from hieroaction.train.result import HPLResult
from hieroaction.train.selection import SelectionConfig, is_better, truths_of
from hieroaction.models.loading import (
    LoraSettings,
    Precision,
    TrainableParts,
    checkpoint_family,
    load_model_and_processor,
    make_trainable,
    merge_adapter,
    normalise_precision,
    resolve_checkpoint,
    resolve_precision,
    weights_dtype,
)
from hieroaction.train.vllm_rollout import (
    VLLMRollout,
    VLLMSettings,
    allowed_token_ids,
    build_request,
    completions_to_tensors,
    sampling_kwargs,
    vllm_unavailable_reason,
)

VISION_TOKENS = (VIDEO_TOKEN, IMAGE_TOKEN, VISION_START_TOKEN, VISION_END_TOKEN)
VIDEO_FIELDS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")
# The data order's seed-sequence key ("order" in ASCII): no other seeded choice draws from it.
ORDER_STREAM = 0x6F72646572


@dataclass
class HPLConfig:
    """Everything ``hieroaction train hpl`` reads (a YAML recipe plus ``--key value`` overrides)."""

    model: str = ""  # an SFT checkpoint or a base model folder
    output_dir: str = "runs/hpl"
    # records, splits (eval_split: the validation split used for model selection), frames,
    # prompt: the same section as the SFT recipe's
    data: DataConfig = field(default_factory=DataConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    # sampling
    group_size: int = 4  # G completions per prompt
    prompts_per_step: int = 2  # per process
    temperature: float = 1.0
    max_completion_length: int = 256
    # rollouts: Hugging Face generate, or a vLLM engine colocated in every process (GPU only)
    rollout_backend: Literal["hf", "vllm"] = "hf"
    vllm: VLLMSettings = field(default_factory=VLLMSettings)
    zero_spread: Literal["keep", "skip", "resample"] = "skip"
    max_resample: int = 2
    # objective
    loss_type: LossType = "grpo"
    clip_low: float = 0.2
    clip_high: float = 0.2  # DAPO's clip-higher: raise to ~0.28 with loss_type dapo
    beta: float = 0.0  # KL coefficient to the frozen reference model (0: no reference kept)
    # optimizer updates per sampled batch (1: the old policy is the training pass's, detached)
    num_iterations: int = 1
    # optimisation
    learning_rate: float = 1e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    max_steps: int = 100
    max_seconds: float | None = None  # stop after the step that crosses this wall-clock budget
    forward_batch_size: int = 0  # completions per loss forward pass (0: the whole group)
    lora: LoraSettings = field(default_factory=LoraSettings)
    trainable: TrainableParts = field(default_factory=TrainableParts)
    gradient_checkpointing: bool = False
    # auto: bf16 where the GPU has it, else fp32. bf16 loads the weights in bf16 (as SFT); fp16 keeps
    # fp32 weights under autocast; fp32 loads fp32 whatever the checkpoint is stored in
    precision: Precision = "auto"
    # bookkeeping
    seed: int = 0
    save_steps: int = 25
    keep_checkpoints: int = 2
    logging_steps: int = 1
    log_samples: int = 2  # completions written to samples.jsonl per logging step
    eval_steps: int = 0  # validation every N steps (0: only at the end)
    eval_samples: int = 0  # validation records scored per evaluation (data.eval_split); 0: all
    eval_batch_size: int = 8  # validation prompts per generate call (left-padded)
    selection: SelectionConfig = field(default_factory=SelectionConfig)  # which checkpoint is best/
    # The null control: each batch's reward results are permuted among its completions (seeded),
    # so whatever the run still gains is not the rewards' doing (docs/hpl.md).
    shuffle_rewards: bool = False
    # validate the starting model too (step 0), so best/ is the start when no step beats it
    eval_at_start: bool = True
    resume: bool = True  # continue from the newest checkpoint in output_dir when there is one

    def __post_init__(self) -> None:
        positive = ("group_size", "prompts_per_step", "max_completion_length", "max_steps", "num_iterations",
                    "save_steps", "logging_steps", "keep_checkpoints", "eval_batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"hpl setting {name!r} must be at least 1, got {getattr(self, name)}")
        if self.group_size < 2:
            raise ConfigError("group_size must be at least 2: GRPO compares completions within a group")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")
        if self.eval_samples < 0:
            raise ConfigError(f"eval_samples must be >= 0 (0: every validation clip), got {self.eval_samples}")
        if self.beta < 0 or self.clip_low < 0 or self.clip_high < 0:
            raise ConfigError("beta, clip_low and clip_high must be >= 0")
        self.precision = normalise_precision(self.precision)  # type: ignore[assignment]


@dataclass
class PromptInputs:
    """One training prompt: its record, model inputs (built once) and reward columns."""

    record: Record
    inputs: dict[str, torch.Tensor]
    columns: dict[str, Any]
    request: Any = None  # the vLLM request (prompt text, frames, metadata) with rollout_backend vllm


@dataclass
class Rollout:
    """G sampled completions of one prompt."""

    example: PromptInputs
    completion_ids: torch.Tensor  # (G, T)
    completion_mask: torch.Tensor  # (G, T) 1 up to and including the end-of-turn token
    # (G, T) at sampling time: of the distribution generate sampled from (its processed scores),
    # or, with vLLM, the policy's no-grad pass (the old policy's)
    logprobs: torch.Tensor
    texts: list[str]
    # vLLM rollouts only: the sampler's own log-probabilities and the truncated importance weights
    sampler_logprobs: torch.Tensor | None = None  # (G, T)
    token_weights: torch.Tensor | None = None  # (G, T)


def check_inputs(config: HPLConfig) -> tuple[LoadedData, HierarchicalReward]:
    """Everything that can be checked before a model is loaded: one sentence per problem.

    Also fits ``config.data.frames`` to the model's family and fills the frame cache, so no
    training step decodes video.
    """
    if config.rollout_backend == "vllm" and (reason := vllm_unavailable_reason()):
        raise ConfigError(reason)
    # frame grid and pixel budget the recipe leaves out are the model family's (fitted in place,
    # so the cache, the processor and the saved settings agree); what it sets must fit the model
    family = checkpoint_family(resolve_checkpoint(config.model))
    config.data.frames = config.data.frames.fit(family.name)
    VideoSettings.for_family(family).for_frames(config.data.frames)
    reward = HierarchicalReward(config.rewards)
    if not config.data.records:
        raise ConfigError("config key 'data.records' is required (a unified-records JSONL file)")
    path = config.data.records_path
    records = read_jsonl(path, bad=[]) if path.is_file() else []  # bad lines: load_examples says
    train = [r for r in records if r.split == config.data.train_split]
    if train:
        reward.check_columns(truths_of(train), source=f"the {config.data.train_split!r} split of {config.data.records}")
    val = [r for r in records if r.split == config.data.eval_split] if config.data.eval_split else []
    if val:
        config.selection.check_split(truths_of(val), config.data.eval_split)
    data = load_examples(config.data, targets=False, limits={
        config.data.train_split: config.data.max_train_samples,
        **({config.data.eval_split: config.eval_samples or None} if config.data.eval_split else {}),
    })
    return data, reward


def _split_range(records: Sequence[Record]) -> tuple[float, float] | None:
    finals = [r.score.final for r in records if r.score.final is not None]
    if len(finals) < 2 or max(finals) <= min(finals):
        return None
    return (min(finals), max(finals))


class HPLTrainer:
    """GRPO over the hierarchical rewards (see the module docstring)."""

    def __init__(self, config: HPLConfig, accelerator: Any = None) -> None:
        from accelerate import Accelerator

        self.config = config
        self.data, self.reward = check_inputs(config)
        self.train_set = self.data[config.data.train_split]
        self.val_set = self.data[config.data.eval_split] if config.data.eval_split else None
        self.train_records = self.train_set.records
        self.val_records = self.val_set.records if self.val_set is not None else []
        # cpu=True on a machine without CUDA lets torchrun start a gloo process group (MULTI_CPU);
        # a CPU run launched for DeepSpeed or FSDP gets its gloo group here, and cpu=False (with
        # cpu=True accelerate would set up neither engine)
        cpu_group = accelerator is None and distributed.start_cpu_process_group()
        self.accelerator = accelerator or Accelerator(
            mixed_precision=self._precision(), cpu=not torch.cuda.is_available() and not cpu_group
        )
        # DeepSpeed/FSDP: every process runs the same passes, whole weights are gathered
        self.engine = distributed.engine_of(self.accelerator)
        self.output_dir = Path(config.output_dir)
        torch.manual_seed(config.seed + self.accelerator.process_index)
        self._load_model()
        self.vllm: VLLMRollout | None = None
        self._vllm_step: int | None = None  # the step whose weights the engine holds
        if config.rollout_backend == "vllm":
            self._start_vllm()
        self.examples: dict[str, PromptInputs] = {}
        self.step = 0
        self.consumed = 0  # prompts consumed by all processes together
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None

    # ----- set-up -----------------------------------------------------------------------------

    def _precision(self) -> str:
        """accelerate's mixed_precision for the configured precision (fp32: "no")."""
        precision = resolve_precision(self.config.precision)
        return "no" if precision == "fp32" else precision

    def _load_model(self) -> None:
        config = self.config
        # fp32 weights unless the precision is bf16 (as SFT), whatever dtype the checkpoint is stored in
        model, self.processor = load_model_and_processor(config.model, dtype=weights_dtype(resolve_precision(config.precision)))
        # the cached frames are already at the frame budget: the processor must not resize again
        self.processor.video = self.processor.video.for_frames(config.data.frames)
        self.family = self.processor.family
        self.ref_model = None
        if config.beta > 0 and not config.lora.enabled:
            if self.engine.sharded_parameters:
                raise ConfigError(
                    "beta > 0 with full fine-tuning keeps a frozen copy of the model as the KL reference, "
                    "which DeepSpeed ZeRO-3 and FSDP do not hold whole; use LoRA there (its reference is "
                    "the model with the adapters switched off), ZeRO-2, or beta 0"
                )
            # LoRA's reference is the same model with its adapters switched off
            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        model = make_trainable(
            model, config.lora, config.trainable, seed=config.seed,
            gradient_checkpointing=config.gradient_checkpointing,
        )
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        warmup = max(config.warmup_steps, 0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / (warmup + 1)) if warmup else 1.0
        )
        if self.engine.kind == "deepspeed":
            distributed.configure_deepspeed(self.accelerator, config.max_grad_norm)
        # the scheduler is not prepared: accelerate steps a prepared one once per process on
        # every call, so with N processes warmup would end N times sooner
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.scheduler = scheduler
        if self.engine.kind == "fsdp":
            distributed.fsdp_generate_as_forward(self.accelerator.unwrap_model(self.model))
        if self.ref_model is not None:
            self.ref_model.to(self.accelerator.device)
        tok = self.processor.tokenizer
        self.blocked_ids = sorted({i for i in tok.convert_tokens_to_ids(list(VISION_TOKENS)) if i is not None})
        end = tok.convert_tokens_to_ids("<|im_end|>")
        self.eos_ids = sorted({i for i in (end, tok.eos_token_id) if i is not None})
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids[0]

    def _start_vllm(self) -> None:
        """Build this process's colocated vLLM engine (see :mod:`hieroaction.train.vllm_rollout`)."""
        from accelerate.utils import DistributedType

        acc, config = self.accelerator, self.config
        zero3 = acc.distributed_type == DistributedType.DEEPSPEED and getattr(
            acc.state.deepspeed_plugin, "zero_stage", None) == 3
        if acc.distributed_type == DistributedType.FSDP or zero3:
            raise ConfigError(
                "rollout_backend 'vllm' needs whole weights in every process (one process, DDP or "
                "DeepSpeed ZeRO-1/2); FSDP and ZeRO-3 shard them, so use rollout_backend 'hf' there"
            )
        tok = self.processor.tokenizer
        vocab = self.policy.get_output_embeddings().weight.shape[0]
        self._vllm_allowed = allowed_token_ids(vocab, self.blocked_ids)
        self.vllm = VLLMRollout(
            str(resolve_checkpoint(config.model)), config.vllm, self.family, self.processor.video,
            seed=config.seed + acc.process_index, process_index=acc.process_index,
            local_process_index=acc.local_process_index, num_processes=acc.num_processes,
            decode=lambda ids: tok.decode(ids, skip_special_tokens=False),
        )
        acc.wait_for_everyone()  # every engine is up before any process goes on
        _log(acc.is_main_process,
             f"rollouts: vLLM, one engine colocated in each of {acc.num_processes} process(es) "
             f"(gpu_memory_utilization {config.vllm.gpu_memory_utilization}, "
             f"importance-sampling cap {config.vllm.importance_sampling_cap})")

    @property
    def policy(self) -> Any:
        """The model without its distributed wrapper (for generate and saving)."""
        return self.accelerator.unwrap_model(self.model)

    def example(self, split: ExampleSet, index: int) -> PromptInputs:
        """Model inputs of a prompt, built once from the cached frames and kept."""
        record = split.records[index]
        if record.id not in self.examples:
            item = split[index]
            inputs = self.processor(item.messages, item.clip)
            request = None
            if self.vllm is not None:
                prompt = self.processor.apply_chat_template(item.messages, add_generation_prompt=True)
                request = build_request(prompt, item.clip, self.processor.video, self.family,
                                        inputs["input_ids"][0].tolist())
            columns = reward_columns(record, default_fps=item.clip.fps)
            if columns["score_range"] is None:
                # a domain without a published range: the training split's own
                score_range = _split_range(self.train_records)
                columns["score_range"] = list(score_range) if score_range else None
            self.examples[record.id] = PromptInputs(record, inputs, columns, request)
        return self.examples[record.id]

    # ----- data order -------------------------------------------------------------------------

    def _order(self, epoch: int) -> np.ndarray:
        # A stream of its own, not default_rng(seed + epoch): `hieroaction data --full-labels`
        # (data/partial.py) chose the labelled clips with the first draws of default_rng(seed),
        # so at the same seed epoch 0 visited every fully labelled clip before any other, and
        # a 240-step demo run saw the 341 clips SFT had trained on and 139 of the 1024 others.
        return np.random.default_rng([self.config.seed, epoch, ORDER_STREAM]).permutation(len(self.train_records))

    def next_indices(self) -> list[int]:
        """This process's prompts for the next step (a seeded shuffle per epoch, resumable)."""
        world = self.accelerator.num_processes
        per_step = self.config.prompts_per_step * world
        n = len(self.train_records)
        picked = []
        for i in range(self.consumed, self.consumed + per_step):
            epoch, offset = divmod(i, n)
            picked.append(int(self._order(epoch)[offset]))
        self.consumed += per_step
        rank = self.accelerator.process_index
        per = self.config.prompts_per_step
        return picked[rank * per : (rank + 1) * per]

    # ----- sampling and scoring -----------------------------------------------------------------

    def _batched(self, inputs: dict[str, torch.Tensor], n: int, skip: Sequence[str] = ()) -> dict[str, torch.Tensor]:
        device = self.accelerator.device
        out = {}
        for key, value in inputs.items():
            if key in skip:
                continue
            if key in VIDEO_FIELDS:
                reps = (n,) + (1,) * (value.dim() - 1)
                out[key] = value.repeat(*reps).to(device)
            else:
                out[key] = value.expand(n, -1).to(device)
        return out

    @torch.no_grad()
    def rollout(self, example: PromptInputs, n: int | None = None, greedy: bool = False) -> Rollout:
        """Sample ``n`` (default G) completions and their sampling-time log-probabilities.

        The prompt goes in once with ``num_return_sequences=n``: generate encodes the video once
        and copies the encoder output to the ``n`` rows, instead of running the vision tower on
        ``n`` copies of the same frames. With ``rollout_backend: vllm``, sampling (not the greedy
        answers of validation) goes to :meth:`_vllm_rollout`.
        """
        n = n or self.config.group_size
        if self.vllm is not None and not greedy:
            return self._vllm_rollout(example, n)
        device = self.accelerator.device
        inputs = {key: value.to(device) for key, value in example.inputs.items()}  # one copy: generate expands
        out = self._generate(inputs, greedy, num_return_sequences=n, output_scores=True,
                             return_dict_in_generate=True)
        prompt_len = example.inputs["input_ids"].shape[1]
        completion = out.sequences[:, prompt_len:]
        mask = _completion_mask(completion, self.eos_ids)
        # the scores after generate's logits processors: the distribution each token was drawn
        # from, so a processor other than the temperature and the vision-token mask (a penalty,
        # top-k) shows as a gap to the training pass's log-probabilities. The per-step (G, V)
        # scores go in as they are: stacking them would copy G x T x V float32 once more.
        logprobs = torch.where(mask.bool(), token_logprobs(out.scores, completion), 0.0)
        texts = self.processor.batch_decode(completion * mask + self.pad_id * (1 - mask))
        return Rollout(example, completion, mask, logprobs, texts)

    def _generate(self, inputs: dict[str, torch.Tensor], greedy: bool, **settings: Any) -> Any:
        """The policy's generate in eval mode: greedy (decoded as ``hieroaction assess`` decodes)
        or with the rollouts' explicit sampling config, the vision tokens suppressed."""
        policy = self.policy
        was_training = policy.training
        policy.eval()
        common = dict(max_new_tokens=self.config.max_completion_length, suppress_tokens=self.blocked_ids,
                      eos_token_id=self.eos_ids, pad_token_id=self.pad_id, **settings)
        # ZeRO-3/FSDP: every forward pass gathers weights from all processes, so generate keeps
        # stepping until every process's sequences are done
        synced = self.engine.sharded_parameters and self.accelerator.num_processes > 1
        try:
            if greedy:
                return policy.generate(**inputs, do_sample=False, temperature=None, top_k=None, top_p=None,
                                       synced_gpus=synced, **common)
            generation = _sampling_config(self.config.temperature, common)
            with _only_generation_config(policy, generation):
                return policy.generate(**inputs, generation_config=generation, synced_gpus=synced)
        finally:
            policy.train(was_training)

    def _vllm_rollout(self, example: PromptInputs, n: int) -> Rollout:
        """``n`` completions sampled by the colocated vLLM engine.

        The engine gets the policy's weights once per step. The "old" log-probabilities are then
        computed by a no-grad forward pass of the policy on the example's own inputs (in chunks of
        ``forward_batch_size``, as the loss pass), so the ratio of the first update is 1 up to
        floating-point noise; vLLM's log-probabilities of the same tokens give the truncated
        importance weights ``min(exp(old - vllm), cap)`` of the loss.
        """
        config = self.config
        if self._vllm_step != self.step:
            self.vllm.load_weights(self.policy)
            self._vllm_step = self.step
        kwargs = sampling_kwargs(n, config.temperature, config.max_completion_length,
                                 self._vllm_allowed, self.eos_ids)
        completions = self.vllm.sample(example.request, kwargs)
        device = self.accelerator.device
        ids, mask, sampler = (t.to(device) for t in completions_to_tensors(completions, self.eos_ids, self.pad_id))
        old = self.old_logprobs(example, ids, mask)
        weights = truncated_importance_weights(old, sampler, mask, config.vllm.importance_sampling_cap)
        texts = self.processor.batch_decode(ids * mask + self.pad_id * (1 - mask))
        return Rollout(example, ids, mask, old, texts, sampler_logprobs=sampler, token_weights=weights)

    @torch.no_grad()
    def old_logprobs(self, example: PromptInputs, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The old policy's log-probabilities of ``ids``: a no-grad pass of the policy (eval mode,
        in chunks of ``forward_batch_size`` as the loss pass), 0 on padding."""
        policy = self.policy
        was_training = policy.training
        policy.eval()
        chunk = self.config.forward_batch_size or ids.shape[0]
        try:
            old = torch.cat([
                self.sequence_logprobs(policy, example, ids[s : s + chunk], mask[s : s + chunk])
                for s in range(0, ids.shape[0], chunk)
            ])
        finally:
            policy.train(was_training)
        return old * mask

    def _encode_video_once(self, model: Any, example: PromptInputs, n: int) -> dict[str, Any] | None:
        """The clip through the vision tower once, its output shared by ``n`` rows (gradient
        flows back through every row), as ``mm_encoder_outputs``; None where that cannot be done.

        Only in a single process: under DDP/FSDP/DeepSpeed the vision tower must run inside the
        wrapped model's own forward, so there the ``n`` copies of the pixels go through it.
        """
        pixels = example.inputs.get("pixel_values_videos")
        if self.accelerator.num_processes != 1 or pixels is None:
            return None
        encode = getattr(self.accelerator.unwrap_model(model), "get_video_features", None)
        if encode is None:
            return None
        device = self.accelerator.device
        encoded = encode(pixels.to(device), example.inputs["video_grid_thw"].to(device), return_dict=True)
        encoded.pooler_output = list(encoded.pooler_output) * n
        deepstack = getattr(encoded, "deepstack_features", None)
        if deepstack is not None:
            encoded.deepstack_features = [list(layer) * n for layer in deepstack]
        return {"video": encoded}

    def sequence_logprobs(
        self, model: Any, example: PromptInputs, completion_ids: torch.Tensor, completion_mask: torch.Tensor
    ) -> torch.Tensor:
        """Log-probabilities of ``completion_ids`` in a training forward pass with the video.

        The pass sees the same pixels, grid and position fields as generation; the vision tower
        runs once per group (:meth:`_encode_video_once`) and the language-model head only on the
        completion's positions (``logits_to_keep``). It runs under the policy's autocast, so the
        vision tower called here, and a reference model that accelerate did not wrap, compute in
        the policy's precision.
        """
        with self.accelerator.autocast():
            return self._sequence_logprobs(model, example, completion_ids, completion_mask)

    def _sequence_logprobs(
        self, model: Any, example: PromptInputs, completion_ids: torch.Tensor, completion_mask: torch.Tensor
    ) -> torch.Tensor:
        n, length = completion_ids.shape
        encoded = self._encode_video_once(model, example, n)
        inputs = self._batched(example.inputs, n, skip=("pixel_values_videos",) if encoded else ())
        if encoded:
            inputs["mm_encoder_outputs"] = encoded
        inputs["input_ids"] = torch.cat([inputs["input_ids"], completion_ids], dim=1)
        inputs["attention_mask"] = torch.cat([inputs["attention_mask"], completion_mask], dim=1)
        if "mm_token_type_ids" in inputs:
            text = torch.zeros_like(completion_ids)
            inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], text], dim=1)
        # the head only at the positions that predict a completion token (the last prompt token
        # and every completion token but the last): (n, length, V), no slice of a larger tensor
        total = inputs["input_ids"].shape[1]
        keep = torch.arange(total - length - 1, total - 1, device=completion_ids.device)
        logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits
        return token_logprobs(logits, completion_ids, self.config.temperature, self.blocked_ids)

    def rewards_for(self, rollouts: Sequence[Rollout]) -> list[Any]:
        """Hierarchical reward results of every completion, group by group."""
        texts = [t for r in rollouts for t in r.texts]
        columns: dict[str, list[Any]] = {}
        for r in rollouts:
            for key, value in r.example.columns.items():
                columns.setdefault(key, []).extend([value] * len(r.texts))
        results = self.reward(texts, group_size=self.config.group_size, step=self.step, **columns)
        if self.config.shuffle_rewards:
            # the null control: the same numbers, given to the wrong completions
            rng = np.random.default_rng([self.config.seed, self.step, self.accelerator.process_index])
            results = [results[i] for i in rng.permutation(len(results))]
        return results

    def loss_for_group(
        self,
        rollout: Rollout,
        advantages: torch.Tensor,
        old_logprobs: torch.Tensor | None = None,
        num_sequences: float | None = None,
        num_tokens: float | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The GRPO loss of one group (forward in chunks of ``forward_batch_size``).

        ``old_logprobs``: the old policy's log-probabilities of the group's tokens (None: the
        current policy's, detached, as with one update per batch). ``num_sequences`` and
        ``num_tokens``: the completions and completion tokens of the whole step that the loss is
        normalised by (default: this group's), so that the chunks' and groups' losses add up to
        the step's loss whatever ``forward_batch_size`` is (``dapo``: a token mean of the step).
        The stats are token means over the group (``kl``, ``clipped_fraction``, ``ratio_mean``)
        and its token count (``tokens``).
        """
        config = self.config
        n = rollout.completion_ids.shape[0]
        chunk = config.forward_batch_size or n
        num_sequences = n if num_sequences is None else num_sequences
        num_tokens = float(rollout.completion_mask.sum()) if num_tokens is None else num_tokens
        total = None
        sums = {"kl": 0.0, "clipped_fraction": 0.0, "ratio_mean": 0.0}
        tokens = 0
        for start in range(0, n, chunk):
            sl = slice(start, start + chunk)
            ids, mask = rollout.completion_ids[sl], rollout.completion_mask[sl]
            logp = self.sequence_logprobs(self.model, rollout.example, ids, mask)
            weights = None if rollout.token_weights is None else rollout.token_weights[sl].to(logp.device)
            old = None if old_logprobs is None else old_logprobs[sl].to(logp.device)
            ref = None
            if config.beta > 0:
                with torch.no_grad():
                    if self.ref_model is not None:
                        ref = self.sequence_logprobs(self.ref_model, rollout.example, ids, mask)
                    else:
                        with self.policy.disable_adapter():
                            ref = self.sequence_logprobs(self.model, rollout.example, ids, mask)
            out = policy_loss(
                logp, old, advantages[sl].to(logp.device), mask,
                loss_type=config.loss_type, clip_low=config.clip_low, clip_high=config.clip_high,
                beta=config.beta, ref_logp=ref, max_completion_length=config.max_completion_length,
                token_weights=weights, num_sequences=num_sequences, num_tokens=num_tokens,
            )
            total = out.loss if total is None else total + out.loss
            for key, value in (("kl", out.kl), ("clipped_fraction", out.clip_fraction), ("ratio_mean", out.ratio_mean)):
                sums[key] += value * out.tokens
            tokens += out.tokens
        stats = {k: v / max(tokens, 1) for k, v in sums.items()}
        stats["tokens"] = tokens
        return total, stats

    def _old_policy(self, rollout: Rollout) -> torch.Tensor | None:
        """The old policy's log-probabilities of a group, fixed before the step's first update.

        vLLM rollouts carry them (the policy's no-grad pass, which their importance weights
        need); with one update per batch none are needed (the training pass's own, detached, as
        TRL does); with ``num_iterations`` > 1 a no-grad pass computes them now.
        """
        if rollout.token_weights is not None:
            return rollout.logprobs
        if self.config.num_iterations == 1:
            return None
        return self.old_logprobs(rollout.example, rollout.completion_ids, rollout.completion_mask)

    def _step_size(self, rollouts: Sequence[Rollout]) -> tuple[float, float]:
        """The completions and completion tokens that the step's loss is normalised by.

        Those of every kept group of every process, divided by the number of processes:
        gradients are averaged over processes, so the step's loss is then the mean over all
        completions (``grpo``, ``dr_grpo``) or all tokens (``dapo``) of all processes together.
        """
        local = torch.tensor([float(sum(r.completion_mask.shape[0] for r in rollouts)),
                              float(sum(int(r.completion_mask.sum()) for r in rollouts))], dtype=torch.float64)
        world = self.accelerator.num_processes
        if world > 1:
            local = self.accelerator.reduce(local.to(self.accelerator.device), reduction="sum").cpu()
        return float(local[0]) / world, float(local[1]) / world

    def _update(
        self,
        groups: Sequence[tuple[Rollout, torch.Tensor]],
        old: Sequence[torch.Tensor | None],
        num_sequences: float,
        num_tokens: float,
        weights: Sequence[float] | None = None,
    ) -> dict[str, float]:
        """One optimizer update over the kept groups: the step's loss, its gradient, a step.

        ``weights``: 1 per group, or 0 for a pass that only keeps the processes in lockstep
        (DeepSpeed/FSDP, :meth:`_lockstep_groups`): its loss is multiplied by 0 and its stats
        are left out. The gradients are synchronised, and the optimizer steps, once, after
        the last pass (:func:`hieroaction.train.distributed.backward`).
        """
        weights = [1.0] * len(groups) if weights is None else list(weights)
        sums = {"kl": 0.0, "clipped_fraction": 0.0, "ratio_mean": 0.0}
        tokens, loss_value = 0, 0.0
        # DDP: a process may have fewer passes than another; only the last one synchronises
        n_backward = max(len(groups), 1)
        for i in range(n_backward):
            last = i == n_backward - 1
            with distributed.accumulating(self.accelerator, self.model, last):
                if groups:
                    rollout, advantages = groups[i]
                    loss, stats = self.loss_for_group(rollout, advantages, old[i], num_sequences, num_tokens)
                    if weights[i]:
                        for key in sums:
                            sums[key] += stats[key] * stats["tokens"]
                        tokens += stats["tokens"]
                    else:
                        loss = loss * 0.0
                else:
                    # nothing to learn from: a zero loss that still touches every parameter
                    loss = sum(p.sum() * 0.0 for p in self.model.parameters() if p.requires_grad)
                distributed.backward(self.accelerator, self.model, loss, last)
                loss_value += float(loss.detach())
        grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        out = {k: v / tokens for k, v in sums.items()} if tokens else {"kl": 0.0, "clipped_fraction": 0.0,
                                                                       "ratio_mean": 1.0}
        out["loss"] = loss_value
        out["grad_norm"] = float(grad_norm) if grad_norm is not None else 0.0
        return out

    # ----- one step ---------------------------------------------------------------------------

    def train_step(self) -> dict[str, Any]:
        """Sample, score, and update once; returns the step's metrics."""
        config = self.config
        started = time.perf_counter()
        indices = self.next_indices()
        rollouts = [self.rollout(self.example(self.train_set, i)) for i in indices]
        results = self.rewards_for(rollouts)
        G = config.group_size
        totals = torch.tensor([r.total for r in results], dtype=torch.float32)
        flat = zero_spread_groups(totals, G)
        zero_spread_fraction = float(flat.float().mean())
        resampled = 0
        if config.zero_spread == "resample":
            for _ in range(config.max_resample):
                todo = torch.nonzero(flat).flatten().tolist()
                # ZeRO-3/FSDP: generate runs collectives, so every process samples as many
                # groups as the one with the most to resample (the extra samples are dropped)
                rounds = (distributed.max_over_processes(self.accelerator, len(todo))
                          if self.engine.sharded_parameters else len(todo))
                if not rounds:
                    break
                for k in range(rounds):
                    if k >= len(todo):
                        self.rollout(rollouts[0].example)
                        continue
                    g = todo[k]
                    rollouts[g] = self.rollout(rollouts[g].example)
                    resampled += 1
                results = self.rewards_for(rollouts)
                totals = torch.tensor([r.total for r in results], dtype=torch.float32)
                flat = zero_spread_groups(totals, G)
        advantages = group_advantages(totals, G, config.loss_type)
        keep = [g for g in range(len(rollouts)) if not (config.zero_spread != "keep" and flat[g])]
        groups = [(rollouts[g], advantages[g * G : (g + 1) * G]) for g in keep]
        num_sequences, num_tokens = self._step_size([r for r, _ in groups])
        weights = [1.0] * len(groups)
        if self.engine.lockstep:
            groups, weights = self._lockstep_groups(groups, rollouts, advantages, keep)
        # the old policy is fixed before the first update (num_iterations > 1: a no-grad pass)
        old = [self._old_policy(r) for r, _ in groups]
        self.model.train()
        updates = [self._update(groups, old, num_sequences, num_tokens, weights)
                   for _ in range(config.num_iterations)]
        self.scheduler.step()  # once per step, whatever num_iterations is
        self.step += 1
        lengths = [float(r.completion_mask.sum(1).float().mean()) for r in rollouts]

        def over_updates(key: str) -> float:
            return float(np.mean([u[key] for u in updates]))

        metrics: dict[str, Any] = {
            "step": self.step,
            "loss": over_updates("loss"),
            "kl": over_updates("kl"),
            "policy/ratio_mean": over_updates("ratio_mean"),
            "policy/clipped_fraction": over_updates("clipped_fraction"),
            "grad_norm": over_updates("grad_norm"),
            "completion_length": float(np.mean(lengths)),
            "zero_spread_fraction": zero_spread_fraction,
            "groups_skipped": len(rollouts) - len(keep),
            "resampled_groups": resampled,
            "lr": self.scheduler.get_last_lr()[0],
            "step_seconds": time.perf_counter() - started,
        }
        per_component: dict[str, list[float]] = {}
        for result in results:
            for key, value in result.log().items():
                per_component.setdefault(key, []).append(value)
        metrics.update({k: float(np.mean(v)) for k, v in per_component.items()})
        contributions = {k: [r.contributions.get(k, 0.0) for r in results] for k in self.reward.weights}
        shares = reward_variance_share(contributions, G)
        metrics.update({f"reward_variance_share/{k}": v for k, v in shares.items()})
        if any(r.token_weights is not None for r in rollouts):
            metrics.update(_sampler_metrics(rollouts, config.vllm.importance_sampling_cap))
        metrics = self._reduce(metrics)
        samples = [
            {"step": self.step, "id": r.example.record.id, "text": r.texts[0], "reward": results[i * G].total}
            for i, r in enumerate(rollouts[: config.log_samples])
        ]
        return {"metrics": metrics, "samples": samples}

    def _lockstep_groups(
        self,
        groups: list[tuple[Rollout, torch.Tensor]],
        rollouts: Sequence[Rollout],
        advantages: torch.Tensor,
        keep: Sequence[int],
    ) -> tuple[list[tuple[Rollout, torch.Tensor]], list[float]]:
        """The kept groups, padded with this process's skipped groups at weight 0 up to the
        largest number of kept groups of any process (at least 1).

        Under DeepSpeed ZeRO and FSDP each forward and backward pass runs collectives that
        must pair up across processes, and with ``zero_spread: skip`` the processes keep
        different numbers of groups. A padding pass is a real pass of the model (the same
        modules, in the same order, as every other process's), its loss times 0.
        """
        G = self.config.group_size
        passes = max(distributed.max_over_processes(self.accelerator, len(groups)), 1)
        spare = [g for g in range(len(rollouts)) if g not in keep]
        padded = list(groups) + [(rollouts[g], advantages[g * G : (g + 1) * G]) for g in spare[: passes - len(groups)]]
        return padded, [1.0] * len(groups) + [0.0] * (len(padded) - len(groups))

    def _reduce(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Average the metrics over processes (every process logs the same numbers)."""
        if self.accelerator.num_processes == 1:
            return metrics
        from accelerate.utils import gather_object

        gathered = gather_object([metrics])
        keys = set.intersection(*(set(m) for m in gathered))
        return {k: (metrics[k] if k == "step" else float(np.mean([m[k] for m in gathered]))) for k in keys}

    @torch.no_grad()
    def answers(self, examples: Sequence[PromptInputs], greedy: bool) -> list[str]:
        """One answer per prompt, the prompts in one left-padded generate call: greedy (decoded as
        ``hieroaction assess`` decodes) or sampled with the rollouts' sampling config. Validation
        uses it; training's groups go through :meth:`rollout`."""
        from hieroaction.models import collate

        if len(examples) == 1:
            return self.rollout(examples[0], n=1, greedy=greedy).texts
        device = self.accelerator.device
        batch = collate([e.inputs for e in examples], self.pad_id, padding_side="left")
        inputs = {key: value.to(device) for key, value in batch.items()}
        out = self._generate(inputs, greedy)
        completion = out[:, inputs["input_ids"].shape[1]:]
        mask = _completion_mask(completion, self.eos_ids)
        return self.processor.batch_decode(completion * mask + self.pad_id * (1 - mask))

    # ----- validation -------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validate on the validation split (every clip, or the first ``eval_samples``): greedy
        answers scored as ``hieroaction evaluate`` scores them (rho, R-l2, action and
        step-sequence accuracy, parse-failure rate: answers not in the exact SAR format), their
        mean reward, and the mean reward of one sampled answer per clip (``val/reward_sampled``,
        at the training temperature; its random numbers do not disturb training's)."""
        from hieroaction.train.validation import read_row, validation_metrics

        if self.val_set is None:
            return {}
        limit = self.config.eval_samples
        n = len(self.val_set) if limit == 0 else min(len(self.val_set), limit)
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        rows = []
        indices: list[int | None] = list(range(rank, n, world))
        if self.engine.sharded_parameters:
            # ZeRO-3/FSDP: generate runs collectives, so every process answers as many clips
            # (a process with one clip fewer answers the first clip again and drops it)
            indices += [None] * (-(-n // world) - len(indices))
        size = self.config.eval_batch_size
        for first in range(0, len(indices), size):
            chunk = indices[first : first + size]
            examples = [self.example(self.val_set, 0 if i is None else i) for i in chunk]
            greedy = self.answers(examples, greedy=True)
            with torch.random.fork_rng(devices=[]):
                # seeded by the step and the batch's first clip: the same answers on a rerun,
                # and training's random numbers are not disturbed
                torch.manual_seed(self.config.seed * 1_000_003 + self.step * 1009 + (chunk[0] or 0))
                sampled = self.answers(examples, greedy=False)
            kept = [(k, i) for k, i in enumerate(chunk) if i is not None]
            if not kept:
                continue
            columns = {key: [examples[k].columns[key] for k, _ in kept] * 2 for key in examples[0].columns}
            texts = [greedy[k] for k, _ in kept] + [sampled[k] for k, _ in kept]
            rewards = self.reward(texts, group_size=1, step=10**9, **columns)
            for j, (k, index) in enumerate(kept):
                # read as evaluation reads it (an out-of-range score is a problem and no score)
                row = read_row(self.val_set.records[index], greedy[k])
                rows.append((rewards[j].total, rewards[len(kept) + j].total, row))
        if world > 1:
            from accelerate.utils import gather_object

            rows = gather_object(rows)
        metrics = {
            "val/reward": float(np.mean([r for r, *_ in rows])),
            "val/reward_sampled": float(np.mean([r for _, r, _ in rows])),
        }
        by_id = {r.id: r for r in self.val_set.records[:n]}
        metrics.update(validation_metrics([row for *_, row in rows], by_id))
        return metrics

    # ----- saving -----------------------------------------------------------------------------

    def save_model(self, folder: Path) -> None:
        """Weights and processor, loadable with from_pretrained.

        With LoRA, the adapter is kept in ``folder/adapter`` and, with ``lora.merge`` (the
        default), the merged model goes in ``folder`` (as the SFT trainer does).

        Every process calls it and the main process writes: under ZeRO-3 and FSDP the weights
        are first gathered from all processes (there the LoRA merge loads the base model again
        and applies the saved adapter, as SFT's does, since no process holds the whole model).
        """
        folder = Path(folder)
        state_dict = None
        if self.engine.sharded_parameters:
            state_dict = distributed.full_state_dict(self.accelerator, self.model)
        if not self.accelerator.is_main_process:
            return
        model = self.policy
        if self.config.lora.enabled:
            adapter = folder / "adapter" if self.config.lora.merge else folder
            model.save_pretrained(adapter, state_dict=state_dict)
            if not self.config.lora.merge:
                self.processor.save_pretrained(folder)
                self._write_inference_settings(folder)
                return
            if state_dict is not None:
                # ZeRO-3/FSDP: the base model again, whole in this process, with the saved adapter
                with distributed.loading_whole():
                    merged = merge_adapter(load_model_and_processor(self.config.model)[0], adapter)
                    merged.save_pretrained(folder)
                self.processor.save_pretrained(folder)
                self._write_inference_settings(folder)
                return
            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(folder, state_dict=state_dict)
        self.processor.save_pretrained(folder)
        self._write_inference_settings(folder)

    def _write_inference_settings(self, folder: Path) -> None:
        """How the model is prompted (frames, prompt, domain, answer length), for assess/serve."""
        write_inference_settings(folder, self.config.data, self.train_records, self.config.max_completion_length)

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        """The whole trainable parameters, by name (under ZeRO-3 and FSDP a gather: every
        process must call it)."""
        if self.engine.sharded_parameters:
            return distributed.full_parameters(self.accelerator, self.model)
        return {k: v.detach().cpu().clone() for k, v in self.policy.named_parameters() if v.requires_grad}

    def save_checkpoint(self) -> None:
        from accelerate.utils import gather_object

        rng_states = gather_object([ckpt.rng_state()]) if self.accelerator.num_processes > 1 else None
        # gathered in every process under ZeRO-3/FSDP; elsewhere only the main process reads them
        trainable = self._trainable_state() if self.engine.sharded_parameters or self.accelerator.is_main_process else None
        # DeepSpeed/FSDP shard the optimizer state; such runs do not resume (resume_from)
        optimizer = distributed.ShardedOptimizerState() if self.engine.lockstep else self.optimizer
        if self.accelerator.is_main_process:
            state = {
                "step": self.step,
                "consumed": self.consumed,
                "history": self.history,
                "best": self.best,
                "config": asdict(self.config),
            }

            def save(folder: Path) -> None:
                folder.mkdir(parents=True, exist_ok=True)
                torch.save(trainable, folder / "trainable.pt")

            ckpt.save_checkpoint(
                self.output_dir, self.step, save, state, optimizer, self.scheduler,
                rng_states=rng_states, keep=self.config.keep_checkpoints,
            )
        self.accelerator.wait_for_everyone()

    def resume_from(self, checkpoint: Path) -> None:
        """Continue exactly where ``checkpoint`` left off."""
        if self.engine.lockstep:
            raise ConfigError(
                f"{checkpoint} cannot be resumed under {self.engine.kind}: the optimizer state is sharded "
                "across processes and not saved (resuming works with one process or DDP); start a new "
                "output_dir or set resume: false"
            )
        state = ckpt.load_trainer_state(checkpoint)
        weights = torch.load(checkpoint / "model" / "trainable.pt", weights_only=True)
        params = dict(self.policy.named_parameters())
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value.to(params[name].device))
        ckpt.restore_optimizer(checkpoint, self.optimizer, self.scheduler, self.accelerator.process_index)
        self.step, self.consumed = state["step"], state["consumed"]
        self.history, self.best = state["history"], state["best"]

    # ----- the loop ---------------------------------------------------------------------------

    def train(self) -> HPLResult:
        """Run to ``max_steps``; returns the final metrics and where the models are."""
        from torch.utils.tensorboard import SummaryWriter

        config, acc = self.config, self.accelerator
        main = acc.is_main_process
        if main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            ckpt.clean_partial(self.output_dir)
            save_config(config, self.output_dir / "hpl_config.yaml")
        acc.wait_for_everyone()
        latest = ckpt.latest_checkpoint(self.output_dir) if config.resume else None
        if latest is not None:
            self.resume_from(latest)
            _log(main, f"resumed from {latest.name} at step {self.step}")
        writer = SummaryWriter(str(self.output_dir / "tensorboard")) if main else None
        # the metrics file is rewritten from the checkpoint's history, so steps done after the
        # last checkpoint by a killed run are neither lost from nor repeated in the log
        if main:
            _write_jsonl(self.output_dir / "metrics.jsonl", self.history)
        started = time.monotonic()
        if config.eval_at_start and self.val_records and self.step == 0:
            start_eval = self._evaluate_and_keep_best()
            if main and start_eval:
                _append_jsonl(self.output_dir / "metrics.jsonl", {"step": 0, **start_eval})
                _log(main, "start: " + ", ".join(f"{k} {v:.4g}" for k, v in start_eval.items()))
            self.history.append({"step": 0, **start_eval})
        while self.step < config.max_steps:
            if config.max_seconds is not None and self._out_of_time(started):
                _log(main, f"time budget of {config.max_seconds:.0f} s reached at step {self.step}")
                break
            out = self.train_step()
            metrics = out["metrics"]
            if config.eval_steps and self.step % config.eval_steps == 0:
                metrics.update(self._evaluate_and_keep_best())
            self.history.append(metrics)
            if main:
                _append_jsonl(self.output_dir / "metrics.jsonl", metrics)
                if self.step % config.logging_steps == 0:
                    _append_jsonl(self.output_dir / "samples.jsonl", *out["samples"])
                    for key, value in metrics.items():
                        if isinstance(value, (int, float)) and math.isfinite(value) and key != "step":
                            writer.add_scalar(key, value, self.step)
                    _log(main, _format(metrics, config.max_steps))
            if self.step % config.save_steps == 0 or self.step == config.max_steps:
                self.save_checkpoint()
        if self.history and self.step % config.save_steps and self.step != config.max_steps:
            self.save_checkpoint()  # stopped early by the time budget
        final_eval = {}
        if self.val_records and not (config.eval_steps and self.step % config.eval_steps == 0):
            final_eval = self._evaluate_and_keep_best()
        # every process: under ZeRO-3/FSDP the weights are gathered, the main process writes
        self.save_model(self.output_dir / "final")
        if self.best is None:
            self.save_model(self.output_dir / "best")
        if writer is not None:
            writer.close()
        acc.wait_for_everyone()
        return HPLResult(
            output_dir=self.output_dir / "final",
            global_step=self.step,
            resumed_from=latest,
            log_history=list(self.history),
            train_examples=len(self.train_records),
            eval_examples=len(self.val_records),
            best_dir=self.output_dir / "best",
            best_metrics=self.best,
            last_metrics=self.history[-1] if self.history else {},
            final_eval=final_eval,
        )

    def _out_of_time(self, started: float) -> bool:
        """Whether the wall-clock budget is spent; every process takes the same decision."""
        over = torch.tensor(float(time.monotonic() - started >= self.config.max_seconds))
        if self.accelerator.num_processes > 1:
            over = self.accelerator.reduce(over.to(self.accelerator.device), reduction="sum").cpu()
        return bool(over > 0)

    def _evaluate_and_keep_best(self) -> dict[str, float]:
        """Validate, and keep the best model so far as ``best/`` (see ``selection``)."""
        metrics = self.evaluate()
        if not metrics:
            return {}
        start = next((h for h in self.history if h.get("step") == 0 and "val/reward" in h), None)
        if self.step == 0:
            start = metrics
        if is_better(metrics, self.best, self.config.selection, start):
            self.best = {"step": self.step, **metrics}
            self.save_model(self.output_dir / "best")
        self.accelerator.wait_for_everyone()
        return metrics


def _sampling_config(temperature: float, settings: dict[str, Any]) -> Any:
    """generate's settings for rollouts, every one spelled out: the full distribution at
    ``temperature`` (no top-k, top-p, min-p, typical-p or cut-offs, no repetition or length
    penalties), the vision tokens suppressed and nothing else, as the vLLM path samples."""
    from transformers import GenerationConfig

    return GenerationConfig(
        do_sample=True, temperature=temperature, top_k=0, top_p=1.0, typical_p=1.0, epsilon_cutoff=0.0,
        eta_cutoff=0.0, repetition_penalty=1.0, encoder_repetition_penalty=1.0, no_repeat_ngram_size=0,
        min_length=0, num_beams=1, renormalize_logits=False, remove_invalid_values=False, **settings,
    )


@contextmanager
def _only_generation_config(model: Any, config: Any) -> Any:
    """``config`` as the model's own generation_config while generating, then the checkpoint's
    again: generate fills every field a passed config leaves unset from the model's (the
    released Qwen2.5-VL checkpoints carry repetition_penalty 1.05, top_k and top_p), so the
    passed config alone is not enough. With PEFT, the wrapped model's too (PEFT's generate
    copies the wrapper's to it)."""
    holders = [model]
    if hasattr(model, "get_base_model"):
        holders.append(model.get_base_model())
    saved = [(h, h.__dict__.get("generation_config")) for h in holders]
    try:
        for h in holders:
            h.generation_config = config
        yield
    finally:
        for h, before in saved:
            if before is None:
                h.__dict__.pop("generation_config", None)
            else:
                h.generation_config = before


def _sampler_metrics(rollouts: Sequence[Rollout], cap: float) -> dict[str, float]:
    """How far vLLM's sampling distribution is from the policy's, over the completion tokens:
    the mean truncated importance weight, the share of weights cut at ``cap``, the mean absolute
    log-probability gap, and the share of tokens vLLM gave no log-probability for (left out of
    the gap; their weight is 1)."""
    weights, gaps, missing = [], [], []
    for r in rollouts:
        if r.token_weights is None or r.sampler_logprobs is None:
            continue
        mask = r.completion_mask.bool()
        weights.append(r.token_weights[mask].float().cpu())
        gap = (r.logprobs - r.sampler_logprobs)[mask].float().cpu()
        missing.append(torch.isnan(gap))
        gaps.append(gap[~torch.isnan(gap)].abs())
    w = torch.cat(weights) if weights else torch.zeros(0)
    g = torch.cat(gaps) if gaps else torch.zeros(0)
    m = torch.cat(missing) if missing else torch.zeros(0, dtype=torch.bool)
    return {
        "vllm/is_weight": float(w.mean()) if w.numel() else 1.0,
        "vllm/is_capped_fraction": float((w >= cap).float().mean()) if w.numel() else 0.0,
        "vllm/logprob_gap": float(g.mean()) if g.numel() else 0.0,
        "vllm/missing_logprob_fraction": float(m.float().mean()) if m.numel() else 0.0,
    }


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    # json.dumps, not io's strict JSON: a validation rho of NaN stays NaN in metrics.jsonl
    write_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def _append_jsonl(path: Path, *rows: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def _format(metrics: dict[str, Any], max_steps: int) -> str:
    keys = ("loss", "reward/total", "reward/format", "reward/recognition", "reward/score", "kl",
            "completion_length", "zero_spread_fraction", "step_seconds")
    parts = [f"step {metrics['step']}/{max_steps}"]
    parts += [f"{k.split('/')[-1]} {metrics[k]:.3g}" for k in keys if k in metrics]
    return "  ".join(parts)


def _log(main: bool, text: str) -> None:
    if main:
        print(f"[hpl] {text}", flush=True)


def train_hpl(config: HPLConfig) -> HPLResult:
    """Python entry point of ``hieroaction train hpl``."""
    return HPLTrainer(config).train()
