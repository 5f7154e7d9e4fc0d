"""LOGO (Zhang et al., CVPR 2023): 200 artistic swimming group routines, 25 fps.

Files (``domains/data/datasets/logo_dataset.yaml``):

* ``anno_dict.pkl``: ``(competition, routine index) -> [event 'tech'|'free', score, '/', action
  end frames, per-frame action ids]``, read through the restricted unpickler; the action ids
  are 1-based indices into the lexicon of the YAML file (12 = ``None``);
* ``train_split.pkl`` / ``test_split.pkl``, or numbered copies such as ``train_split3.pkl``
  (the GOAT code's), lists of those keys. The unnumbered pair wins, else the lowest number.

Steps are the runs of the per-frame action ids (``None`` runs included: the lexicon makes them
part of the routine, and they keep the steps tiling the clip). The end-frame list is only a
cross-check: it matches when it lists the run ends, inclusive or exclusive, with or without the
last one; anything else is a ``steps`` problem and the record keeps the run-derived steps.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from hieroaction.data.adapters.base import Adapter, LoadResult, Problem, dataset_description, find_file, find_files
from hieroaction.data.adapters.generic import (
    locate_clip,
    set_observed_ranges,
)
from hieroaction.data.records import Action, Record, Score, Step, VideoRef
from hieroaction.data.safe_pickle import load_pickled, to_float, to_int, to_str
from hieroaction.domains import get_domain
from hieroaction.errors import DataError

DATASET = "logo"
DOMAIN = "artistic_swimming"
DESCRIPTION_FILE = "logo_dataset.yaml"
_KEYS = "a dict of (competition, routine index) -> [event, score, '/', end frames, frame labels]"


def _description() -> dict[str, Any]:
    return dataset_description(DESCRIPTION_FILE)


def _key(raw: Any) -> tuple[str, int]:
    if not isinstance(raw, (tuple, list)) or len(raw) != 2:
        raise ValueError(f"key {raw!r} is not a (competition, routine index) pair")
    return to_str(raw[0], "competition"), to_int(raw[1], "routine index")


def record_id(competition: str, routine: int) -> str:
    """The unified record id of a LOGO key."""
    return f"{DATASET}/{competition}/{routine}"


def _raw_id(raw: Any) -> str:
    try:
        return record_id(*_key(raw))
    except ValueError:
        return f"{DATASET}/{raw!r}"


def frame_runs(labels: list[int]) -> list[tuple[int, int, int]]:
    """``(label, first, last)`` of each maximal run of equal per-frame labels."""
    runs: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append((labels[start], start, i - 1))
            start = i
    return runs


def end_frames_issue(given: list[int], run_ends: list[int], n_frames: int) -> str | None:
    """Why the annotated end frames disagree with the runs' ends, or ``None`` if they agree."""
    if any(e < 0 or e > n_frames for e in given):
        return (f"action end frames {given[:8]} include values outside the clip's "
                f"{n_frames} frames")
    if given != sorted(given) or len(set(given)) != len(given):
        return f"action end frames {given[:8]} are not strictly increasing"
    accepted = [run_ends, run_ends[:-1]]
    accepted += [[e + 1 for e in ends] for ends in accepted]  # exclusive ends or 1-based
    if given in accepted:
        return None
    return (f"action end frames {given[:8]} disagree with the ends of the per-frame label "
            f"runs {run_ends[:8]}")


def _int_list(value: Any, what: str) -> list[int]:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist()
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{what} must be a list of integers, got {type(value).__name__}")
    return [to_int(v, what) for v in value]


def _record(competition: str, routine: int, value: Any, split: str | None,
            video_root: Path, problems: list[Problem]) -> Record:
    """One routine's record; raises ValueError when its annotation cannot be read."""
    desc = _description()
    rid = record_id(competition, routine)
    if not isinstance(value, (list, tuple)) or len(value) < 5:
        raise ValueError("expected the list [event, score, '/', end frames, frame labels]")
    event = to_str(value[0], "event")
    if event not in desc["events"]:
        raise ValueError(f"event {event!r} is not one of {sorted(desc['events'])}")
    score = to_float(value[1], "score")
    end_frames = _int_list(value[3], "action end frames")
    labels = _int_list(value[4], "per-frame action labels")
    if not labels:
        raise ValueError("the per-frame action labels are empty")
    actions: list[str] = desc["actions"]
    runs = frame_runs(labels)
    unknown = sorted({label for label, _, _ in runs if not 1 <= label <= len(actions)})
    if unknown:
        problems.append(Problem(rid, "label", (
            f"per-frame action ids {unknown} are outside the lexicon's 1..{len(actions)}")))
    steps = [Step(label=actions[label - 1] if 1 <= label <= len(actions) else f"action {label}",
                  start_frame=first, end_frame=last) for label, first, last in runs]
    issue = end_frames_issue(end_frames, [last for _, _, last in runs], len(labels))
    if issue is not None:
        problems.append(Problem(rid, "steps", issue))
    _, frames = locate_clip(video_root, (
        layout.format(competition=competition, routine=routine)
        for layout in desc["clip_layouts"]))
    return Record(
        id=rid,
        dataset=DATASET,
        domain=DOMAIN,
        split=split,
        video=VideoRef(frames_dir=frames, frame_template=desc["frame_template"] if frames else None,
                       start_frame=0, end_frame=len(labels) - 1, fps=float(desc["fps"])),
        action=Action(label=desc["events"][event],
                      attributes={"event": event, "competition": competition, "routine": routine}),
        steps=steps,
        score=Score(final=score),
    )


def split_files(root: Path, split: str) -> Path | None:
    """The split file of ``split``: unnumbered first, else the lowest-numbered one."""
    prefix = _description()["split_prefixes"][split]
    pattern = re.compile(rf"^{re.escape(prefix)}(\d*)\.pkl$")
    found = [(m.group(1), p) for p in find_files(root, f"{prefix}*.pkl")
             if (m := pattern.match(p.name))]
    if not found:
        return None
    found.sort(key=lambda t: (t[0] != "", int(t[0] or 0), str(t[1])))
    return found[0][1]


def _read_splits(root: Path, result: LoadResult) -> dict[tuple[str, int], str]:
    out: dict[tuple[str, int], str] = {}
    for split in ("train", "test"):
        path = split_files(root, split)
        if path is None:
            continue
        keys = load_pickled(path, (list, tuple, np.ndarray),
                            "a list of (competition, routine) keys")
        for raw in list(keys):
            try:
                key = _key(raw.tolist() if isinstance(raw, np.ndarray) else raw)
            except ValueError as exc:
                result.problems.append(Problem(_raw_id(raw), "unreadable", f"{path.name}: {exc}"))
                continue
            if key in out and out[key] != split:
                result.problems.append(Problem(record_id(*key), "label", (
                    f"{path.name} lists {key} which is also in the {out[key]} split; "
                    f"{out[key]} is kept")))
                continue
            out.setdefault(key, split)
    return out


def load(annotations_dir: Path, frames_dir: Path | None = None) -> LoadResult:
    """Read LOGO's ``anno_dict.pkl`` and split files into records.

    Frame folders are looked up under ``frames_dir`` (default ``annotations_dir``) as
    ``<competition>/<routine>`` and the other layouts of ``logo_dataset.yaml``.
    """
    annotations_dir = Path(annotations_dir)
    desc = _description()
    result = LoadResult()
    path = find_file(annotations_dir, desc["annotation_file"])
    assert path is not None
    annotations = load_pickled(path, dict, _KEYS)
    splits = _read_splits(annotations_dir, result)
    video_root = Path(frames_dir) if frames_dir is not None else annotations_dir
    seen: set[tuple[str, int]] = set()
    for raw_key, value in annotations.items():
        try:
            key = _key(raw_key)
            seen.add(key)
            problems: list[Problem] = []
            record = _record(*key, value, splits.get(key), video_root, problems)
        except (ValueError, DataError) as exc:
            result.problems.append(Problem(_raw_id(raw_key), "unreadable", f"{path.name}: {exc}"))
            continue
        result.problems.extend(problems)
        result.records.append(record)
    for key in sorted(set(splits) - seen):
        result.problems.append(Problem(record_id(*key), "missing", (
            f"the {splits[key]} split lists {key} but {path.name} has no annotation for it")))
    set_observed_ranges(result.records, lambda r: None, get_domain(DOMAIN).score_range)
    return result


ADAPTER = Adapter(
    name=DATASET,
    domain=DOMAIN,
    description="LOGO: 200 artistic swimming group routines (technical and free), one score "
                "each; per-frame action labels as steps.",
    files=("anno_dict.pkl", "train_split.pkl", "test_split.pkl", "train_split3.pkl",
           "test_split3.pkl"),
    load=load,
)
