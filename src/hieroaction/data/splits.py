"""Carve a validation split out of a training split.

FineDiving and MTL-AQA publish only train and test splits, and model selection must never look
at test: ``hieroaction data split`` moves a seeded fraction of the train records into ``val``.
By default the draw is stratified by action label, so rare dives appear in both parts.

The number moved is ``round(fraction * n)`` of the ``n`` source records (at least 1, at most
``n - 1``), whatever the labels. It is shared out among the labels by largest remainder: each
label gets the whole part of ``fraction * its count``, and the records still to place go to the
labels with the largest fractional parts, ties drawn with the seed. Labels seen once (every
record its own label) are so pooled rather than each rounded down to nothing.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence

from hieroaction.data.records import Record
from hieroaction.errors import DataError


def allocate(sizes: dict[str, int], fraction: float, rng: random.Random) -> dict[str, int]:
    """How many of each stratum's ``sizes[key]`` members to take so the total is about
    ``fraction`` of all of them (largest-remainder apportionment; see the module docstring).

    Every stratum gets ``floor(fraction * size)`` or one more; the total is
    ``round(fraction * n)`` clamped to ``[1, n - 1]``.
    """
    n = sum(sizes.values())
    total = min(n - 1, max(1, round(fraction * n)))
    quotas = {key: fraction * size for key, size in sizes.items()}
    counts = {key: math.floor(q) for key, q in quotas.items()}
    # One tie-break draw per stratum, in a fixed order, so a seed always gives the same split.
    # The remainders are rounded so float noise (0.1 * 3 vs 0.1 * 13 - 1) cannot break ties.
    draws = {key: rng.random() for key in sorted(sizes)}
    order = sorted(sizes, key=lambda key: (-round(quotas[key] - counts[key], 9), draws[key]))
    for key in order[: max(0, total - sum(counts.values()))]:
        counts[key] += 1
    return counts


def carve_split(
    records: Sequence[Record],
    fraction: float = 0.1,
    seed: int = 0,
    source: str = "train",
    target: str = "val",
    stratify: bool = True,
) -> list[Record]:
    """Copies of ``records`` with ``fraction`` of the ``source`` split moved to ``target``.

    Deterministic for a seed; every other record is returned unchanged, in the same order.
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"the validation fraction must be between 0 and 1, got {fraction}")
    if any(r.split == target for r in records):
        raise DataError(f"the records already have a {target!r} split; nothing was changed")
    pool = [r for r in records if r.split == source]
    if len(pool) < 2:
        raise DataError(f"split {source!r} has {len(pool)} records; at least 2 are needed")
    rng = random.Random(seed)
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in pool:
        groups[(r.action.label or "") if stratify else ""].append(r)
    shuffled = {}
    for label in sorted(groups):
        members = sorted(groups[label], key=lambda r: r.id)
        rng.shuffle(members)
        shuffled[label] = members
    counts = allocate({label: len(m) for label, m in shuffled.items()}, fraction, rng)
    chosen = {r.id for label, members in shuffled.items() for r in members[: counts[label]]}
    return [r.model_copy(update={"split": target}) if r.id in chosen else r for r in records]
