"""The synthetic sport's grammar: take-offs, turn counts and entries, read from ``synth.yaml``.

An action is one take-off, one turn count and one entry, always in that order, so its steps
are fixed by its label; its difficulty is the sum of its parts' difficulties. Everything here
is read from the domain file, so the prompts and the generator cannot disagree.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hieroaction.domains import Domain, get_domain
from hieroaction.errors import ConfigError

DOMAIN_NAME = "synth"


@dataclass(frozen=True)
class Takeoff:
    """A take-off kind: shown by the figure's colour."""

    name: str
    step_label: str
    difficulty: float
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class Turns:
    """A number of full turns around the axis: shown by as many rings."""

    count: int
    step_label: str
    difficulty: float


@dataclass(frozen=True)
class Entry:
    """An entry kind: which end of the figure (the white head) goes into the water first."""

    name: str
    step_label: str
    difficulty: float


@dataclass(frozen=True)
class ActionType:
    """One label of the vocabulary with its parts."""

    label: str
    takeoff: Takeoff
    turns: Turns
    entry: Entry

    @property
    def difficulty(self) -> float:
        """The sum of the parts' difficulties, rounded to the 0.1 grid diving uses."""
        return round(self.takeoff.difficulty + self.turns.difficulty + self.entry.difficulty, 1)

    @property
    def step_labels(self) -> tuple[str, str, str]:
        """The labels of the action's three steps, in temporal order."""
        return (self.takeoff.step_label, self.turns.step_label, self.entry.step_label)

    def attributes(self) -> dict[str, Any]:
        """The record's ``action.attributes`` (the parts, for partial-credit recognition)."""
        return {
            "takeoff": self.takeoff.name,
            "turns": self.turns.count,
            "entry": self.entry.name,
            "difficulty": self.difficulty,
        }


@dataclass(frozen=True)
class Grammar:
    """The whole vocabulary of the sport plus its judging rules."""

    domain: Domain
    takeoffs: tuple[Takeoff, ...]
    turns: tuple[Turns, ...]
    entries: tuple[Entry, ...]
    actions: tuple[ActionType, ...]
    judges: int
    judge_range: tuple[float, float]
    judge_step: float
    quality_range: tuple[float, float]
    commentary: dict[str, tuple[tuple[float, str], ...]]

    def action(self, label: str) -> ActionType:
        """The action called ``label``; raises :class:`ConfigError` for an unknown one."""
        for action in self.actions:
            if action.label == label:
                return action
        raise ConfigError(
            f"unknown synth action {label!r}; expected one of {[a.label for a in self.actions]}"
        )

    def describe(self, part: str, quality: float) -> str:
        """The commentary phrase for a sub-action ``part`` executed with ``quality``."""
        for minimum, text in self.commentary[part]:
            if quality >= minimum:
                return text
        return self.commentary[part][-1][1]

    @property
    def max_difficulty(self) -> float:
        """The largest difficulty of any action."""
        return max(a.difficulty for a in self.actions)


def _get(data: dict[str, Any], key: str, source: str) -> Any:
    if key not in data:
        raise ConfigError(f"{source}: the synth domain needs the key {key!r}")
    return data[key]


def grammar_from_domain(domain: Domain) -> Grammar:
    """Build the grammar from a domain description; raises :class:`ConfigError` if it is incoherent.

    The action and step vocabularies the domain spells out for the prompts must be exactly the
    ones its parts generate, and its score range must be the one the parts imply.
    """
    extra, source = domain.extra, f"domain {domain.name!r}"
    try:
        takeoffs = tuple(
            Takeoff(str(t["name"]), str(t["step_label"]), float(t["difficulty"]),
                    tuple(int(c) for c in t["colour"]))  # type: ignore[arg-type]
            for t in _get(extra, "takeoffs", source)
        )
        turns = tuple(
            Turns(int(t["count"]), str(t["step_label"]), float(t["difficulty"]))
            for t in _get(extra, "turns", source)
        )
        entries = tuple(
            Entry(str(e["name"]), str(e["step_label"]), float(e["difficulty"]))
            for e in _get(extra, "entries", source)
        )
        template = str(_get(extra, "label_template", source))
        actions = tuple(
            ActionType(template.format(takeoff=t.name, turns=r.count, entry=e.name), t, r, e)
            for t, r, e in itertools.product(takeoffs, turns, entries)
        )
        commentary = {
            part: tuple((float(b["min"]), str(b["text"])) for b in bands)
            for part, bands in _get(extra, "commentary", source).items()
        }
        judge_range = tuple(float(x) for x in _get(extra, "judge_range", source))
        quality_range = tuple(float(x) for x in _get(extra, "quality_range", source))
        grammar = Grammar(
            domain=domain,
            takeoffs=takeoffs,
            turns=turns,
            entries=entries,
            actions=actions,
            judges=int(_get(extra, "judges", source)),
            judge_range=judge_range,  # type: ignore[arg-type]
            judge_step=float(_get(extra, "judge_step", source)),
            quality_range=quality_range,  # type: ignore[arg-type]
            commentary=commentary,
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ConfigError(f"{source}: not a valid synth grammar ({exc!r})") from None
    _check(grammar, source)
    return grammar


def _check(grammar: Grammar, source: str) -> None:
    domain = grammar.domain
    labels = tuple(a.label for a in grammar.actions)
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{source}: the label template gives two actions the same label")
    if domain.action_labels != labels:
        raise ConfigError(f"{source}: action_labels must list {list(labels)} in this order")
    steps = tuple(x.step_label for group in (grammar.takeoffs, grammar.turns, grammar.entries)
                  for x in group)
    if domain.step_labels != steps:
        raise ConfigError(f"{source}: step_labels must list {list(steps)} in this order")
    for part in ("takeoff", "turns", "entry"):
        if not grammar.commentary.get(part):
            raise ConfigError(f"{source}: commentary needs bands for {part!r}")
    top = grammar.max_difficulty * grammar.judges * grammar.judge_range[1]
    if domain.score_range is None or not math.isclose(domain.score_range[1], top):
        raise ConfigError(
            f"{source}: score_range must end at max difficulty x judges x top judge score = {top}"
        )


@lru_cache(maxsize=1)
def _builtin_grammar() -> Grammar:
    return grammar_from_domain(get_domain(DOMAIN_NAME))


def load_grammar(domain: Domain | None = None) -> Grammar:
    """The sport's grammar from ``domain`` (default: the built-in ``synth`` domain)."""
    if domain is None:
        return _builtin_grammar()
    return grammar_from_domain(domain)
