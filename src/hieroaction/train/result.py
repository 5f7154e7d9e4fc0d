"""What a training run did: one result type per trainer, sharing one shape.

:class:`TrainResult` holds what every trainer reports (where the final model is, the step
reached, where it resumed from, the log, how many examples it saw); :class:`SFTResult` and
:class:`HPLResult` add what only that trainer has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TrainResult:
    """The shape every trainer's result shares."""

    output_dir: Path  # the final model: loads with from_pretrained together with its processor
    global_step: int
    resumed_from: Path | None
    log_history: list[dict[str, Any]]
    train_examples: int
    eval_examples: int


@dataclass
class SFTResult(TrainResult):
    """What :func:`hieroaction.train.sft.train_sft` did."""

    adapter_dir: Path | None = None  # the LoRA adapter (None for full fine-tuning)
    train_loss: float | None = None
    checkpoints: list[Path] = field(default_factory=list)
    skipped: int = 0


@dataclass
class HPLResult(TrainResult):
    """What :meth:`hieroaction.train.hpl.HPLTrainer.train` did (``output_dir`` is ``final/``)."""

    best_dir: Path | None = None  # the validated best model (the start when no step beat it)
    best_metrics: dict[str, Any] | None = None  # its validation, with its step
    last_metrics: dict[str, Any] = field(default_factory=dict)  # the last step's log entry
    final_eval: dict[str, Any] = field(default_factory=dict)  # the validation after the last step


__all__ = ["HPLResult", "SFTResult", "TrainResult"]
