"""Write an :class:`~hieroaction.sar.assessment.Assessment` as a SAR completion (format v1).

The layout is exactly the one of SPEC section 2: one tag per line, free text on its own lines
before the elements of its block, attributes in the order ``label start end quality``.
"""

from __future__ import annotations

from collections.abc import Sequence

from hieroaction.sar.assessment import Assessment, StepAssessment
from hieroaction.sar.markup import (
    ACTION,
    COMPONENT,
    RECOGNITION,
    SCORE,
    SCORING,
    STEP,
    SUBACTIONS,
    escape_attribute,
    escape_text,
    format_number,
)


def _render_step(step: StepAssessment) -> str:
    attributes = [
        f'label="{escape_attribute(step.label)}"',
        f'start="{format_number(step.start)}"',
        f'end="{format_number(step.end)}"',
    ]
    if step.quality is not None:
        attributes.append(f'quality="{format_number(step.quality)}"')
    return f"<{STEP} {' '.join(attributes)}>{escape_text(step.analysis)}</{STEP}>"


def render_sar(assessment: Assessment) -> str:
    """The SAR completion text of ``assessment``.

    ``parse_sar(render_sar(a)).assessment == a`` for every assessment ``a``. A missing action
    or score is written as an empty element (``<action></action>``), which the parser reads
    back as ``None``.
    """
    lines = [f"<{RECOGNITION}>"]
    if assessment.recognition_reasoning:
        lines.append(escape_text(assessment.recognition_reasoning))
    lines.append(f"<{ACTION}>{escape_text(assessment.action or '')}</{ACTION}>")
    lines.append(f"</{RECOGNITION}>")
    lines.append(f"<{SUBACTIONS}>")
    lines.extend(_render_step(step) for step in assessment.steps)
    lines.append(f"</{SUBACTIONS}>")
    lines.append(f"<{SCORING}>")
    if assessment.scoring_reasoning:
        lines.append(escape_text(assessment.scoring_reasoning))
    for name, value in assessment.components.items():
        lines.append(
            f'<{COMPONENT} name="{escape_attribute(name)}">{format_number(value)}</{COMPONENT}>'
        )
    score = "" if assessment.score is None else format_number(assessment.score)
    lines.append(f"<{SCORE}>{score}</{SCORE}>")
    lines.append(f"</{SCORING}>")
    return "\n".join(lines)


def sar_skeleton(
    components: Sequence[str] = (),
    step_quality: bool = True,
    *,
    reasoning: str = "REASONING",
    label: str = "LABEL",
    seconds: str = "SECONDS",
    number: str = "NUMBER",
    analysis: str = "ANALYSIS",
) -> str:
    """The format with placeholders instead of values, for prompts.

    ``components`` are the domain's component names (written as they must appear);
    ``step_quality`` says whether the step line shows the optional ``quality`` attribute. The
    placeholders are words, never numbers, so a prompt never carries a value to copy.
    """
    quality = f' quality="{number}"' if step_quality else ""
    lines = [
        f"<{RECOGNITION}>",
        reasoning,
        f"<{ACTION}>{label}</{ACTION}>",
        f"</{RECOGNITION}>",
        f"<{SUBACTIONS}>",
        f'<{STEP} label="{label}" start="{seconds}" end="{seconds}"{quality}>{analysis}</{STEP}>',
        f"</{SUBACTIONS}>",
        f"<{SCORING}>",
        reasoning,
    ]
    lines.extend(
        f'<{COMPONENT} name="{escape_attribute(name)}">{number}</{COMPONENT}>'
        for name in components
    )
    lines.append(f"<{SCORE}>{number}</{SCORE}>")
    lines.append(f"</{SCORING}>")
    return "\n".join(lines)


__all__ = ["render_sar", "sar_skeleton"]
