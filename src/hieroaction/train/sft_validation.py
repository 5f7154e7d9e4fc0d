"""SFT's ``best/``: greedy answers on the validation split during training, the checkpoint
users would measure best kept.

The validation loss says how well the model predicts the reference answer token by token; what
users measure is the answer it writes. With ``validation.every`` set, :class:`GenerationValidation`
(a transformers ``TrainerCallback``) answers the validation clips greedily every ``every``
steps from step ``first`` on and at the last step, decoded as ``hieroaction evaluate`` decodes
(:mod:`hieroaction.train.validation`), logs ``val/spearman``, ``val/rl2_x100``,
``val/action_accuracy``, ``val/step_sequence_accuracy`` and ``val/parse_failure_rate`` into the
Trainer's log history and ``validation.jsonl``, and keeps the best checkpoint so far in
``output_dir/best/`` (loadable as the final model is, with its inference settings, its
validation metrics in ``best.json`` and its answers in ``validation_answers.jsonl``). The choice
is :mod:`hieroaction.train.selection`'s, guarded against the run's own best parse-failure rate
and action accuracy (:func:`~hieroaction.train.selection.replaces`): an SFT run starts from a
model that cannot answer, so there is no start to hold it against.

Distributed runs: every process answers its share of the clips and the answers are gathered;
under DeepSpeed ZeRO-3 ``generate`` runs in step on every process (``synced_gpus``), each
answering as many clips. FSDP is refused before the model loads (its generate needs the whole
weights gathered, which the Trainer's wrapped model does not do).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hieroaction.errors import ConfigError
from hieroaction.train.selection import SelectionConfig, replaces

logger = logging.getLogger("hieroaction.train")

BEST_DIR = "best"
BEST_FILE = "best.json"
ANSWERS_FILE = "validation_answers.jsonl"  # in best/: what the chosen checkpoint wrote
VALIDATION_FILE = "validation.jsonl"


@dataclass
class SFTValidation:
    """Generation-based validation and ``best/`` of an SFT run (the ``validation:`` section).

    Attributes:
        every: validate every this many optimizer steps (and at the last step); None: no
            generation validation and no ``best/`` (the validation loss is ``eval_steps``').
        first: the first step that may be validated (earlier multiples of ``every`` are skipped).
        samples: validation clips answered (0: every clip of ``data.eval_split``; at least 200
            where the split has them, or the choice is noise).
        batch_size: clips per generate call.
        max_new_tokens: longest answer.
        selection: which validation is best (:class:`~hieroaction.train.selection.SelectionConfig`).
    """

    every: int | None = None
    first: int = 0
    samples: int = 0
    batch_size: int = 8
    max_new_tokens: int = 512
    selection: SelectionConfig = field(default_factory=SelectionConfig)

    def __post_init__(self) -> None:
        if self.every is not None and self.every < 1:
            raise ConfigError(f"validation.every must be at least 1 (or null), got {self.every}")
        for name in ("first", "samples"):
            if getattr(self, name) < 0:
                raise ConfigError(f"validation.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"validation.{name} must be at least 1, got {getattr(self, name)}")

    @property
    def enabled(self) -> bool:
        return self.every is not None

    def due(self, step: int, last: int) -> bool:
        """Whether step ``step`` of a run of ``last`` steps is validated."""
        if self.every is None or step < self.first:
            return False
        return step == last or step % self.every == 0


def make_callback(*args: Any, **kwargs: Any) -> Any:
    """A :class:`GenerationValidation` (built lazily: transformers is imported on use)."""
    from transformers import TrainerCallback

    class GenerationValidation(TrainerCallback):
        """See the module docstring."""

        def __init__(self, settings: SFTValidation, val_set: Any, processor: Any, output_dir: Path,
                     write_settings: Any, weights_subdir: str | None = None) -> None:
            self.settings = settings
            # where in best/ the weights go: LoRA merged at the end saves its adapter in
            # best/<weights_subdir> now and the merged model in best/ then
            self.weights_subdir = weights_subdir
            self.val_set = val_set
            self.processor = processor
            self.output_dir = Path(output_dir)
            self.write_settings = write_settings  # folder -> None: the inference settings
            self.trainer: Any = None
            self.history: list[dict[str, Any]] = []
            self.best: dict[str, Any] | None = None
            self.answers: list[dict[str, Any]] = []  # the last validation's answers
            best_file = self.output_dir / BEST_DIR / BEST_FILE
            if best_file.is_file():  # a resumed run: the best so far stays the one to beat
                self.best = json.loads(best_file.read_text(encoding="utf-8"))
            history_file = self.output_dir / VALIDATION_FILE
            if history_file.is_file():
                self.history = [json.loads(line) for line in history_file.read_text(encoding="utf-8").splitlines()
                                if line.strip()]

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if not self.settings.due(state.global_step, state.max_steps):
                return
            if any(h.get("step") == state.global_step for h in self.history):
                return  # validated before a resume
            metrics = {"step": state.global_step, **self.validate(model)}
            self.history.append(metrics)
            state.log_history.append(dict(metrics))
            chosen = replaces(metrics, self.best, self.settings.selection, self.history)
            if chosen:
                self.best = metrics
                self.save_best()
            if self.trainer is None or self.trainer.is_world_process_zero():
                with (self.output_dir / VALIDATION_FILE).open("a", encoding="utf-8") as f:
                    f.write(json.dumps({**metrics, "best": chosen}) + "\n")
                logger.info("validation at step %d: %s%s", state.global_step, _short(metrics),
                            " (best so far)" if chosen else "")

        def validate(self, model: Any) -> dict[str, float]:
            import torch

            from hieroaction.models import collate
            from hieroaction.train.data import encode_prompt
            from hieroaction.train.validation import read_row, validation_metrics

            from hieroaction.inference.assessor import greedy_settings
            from hieroaction.train.distributed import engine_of

            accelerator = self.trainer.accelerator if self.trainer is not None else None
            rank = accelerator.process_index if accelerator is not None else 0
            world = accelerator.num_processes if accelerator is not None else 1
            sharded = world > 1 and engine_of(accelerator).sharded_parameters
            n = len(self.val_set)
            indices: list[int | None] = list(range(rank, n, world))
            if sharded:
                indices += [None] * (-(-n // world) - len(indices))
            pad_id = self.processor.tokenizer.pad_token_id
            device = next(model.parameters()).device
            dtype = next(model.parameters()).dtype
            was_training = model.training
            model.eval()
            rows = []
            try:
                size = self.settings.batch_size
                for first in range(0, len(indices), size):
                    chunk = indices[first:first + size]
                    examples = [self.val_set[0 if i is None else i] for i in chunk]
                    batch = collate([encode_prompt(self.processor, e) for e in examples], pad_id, padding_side="left")
                    inputs = {k: (v.to(device, dtype) if k == "pixel_values_videos" else v.to(device))
                              for k, v in batch.items()}
                    with torch.no_grad():  # decoded as `hieroaction evaluate` decodes
                        out = model.generate(**inputs, **greedy_settings(self.settings.max_new_tokens, pad_id),
                                             synced_gpus=sharded)
                    texts = self.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:].cpu())
                    rows += [read_row(e.record, t) for i, e, t in zip(chunk, examples, texts) if i is not None]
            finally:
                model.train(was_training)
            if world > 1:
                from accelerate.utils import gather_object

                rows = gather_object(rows)
            self.answers = [{"id": i, "completion": text, "problems": problems} for i, _, text, problems in rows]
            return validation_metrics(rows, {r.id: r for r in self.val_set.records})

        def save_best(self) -> None:
            """The current weights as ``best/`` (every process takes part: ZeRO-3 gathers)."""
            folder = self.output_dir / BEST_DIR
            if self.trainer is None:
                return
            self.trainer.save_model(str(folder / self.weights_subdir if self.weights_subdir else folder))
            if self.trainer.is_world_process_zero():
                self.write_settings(folder)
                (folder / BEST_FILE).write_text(json.dumps(self.best, indent=1) + "\n", encoding="utf-8")
                (folder / ANSWERS_FILE).write_text("".join(json.dumps(a) + "\n" for a in self.answers),
                                                   encoding="utf-8")

    return GenerationValidation(*args, **kwargs)


def truncate_validations(path: Path, step: int) -> None:
    """Keep the validations up to ``step`` (a resume from that checkpoint redoes the rest)."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _short(metrics: dict[str, Any]) -> str:
    keys = ("val/spearman", "val/rl2_x100", "val/action_accuracy", "val/parse_failure_rate")
    return ", ".join(f"{k[4:]} {metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), float)
                     and math.isfinite(metrics[k]))


__all__ = ["ANSWERS_FILE", "BEST_DIR", "BEST_FILE", "SFTValidation", "VALIDATION_FILE", "make_callback", "truncate_validations"]
