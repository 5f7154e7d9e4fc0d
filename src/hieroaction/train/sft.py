"""Supervised cold start (SFT) on SAR targets: ``hieroaction train sft`` and :func:`train_sft`.

The run is a transformers :class:`~transformers.Trainer` (accelerate underneath, so DDP, FSDP
and DeepSpeed come from an accelerate config) fed by :mod:`hieroaction.train.data`: examples
read from the frame cache, encoded with the loss on the assistant answer only, batched by
:class:`~hieroaction.train.data.SupervisedCollator` (``remove_unused_columns=False``). TRL's
``SFTTrainer`` was not used: its dataset preparation re-tokenises conversations itself, while
here the video tokens, ``mm_token_type_ids`` and label mask come from our own processor.

Before any model is loaded, :func:`prepare_sft` checks the whole configuration (keys and types
come checked by :func:`hieroaction.config.load_config`), the model path, that the frame
settings fit the model family, the output folder and resume point, and every record (see
:func:`~hieroaction.train.data.load_examples`); each problem is one sentence.

Outputs in ``output_dir``:

- ``checkpoint-N/`` every ``save_steps`` (model or adapter, processor, optimizer, scheduler,
  RNG states, trainer state): a crash loses at most the steps since the last one; ``resume:
  auto`` continues from the last complete checkpoint at the same step with the same data order;
- the final model with its processor (loads with ``from_pretrained`` /
  :func:`~hieroaction.models.load_model_and_processor`); with LoRA, the merged model there and
  the adapter in ``adapter/`` (or, with ``lora.merge: false``, the adapter itself);
- ``sft_config.yaml`` (the settings), ``data_order.jsonl`` (record ids of every micro-batch of
  process 0, by step), ``skipped_records.jsonl`` (with ``data.bad_records: skip``),
  ``runs/`` (TensorBoard), ``trainer_state.json`` and ``train_results.json``;
- with ``validation.every`` set, ``best/``: the checkpoint whose greedy answers on the
  validation split scored best (:mod:`hieroaction.train.sft_validation`), with ``best.json``
  (its step and metrics), and ``validation.jsonl`` (every validation).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


from hieroaction.config import load_config, save_config
from hieroaction.errors import ConfigError
from hieroaction.inference.saved import write_settings as write_inference_settings
from hieroaction.io import append_jsonl
from hieroaction.models.families import ModelFamily
from hieroaction.models.loading import (
    LoraSettings,
    Precision,
    TrainableParts,
    checkpoint_family,
    load_model_and_processor,
    weights_dtype,
    make_trainable,
    merge_adapter,
    normalise_precision,
    resolve_checkpoint,
    resolve_precision,
)
from hieroaction.models.video_inputs import VideoSettings
from hieroaction.train.data import (
    DataConfig,
    LoadedData,
    SupervisedCollator,
    SupervisedDataset,
    load_examples,
    write_skip_list,
)
from hieroaction.train.result import SFTResult
from hieroaction.train.sft_validation import (
    BEST_DIR,
    BEST_FILE,
    VALIDATION_FILE,
    SFTValidation,
    make_callback,
    truncate_validations,
)
from hieroaction.train.sft_resume import (
    DATA_ORDER_FILE,
    check_resume_matches,
    checkpoint_step,
    complete_checkpoints,
    read_data_order,
    remove_incomplete_checkpoints,
    resume_point,
    truncate_data_order,
)

logger = logging.getLogger("hieroaction.train")

CONFIG_FILE = "sft_config.yaml"
SKIP_LIST_FILE = "skipped_records.jsonl"
ADAPTER_DIR = "adapter"


@dataclass
class SFTConfig:
    """Every setting of an SFT run (``configs/sft/*.yaml``)."""

    model: str = ""  # checkpoint folder or hub id (required)
    output_dir: str = ""  # required
    data: DataConfig = field(default_factory=DataConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    trainable: TrainableParts = field(default_factory=TrainableParts)
    learning_rate: float = 1e-5
    lr_scheduler: str = "cosine"
    warmup: float = 0.03  # below 1: a fraction of the steps; from 1: a number of steps
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    num_epochs: float = 1.0
    max_steps: int | None = None  # overrides num_epochs when set
    batch_size: int = 1  # per device
    eval_batch_size: int = 1  # per device
    gradient_accumulation_steps: int = 1
    precision: Precision = "auto"  # auto: bf16 where the GPU has it, else fp32
    gradient_checkpointing: bool = False
    attn_implementation: str | None = None  # e.g. sdpa, flash_attention_2; None: the model's default
    save_steps: int = 200
    save_total_limit: int | None = 3
    logging_steps: int = 10
    eval_steps: int | None = None  # None: evaluate only if data.eval_split is set, every save_steps
    seed: int = 0
    resume: str | None = None  # None: a fresh run; "auto": the last complete checkpoint; or a checkpoint folder
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    dataloader_num_workers: int = 0
    # Hold each encoded training example in memory after its first use (tokens and video
    # tensors): for small sets seen for many epochs, as the demo's. Memory grows to the whole
    # encoded set (per data-loader worker); leave it off for real video data sets.
    keep_encoded: bool = False
    log_data_order: bool = True
    # greedy answers on the validation split during training, and best/ (sft_validation.py)
    validation: SFTValidation = field(default_factory=SFTValidation)

    def __post_init__(self) -> None:
        positive = {
            "learning_rate": self.learning_rate, "num_epochs": self.num_epochs,
            "batch_size": self.batch_size, "eval_batch_size": self.eval_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "save_steps": self.save_steps, "logging_steps": self.logging_steps,
        }
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"config key {name!r} must be positive, got {value!r}")
        for name in ("max_steps", "eval_steps", "save_total_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"config key {name!r} must be at least 1 (or null), got {value}")
        for name in ("warmup", "weight_decay", "max_grad_norm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"config key {name!r} must be a non-negative number, got {value}")
        if self.dataloader_num_workers < 0:
            raise ConfigError(f"config key 'dataloader_num_workers' must be >= 0, got {self.dataloader_num_workers}")
        from transformers.trainer_utils import SchedulerType

        choices = [s.value for s in SchedulerType]
        if self.lr_scheduler not in choices:
            raise ConfigError(f"config key 'lr_scheduler' must be one of {choices}, got {self.lr_scheduler!r}")
        self.precision = normalise_precision(self.precision)  # type: ignore[assignment]


@dataclass
class SFTPlan:
    """What :func:`prepare_sft` found: everything checked, nothing loaded into a model yet."""

    config: SFTConfig
    model_path: Path
    family: ModelFamily
    output_dir: Path
    resume_from: Path | None
    precision: Literal["bf16", "fp16", "fp32"]
    data: LoadedData | None = None


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


def load_sft_config(path: str | Path | None, overrides: Sequence[str] | None = None) -> SFTConfig:
    """Read an SFT recipe (YAML, with its ``base`` files) and apply ``--key value`` overrides;
    every key and type is checked (:func:`hieroaction.config.load_config`)."""
    return load_config(SFTConfig, path, list(overrides or []))


def check_sft_config(config: SFTConfig) -> SFTPlan:
    """Every check that needs neither the records nor the model weights: required keys, the
    model path and family, frame settings against the family (the frame grid and pixel budget
    left out of the recipe become the family's: ``config.data.frames`` is fitted in place),
    reporting, output folder and resume point. Raises :class:`ConfigError` with one sentence."""
    if not config.output_dir:
        raise ConfigError("config key 'output_dir' is required")
    if not config.data.records:
        raise ConfigError("config key 'data.records' is required (a unified-records JSONL file)")
    model_path = resolve_checkpoint(config.model)
    family = checkpoint_family(model_path)
    # frame grid and pixel budget the recipe leaves out are the model family's; what it sets
    # must fit the model
    config.data.frames = config.data.frames.fit(family.name)
    VideoSettings.for_family(family).for_frames(config.data.frames)
    if "tensorboard" in config.report_to:
        from transformers.integrations import is_tensorboard_available

        if not is_tensorboard_available():
            raise ConfigError("report_to names tensorboard, but the tensorboard package is not installed")
    output_dir = Path(config.output_dir).expanduser()
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"output_dir {output_dir} exists and is not a folder")
    if config.validation.enabled:
        from hieroaction.train.distributed import launched_engine

        if not config.data.eval_split:
            raise ConfigError("validation.every needs a validation split: set data.eval_split (or validation.every: null)")
        if launched_engine() == "fsdp":
            raise ConfigError(
                "validation.every cannot run under FSDP (generate needs whole weights); "
                "use DeepSpeed or DDP, or set validation.every: null and evaluate checkpoints afterwards"
            )
    resume_from = resume_point(config, output_dir)
    if resume_from is not None and (output_dir / CONFIG_FILE).is_file():
        check_resume_matches(config, output_dir / CONFIG_FILE)
    return SFTPlan(
        config=config, model_path=model_path, family=family, output_dir=output_dir,
        resume_from=resume_from, precision=resolve_precision(config.precision),
    )


def prepare_sft(config: SFTConfig, progress: bool = True) -> SFTPlan:
    """:func:`check_sft_config` then :func:`~hieroaction.train.data.load_examples` (records
    checked, clips cached): everything :func:`train_sft` does before loading the model."""
    plan = check_sft_config(config)
    plan.data = load_examples(config.data, targets=True, progress=progress)
    return plan


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


def load_for_training(plan: SFTPlan) -> tuple[Any, Any]:
    """Load the model and processor of ``plan`` and make the configured parts trainable."""
    config = plan.config
    model, processor = load_model_and_processor(plan.model_path, dtype=weights_dtype(plan.precision))
    if config.attn_implementation:
        try:
            model.set_attn_implementation(config.attn_implementation)
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"attn_implementation {config.attn_implementation!r} cannot be used here ({exc})") from None
    # Frames come from the cache already on the family's grid and budget: the processor must
    # not resize them again, and the saved processor must describe the same budget.
    processor.video = processor.video.for_frames(config.data.frames)
    # the Trainer turns on gradient checkpointing itself (training_arguments)
    model = make_trainable(model, config.lora, config.trainable, seed=config.seed)
    logger.info("model %s (%s)", plan.model_path, plan.family.name)
    return model, processor


# ---------------------------------------------------------------------------------------------
# Trainer
# ---------------------------------------------------------------------------------------------


def _trainer_class() -> type:
    from transformers import Trainer

    class VideoSFTTrainer(Trainer):
        """transformers' Trainer that takes the ``example_index`` out of each batch and, on
        process 0, appends ``{"step", "ids"}`` per training micro-batch to a JSONL file."""

        def __init__(self, *args: Any, record_ids: Sequence[str] = (), data_order_file: Path | None = None,
                     **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.record_ids = list(record_ids)
            self.data_order_file = data_order_file

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            index = inputs.pop("example_index", None)
            if index is not None and model.training and self.data_order_file is not None and self.is_world_process_zero():
                entry = {"step": self.state.global_step + 1, "ids": [self.record_ids[int(i)] for i in index.tolist()]}
                append_jsonl(self.data_order_file, entry)
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            # transformers 5.24's Trainer loads a checkpoint's state dict as saved, without the
            # key renaming from_pretrained applies: the Qwen VL classes save "model.layers.*" and
            # "visual.*" but hold "model.language_model.*" and "model.visual.*", so every weight
            # is silently left as it was. Full models are reloaded through from_pretrained
            # instead (adapters, DeepSpeed and FSDP checkpoints take transformers' own path).
            from transformers import PreTrainedModel

            target = self.model if model is None else model
            folder = Path(resume_from_checkpoint)
            if isinstance(target, PreTrainedModel) and (folder / "config.json").is_file() and not self.is_fsdp_enabled:
                dtype = next(target.parameters()).dtype
                saved = type(target).from_pretrained(folder, dtype=dtype)
                target.load_state_dict(saved.state_dict(), strict=True)
                logger.info("model weights restored from %s", folder)
                return
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    return VideoSFTTrainer


def _checkpointing_arguments(arguments_class: Any, enabled: bool) -> dict[str, Any]:
    """The activation-checkpointing arguments under the name this transformers uses: 5.24
    renamed ``gradient_checkpointing`` to ``activation_checkpointing`` (the old name is a
    deprecated alias there); 5.22 and 5.23 know only the old one."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(arguments_class)}
    prefix = "activation" if "activation_checkpointing" in names else "gradient"
    return {
        f"{prefix}_checkpointing": enabled,
        f"{prefix}_checkpointing_kwargs": {"use_reentrant": False} if enabled else None,
    }


def training_arguments(plan: SFTPlan) -> Any:
    """transformers ``TrainingArguments`` of the plan (built before the model is loaded, as
    DeepSpeed ZeRO-3 requires).

    On a machine without CUDA launched for DeepSpeed or FSDP, the process group is started
    here with gloo (:func:`hieroaction.train.distributed.start_cpu_process_group`) and the
    Trainer told to use it, instead of resetting it to accelerate's single-process view."""
    import torch
    from transformers import TrainingArguments

    from hieroaction.train.distributed import start_cpu_process_group

    config = plan.config
    cpu_group = start_cpu_process_group()
    evaluate = config.data.eval_split is not None
    report = [r for r in config.report_to if r != "none"]
    try:
        return TrainingArguments(
            output_dir=str(plan.output_dir),
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.eval_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            learning_rate=config.learning_rate,
            lr_scheduler_type=config.lr_scheduler,
            warmup_steps=config.warmup,
            weight_decay=config.weight_decay,
            max_grad_norm=config.max_grad_norm,
            num_train_epochs=config.num_epochs,
            max_steps=config.max_steps if config.max_steps is not None else -1,
            bf16=plan.precision == "bf16",
            fp16=plan.precision == "fp16",
            # Non-reentrant checkpointing also works when the inputs need no gradient (LoRA, a
            # frozen vision tower).
            **_checkpointing_arguments(TrainingArguments, config.gradient_checkpointing),
            logging_steps=config.logging_steps,
            logging_first_step=True,
            save_strategy="steps",
            save_steps=config.save_steps,
            save_total_limit=config.save_total_limit,
            eval_strategy="steps" if evaluate else "no",
            eval_steps=(config.eval_steps or config.save_steps) if evaluate else None,
            prediction_loss_only=True,
            seed=config.seed,
            data_seed=config.seed,
            remove_unused_columns=False,
            label_names=["labels"],
            report_to=report or "none",
            dataloader_num_workers=config.dataloader_num_workers,
            dataloader_pin_memory=torch.cuda.is_available(),
            disable_tqdm=False,
            accelerator_config={"use_configured_state": True} if cpu_group else None,
        )
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"transformers rejects the training settings: {first}") from None


def _validation_set(config: SFTConfig) -> Any:
    """The validation clips generation validation answers (prompts only; ``validation.samples``
    of them, 0: all), the selection's truths checked: before the model loads."""
    from hieroaction.train.selection import truths_of

    split = config.data.eval_split
    limit = config.validation.samples or None
    data = load_examples(config.data, [split], targets=False, progress=False, limits={split: limit})
    val = data[split]
    config.validation.selection.check_split(truths_of(val.records), split)
    return val


def _merge_adapter(plan: SFTPlan, adapter_dir: Path, processor: Any, to: Path | None = None) -> None:
    """Load the base model again, apply the saved adapter, merge it and save a plain model.

    Done from the saved adapter rather than the training model so it also works after DeepSpeed
    ZeRO-3 or FSDP, where no single process holds the whole model.
    """
    from hieroaction.train.distributed import loading_whole

    with loading_whole():  # ZeRO-3 would build the base model sharded, waiting for the other processes
        base, _ = load_model_and_processor(plan.model_path, dtype=weights_dtype(plan.precision))
        merged = merge_adapter(base, adapter_dir)
        merged.save_pretrained(to or plan.output_dir)
    processor.save_pretrained(to or plan.output_dir)


def train_sft(
    config: SFTConfig,
    *,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
) -> SFTResult:
    """Run SFT as configured; the Python entry point of ``hieroaction train sft``.

    Args:
        config: the run's settings.
        callbacks: extra transformers ``TrainerCallback`` objects.
        progress: progress bars (frame cache and training).

    Returns:
        Where the model went, the step reached, the training loss and the log history.

    Raises:
        ConfigError / DataError: any problem with the settings, model path or records, in one
            sentence, before the model is loaded.
    """
    plan = check_sft_config(config)
    args = training_arguments(plan)
    if not progress:
        args.disable_tqdm = True
    with args.main_process_first(desc="frame cache"):
        plan.data = load_examples(config.data, targets=True, progress=progress)
    data = plan.data
    train_set = data[config.data.train_split]
    eval_set = data[config.data.eval_split] if config.data.eval_split else None
    out = plan.output_dir
    if args.should_save:
        out.mkdir(parents=True, exist_ok=True)
        if plan.resume_from is not None:
            remove_incomplete_checkpoints(out)
            truncate_data_order(out / DATA_ORDER_FILE, checkpoint_step(plan.resume_from) or 0)
        elif (out / DATA_ORDER_FILE).is_file():
            (out / DATA_ORDER_FILE).unlink()  # from a run that crashed before its first checkpoint
        if plan.resume_from is None:
            # a fresh run: an earlier run's validations and best/ are not this run's
            (out / VALIDATION_FILE).unlink(missing_ok=True)
            (out / BEST_DIR / BEST_FILE).unlink(missing_ok=True)
        else:
            truncate_validations(out / VALIDATION_FILE, checkpoint_step(plan.resume_from) or 0)
        save_config(config, out / CONFIG_FILE)
        if data.skipped:
            write_skip_list(data.skipped, out / SKIP_LIST_FILE)
            logger.warning("%d record(s) skipped; the list is in %s", len(data.skipped), out / SKIP_LIST_FILE)
    logger.info(
        "SFT: %d train examples%s; %s", len(train_set),
        f", {len(eval_set)} eval examples" if eval_set is not None else "",
        f"resuming from {plan.resume_from}" if plan.resume_from else "fresh run",
    )

    validation_set = _validation_set(config) if config.validation.enabled else None

    model, processor = load_for_training(plan)
    pad_id = processor.tokenizer.convert_tokens_to_ids(plan.family.pad_token)
    callbacks = list(callbacks)
    validator = None
    if validation_set is not None:
        validator = make_callback(
            config.validation, validation_set, processor, out,
            lambda folder: write_inference_settings(folder, config.data, train_set.records),
            weights_subdir=ADAPTER_DIR if config.lora.enabled and config.lora.merge else None,
        )
        callbacks.append(validator)
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=SupervisedDataset(train_set, processor, keep_encoded=config.keep_encoded),
        eval_dataset=SupervisedDataset(eval_set, processor) if eval_set is not None else None,
        data_collator=SupervisedCollator(pad_id),
        processing_class=processor,
        callbacks=callbacks,
        record_ids=train_set.ids,
        data_order_file=out / DATA_ORDER_FILE if config.log_data_order else None,
    )
    if validator is not None:
        validator.trainer = trainer
    result = trainer.train(resume_from_checkpoint=str(plan.resume_from) if plan.resume_from else None)

    adapter_dir: Path | None = None
    if config.lora.enabled and config.lora.merge:
        adapter_dir = out / ADAPTER_DIR
        trainer.save_model(str(adapter_dir))
        if trainer.is_world_process_zero():
            _merge_adapter(plan, adapter_dir, processor)
    else:
        trainer.save_model(str(out))
        adapter_dir = out if config.lora.enabled else None
    best_dir = out / BEST_DIR
    if validator is not None and validator.weights_subdir and (best_dir / validator.weights_subdir).is_dir():
        trainer.accelerator.wait_for_everyone()
        if trainer.is_world_process_zero():
            _merge_adapter(plan, best_dir / validator.weights_subdir, processor, to=best_dir)
    if trainer.is_world_process_zero():
        # how the model is prompted (frames, prompt, domain), for assess/serve/evaluate
        write_inference_settings(out, config.data, train_set.records)
        trainer.save_state()
        trainer.save_metrics("train", result.metrics)
    logger.info("SFT finished at step %d; model saved in %s", trainer.state.global_step, out)
    return SFTResult(
        output_dir=out,
        adapter_dir=adapter_dir,
        global_step=trainer.state.global_step,
        train_loss=result.metrics.get("train_loss"),
        resumed_from=plan.resume_from,
        checkpoints=complete_checkpoints(out),
        log_history=list(trainer.state.log_history),
        train_examples=len(train_set),
        eval_examples=len(eval_set) if eval_set is not None else 0,
        skipped=len(data.skipped),
    )


__all__ = [
    "LoraSettings",
    "SFTConfig",
    "SFTPlan",
    "SFTResult",
    "TrainableParts",
    "check_sft_config",
    "complete_checkpoints",
    "load_for_training",
    "load_sft_config",
    "prepare_sft",
    "read_data_order",
    "train_sft",
    "training_arguments",
]
