"""JIGSAWS (Gao et al., 2014): surgical training trials rated with six GRS items.

Labels come from one of these (``domains/data/datasets/jigsaws_dataset.yaml``):

* ``label.pkl`` or ``label.json``: a dict ``'Needle_Passing_B001' -> [6 GRS items, 1..5]``, the
  form USDL, CoRe and their successors ship (read through the restricted unpickler);
* the release's ``meta_file_<Task>.txt``: ``trial  skill(N/I/E)  GRS-total  item1 .. item6``.

With both, the items come from the label file and the stored GRS total and skill level from the
meta file, so the validator can check the total against the items.

Splits: ``splits.pkl`` / ``splits.json``, a dict ``task -> [fold0 trials, .., fold3 trials]``;
``record.split`` is ``"fold<k>"``, the fold in which the trial is a TEST trial. Without a split
file the trials of each task, sorted by name, are dealt round-robin into the 4 folds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hieroaction.data.adapters.base import Adapter, LoadResult, Problem, dataset_description, find_file, find_files
from hieroaction.data.adapters.generic import (
    as_float,
    locate_clip,
    text_lines,
)
from hieroaction.data.records import Action, Record, Score, VideoRef
from hieroaction.data.safe_pickle import load_pickle, to_float_list
from hieroaction.domains import get_domain
from hieroaction.errors import DataError
from hieroaction.io import read_json

DATASET = "jigsaws"
DOMAIN = "surgical"
DESCRIPTION_FILE = "jigsaws_dataset.yaml"


def _description() -> dict[str, Any]:
    return dataset_description(DESCRIPTION_FILE)


def parse_trial(name: str) -> tuple[str, str, int] | None:
    """``'Needle_Passing_B001'`` -> ``('Needle_Passing', 'B', 1)``; ``None`` if it does not fit."""
    tasks = "|".join(re.escape(t) for t in _description()["tasks"])
    match = re.fullmatch(rf"({tasks})_([A-Z])(\d{{3}})", name)
    if match is None:
        return None
    return match.group(1), match.group(2), int(match.group(3))


@dataclass
class _Trial:
    items: list[float] | None = None
    items_source: str = ""
    total: float | None = None
    skill: str | None = None
    problems: list[str] = field(default_factory=list)


def _read_structured(path: Path) -> Any:
    if path.suffix == ".json":
        return read_json(path, error=DataError)
    return load_pickle(path)


def _items(value: Any) -> list[float] | None:
    """Six GRS item scores from a list, tuple or numpy array; ``None`` if not that."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)
    try:
        items = to_float_list(value, "GRS items")
    except ValueError:
        return None
    return items if len(items) == 6 else None


def _read_label_file(path: Path, trials: dict[str, _Trial], result: LoadResult) -> None:
    data = _read_structured(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a dict of trial name -> 6 GRS item scores, "
                        f"got {type(data).__name__}")
    for key, value in data.items():
        name = str(key)
        items = _items(value)
        if items is None:
            result.problems.append(Problem(f"{DATASET}/{name}", "unreadable", (
                f"{path}: trial {name!r} has {value!r}; expected 6 GRS item scores")))
            continue
        trial = trials.setdefault(name, _Trial())
        trial.items, trial.items_source = items, path.name


def _read_meta_file(path: Path, trials: dict[str, _Trial], result: LoadResult) -> None:
    levels = _description()["skill_levels"]
    for number, line, cells in text_lines(path):
        numbers = [as_float(c) for c in cells[2:]]
        if len(cells) != 9 or any(n is None for n in numbers):
            result.problems.append(Problem(f"{path.name}:{number}", "unreadable", (
                f"{path}: line {number} is {line.strip()!r}; expected 'trial skill(N/I/E) "
                "GRS-total' and 6 GRS item scores")))
            continue
        trial = trials.setdefault(cells[0], _Trial())
        trial.total = numbers[0]
        trial.skill = levels.get(cells[1], cells[1])
        if trial.items is None:
            trial.items, trial.items_source = numbers[1:], path.name  # type: ignore[assignment]
        elif any(abs(a - b) > 1e-6  # type: ignore[operator]
                 for a, b in zip(trial.items, numbers[1:])):
            trial.problems.append(f"GRS items {trial.items} in {trial.items_source} differ from "
                                  f"{numbers[1:]} in {path.name}")


def _read_splits(path: Path, result: LoadResult) -> dict[str, str]:
    """trial name -> ``"fold<k>"`` from a split file."""
    data = _read_structured(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a dict of task -> list of 4 folds of trial names, "
                        f"got {type(data).__name__}")
    folds: dict[str, str] = {}
    for task, task_folds in data.items():
        if isinstance(task_folds, np.ndarray):
            task_folds = task_folds.tolist()
        if not isinstance(task_folds, (list, tuple)):
            raise DataError(f"{path}: task {task!r} has {type(task_folds).__name__}; expected "
                            "a list of folds, each a list of trial names")
        for k, fold in enumerate(task_folds):
            names = fold.tolist() if isinstance(fold, np.ndarray) else fold
            if not isinstance(names, (list, tuple)):
                raise DataError(f"{path}: fold {k} of task {task!r} is {type(fold).__name__}; "
                                "expected a list of trial names")
            for name in map(str, names):
                if name in folds:
                    result.problems.append(Problem(f"{DATASET}/{name}", "label", (
                        f"{path}: trial {name!r} is in {folds[name]} and fold{k}; "
                        f"{folds[name]} is kept")))
                    continue
                folds[name] = f"fold{k}"
    return folds


def default_folds(names: Sequence[str], n_folds: int) -> dict[str, str]:
    """The documented assignment without a split file: per task, sorted names dealt round-robin."""
    out: dict[str, str] = {}
    by_task: dict[str, list[str]] = {}
    for name in names:
        parsed = parse_trial(name)
        by_task.setdefault(parsed[0] if parsed else "", []).append(name)
    for task_names in by_task.values():
        for index, name in enumerate(sorted(task_names)):
            out[name] = f"fold{index % n_folds}"
    return out


def _first_file(root: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        path = find_file(root, name, required=False)
        if path is not None:
            return path
    return None


def load(annotations_dir: Path, frames_dir: Path | None = None) -> LoadResult:
    """Read JIGSAWS GRS labels (label file and/or meta files) and the 4-fold splits.

    Clips (the ``capture1`` view) are looked up under ``frames_dir``, default
    ``annotations_dir``, in the layouts of ``jigsaws_dataset.yaml``.
    """
    annotations_dir = Path(annotations_dir)
    desc = _description()
    result = LoadResult()
    trials: dict[str, _Trial] = {}
    label_file = _first_file(annotations_dir, desc["label_files"])
    meta_files = find_files(annotations_dir, desc["meta_file_pattern"])
    if label_file is None and not meta_files:
        raise DataError(f"{annotations_dir}: no JIGSAWS labels; expected "
                        f"{' or '.join(desc['label_files'])} or the release's "
                        f"{desc['meta_file_pattern']} files in this folder or below it")
    if label_file is not None:
        _read_label_file(label_file, trials, result)
    for meta in meta_files:
        _read_meta_file(meta, trials, result)

    split_file = _first_file(annotations_dir, desc["split_files"])
    if split_file is not None:
        folds = _read_splits(split_file, result)
        for name in sorted(set(folds) - set(trials)):
            result.problems.append(Problem(f"{DATASET}/{name}", "missing", (
                f"{split_file.name} lists trial {name!r} in {folds[name]} but no label has it")))
    else:
        folds = default_folds(list(trials), int(desc["folds"]))

    domain = get_domain(DOMAIN)
    fps = float(desc["fps"])
    # The release keeps <Task>/video/ next to <Task>/meta_file_<Task>.txt.
    video_root = Path(frames_dir) if frames_dir is not None else annotations_dir
    for name in sorted(trials):
        trial = trials[name]
        record_id = f"{DATASET}/{name}"
        parsed = parse_trial(name)
        if parsed is None:
            result.problems.append(Problem(record_id, "unreadable", (
                f"trial name {name!r} is not <Task>_<surgeon letter><3 digits> with a task "
                f"of {desc['tasks']}")))
            continue
        assert trial.items is not None  # a _Trial is only made with its items
        task, surgeon, number = parsed
        for detail in trial.problems:
            result.problems.append(Problem(record_id, "label", detail))
        outside = [v for v in trial.items if not 1 <= v <= 5]
        if outside:
            result.problems.append(Problem(record_id, "label", (
                f"GRS items {trial.items} include {outside}; each item is scored 1 to 5")))
        attributes: dict[str, Any] = {"task": task, "surgeon": surgeon, "trial": number}
        if trial.skill is not None:
            attributes["skill_level"] = trial.skill
        path, frames = locate_clip(video_root, (
            layout.format(task=task, trial=name, view=desc["view"])
            for layout in desc["clip_layouts"]))
        result.records.append(Record(
            id=record_id,
            dataset=DATASET,
            domain=DOMAIN,
            split=folds.get(name),
            video=VideoRef(path=path, frames_dir=frames, fps=fps),
            action=Action(label=task, attributes=attributes),
            score=Score(
                final=trial.total if trial.total is not None else sum(trial.items),
                components=dict(zip(domain.components, trial.items)),
                range=domain.score_range,
            ),
        ))
    return result


ADAPTER = Adapter(
    name=DATASET,
    domain=DOMAIN,
    description="JIGSAWS: robot-assisted suturing, knot tying and needle passing trials; six "
                "GRS items (1-5) summed; 4-fold cross-validation per task.",
    files=("label.pkl", "label.json", "meta_file_<Task>.txt", "splits.pkl", "splits.json"),
    load=load,
)
