"""Action level: is the recognised action the true one?"""

from __future__ import annotations

from typing import Any

from hieroaction.domains.labels import canonical_label, label_attributes
from hieroaction.rewards.base import parsed, truths


def recognition_reward(
    completions: list[Any], partial_credit: float = 0.5, **columns: Any
) -> list[float | None]:
    """1 for the exact label; else ``partial_credit`` x the fraction of matching attributes.

    Attributes come from the domain's label grammar (a dive number splits into group,
    somersaults, twists and position); a domain without one gives no partial credit.
    None when the sample has no true label.
    """
    out: list[float | None] = []
    for completion, truth in zip(completions, truths(len(completions), columns)):
        if truth.action is None:
            out.append(None)
            continue
        predicted = parsed(completion).assessment.action
        if predicted is None:
            out.append(0.0)
            continue
        if canonical_label(truth.domain, predicted) == canonical_label(truth.domain, truth.action):
            out.append(1.0)
            continue
        want = label_attributes(truth.domain, truth.action)
        got = label_attributes(truth.domain, predicted)
        if not want or not got:
            out.append(0.0)
            continue
        same = sum(1 for k, v in want.items() if got.get(k) == v)
        out.append(partial_credit * same / len(want))
    return out
