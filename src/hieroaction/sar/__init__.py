"""Stepwise Action Reasoning (SAR): the completion format, its parser and its SFT targets.

A SAR completion (format v1, SPEC section 2) gives the recognition, the sub-actions and the
scoring of one clip in a fixed, machine-readable order. :func:`render_sar` writes an
:class:`Assessment`; :func:`parse_sar` reads one back with a list of problems and never
raises; :mod:`hieroaction.sar.targets` builds supervised targets from annotated records.
"""

from __future__ import annotations

from hieroaction.sar.assessment import FORMAT_VERSION, Assessment, StepAssessment
from hieroaction.sar.parse import (
    MAX_CHARS,
    BlockStatus,
    ParseResult,
    Problem,
    ProblemCode,
    parse_sar,
)
from hieroaction.sar.render import render_sar, sar_skeleton

__all__ = [
    "FORMAT_VERSION",
    "MAX_CHARS",
    "Assessment",
    "BlockStatus",
    "ParseResult",
    "Problem",
    "ProblemCode",
    "StepAssessment",
    "parse_sar",
    "render_sar",
    "sar_skeleton",
]
