"""A procedurally generated diving-like benchmark with a known action hierarchy.

``generate(out_dir)`` (or ``hieroaction synth --out DIR``) renders clips of a synthetic sport
whose vocabulary lives in ``domains/data/synth.yaml``: a take-off, one to three turns and an
entry, each executed with a quality that shows only in the pixels. See ``docs/synth.md``.
"""

from __future__ import annotations

from hieroaction.synth.generator import (
    ClipSample,
    QualityConfig,
    SynthConfig,
    SynthSummary,
    TimingConfig,
    assign_splits,
    build_record,
    generate,
    reference_correlations,
    sample_clip,
)
from hieroaction.synth.grammar import ActionType, Grammar, load_grammar
from hieroaction.synth.render import ClipSpec, RenderConfig, VideoConfig, render_clip, write_video

__all__ = [
    "ActionType",
    "ClipSample",
    "ClipSpec",
    "Grammar",
    "QualityConfig",
    "RenderConfig",
    "SynthConfig",
    "SynthSummary",
    "TimingConfig",
    "VideoConfig",
    "assign_splits",
    "build_record",
    "generate",
    "load_grammar",
    "reference_correlations",
    "render_clip",
    "sample_clip",
    "write_video",
]
