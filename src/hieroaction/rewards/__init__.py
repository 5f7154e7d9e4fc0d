"""The HPL reward library: one pure function per level of the action hierarchy.

=========== ================ ==========================================================
level       name             what it checks
=========== ================ ==========================================================
structure   ``format``       the strict SAR format (partial credit per block)
action      ``recognition``  the action label (partial credit from label attributes)
subaction   ``sequence``     step labels (1 - normalised edit distance)
subaction   ``localisation`` step time spans (order-aligned temporal IoU)
subaction   ``subscore``     step qualities and score components
score       ``score``        the final score (threshold, Gaussian or Laplace kernel)
score       ``consistency``  the final score against the domain formula
=========== ================ ==========================================================

``get(name)`` returns a function with TRL's reward signature; :class:`HierarchicalReward`
combines them as the recipe's ``rewards`` section says (see :mod:`hieroaction.rewards.compose`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hieroaction.errors import ConfigError
from hieroaction.rewards.action import recognition_reward
from hieroaction.rewards.base import COLUMNS, completion_text, parsed, reward_columns
from hieroaction.rewards.compose import (
    LEVELS,
    CompositionConfig,
    CurriculumStage,
    RewardResult,
    compose,
    zero_spread_fraction,
)
from hieroaction.rewards.score import consistency_reward, score_reward, score_similarity
from hieroaction.rewards.structure import format_reward
from hieroaction.rewards.subaction import localisation_reward, sequence_reward, subscore_reward

RewardFunction = Callable[..., list[float | None]]


@dataclass(frozen=True)
class RewardSpec:
    """A registered reward: its function, its level and the dataset columns it reads."""

    name: str
    function: RewardFunction
    level: str
    columns: tuple[str, ...]


_REGISTRY: dict[str, RewardSpec] = {}


def register(name: str, function: RewardFunction, level: str, columns: Iterable[str]) -> None:
    """Add a reward under ``name`` (a user's own reward can join the hierarchy this way)."""
    if level not in LEVELS:
        raise ConfigError(f"reward {name!r}: level {level!r} unknown; expected one of {LEVELS}")
    _REGISTRY[name] = RewardSpec(name, function, level, tuple(columns))


register("format", format_reward, "structure", ())
register("recognition", recognition_reward, "action", ("domain", "action"))
register("sequence", sequence_reward, "subaction", ("steps",))
register("localisation", localisation_reward, "subaction", ("steps",))
register("subscore", subscore_reward, "subaction", ("domain", "steps", "components"))
register("score", score_reward, "score", ("domain", "score", "score_range"))
register("consistency", consistency_reward, "score", ("domain", "score_range"))


def names() -> list[str]:
    """The registered reward names."""
    return list(_REGISTRY)


def spec(name: str) -> RewardSpec:
    """The :class:`RewardSpec` of ``name``; one clear sentence for an unknown name."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown reward {name!r}; expected one of {names()}")
    return _REGISTRY[name]


def get(name: str, **params: Any) -> RewardFunction:
    """The reward function called ``name``, with keyword parameters bound (e.g. ``tau``)."""
    function = spec(name).function
    if not params:
        return function
    bound = functools.partial(function, **params)
    functools.update_wrapper(bound, function)
    return bound


@dataclass
class RewardsConfig:
    """The recipe's ``rewards`` section."""

    weights: dict[str, float] = field(
        default_factory=lambda: {
            "format": 0.5,
            "recognition": 1.0,
            "sequence": 0.5,
            "localisation": 0.5,
            "subscore": 0.5,
            "score": 2.0,
            "consistency": 0.25,
        }
    )
    # Keyword parameters per reward, e.g. {"score": {"tau": 0.1, "kernel": "gaussian"}}.
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    composition: CompositionConfig = field(default_factory=CompositionConfig)


class HierarchicalReward:
    """All configured rewards and their composition, checked before any model is loaded."""

    def __init__(self, config: RewardsConfig) -> None:
        if not config.weights:
            raise ConfigError("rewards.weights is empty; name at least one reward")
        for name in list(config.weights) + list(config.params):
            spec(name)
        unweighted = [n for n in config.params if n not in config.weights]
        if unweighted:
            raise ConfigError(
                f"rewards.params names {unweighted[0]!r}, which has no weight in rewards.weights"
            )
        for name, weight in config.weights.items():
            if not isinstance(weight, (int, float)) or weight < 0:
                raise ConfigError(f"reward weight for {name!r} must be a number >= 0, got {weight!r}")
        self.config = config
        # a weight of 0 switches a reward off (a recipe can turn off what a base file turned on)
        self.weights = {n: float(w) for n, w in config.weights.items() if w > 0}
        if not self.weights:
            raise ConfigError("every reward weight is 0; give at least one reward a positive weight")
        self.functions = {n: get(n, **config.params.get(n, {})) for n in self.weights}
        self.level_of = {n: spec(n).level for n in self.weights}

    @property
    def columns(self) -> set[str]:
        """The dataset columns the configured rewards read."""
        return {c for n in self.weights for c in spec(n).columns}

    def check_columns(self, available: Iterable[str], source: str = "the dataset") -> None:
        """Raise one sentence when ``available`` lacks a column a configured reward reads."""
        available = set(available)
        for name in self.weights:
            missing = [c for c in spec(name).columns if c not in available]
            if missing:
                raise ConfigError(
                    f"reward {name!r} needs the column {missing[0]!r}, which {source} does not have"
                )

    def __call__(
        self, completions: list[Any], group_size: int, step: int = 0, **columns: Any
    ) -> list[RewardResult]:
        """Every reward of every completion, composed into totals."""
        values = {n: fn(completions, **columns) for n, fn in self.functions.items()}
        return compose(values, self.weights, self.level_of, self.config.composition, group_size, step)


__all__ = [
    "COLUMNS",
    "LEVELS",
    "CompositionConfig",
    "CurriculumStage",
    "HierarchicalReward",
    "RewardResult",
    "RewardSpec",
    "RewardsConfig",
    "completion_text",
    "compose",
    "get",
    "names",
    "parsed",
    "register",
    "reward_columns",
    "score_similarity",
    "spec",
    "zero_spread_fraction",
]
