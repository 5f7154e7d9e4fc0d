"""Supervised (cold-start) targets: a SAR completion for an annotated record.

The target carries the record's true action label, its steps with their true labels, times and
sub-scores, and its true components and final score. The free text around them is drawn from
phrasing pools (``sar/data/phrases.yaml``, replaceable) with a generator seeded by
``(seed, record id)``, so the same record and seed always give the same text and different
records read differently. Every sentence states something the annotation says; a sentence
that needs a field the record lacks is never drawn.

Times: a step of relative frames ``start_frame..end_frame`` (inclusive) covers
``[start_frame / fps, (end_frame + 1) / fps]`` seconds from the start of the clip the model saw
(see :func:`frames_to_seconds`): a frame lasts ``1 / fps``, so consecutive steps meet exactly
and a one-frame step has a length. Rewards and metrics convert ground-truth steps with the
same function.
"""

from __future__ import annotations

import hashlib
import math
import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hieroaction.data.records import Record
from hieroaction.domains import Domain, get_domain
from hieroaction.errors import ConfigError, DataError
from hieroaction.io import read_yaml_mapping
from hieroaction.sar.assessment import Assessment, StepAssessment, normalise_number
from hieroaction.sar.markup import format_number
from hieroaction.sar.render import render_sar

_SLOTS: dict[str, tuple[str, ...]] = {
    "recognition": ("opening", "attributes", "steps_overview", "label", "no_label"),
    "step": ("analysis", "quality"),
    "scoring": ("commentary", "judges", "components", "formula", "final"),
}


@dataclass
class TargetConfig:
    """How SFT targets are written (a section of the SFT recipe)."""

    seed: int = 0  # with the record id, picks the phrasing
    default_fps: float | None = None  # for records whose video has no fps (FineDiving)
    include_commentary: bool = True  # quote the dataset's commentary (MTL-AQA) when present
    include_judges: bool = True  # list the judge scores when present
    phrases: str | None = None  # a YAML file replacing the built-in phrasing pools
    # A formula result within this of the stored final score is written as "a x b = final";
    # beyond it (a mislabelled record) only the true components and score are stated.
    formula_tolerance: float = 0.011


def frames_to_seconds(start_frame: int, end_frame: int, fps: float) -> tuple[float, float]:
    """Seconds ``(start_frame / fps, (end_frame + 1) / fps)`` of an inclusive frame span."""
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    return start_frame / fps, (end_frame + 1) / fps


def record_fps(record: Record, default_fps: float | None = None) -> float | None:
    """The record's frame rate, else ``default_fps``."""
    return record.video.fps if record.video.fps is not None else default_fps


def truth_columns(
    record: Record, default_fps: float | None = None, score_range: tuple[float, float] | None = None
) -> dict[str, Any]:
    """The truth of one record as the model is asked to write it (steps in seconds): the columns
    the rewards read (``hieroaction.rewards.reward_columns``) and evaluation scores against.

    ``score_range`` overrides the record's and the domain's range (e.g. the training split's).
    """
    fps = record_fps(record, default_fps)
    steps = []
    if fps is not None:
        for step in record.steps:
            start, end = frames_to_seconds(step.start_frame, step.end_frame, fps)
            steps.append({"label": step.label, "start": start, "end": end, "score": step.score})
    rng = score_range or record.score.range or get_domain(record.domain).score_range
    return {
        "domain": record.domain,
        "action": record.action.label,
        "steps": steps,
        "score": record.score.final,
        "components": dict(record.score.components),
        "score_range": None if rng is None else [float(rng[0]), float(rng[1])],
    }


# --- phrasing pools -------------------------------------------------------------------------


def _fields(template: str, where: str) -> tuple[str, ...]:
    try:
        return tuple(f for _, f, _, _ in string.Formatter().parse(template) if f is not None)
    except ValueError as exc:
        raise ConfigError(f"{where}: bad braces in phrase {template!r} ({exc})") from None


def _check_pools(data: Any, where: str) -> dict[str, dict[str, list[str]]]:
    """Validate one level of pools ({section: {slot: [phrases]}})."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of sections {sorted(_SLOTS)}")
    out: dict[str, dict[str, list[str]]] = {}
    for section, slots in data.items():
        if section not in _SLOTS:
            raise ConfigError(f"{where}: unknown section {section!r}; expected {sorted(_SLOTS)}")
        if not isinstance(slots, Mapping):
            raise ConfigError(f"{where}: section {section!r} must map slots to phrase lists")
        out[section] = {}
        for slot, phrases in slots.items():
            if slot not in _SLOTS[section]:
                raise ConfigError(
                    f"{where}: unknown slot {section}.{slot}; expected {list(_SLOTS[section])}"
                )
            if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
                raise ConfigError(f"{where}: {section}.{slot} must be a list of strings")
            for phrase in phrases:
                for name in _fields(phrase, where):
                    if not name.isidentifier():
                        raise ConfigError(
                            f"{where}: phrase {phrase!r} names {{{name}}}; "
                            "expected a plain field name"
                        )
            out[section][slot] = list(phrases)
    return out


@dataclass(frozen=True)
class Phrases:
    """Validated phrasing pools: the base pools and per-domain replacements."""

    base: dict[str, dict[str, list[str]]]
    domains: dict[str, dict[str, dict[str, list[str]]]]

    def pool(self, domain: str, section: str, slot: str) -> list[str]:
        """The phrases of one slot for ``domain`` (its own if it has them, else the base)."""
        own = self.domains.get(domain, {}).get(section, {})
        if slot in own:
            return own[slot]
        return self.base.get(section, {}).get(slot, [])

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> Phrases:
        """Build from a parsed YAML mapping; raises :class:`ConfigError` naming ``where``."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: a phrase file must be a YAML mapping")
        data = dict(data)
        domains = data.pop("domains", None) or {}
        if not isinstance(domains, Mapping):
            raise ConfigError(f"{where}: 'domains' must map domain names to sections")
        return cls(
            base=_check_pools(data, where),
            domains={str(k): _check_pools(v, f"{where} (domain {k})") for k, v in domains.items()},
        )


@lru_cache(maxsize=8)
def load_phrases(path: str | None = None) -> Phrases:
    """The phrasing pools: the built-in file, or the YAML file at ``path``."""
    builtin = resources.files("hieroaction.sar") / "data" / "phrases.yaml"
    source, where = (builtin, "built-in phrases.yaml") if path is None else (Path(path), str(path))
    return Phrases.from_mapping(read_yaml_mapping(source, what="phrase file", name=where), where)


# --- text -------------------------------------------------------------------------------------


def _join(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 2:
        return " and ".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _num(value: float) -> str:
    return format_number(normalise_number(value))


class _Writer:
    """Draws one phrase per slot from the pools, in a fixed order, with one seeded generator."""

    def __init__(self, phrases: Phrases, domain: str, rng: random.Random) -> None:
        self.phrases, self.domain, self.rng = phrases, domain, rng

    def say(self, section: str, slot: str, fields: Mapping[str, str]) -> str | None:
        pool = self.phrases.pool(self.domain, section, slot)
        eligible = [p for p in pool if all(f in fields for f in _fields(p, "phrases"))]
        if not eligible:
            return None
        return self.rng.choice(eligible).format_map(fields)

    def paragraph(self, section: str, slots: Sequence[str], fields: Mapping[str, str]) -> str:
        sentences = (self.say(section, slot, fields) for slot in slots)
        # A sentence may open with a lower-case label ("head-first entry from ...").
        return " ".join(s[:1].upper() + s[1:] for s in sentences if s)


def _seed(seed: int, record_id: str) -> int:
    # Python's hash() of a str changes between processes; a digest does not.
    digest = hashlib.sha256(f"{seed}\x00{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _attribute_fields(attributes: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in attributes.items():
        if isinstance(value, bool) or not str(key).isidentifier():
            continue  # flags read badly in prose and nothing in the pools uses them
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[f"attr_{key}"] = _num(value)
        elif isinstance(value, str) and value.strip():
            out[f"attr_{key}"] = value.strip()
    return out


def _formula_expression(domain: Domain, components: Mapping[str, float]) -> str | None:
    formula = domain.formula
    if formula.kind == "identity" or any(name not in components for name in formula.inputs):
        return None
    if formula.kind == "product":
        parts = [_num(components[name]) for name in formula.factors]
        if formula.scale != 1.0:
            parts.append(_num(formula.scale))
        return " x ".join(parts)
    expression = " + ".join(_num(components[name]) for name in formula.plus)
    for name in formula.minus:
        expression += f" - {_num(components[name])}"
    return expression


# --- targets ---------------------------------------------------------------------------------


def target_assessment(record: Record, config: TargetConfig | None = None) -> Assessment:
    """The true assessment of ``record`` with generated reasoning text.

    Raises :class:`DataError` for a record without a final score (and no components to compute
    it from), or with steps but no frame rate (neither ``video.fps`` nor ``default_fps``).
    """
    config = config or TargetConfig()
    domain = get_domain(record.domain)
    phrases = load_phrases(config.phrases)
    writer = _Writer(phrases, domain.name, random.Random(_seed(config.seed, record.id)))

    final = record.score.final
    if final is None:
        final = domain.final_score(record.score.components)
    if final is None:
        raise DataError(
            f"record {record.id!r} has no final score (score.final, or components the "
            f"{domain.name} formula can combine); an SFT target needs one"
        )
    fps = record_fps(record, config.default_fps)
    if record.steps and fps is None:
        raise DataError(
            f"record {record.id!r} has steps but no video.fps; set the target default_fps "
            "to convert its frames to seconds"
        )

    spans = sorted(record.steps, key=lambda s: (s.start_frame, s.end_frame))
    try:
        steps = []
        for index, step in enumerate(spans, start=1):
            start, end = frames_to_seconds(step.start_frame, step.end_frame, fps)
            start, end = normalise_number(start), normalise_number(end)
            fields = {
                "index": str(index),
                "label": step.label,
                "start": format_number(start),
                "end": format_number(end),
                "length": _num(end - start),
            }
            if step.score is not None:
                fields["quality"] = _num(step.score)
            analysis = writer.paragraph("step", _SLOTS["step"], fields)
            steps.append(
                StepAssessment(
                    label=step.label, start=start, end=end, quality=step.score, analysis=analysis
                )
            )

        fields = {"domain_title": domain.name.replace("_", " "), "n_steps": str(len(steps))}
        fields.update(_attribute_fields(record.action.attributes))
        if steps:
            fields["step_sequence"] = _join([s.label for s in steps])
        n = record.video.num_frames
        if n is not None and fps is not None:
            fields["duration"] = _num(n / fps)
        label = (record.action.label or "").strip()
        slots = ["opening", "attributes", "steps_overview"]
        if label:
            fields["label"] = label
            slots.append("label")
        else:
            slots.append("no_label")
        recognition = writer.paragraph("recognition", slots, fields)

        components = dict(record.score.components)
        fields = {"score": _num(final)}
        if config.include_commentary and record.commentary and record.commentary.strip():
            fields["commentary"] = " ".join(record.commentary.split())
        if config.include_judges and record.score.judges:
            fields["judges"] = _join([_num(j) for j in record.score.judges])
        if components:
            fields["components_list"] = _join(
                [f"{name} {_num(value)}" for name, value in components.items()]
            )
        expected = domain.final_score(components)
        expression = _formula_expression(domain, components)
        if (
            expression is not None
            and expected is not None
            and abs(expected - final) <= config.formula_tolerance
        ):
            fields["formula_expression"] = expression
        scoring = writer.paragraph("scoring", _SLOTS["scoring"], fields)

        return Assessment(
            recognition_reasoning=recognition,
            action=label or None,
            steps=steps,
            scoring_reasoning=scoring,
            components=components,
            score=final,
        )
    except (ValidationError, ValueError) as exc:
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise DataError(
            f"record {record.id!r} cannot be written as a SAR target: {reason}"
        ) from None


def build_target(record: Record, config: TargetConfig | None = None) -> str:
    """The SAR completion text of :func:`target_assessment` (the assistant turn for SFT)."""
    return render_sar(target_assessment(record, config))


__all__ = [
    "Phrases",
    "TargetConfig",
    "build_target",
    "frames_to_seconds",
    "load_phrases",
    "record_fps",
    "truth_columns",
    "target_assessment",
]
