"""Assessing new videos with a trained model: :class:`Assessor` and its settings.

``Assessor.from_pretrained(path)`` loads a checkpoint and its processor once; ``assess(video)``
returns an :class:`AssessResult` (the parsed assessment, its problems, the raw answer and the
time of each stage) and ``assess_many(videos)`` batches several clips. ``hieroaction assess``
(:mod:`hieroaction.cli.assess`) is the same on the command line. ``calibrate(model_dir,
records, split, samples, coverage)`` (:mod:`hieroaction.inference.calibration`) stores a
conformal calibration in the model folder, after which every result carries its score's interval.
"""

from __future__ import annotations

from hieroaction.inference.assessor import (
    AssessResult,
    Assessor,
    Timings,
    pick_device,
    pick_dtype,
)
from hieroaction.inference.calibrate import calibrate
from hieroaction.inference.calibration import Calibration, SampleAgreement, ScoreInterval
from hieroaction.inference.config import InferenceConfig

__all__ = [
    "AssessResult",
    "Assessor",
    "Calibration",
    "InferenceConfig",
    "SampleAgreement",
    "ScoreInterval",
    "Timings",
    "calibrate",
    "pick_device",
    "pick_dtype",
]
