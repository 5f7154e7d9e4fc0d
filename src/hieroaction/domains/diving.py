"""FINA diving: parse dive numbers and apply the judge-score rules of the datasets.

The grammar and the rules are data in ``domains/data/diving.yaml``; this module reads them.
A dive number is ``<group><...><position>``:

* groups 1-4 (forward, back, reverse, inward): ``G F S`` with F the flying digit (0/1) and S
  the number of half somersaults (one or two digits), e.g. ``107B``;
* group 5 (twisting): ``5 D S T`` with D the direction (1-4), S half somersaults and T half
  twists, e.g. ``5253B``;
* group 6 (armstand): ``6 D S`` or ``6 D S T``, e.g. ``626C``, ``6243D``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from hieroaction.io import read_yaml_mapping

_NUMBER = re.compile(r"^\s*([1-6])(\d{2,3})([A-Da-d])\s*$")


@lru_cache(maxsize=1)
def diving_data() -> dict[str, Any]:
    """The parsed ``diving.yaml``."""
    ref = resources.files("hieroaction.domains") / "data" / "diving.yaml"
    return read_yaml_mapping(ref, what="diving rules file")


@dataclass(frozen=True)
class DiveNumber:
    """The attributes a FINA dive number encodes."""

    code: str  # canonical, upper-case position letter, e.g. "5253B"
    group: str  # forward | back | reverse | inward (the rotation direction)
    twisting: bool
    armstand: bool
    flying: bool
    somersaults: float  # full somersaults, e.g. 2.5
    twists: float  # full twists, e.g. 1.5
    position: str  # straight | pike | tuck | free

    def attributes(self) -> dict[str, Any]:
        """The attributes as a plain dict (the record's ``action.attributes``)."""
        out = asdict(self)
        out.pop("code")
        return out


def parse_dive_number(code: str) -> DiveNumber | None:
    """Parse a dive number such as ``'205b'`` or ``'5253B'``; ``None`` if it does not fit."""
    if not isinstance(code, str):
        return None
    match = _NUMBER.match(code)
    if match is None:
        return None
    data = diving_data()
    first, rest, letter = int(match.group(1)), match.group(2), match.group(3).upper()
    position = data["positions"][letter]
    directions = data["directions"]
    if first in (1, 2, 3, 4):
        flying, half_soms, half_twists = int(rest[0]) == 1, int(rest[1:]), 0
        if rest[0] not in "01":
            return None
        group, twisting, armstand = data["groups"][first], False, False
    elif first == 5:
        if len(rest) != 3 or int(rest[0]) not in directions:
            return None
        group, twisting, armstand, flying = directions[int(rest[0])], True, False, False
        half_soms, half_twists = int(rest[1]), int(rest[2])
    else:  # armstand
        if int(rest[0]) not in directions:
            return None
        group, twisting, armstand, flying = directions[int(rest[0])], False, True, False
        half_soms = int(rest[1])
        half_twists = int(rest[2]) if len(rest) == 3 else 0
        twisting = half_twists > 0
    if half_soms == 0 and not armstand:
        return None
    return DiveNumber(
        code=f"{match.group(1)}{rest}{letter}",
        group=group,
        twisting=twisting,
        armstand=armstand,
        flying=flying,
        somersaults=half_soms / 2,
        twists=half_twists / 2,
        position=position,
    )


def dive_number_from_parts(
    group: str, half_somersaults: int, half_twists: int, position: str, armstand: bool = False
) -> str | None:
    """Compose a dive number from its parts (e.g. MTL-AQA's attribute columns)."""
    data = diving_data()
    direction = {v: k for k, v in data["directions"].items()}.get(group)
    letter = {v: k for k, v in data["positions"].items()}.get(position)
    if direction is None or letter is None or half_somersaults < 0 or half_twists < 0:
        return None
    if armstand:
        twists = str(half_twists) if half_twists else ""
        return f"6{direction}{half_somersaults}{twists}{letter}"
    if half_twists:
        if half_somersaults > 9 or half_twists > 9:
            return None
        return f"5{direction}{half_somersaults}{half_twists}{letter}"
    return f"{direction}0{half_somersaults}{letter}"


@dataclass(frozen=True)
class JudgeRule:
    """Which stored judge scores count, and the factor applied to their sum."""

    drop_high: int
    drop_low: int
    factor: float

    def execution(self, judges: Sequence[float]) -> float:
        """Sum of the counted judge scores."""
        ordered = sorted(float(j) for j in judges)
        counted = ordered[self.drop_low : len(ordered) - self.drop_high]
        return float(sum(counted))


def judge_rule(n_judges: int) -> JudgeRule | None:
    """The rule for a source that stores ``n_judges`` scores (3, 5 or 7), else ``None``."""
    rule = diving_data()["judge_rules"].get(int(n_judges))
    return None if rule is None else JudgeRule(**rule)


def expected_final(difficulty: float, judges: Sequence[float]) -> float | None:
    """DD x counted execution x factor, or ``None`` when the judge count has no rule."""
    rule = judge_rule(len(judges))
    if rule is None or difficulty is None or not math.isfinite(float(difficulty)):
        return None
    return float(difficulty) * rule.execution(judges) * rule.factor


def score_tolerance() -> float:
    """Largest accepted difference between a stored final score and the rule."""
    from hieroaction.domains import get_domain

    return get_domain("diving").score_tolerance
