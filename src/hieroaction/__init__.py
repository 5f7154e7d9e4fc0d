"""HieroAction: interpretable action quality assessment with a video vision-language model."""

from __future__ import annotations

__version__ = "0.1.0"

from hieroaction.data.records import Action, Record, Score, Step, VideoRef, read_jsonl, write_jsonl
from hieroaction.errors import HieroActionError

__all__ = [
    "Action",
    "HieroActionError",
    "Record",
    "Score",
    "Step",
    "VideoRef",
    "__version__",
    "read_jsonl",
    "write_jsonl",
]
