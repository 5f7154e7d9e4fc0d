"""Structure level: does the completion follow the SAR format?"""

from __future__ import annotations

from typing import Any

from hieroaction.rewards.base import parsed
from hieroaction.sar.markup import BLOCKS


def format_reward(completions: list[Any], block_credit: float = 0.25, **_: Any) -> list[float]:
    """1 when the strict parser finds every block, in order, with no problem at all.

    Otherwise ``block_credit`` per well-formed block (at most ``3 * block_credit`` < 1), so
    a partly right structure is better than none but never as good as a right one.
    """
    out = []
    for completion in completions:
        result = parsed(completion, strict=True)
        if result.ok:
            out.append(1.0)
            continue
        good = sum(1 for name in BLOCKS if result.blocks.get(name) and result.blocks[name].well_formed)
        out.append(min(block_credit * good, 1.0 - block_credit))
    return out
