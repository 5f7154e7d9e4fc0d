"""The paper's partial-label setting: the whole hierarchy for some training clips, less for the rest.

HieroAction's hierarchical rewards can carry what SFT never saw: FineDiving annotates every
level (action, sub-actions with times, score and its components), while MTL-AQA and AQA-7 give
a final score and, at most, the action (the dive number; AQA-7's class). :func:`partial_labels`
makes that setting from any fully labelled records file: a seeded fraction of the training
clips keeps everything, the rest keep only the final score (and the action label for a seeded
part of them); validation and test clips are never touched. SFT then trains on the fully
labelled clips (``data.train_labels: full``) and HPL on all of them, each reward only where its
truth exists (``None`` elsewhere).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hieroaction.data.records import Record
from hieroaction.errors import ConfigError


def has_full_labels(record: Record) -> bool:
    """Whether ``record`` holds the whole hierarchy: an action label, at least one step, and a
    final score."""
    return bool(record.action.label) and bool(record.steps) and record.score.final is not None


@dataclass
class PartialLabelsSummary:
    """What :func:`partial_labels` did to the training split."""

    split: str
    train: int  # records of the split
    full: int  # kept with the whole hierarchy
    score_and_action: int  # the rest that kept the action label
    score_only: int  # the rest that kept the final score only
    full_fraction: float
    action_fraction: float
    seed: int

    def line(self) -> str:
        """One sentence for the console."""
        return (
            f"{self.split!r} split: {self.full} of {self.train} clips keep every label, "
            f"{self.score_and_action} keep the score and the action, {self.score_only} the score only"
        )


def check_fraction(name: str, value: float, *, zero_ok: bool = False) -> float:
    """``value`` when it lies in (0, 1] (or [0, 1] with ``zero_ok``); one sentence else."""
    low_ok = value >= 0 if zero_ok else value > 0
    if not (isinstance(value, (int, float)) and math.isfinite(value) and low_ok and value <= 1):
        interval = "[0, 1]" if zero_ok else "(0, 1]"
        raise ConfigError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


def _chosen(n: int, fraction: float, rng: np.random.Generator) -> set[int]:
    """round(fraction x n) indices out of n (at least 1 when fraction > 0 and n > 0)."""
    k = min(n, max(1 if fraction > 0 and n else 0, round(fraction * n)))
    return {int(i) for i in rng.permutation(n)[:k]}


def partial_labels(
    records: Sequence[Record],
    full_fraction: float,
    *,
    action_fraction: float = 1.0,
    seed: int = 0,
    split: str = "train",
) -> tuple[list[Record], PartialLabelsSummary]:
    """``records`` with the labels of the ``split`` clips reduced as MTL-AQA / AQA-7 give them.

    Args:
        records: unified records (not changed; copies are returned).
        full_fraction: the fraction F of the split's clips that keep every label, in (0, 1].
        action_fraction: of the other clips, the fraction that keeps the action label, in [0, 1]
            (1: MTL-AQA, which gives the dive number; 0: score only).
        seed: which clips are chosen (the same seed gives the same choice).
        split: the split whose labels are reduced; other splits are returned as they are.

    The chosen clips are picked among those that hold the whole hierarchy; the rest lose their
    steps, the score's components and judge scores (the final score and its range stay), and,
    outside the action fraction, the action label and attributes.
    """
    check_fraction("the fraction of fully labelled clips (--full-labels)", full_fraction)
    check_fraction("the fraction of clips that keep the action label (--action-labels)", action_fraction, zero_ok=True)
    train = [i for i, r in enumerate(records) if r.split == split]
    if not train:
        raise ConfigError(f"no records in split {split!r} to reduce the labels of")
    complete = [i for i in train if has_full_labels(records[i])]
    if not complete:
        raise ConfigError(
            f"no record of split {split!r} holds the whole hierarchy (action, steps, final score), "
            "so none can stay fully labelled"
        )
    rng = np.random.default_rng(seed)
    keep = {complete[j] for j in _chosen(len(complete), full_fraction * len(train) / len(complete), rng)}
    rest = [i for i in train if i not in keep]
    with_action = {rest[j] for j in _chosen(len(rest), action_fraction, rng)} if action_fraction > 0 else set()
    out: list[Record] = []
    for i, record in enumerate(records):
        if record.split != split or i in keep:
            out.append(record.model_copy(deep=True))
            continue
        score = record.score.model_copy(update={"components": {}, "judges": []})
        update = {"steps": [], "score": score, "commentary": None}
        if i not in with_action:
            update["action"] = record.action.model_copy(update={"label": None, "attributes": {}})
        out.append(record.model_copy(update=update, deep=True))
    summary = PartialLabelsSummary(
        split=split, train=len(train), full=len(keep), score_and_action=len(with_action),
        score_only=len(rest) - len(with_action), full_fraction=full_fraction,
        action_fraction=action_fraction, seed=seed,
    )
    return out, summary


__all__ = ["PartialLabelsSummary", "check_fraction", "has_full_labels", "partial_labels"]
