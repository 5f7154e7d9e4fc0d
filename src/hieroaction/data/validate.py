"""Annotation validation: records whose labels contradict each other.

Adapters report what they see while reading a dataset (noisy step annotations, split keys
without an annotation, unreadable entries). On top of that, :func:`check_record` applies the
domain's rules to every record, whatever its source:

* ``score_rule``: the final score differs from the domain rule by more than the domain's
  tolerance (diving: DD x counted judge scores x factor, with the 3/5/7-judge rules; other
  domains: the formula over the stored components);
* ``steps``: steps out of temporal order or overlapping.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hieroaction.data.adapters import Problem, get_adapter
from hieroaction.data.records import Record
from hieroaction.domains import get_domain
from hieroaction.domains.diving import expected_final, judge_rule
from hieroaction.errors import ConfigError

_DIVING_DOMAINS = ("diving", "diving_sync")


def _score_rule_problem(record: Record) -> Problem | None:
    final = record.score.final
    if final is None:
        return None
    try:
        domain = get_domain(record.domain)
    except ConfigError:
        return Problem(record.id, "label", f"unknown domain {record.domain!r}")
    components = record.score.components
    judges = record.score.judges
    if record.domain in _DIVING_DOMAINS and judges and "difficulty" in components:
        if judge_rule(len(judges)) is None:
            return Problem(
                record.id,
                "score_rule",
                f"{len(judges)} judge scores stored; the diving rules cover 3, 5 or 7",
            )
        expected = expected_final(components["difficulty"], judges)
        rule = f"DD {components['difficulty']:g} with {len(judges)} judge scores {judges}"
    else:
        expected = domain.final_score(components)
        rule = f"{domain.name} formula over {components}"
    if expected is None:
        return None
    if abs(expected - final) > domain.score_tolerance:
        return Problem(
            record.id,
            "score_rule",
            f"final score {final:g} differs from {expected:.3f} given by the rule ({rule})",
        )
    return None


def _steps_problem(record: Record) -> Problem | None:
    for before, after in zip(record.steps, record.steps[1:]):
        if after.start_frame <= before.end_frame:
            return Problem(
                record.id,
                "steps",
                f"step {after.label!r} starts at frame {after.start_frame}, not after "
                f"step {before.label!r} which ends at {before.end_frame}",
            )
    return None


def check_record(record: Record) -> list[Problem]:
    """The domain-rule problems of one record (empty when its labels agree)."""
    problems = [_score_rule_problem(record), _steps_problem(record)]
    return [p for p in problems if p is not None]


@dataclass
class ValidationReport:
    """What ``hieroaction data validate`` prints.

    Label problems (``score_rule``, ``steps``, ``label``, ``missing``) are what validation is
    for: the records were read. :attr:`failure` is set when the annotations themselves could not
    be read: no record at all, or ``unreadable`` entries (a file, a line or an entry that cannot
    become a record).
    """

    dataset: str
    records: int
    splits: dict[str, int]
    problems: list[Problem] = field(default_factory=list)
    files: tuple[str, ...] = ()  # the original files the dataset's adapter reads (for messages)

    @property
    def problem_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(p.kind for p in self.problems).items()))

    @property
    def failure(self) -> str | None:
        """Why the annotations could not all be read (one sentence), or ``None`` when every
        entry became a record."""
        unreadable = self.problem_counts.get("unreadable", 0)
        if self.records == 0 and unreadable:
            return (
                f"no record was read from the {self.dataset} annotations: the {unreadable} "
                "found could not be read (listed as 'unreadable')"
            )
        if self.records == 0:
            expected = f" (it reads {', '.join(self.files)})" if self.files else ""
            return (
                f"no record was read from the {self.dataset} annotations{expected}; check that "
                "--annotations names the dataset's folder and that its files hold annotations"
            )
        if unreadable:
            return (
                f"{unreadable} annotation(s) could not be read and became no record (listed as "
                "'unreadable'); the other records were read"
            )
        return None

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "records": self.records,
            "splits": self.splits,
            "problem_counts": self.problem_counts,
            "problems": [p.as_dict() for p in self.problems],
            "failure": self.failure,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def to_text(self) -> str:
        lines = [f"{self.dataset}: {self.records} records"]
        for split, count in self.splits.items():
            lines.append(f"  {split:<10} {count}")
        if not self.problems:
            lines.append("no records read" if self.records == 0 else "no problems found")
            return "\n".join(lines)
        counts = ", ".join(f"{k} {v}" for k, v in self.problem_counts.items())
        lines.append(f"{len(self.problems)} problems: {counts}")
        width = max(len(p.kind) for p in self.problems)
        for p in self.problems:
            lines.append(f"  {p.kind:<{width}}  {p.id}: {p.detail}")
        return "\n".join(lines)


def split_counts(records: Iterable[Record]) -> dict[str, int]:
    """Records per split (``none`` for records without one), sorted by name."""
    counts = Counter(r.split or "none" for r in records)
    return dict(sorted(counts.items()))


def validate_records(records: list[Record], dataset: str = "records") -> ValidationReport:
    """Apply :func:`check_record` to every record."""
    problems = [p for r in records for p in check_record(r)]
    return ValidationReport(dataset, len(records), split_counts(records), problems)


def validate_dataset(
    name: str, annotations: str | Path, frames: str | Path | None = None
) -> ValidationReport:
    """Read a dataset's original files and report every record whose labels contradict."""
    adapter = get_adapter(name)
    result = adapter.load(Path(annotations), Path(frames) if frames else None)
    report = validate_records(result.records, dataset=adapter.name)
    report.files = adapter.files
    seen = {(p.id, p.kind, p.detail) for p in report.problems}
    adapter_problems = [p for p in result.problems if (p.id, p.kind, p.detail) not in seen]
    report.problems = adapter_problems + report.problems
    report.problems.sort(key=lambda p: (p.kind, p.id))
    return report
