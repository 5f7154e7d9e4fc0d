"""FineDiving (CVPR 2022): 3000 dives with FINA dive numbers, judge scores and sub-action steps.

Reads the original files (found anywhere under the annotations folder):

* ``FineDiving_coarse_annotation.pkl``: ``(video_name, instance_id) -> {action_type,
  start_frame, end_frame, dive_score, difficulty, judge_scores}``; the window, score and judges;
* ``FineDiving_fine-grained_annotation.pkl``: the same keys -> ``{..., steps_transit_frames,
  frames_labels, sub-action_types}``; or, when that file is absent,
  ``fine-grained_annotation_aqa.pkl`` whose values are the lists ``[action_type, dive_score,
  difficulty, steps_transit_frames, frames_labels]``;
* ``Sub_action_Types_Table.pkl``: sub-action id -> name (used where a record has no names);
* ``train_split.pkl`` and ``test_split.pkl``: lists of keys.

Steps come from the runs of ``frames_labels`` (one sub-action id per frame of the window);
``steps_transit_frames`` (the last frame of each step but the last) is only a cross-check,
because a few records carry a noisy one. Disagreements are reported as ``steps`` problems and
the record is kept with the run-derived steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hieroaction.data.adapters.base import Adapter, LoadResult, Problem, dataset_description, find_file
from hieroaction.data.adapters.generic import existing_folder
from hieroaction.data.records import Action, Record, Score, Step, VideoRef
from hieroaction.data.safe_pickle import (
    entry_error,
    load_pickled,
    to_float,
    to_float_list,
    to_int,
    to_key,
    to_str,
)
from hieroaction.domains import get_domain
from hieroaction.domains.diving import judge_rule, parse_dive_number
from hieroaction.errors import DataError

DATASET = "finediving"
COARSE = "FineDiving_coarse_annotation.pkl"
FINE = "FineDiving_fine-grained_annotation.pkl"
FINE_AQA = "fine-grained_annotation_aqa.pkl"
TABLE = "Sub_action_Types_Table.pkl"
SPLITS = {"train": "train_split.pkl", "test": "test_split.pkl"}

_KEYS = "a dict of (video_name, instance_id) -> annotation"


@dataclass
class FineDivingOptions:
    """How strictly step annotations are read."""

    # A run of one sub-action label shorter than this many frames is label flicker, not a step.
    min_run_frames: int = 2
    # How many frames a transition may sit from the end of the labels' run before it is reported.
    transit_tolerance: int = 0


def dataset_facts() -> dict[str, Any]:
    """The parsed ``domains/data/datasets/finediving.yaml``."""
    return dataset_description("finediving.yaml")


def record_id(video_name: str, instance_id: int) -> str:
    """The unified record id of a FineDiving key."""
    return f"{DATASET}/{video_name}/{instance_id}"


_KEY_PARTS = (("video_name", to_str), ("instance_id", to_int))


def _key(raw: Any) -> tuple[str, int]:
    return to_key(raw, _KEY_PARTS)


def _raw_id(raw: Any) -> str:
    """An id for a key that could not be read, so a problem can still name it."""
    try:
        return record_id(*_key(raw))
    except ValueError:
        return f"{DATASET}/{raw!r}"


@dataclass
class _Fine:
    """One fine-grained annotation, whichever of the two files it came from."""

    action_type: str
    dive_score: float
    difficulty: float
    transits: list[int]
    labels: np.ndarray
    names: dict[int, str]


def _read_fine(value: Any) -> _Fine:
    if isinstance(value, dict):
        names_raw = value.get("sub-action_types") or {}
        if not isinstance(names_raw, dict):
            raise ValueError(f"sub-action_types must be a dict, got {type(names_raw).__name__}")
        names = {
            to_int(k, "sub-action id"): to_str(v, "sub-action name") for k, v in names_raw.items()
        }
        fields = [value[k] for k in ("action_type", "dive_score", "difficulty",
                                     "steps_transit_frames", "frames_labels")]
    elif isinstance(value, (list, tuple)) and len(value) == 5:
        names, fields = {}, list(value)
    else:
        raise ValueError("fine-grained annotation must be a dict or a 5-item list, "
                         f"got {type(value).__name__}")
    action_type, dive_score, difficulty, transits, labels = fields
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"frames_labels must be a non-empty 1-D integer array, got {labels!r:.80}")
    transits = np.asarray(transits).ravel()
    if transits.size and not np.issubdtype(transits.dtype, np.integer):
        raise ValueError(f"steps_transit_frames must hold integers, got {transits!r:.80}")
    return _Fine(
        action_type=to_str(action_type, "action_type"),
        dive_score=to_float(dive_score, "dive_score"),
        difficulty=to_float(difficulty, "difficulty"),
        transits=[int(t) for t in transits],
        labels=labels.astype(np.int64, copy=False),
        names=names,
    )


@dataclass
class _Run:
    label: int
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def _runs(labels: np.ndarray) -> list[_Run]:
    """Maximal runs of equal labels."""
    change = np.flatnonzero(labels[1:] != labels[:-1])
    starts = np.concatenate(([0], change + 1))
    ends = np.concatenate((change, [labels.size - 1]))
    return [_Run(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def _clean_runs(runs: list[_Run], min_frames: int) -> tuple[list[_Run], list[_Run]]:
    """Drop flicker runs, give their frames to the run before, merge equal neighbours.

    Returns the cleaned runs and the dropped ones. When every run is short nothing is dropped:
    there would be no steps left to prefer.
    """
    short = [r for r in runs if r.length < min_frames]
    kept = [_Run(r.label, r.start, r.end) for r in runs if r.length >= min_frames]
    if not kept:
        return [_Run(r.label, r.start, r.end) for r in runs], []
    # Frames of a dropped run belong to the step in progress (the step ends where the next
    # kept run starts); frames before the first kept run go to it.
    kept[0].start = runs[0].start
    for before, after in zip(kept, kept[1:]):
        before.end = after.start - 1
    kept[-1].end = runs[-1].end
    merged: list[_Run] = []
    for run in kept:
        if merged and merged[-1].label == run.label:
            merged[-1].end = run.end
        else:
            merged.append(run)
    return merged, short


def _steps(
    fine: _Fine, n_window: int, table: dict[int, str], options: FineDivingOptions
) -> tuple[list[Step], list[str]]:
    """Steps from the runs of ``frames_labels``, and what is wrong with the step annotation."""
    issues: list[str] = []
    labels = fine.labels
    if labels.size != n_window:
        issues.append(
            f"frames_labels has {labels.size} entries for a {n_window}-frame window "
            "(end_frame - start_frame + 1)"
        )
    names = {**table, **fine.names}
    background = set(dataset_facts()["background_labels"])

    def name(label: int) -> str:
        return names.get(label, f"sub-action {label}")

    unknown = sorted({int(x) for x in np.unique(labels)} - set(names))
    if unknown:
        issues.append(f"frames_labels uses sub-action ids {unknown} that have no name")

    raw_runs = _runs(labels)
    runs, dropped = _clean_runs(raw_runs, options.min_run_frames)
    if dropped:
        shown = ", ".join(f"{name(r.label)!r} at {r.start}-{r.end}" for r in dropped[:4])
        more = f" and {len(dropped) - 4} more" if len(dropped) > 4 else ""
        issues.append(
            f"frames_labels flickers: {len(dropped)} run(s) shorter than "
            f"{options.min_run_frames} frames ({shown}{more}) were merged into their neighbours"
        )
    dive_runs = [r for r in runs if name(r.label) not in background]
    seen: dict[int, _Run] = {}
    for run in dive_runs:
        if run.label in seen:
            first = seen[run.label]
            issues.append(
                f"sub-action {name(run.label)!r} recurs at frames {run.start}-{run.end} after "
                f"{first.start}-{first.end}"
            )
        else:
            seen[run.label] = run

    issues.extend(_transit_issues(fine.transits, runs, labels.size, names, options))

    steps = [
        Step(label=name(r.label), start_frame=r.start, end_frame=min(r.end, n_window - 1))
        for r in dive_runs
        if r.start < n_window  # labels past the window cannot be steps of this clip
    ]
    return steps, issues


def _transit_issues(
    transits: list[int], runs: list[_Run], n_labels: int, names: dict[int, str],
    options: FineDivingOptions,
) -> list[str]:
    """How ``steps_transit_frames`` disagrees with the step ends read from the labels.

    ``runs`` include background runs: a transition list may count them as steps or not, so it
    agrees when it matches the run ends either way.
    """
    issues = []
    if any(t < 0 for t in transits):
        issues.append(f"steps_transit_frames {transits} has a negative entry")
    if any(b <= a for a, b in zip(transits, transits[1:])):
        issues.append(f"steps_transit_frames {transits} is not strictly increasing")
    past = [t for t in transits if t >= n_labels - 1]
    if past:
        issues.append(
            f"steps_transit_frames {transits} has {past} at or past the clip's last frame "
            f"({n_labels - 1})"
        )
    if issues:
        return issues
    background = set(dataset_facts()["background_labels"])
    dive_ends = [r.end for r in runs if names.get(r.label) not in background][:-1]
    all_ends = [r.end for r in runs][:-1]

    def agrees(ends: list[int]) -> bool:
        return len(ends) == len(transits) and all(
            abs(t - e) <= options.transit_tolerance for t, e in zip(transits, ends)
        )

    if agrees(dive_ends) or agrees(all_ends):
        return []
    if len(transits) != len(dive_ends):
        return [
            f"steps_transit_frames {transits} has {len(transits)} entries for "
            f"{len(dive_ends) + 1} steps in frames_labels (expected {dive_ends})"
        ]
    return [f"steps_transit_frames {transits} differs from the frames_labels step ends {dive_ends}"]


def _read_table(path: Path | None) -> dict[int, str]:
    if path is None:
        return {}
    table = load_pickled(path, dict, "a dict of sub-action id -> name")
    try:
        return {to_int(k, "sub-action id"): to_str(v, "sub-action name") for k, v in table.items()}
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None


def _read_splits(root: Path, problems: list[Problem]) -> dict[tuple[str, int], str]:
    split_of: dict[tuple[str, int], str] = {}
    for split, filename in SPLITS.items():
        path = find_file(root, filename)
        keys = load_pickled(path, (list, tuple), "a list of (video_name, instance_id) keys")
        for raw in keys:
            try:
                key = _key(raw)
            except ValueError as exc:
                problems.append(Problem(_raw_id(raw), "unreadable", f"{filename}: {exc}"))
                continue
            split_of.setdefault(key, split)
    return split_of


def _score(dd: float, final: float, judges: list[float]) -> tuple[str, Score]:
    domain = dataset_facts()["domain_by_judge_count"].get(len(judges), "diving")
    components = {"difficulty": dd}
    rule = judge_rule(len(judges))
    if rule is not None:
        components["execution"] = rule.execution(judges)
    score = Score(
        final=final, components=components, judges=judges, range=get_domain(domain).score_range
    )
    return domain, score


def _label_mismatches(coarse: dict[str, Any], fine: _Fine) -> list[str]:
    """Fields the coarse and fine-grained files disagree on."""
    out = []
    if to_str(coarse["action_type"], "action_type").lower() != fine.action_type.lower():
        out.append(f"action_type {coarse['action_type']!r} vs {fine.action_type!r}")
    for field, value in (("dive_score", fine.dive_score), ("difficulty", fine.difficulty)):
        if abs(to_float(coarse[field], field) - value) > 1e-6:
            out.append(f"{field} {to_float(coarse[field], field):g} vs {value:g}")
    return out


def _record(
    key: tuple[str, int],
    ann: Any,
    fine: _Fine | str | None,
    split: str | None,
    frames_root: Path | None,
    table: dict[int, str],
    options: FineDivingOptions,
) -> tuple[Record, list[Problem]]:
    """The record of one coarse annotation and the problems of its labels.

    ``fine`` is its fine-grained annotation, or why there is none that can be used.

    Raises ValueError, KeyError or TypeError when the annotation cannot be read at all.
    """
    video_name, instance = key
    rid = record_id(video_name, instance)
    if not isinstance(ann, dict):
        raise ValueError(f"annotation must be a dict, got {type(ann).__name__}")
    action_type = to_str(ann["action_type"], "action_type")
    start = to_int(ann["start_frame"], "start_frame")
    end = to_int(ann["end_frame"], "end_frame")
    final = to_float(ann["dive_score"], "dive_score")
    dd = to_float(ann["difficulty"], "difficulty")
    judges = to_float_list(ann["judge_scores"], "judge_scores")
    if end < start:
        raise ValueError(f"end_frame {end} is before start_frame {start}")

    problems: list[Problem] = []
    label = action_type.strip().upper()
    dive = parse_dive_number(label)
    if dive is None:
        problems.append(
            Problem(rid, "label", f"action_type {action_type!r} is not a FINA dive number")
        )
    domain, score = _score(dd, final, judges)

    steps: list[Step] = []
    if not isinstance(fine, _Fine):
        problems.append(Problem(rid, "steps", fine or "no fine-grained annotation for this key"))
    else:
        mismatches = _label_mismatches(ann, fine)
        if mismatches:
            detail = "coarse and fine-grained annotations disagree: " + "; ".join(mismatches)
            problems.append(Problem(rid, "label", detail))
        steps, issues = _steps(fine, end - start + 1, table, options)
        if issues:
            problems.append(Problem(rid, "steps", "; ".join(issues)))

    # Only clips whose frame folder is there get one (FineDiving ships frames for some dives).
    frames_dir = existing_folder(Path(frames_root) / video_name / str(instance)) if frames_root else None
    record = Record(
        id=rid,
        dataset=DATASET,
        domain=domain,
        split=split,
        video=VideoRef(
            frames_dir=frames_dir,
            frame_template=dataset_facts()["frame_template"],
            start_frame=start,
            end_frame=end,
            fps=None,  # FineDiving stores no frame rate (broadcasts are 25 or 30)
        ),
        action=Action(label=label, attributes=dive.attributes() if dive else {}),
        steps=steps,
        score=score,
    )
    return record, problems


def load(
    annotations_dir: Path, frames_dir: Path | None = None, options: FineDivingOptions | None = None
) -> LoadResult:
    """Read FineDiving's original files under ``annotations_dir`` into unified records."""
    options = options or FineDivingOptions()
    root = Path(annotations_dir)
    coarse = load_pickled(find_file(root, COARSE), dict, _KEYS)
    fine_path = find_file(root, FINE, required=False) or find_file(root, FINE_AQA, required=False)
    if fine_path is None:
        raise DataError(
            f"{root}: no file named {FINE!r} or {FINE_AQA!r} in this folder or below it"
        )
    fine_raw = load_pickled(fine_path, dict, _KEYS)
    table = _read_table(find_file(root, TABLE, required=False))

    result = LoadResult()
    problems = result.problems
    split_of = _read_splits(root, problems)

    fine: dict[tuple[str, int], _Fine | str] = {}  # an unreadable entry keeps its reason
    for raw, value in fine_raw.items():
        try:
            key = _key(raw)
        except ValueError as exc:
            problems.append(Problem(_raw_id(raw), "unreadable", f"{fine_path.name}: {exc}"))
            continue
        try:
            fine[key] = _read_fine(value)
        except (KeyError, TypeError, ValueError) as exc:
            fine[key] = (
                f"unreadable fine-grained annotation in {fine_path.name} ({entry_error(exc)})"
            )

    seen: set[tuple[str, int]] = set()
    for raw, ann in coarse.items():
        try:
            key = _key(raw)
            seen.add(key)
            record, record_problems = _record(
                key, ann, fine.get(key), split_of.get(key), frames_dir, table, options
            )
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(Problem(_raw_id(raw), "unreadable", f"{COARSE}: {entry_error(exc)}"))
            continue
        result.records.append(record)
        problems.extend(record_problems)

    for key, split in split_of.items():
        if key not in seen:
            problems.append(Problem(record_id(*key), "missing",
                                    f"in {SPLITS[split]} but not in {COARSE}"))
    for key in fine:
        if key not in seen and key not in split_of:
            problems.append(Problem(record_id(*key), "missing",
                                    f"in {fine_path.name} but not in {COARSE}"))
    return result


ADAPTER = Adapter(
    name=DATASET,
    domain="diving",
    description=(
        "FineDiving (CVPR 2022): 3000 dives, FINA dive numbers, judge scores, sub-action steps"
    ),
    files=(COARSE, FINE, "train_split.pkl", "test_split.pkl", FINE_AQA, TABLE),
    load=load,
)

__all__ = ["ADAPTER", "FineDivingOptions", "dataset_facts", "load", "record_id"]
