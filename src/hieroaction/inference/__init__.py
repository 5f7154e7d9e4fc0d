"""Assessing new videos with a trained model: :class:`Assessor` and its settings.

``Assessor.from_pretrained(path)`` loads a checkpoint and its processor once; ``assess(video)``
returns an :class:`AssessResult` (the parsed assessment, its problems, the raw answer and the
time of each stage) and ``assess_many(videos)`` batches several clips. ``hieroaction assess``
(:mod:`hieroaction.inference.commands`) is the same on the command line.
"""

from __future__ import annotations

from hieroaction.inference.assessor import (
    AssessResult,
    Assessor,
    Timings,
    check_model_folder,
    pick_device,
    pick_dtype,
    resolve_model_folder,
)
from hieroaction.inference.config import InferenceConfig

__all__ = [
    "AssessResult",
    "Assessor",
    "InferenceConfig",
    "Timings",
    "check_model_folder",
    "pick_device",
    "pick_dtype",
    "resolve_model_folder",
]
