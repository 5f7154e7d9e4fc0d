"""AQA-7 (Parmar & Morris, WACV 2019): six sports, the split-4 train and test lists.

Files: ``split_4_train_list.mat`` and ``split_4_test_list.mat`` (copies are named
``consolidated_train_list.mat`` / ``consolidated_test_list.mat``), each holding one N x 3 float
array (variable ``consolidated_train_list`` / ``consolidated_test_list``) of rows
``[class_id, sample_id (1-based), score]``. Class ids, names and domains are data in
``domains/data/datasets/aqa7_classes.yaml``.

Some copies store the score x 100. Per file and per class, when the largest score exceeds the
class's ``max_score`` (the most its sport's rules allow) the class's scores in that file are
divided by 100: real scores sit far below those bounds and x 100 scores far above them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from hieroaction.data.adapters.base import Adapter, LoadResult, Problem, dataset_description, find_file
from hieroaction.data.adapters.generic import (
    as_float,
    as_int,
    locate_clip,
    observed_range,
)
from hieroaction.data.records import Action, Record, Score, VideoRef
from hieroaction.errors import DataError

DATASET = "aqa-7"
DESCRIPTION_FILE = "aqa7_classes.yaml"
SCALE_FACTOR = 100.0  # the factor of the copies that store scores x 100 (see the module doc)


@dataclass(frozen=True)
class AqaClass:
    """One AQA-7 sport class."""

    id: int
    name: str
    domain: str
    max_score: float
    score_range: tuple[float, float]


def classes() -> dict[int, AqaClass]:
    """The six AQA-7 classes by id, from ``aqa7_classes.yaml``."""
    data = dataset_description(DESCRIPTION_FILE)["classes"]
    return {
        int(cid): AqaClass(int(cid), str(c["name"]), str(c["domain"]), float(c["max_score"]),
                           (float(c["score_range"][0]), float(c["score_range"][1])))
        for cid, c in data.items()
    }


@dataclass
class _Row:
    split: str
    source: str  # "<file>:row <n>", for problems
    class_id: int
    sample: int
    score: float


def split_file(root: Path, split: str) -> Path:
    """The ``.mat`` list of ``split`` under ``root`` (either of its two names)."""
    names: Sequence[str] = dataset_description(DESCRIPTION_FILE)["split_files"][split]
    for name in names:
        path = find_file(root, name, required=False)
        if path is not None:
            return path
    raise DataError(f"{root}: no AQA-7 {split} list; expected a file named "
                    f"{' or '.join(repr(n) for n in names)} in this folder or below it")


def read_mat_list(path: Path, split: str) -> np.ndarray:
    """The N x 3 array of a split-4 ``.mat`` file; raises :class:`DataError` if there is none."""
    try:
        contents: dict[str, Any] = scipy.io.loadmat(str(path))
    except NotImplementedError:
        # scipy reads MATLAB v4-v7.2 files; v7.3 files are HDF5 containers.
        raise DataError(f"{path}: a MATLAB v7.3 (HDF5) file; save it with MATLAB's -v7 "
                        "option, the format of the AQA-7 release") from None
    except Exception as exc:  # noqa: BLE001 - scipy raises many types for a foreign file
        raise DataError(f"{path}: not a readable MATLAB .mat file ({exc})") from None
    preferred = dataset_description(DESCRIPTION_FILE)["mat_variables"][split]
    if preferred in contents:
        name = preferred
    else:
        arrays = [k for k, v in contents.items() if not k.startswith("__")
                  and isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[1] == 3]
        if len(arrays) != 1:
            raise DataError(f"{path}: expected one N x 3 array named {preferred!r}; found "
                            f"variables {sorted(k for k in contents if not k.startswith('__'))}")
        name = arrays[0]
    array = contents[name]
    if not (isinstance(array, np.ndarray) and array.ndim == 2 and array.shape[1] == 3
            and np.issubdtype(array.dtype, np.number)):
        shape = getattr(array, "shape", None)
        raise DataError(f"{path}: variable {name!r} has shape {shape}; expected an N x 3 "
                        "numeric array of rows [class_id, sample_id, score]")
    return array


def _show(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return repr(value)


def _rows(path: Path, split: str, known: dict[int, AqaClass], result: LoadResult) -> list[_Row]:
    rows: list[_Row] = []
    for index, (raw_class, raw_sample, raw_score) in enumerate(read_mat_list(path, split), 1):
        source = f"{path.name}:row {index}"
        class_id, sample, score = as_int(raw_class), as_int(raw_sample), as_float(raw_score)
        if class_id not in known:
            result.problems.append(Problem(source, "unreadable", (
                f"{path}: row {index} has class id {_show(raw_class)}; "
                f"expected one of {sorted(known)}")))
        elif sample is None or sample < 1:
            result.problems.append(Problem(source, "unreadable", (
                f"{path}: row {index} has sample id {_show(raw_sample)}; "
                "expected a whole number >= 1")))
        elif score is None:
            result.problems.append(Problem(source, "unreadable", (
                f"{path}: row {index} has score {_show(raw_score)}; expected a finite number")))
        else:
            rows.append(_Row(split, source, class_id, sample, score))
    # Undo the x 100 copies, deciding per class of this file.
    for class_id, info in known.items():
        of_class = [r for r in rows if r.class_id == class_id]
        if of_class and max(r.score for r in of_class) > info.max_score:
            for r in of_class:
                r.score = round(r.score / SCALE_FACTOR, 6)
    return rows


def dataset_root(mat_path: Path) -> Path:
    """The AQA-7 root a split file belongs to (the parent of its ``Split_4`` folder)."""
    folder = mat_path.parent
    return folder.parent if folder.name.lower() == "split_4" else folder


def load(annotations_dir: Path, frames_dir: Path | None = None) -> LoadResult:
    """Read AQA-7's split-4 train and test lists into records.

    Videos are looked up under ``frames_dir`` (default: the AQA-7 root holding ``Split_4``) in
    the layouts of ``aqa7_classes.yaml``; ``video`` stays empty when no clip is there.
    """
    annotations_dir = Path(annotations_dir)
    known = classes()
    result = LoadResult()
    paths = {split: split_file(annotations_dir, split) for split in ("train", "test")}
    rows = [r for split, path in paths.items() for r in _rows(path, split, known, result)]

    ranges = {
        cid: observed_range(r.score for r in rows if r.class_id == cid) or info.score_range
        for cid, info in known.items()
    }
    layouts = dataset_description(DESCRIPTION_FILE)["clip_layouts"]
    video_root = Path(frames_dir) if frames_dir is not None else dataset_root(paths["train"])
    seen: dict[tuple[int, int], _Row] = {}
    for row in rows:
        info = known[row.class_id]
        record_id = f"{DATASET}/{info.name}/{row.sample:03d}"
        first = seen.get((row.class_id, row.sample))
        if first is not None:
            result.problems.append(Problem(record_id, "unreadable", (
                f"{row.source} repeats {info.name} sample {row.sample} of {first.source} "
                f"(score {row.score:g} vs {first.score:g}); the first is kept")))
            continue
        seen[(row.class_id, row.sample)] = row
        path, frames = locate_clip(
            video_root, (layout.format(name=info.name, sample=row.sample) for layout in layouts))
        result.records.append(Record(
            id=record_id,
            dataset=DATASET,
            domain=info.domain,
            split=row.split,
            video=VideoRef(path=path, frames_dir=frames),
            action=Action(label=info.name,
                          attributes={"class_id": row.class_id, "sample": row.sample}),
            score=Score(final=row.score, range=ranges[row.class_id]),
        ))
    return result


ADAPTER = Adapter(
    name=DATASET,
    domain="generic",
    description="AQA-7: six sports (diving, gym vault, ski and snowboard big air, synchronised "
                "diving 3m and 10m), split 4; one score per clip.",
    files=("split_4_train_list.mat", "split_4_test_list.mat",
           "consolidated_train_list.mat", "consolidated_test_list.mat"),
    load=load,
)
