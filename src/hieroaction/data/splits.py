"""Carve a validation split out of a training split.

FineDiving and MTL-AQA publish only train and test splits, and model selection must never look
at test: ``hieroaction data split`` moves a seeded fraction of the train records into ``val``.
By default the draw is stratified by action label, so rare dives appear in both parts.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from hieroaction.data.records import Record
from hieroaction.errors import DataError


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
    chosen: set[str] = set()
    for label in sorted(groups):
        members = sorted(groups[label], key=lambda r: r.id)
        rng.shuffle(members)
        chosen.update(r.id for r in members[: round(len(members) * fraction)])
    if not chosen:  # tiny splits: still take one record
        chosen.add(rng.choice(sorted(r.id for r in pool)))
    return [r.model_copy(update={"split": target}) if r.id in chosen else r for r in records]
