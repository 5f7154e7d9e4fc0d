"""The typed assessment: what a SAR completion says, and the public output of the system.

An :class:`Assessment` is what :func:`~hieroaction.sar.parse.parse_sar` reads from a completion
and what :func:`~hieroaction.sar.render.render_sar` writes. It is serialised as JSON by the
command line and the web API, and rewards and metrics compare it with the ground truth.

Values are normalised on construction so that ``parse_sar(render_sar(x)).assessment == x``:
numbers are rounded to :data:`DECIMALS` places, free text is stripped, labels and component
names have their whitespace collapsed to single spaces and an empty action label is ``None``.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Part of the SAR format, version 1: every number is written with at most DECIMALS decimals
# (1 ms for times, finer than any frame rate; finer than any published score), and a number
# whose magnitude exceeds MAX_ABS is a problem, not a value (no score, component or clip time
# of the supported domains comes near it, and it keeps absurd model output out of metrics).
FORMAT_VERSION = 1
DECIMALS = 3
MAX_ABS = 1e6


def normalise_number(value: float, what: str = "number") -> float:
    """``value`` rounded to the format's precision; raises ``ValueError`` if not representable.

    A non-finite number or one larger in magnitude than :data:`MAX_ABS` is rejected.
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value}")
    if abs(value) > MAX_ABS:
        raise ValueError(f"{what} must be at most {MAX_ABS:g} in magnitude, got {value}")
    # + 0.0 turns -0.0 into 0.0, so the sign of zero never differs after a round trip.
    return round(value, DECIMALS) + 0.0


def normalise_label(value: str) -> str:
    """Collapse every run of whitespace (newlines included) to one space and strip the ends."""
    return " ".join(value.split())


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StepAssessment(_Model):
    """One sub-action: its label, its time span in seconds from the clip start, an optional
    quality number and the free-text analysis."""

    label: str
    start: float
    end: float
    quality: float | None = None
    analysis: str = ""

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        value = normalise_label(value)
        if not value:
            raise ValueError("a step label must not be empty")
        return value

    @field_validator("start", "end", "quality")
    @classmethod
    def _number(cls, value: float | None) -> float | None:
        return None if value is None else normalise_number(value, "a step number")

    @field_validator("analysis")
    @classmethod
    def _text(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _span(self) -> StepAssessment:
        if not 0.0 <= self.start <= self.end:
            raise ValueError(
                f"step {self.label!r} spans {self.start}..{self.end} s; "
                "expected 0 <= start <= end"
            )
        return self


class Assessment(_Model):
    """A complete (or, from the parser, partial) stepwise assessment of one clip.

    ``action`` and ``score`` are ``None`` when unknown or unreadable; ``steps`` and
    ``components`` then hold only what could be read.
    """

    recognition_reasoning: str = ""
    action: str | None = None
    steps: list[StepAssessment] = Field(default_factory=list)
    scoring_reasoning: str = ""
    components: dict[str, float] = Field(default_factory=dict)
    score: float | None = None
    version: Literal[1] = FORMAT_VERSION

    @field_validator("recognition_reasoning", "scoring_reasoning")
    @classmethod
    def _text(cls, value: str) -> str:
        return value.strip()

    @field_validator("action")
    @classmethod
    def _action(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return normalise_label(value) or None

    @field_validator("components")
    @classmethod
    def _components(cls, value: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, number in value.items():
            key = normalise_label(name)
            if not key:
                raise ValueError("a component name must not be empty")
            if key in out:
                raise ValueError(f"component {key!r} is given twice")
            out[key] = normalise_number(number, f"component {key!r}")
        return out

    @field_validator("score")
    @classmethod
    def _score(cls, value: float | None) -> float | None:
        return None if value is None else normalise_number(value, "the score")


__all__ = [
    "DECIMALS",
    "FORMAT_VERSION",
    "MAX_ABS",
    "Assessment",
    "StepAssessment",
    "normalise_label",
    "normalise_number",
]
