"""What every reward shares: the completion text, a parse cache, the ground-truth columns.

A reward is a pure function ``f(completions, **columns) -> list[float | None]`` (TRL's reward
signature): ``completions`` is a list of strings (or of chat messages, whose last content is
used) and every column is a list of the same length holding each completion's ground truth.
None means the reward does not apply to that sample (e.g. no step annotations); a completion
that cannot be read earns 0.0, never None and never a default value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hieroaction.sar.parse import ParseResult, parse_sar
from hieroaction.sar.targets import truth_columns as reward_columns  # noqa: F401 - the rewards' name for it

# The dataset columns the rewards read, as built by reward_columns().
COLUMNS = ("domain", "action", "steps", "score", "components", "score_range")


def completion_text(completion: Any) -> str:
    """The text of a completion given as a string or as a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):
            return "".join(c.get("text", "") for c in content if isinstance(c, dict))
        return str(content)
    return ""


@lru_cache(maxsize=8192)
def _parse(text: str, strict: bool) -> ParseResult:
    return parse_sar(text, strict=strict)


def parsed(completion: Any, strict: bool = False) -> ParseResult:
    """The (cached) parse of a completion: every reward of a batch reads the same parse."""
    return _parse(completion_text(completion), strict)


def unreadable(result: ParseResult) -> bool:
    """True when nothing of the assessment could be read (empty or garbage text)."""
    a = result.assessment
    return a.action is None and not a.steps and a.score is None and not a.components


@dataclass(frozen=True)
class Truth:
    """One sample's ground truth, as the rewards see it (times in seconds)."""

    domain: str
    action: str | None
    steps: list[dict[str, Any]]
    score: float | None
    components: dict[str, float]
    score_range: tuple[float, float] | None


def truths(n: int, columns: dict[str, Any]) -> list[Truth]:
    """Per-completion :class:`Truth` from the dataset columns (missing columns are empty)."""

    def col(name: str) -> list[Any]:
        values = columns.get(name)
        return list(values) if values is not None else [None] * n

    out = []
    for domain, action, steps, score, components, rng in zip(
        col("domain"), col("action"), col("steps"), col("score"), col("components"),
        col("score_range"),
    ):
        out.append(
            Truth(
                domain=domain or "generic",
                action=action,
                steps=list(steps or []),
                score=None if score is None else float(score),
                components=dict(components or {}),
                score_range=None if rng is None else (float(rng[0]), float(rng[1])),
            )
        )
    return out


