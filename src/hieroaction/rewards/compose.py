"""Hierarchical composition of the per-level rewards into one scalar per completion.

Modes (SPEC section 3):

* ``sum``: ``sum_k w_k r_k`` over the rewards that apply (None ones are left out).
* ``gated``: a level counts in proportion to how right the level below it is. With
  ``g(x) = lam + (1 - lam) x``, the sub-action rewards are multiplied by ``g(action level)``
  and the score rewards by ``g(sub-action level)`` (or of the action level when the dataset has
  no sub-actions), so the policy cannot buy score reward with a wrong reading of the action.
  With ``structure_gate_floor`` (``lam_s``) the structure level gates the levels above it too:
  every content reward is multiplied by ``lam_s + (1 - lam_s) x format``, so an answer the
  strict parser refuses (one broken attribute: format 0.5) loses part of everything it
  earned, not only the format reward's share of the total.
* ``normalise``: each reward is standardised within its group of G completions before the
  weighted sum, so that no level drowns the rest. With ``gated`` the gates apply to the raw
  values first and the gated values are standardised: a wrong action lowers a score reward
  before it is centred, so it can never shrink a penalty (a gate times a negative z-score
  would).
* ``curriculum``: stages switch levels on by training step (action first, then sub-actions,
  then score).

Anti-hacking: a completion that does not parse at all earns 0 on every content reward (the
reward functions already return 0.0 for it, never None), and everything is logged per
component, with the fraction of groups whose total reward has zero spread and each reward's
share of the within-group variance of the total (:func:`reward_variance_share`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from hieroaction.errors import ConfigError

LEVELS = ("structure", "action", "subaction", "score")


@dataclass
class CurriculumStage:
    """Until training step ``until_step`` (exclusive; None = to the end) only ``levels`` count."""

    levels: list[str] = field(default_factory=lambda: list(LEVELS))
    until_step: int | None = None


@dataclass
class CompositionConfig:
    """How the per-reward values become one total (all fields settable from the YAML recipe)."""

    mode: Literal["sum", "gated"] = "gated"
    gate_floor: float = 0.5  # lambda: what a level is worth when the level below is all wrong
    # lambda of the structure gate (gated mode only): what the content levels are worth when
    # the format reward is 0; None: the format does not gate them
    structure_gate_floor: float | None = None
    normalise: bool = False
    normalise_eps: float = 1e-4
    curriculum: list[CurriculumStage] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.gate_floor <= 1.0:
            raise ConfigError(f"gate_floor must be in [0, 1], got {self.gate_floor}")
        if self.structure_gate_floor is not None:
            if not (isinstance(self.structure_gate_floor, (int, float)) and 0.0 <= self.structure_gate_floor <= 1.0):
                raise ConfigError(f"structure_gate_floor must be in [0, 1] (or null), got {self.structure_gate_floor!r}")
            if self.mode != "gated":
                raise ConfigError(
                    f"structure_gate_floor gates levels, which only mode 'gated' does; mode is {self.mode!r}: "
                    "set mode: gated or structure_gate_floor: null"
                )
        last = -1
        for stage in self.curriculum:
            bad = [lv for lv in stage.levels if lv not in LEVELS]
            if bad:
                raise ConfigError(f"curriculum level {bad[0]!r} unknown; expected one of {LEVELS}")
            if stage.until_step is not None:
                if stage.until_step <= last:
                    raise ConfigError("curriculum stages must have increasing until_step")
                last = stage.until_step

    def active_levels(self, step: int) -> tuple[str, ...]:
        """The levels that count at training ``step``."""
        for stage in self.curriculum:
            if stage.until_step is None or step < stage.until_step:
                return tuple(stage.levels)
        return LEVELS


@dataclass
class RewardResult:
    """One completion's total reward and every named component (None = does not apply)."""

    total: float
    components: dict[str, float | None]
    levels: dict[str, float | None] = field(default_factory=dict)
    # each reward's term in ``total`` (weighted, gated, normalised; 0 where it does not count)
    contributions: dict[str, float] = field(default_factory=dict)

    def log(self, prefix: str = "reward") -> dict[str, float]:
        """One metric per component (components that do not apply are left out)."""
        out = {f"{prefix}/total": self.total}
        out.update({f"{prefix}/{k}": v for k, v in self.components.items() if v is not None})
        out.update({f"{prefix}/level_{k}": v for k, v in self.levels.items() if v is not None})
        return out


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _normalise_group(values: list[float | None], eps: float) -> list[float | None]:
    known = np.array([v for v in values if v is not None], dtype=float)
    if len(known) == 0:
        return values
    mean, std = known.mean(), known.std()
    return [None if v is None else (v - mean) / (std + eps) for v in values]


def compose(
    rewards: Mapping[str, list[float | None]],
    weights: Mapping[str, float],
    level_of: Mapping[str, str],
    config: CompositionConfig,
    group_size: int,
    step: int = 0,
) -> list[RewardResult]:
    """Combine per-reward values (each a list over completions) into :class:`RewardResult` s.

    Completions are laid out group by group (``group_size`` consecutive completions share a
    prompt). Level values for gating always use the raw rewards in [0, 1]. Each reward's term
    is ``weight x gate x value``; with ``normalise`` the gated values ``gate x value`` are
    standardised within their group before the weights apply (gate, then normalise).
    """
    names = list(weights)
    n = len(next(iter(rewards.values()))) if rewards else 0
    if n % group_size:
        raise ValueError(f"{n} completions is not a whole number of groups of {group_size}")
    active = config.active_levels(step)
    lam = config.gate_floor

    def g(x: float | None) -> float:
        return 1.0 if x is None else lam + (1.0 - lam) * x

    raws, all_levels = [], []
    gated: dict[str, list[float | None]] = {k: [] for k in names}
    for i in range(n):
        raw = {k: rewards[k][i] for k in names}
        levels = {lv: _mean([raw[k] for k in names if level_of[k] == lv]) for lv in LEVELS}
        gates = {lv: 1.0 for lv in LEVELS}
        if config.mode == "gated":
            gates["subaction"] = g(levels["action"])
            below_score = levels["subaction"] if levels["subaction"] is not None else levels["action"]
            gates["score"] = g(below_score)
            if config.structure_gate_floor is not None and levels["structure"] is not None:
                lam_s = config.structure_gate_floor
                structure_gate = lam_s + (1.0 - lam_s) * levels["structure"]
                for lv in ("action", "subaction", "score"):
                    gates[lv] *= structure_gate
        for k in names:
            value = raw[k]
            counts = value is not None and level_of[k] in active
            gated[k].append(gates[level_of[k]] * value if counts else None)
        raws.append(raw)
        all_levels.append(levels)
    if config.normalise:
        for k in names:
            column = gated[k]
            gated[k] = [
                v
                for start in range(0, n, group_size)
                for v in _normalise_group(column[start : start + group_size], config.normalise_eps)
            ]
    results = []
    for i in range(n):
        contributions = {k: 0.0 if gated[k][i] is None else weights[k] * gated[k][i] for k in names}
        total = sum(contributions.values())
        if not math.isfinite(total):
            total = 0.0
            contributions = {k: 0.0 for k in names}
        results.append(RewardResult(total=total, components=raws[i], levels=all_levels[i],
                                    contributions=contributions))
    return results


def reward_variance_share(contributions: Mapping[str, Sequence[float]], group_size: int) -> dict[str, float]:
    """Each reward's share of the within-group variance of the total reward.

    ``contributions[k]`` holds reward ``k``'s term in each completion's total (laid out group by
    group); the total is their sum. Within a group, ``Var(total) = sum_k Cov(c_k, total)``, so
    the share of ``k`` is ``sum over groups of Cov(c_k, total) / sum over groups of Var(total)``:
    the shares add up to 1, a reward that never varies gets 0, and a negative share means the
    reward moved against the total. Groups with no spread add nothing; with no spread at all
    every share is 0.
    """
    names = list(contributions)
    if not names:
        return {}
    values = np.array([contributions[k] for k in names], dtype=float)  # (K, N)
    if values.shape[1] % group_size:
        raise ValueError(f"{values.shape[1]} completions is not a whole number of groups of {group_size}")
    grouped = values.reshape(len(names), -1, group_size)  # (K, groups, G)
    centred = grouped - grouped.mean(axis=2, keepdims=True)
    total = centred.sum(axis=0)  # (groups, G): the centred total
    covariance = (centred * total).sum(axis=(1, 2))  # (K,)
    variance = float((total * total).sum())
    if variance <= 1e-12:
        return {k: 0.0 for k in names}
    return {k: float(c / variance) for k, c in zip(names, covariance)}


def zero_spread_fraction(totals: Sequence[float], group_size: int, tol: float = 1e-8) -> float:
    """Fraction of groups whose totals are all equal (they give no learning signal)."""
    groups = [totals[g : g + group_size] for g in range(0, len(totals), group_size)]
    if not groups:
        return 0.0
    return sum(1 for grp in groups if max(grp) - min(grp) <= tol) / len(groups)
