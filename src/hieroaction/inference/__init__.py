"""Assessing new videos with a trained model: :class:`Assessor` and its settings.

``Assessor.from_pretrained(path)`` loads a checkpoint and its processor once; ``assess(video)``
returns an :class:`AssessResult` (the parsed assessment, its problems, the raw answer and the
time of each stage) and ``assess_many(videos)`` batches several clips. ``hieroaction assess``
(:mod:`hieroaction.cli.assess`) is the same on the command line.
"""

from __future__ import annotations

from hieroaction.inference.assessor import (
    AssessResult,
    Assessor,
    Timings,
    pick_device,
    pick_dtype,
)
from hieroaction.inference.config import InferenceConfig

__all__ = [
    "AssessResult",
    "Assessor",
    "InferenceConfig",
    "Timings",
    "pick_device",
    "pick_dtype",
]
