"""HieroAction: interpretable action quality assessment with a video vision-language model."""

from __future__ import annotations

__version__ = "0.1.0"

from hieroaction.data.records import Action, Record, Score, Step, VideoRef, read_jsonl, write_jsonl
from hieroaction.errors import HieroActionError
from hieroaction.inference import Assessor
from hieroaction.sar import Assessment, StepAssessment, parse_sar, render_sar

__all__ = [
    "Action",
    "Assessment",
    "Assessor",
    "HieroActionError",
    "Record",
    "Score",
    "Step",
    "StepAssessment",
    "VideoRef",
    "__version__",
    "parse_sar",
    "read_jsonl",
    "render_sar",
    "write_jsonl",
]
