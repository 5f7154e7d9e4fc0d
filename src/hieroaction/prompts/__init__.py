"""Prompts as data: per-domain templates (``prompts/templates/*.yaml``) and their builder."""

from __future__ import annotations

from hieroaction.prompts.builder import (
    ClipInfo,
    PromptConfig,
    assistant_message,
    build_prompt,
    builtin_template_names,
    load_template,
    prompt_fields,
    render_prompt,
)

__all__ = [
    "ClipInfo",
    "PromptConfig",
    "assistant_message",
    "build_prompt",
    "builtin_template_names",
    "load_template",
    "prompt_fields",
    "render_prompt",
]
