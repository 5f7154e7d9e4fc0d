"""Fis-V (Xu et al., 2019): 500 ladies' singles short programs with TES, PCS and deductions.

Files, as released with MS_LSTM:

* ``fs_dataset.csv``: ``number,total,tes,pcs,ded,<skater>,<year>,<event>``; the released copy
  has the header ``number,total,tes,pcs,ded,,,``, other copies have none (both are read);
* ``train_dataset.txt`` / ``test_dataset.txt`` (400 / 100 lines; copies are named
  ``train.txt`` / ``test.txt``): ``id tes pcs ded`` per line.

The CSV is the source of the scores; the split files say which program is in which split, and
their own tes / pcs / ded are cross-checked against the CSV (``label`` problems).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from hieroaction.data.adapters.base import Adapter, LoadResult, Problem, find_file, find_files
from hieroaction.data.adapters.generic import (
    as_float,
    as_int,
    locate_clip,
    observed_range,
    text_lines,
)
from hieroaction.data.records import Action, Record, Score, VideoRef
from hieroaction.domains import get_domain
from hieroaction.errors import DataError

DATASET = "fis-v"
DOMAIN = "figure_skating"
ACTION_LABEL = "short program"  # every Fis-V clip is a ladies' singles short program
CSV_NAME = "fs_dataset.csv"
CSV_HEADER = ("number", "total", "tes", "pcs", "ded")
SPLIT_FILES = {"train": ("train_dataset.txt", "train.txt"),
               "test": ("test_dataset.txt", "test.txt")}
# Where a program's clip may be, relative to the video root, tried in this order.
CLIP_LAYOUTS = ("{number}.mp4", "videos/{number}.mp4", "video/{number}.mp4", "{number}.avi",
                "{number}")


@dataclass
class _Program:
    number: int
    line: int
    total: float
    tes: float
    pcs: float
    ded: float
    skater: str | None
    year: int | None
    event: str | None


def scores_file(root: Path) -> Path:
    """``fs_dataset.csv`` under ``root``, or the only CSV file there."""
    path = find_file(root, CSV_NAME, required=False)
    if path is not None:
        return path
    candidates = find_files(root, "*.csv")
    if len(candidates) == 1:
        return candidates[0]
    raise DataError(f"{root}: no Fis-V score file; expected {CSV_NAME!r} (rows "
                    f"{','.join(CSV_HEADER)},skater,year,event) in this folder or below it")


def _read_csv(path: Path, result: LoadResult) -> dict[int, _Program]:
    programs: dict[int, _Program] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(enumerate(csv.reader(fh), 1))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if line == 1 and as_int(row[0]) is None:
            continue  # the header row of the released copy
        if as_int(row[0]) is not None and not any(cell.strip() for cell in row[1:]):
            continue  # the released copy pads its end with empty rows "501,,,,,,,"
        where = f"{path.name}:{line}"
        number = as_int(row[0]) if row else None
        numbers = [as_float(c) for c in row[1:5]]
        if number is None or len(row) < 5 or any(n is None for n in numbers):
            result.problems.append(Problem(where, "unreadable", (
                f"{path}: line {line} is {','.join(row)!r}; expected a program number, then "
                "total, tes, pcs and ded as numbers")))
            continue
        if number in programs:
            result.problems.append(Problem(f"{DATASET}/{number}", "unreadable", (
                f"{path}: line {line} repeats program {number} of line "
                f"{programs[number].line}; the first is kept")))
            continue
        extra = [c.strip() or None for c in row[5:8]] + [None] * (8 - max(len(row), 5))
        total, tes, pcs, ded = numbers
        programs[number] = _Program(number, line, total, tes, pcs, ded,  # type: ignore[arg-type]
                                    extra[0], as_int(extra[1]) if extra[1] else None, extra[2])
    return programs


def _read_splits(root: Path, programs: dict[int, _Program], tolerance: float,
                 result: LoadResult) -> dict[int, str]:
    """program number -> split, from whichever split files are present."""
    splits: dict[int, str] = {}
    for split, names in SPLIT_FILES.items():
        path = next((p for n in names if (p := find_file(root, n, required=False))), None)
        if path is None:
            continue
        for line_no, line, cells in text_lines(path):
            number = as_int(cells[0])
            values = [as_float(c) for c in cells[1:4]]
            if number is None or any(v is None for v in values):
                result.problems.append(Problem(f"{path.name}:{line_no}", "unreadable", (
                    f"{path}: line {line_no} is {line.strip()!r}; expected 'id tes pcs ded'")))
                continue
            record_id = f"{DATASET}/{number}"
            if number not in programs:
                result.problems.append(Problem(record_id, "missing", (
                    f"{path.name} lists program {number} but the score file has no row for it")))
                continue
            if number in splits:
                result.problems.append(Problem(record_id, "label", (
                    f"{path.name} lists program {number}, already in {splits[number]}; "
                    f"{splits[number]} is kept")))
                continue
            splits[number] = split
            program = programs[number]
            for name, value in zip(("tes", "pcs", "ded"), values):
                stored = getattr(program, name)
                if abs(value - stored) > tolerance:  # type: ignore[operator]
                    result.problems.append(Problem(record_id, "label", (
                        f"{path.name} gives {name} {value:g} but the score file gives "
                        f"{stored:g}")))
    return splits


def load(annotations_dir: Path, frames_dir: Path | None = None) -> LoadResult:
    """Read Fis-V's score CSV and its train / test lists into records.

    Clips are looked up under ``frames_dir`` (default ``annotations_dir``) as
    ``<number>.mp4``, ``videos/<number>.mp4``, ... (see :data:`CLIP_LAYOUTS`).
    """
    annotations_dir = Path(annotations_dir)
    domain = get_domain(DOMAIN)
    result = LoadResult()
    programs = _read_csv(scores_file(annotations_dir), result)
    splits = _read_splits(annotations_dir, programs, domain.score_tolerance, result)
    score_range = observed_range(p.total for p in programs.values()) or domain.score_range
    video_root = Path(frames_dir) if frames_dir is not None else annotations_dir
    for number in sorted(programs):
        p = programs[number]
        attributes = {k: v for k, v in (("skater", p.skater), ("year", p.year),
                                         ("event", p.event)) if v is not None}
        path, frames = locate_clip(video_root, (c.format(number=number) for c in CLIP_LAYOUTS))
        result.records.append(Record(
            id=f"{DATASET}/{number}",
            dataset=DATASET,
            domain=DOMAIN,
            split=splits.get(number),
            video=VideoRef(path=path, frames_dir=frames),
            action=Action(label=ACTION_LABEL, attributes=attributes),
            score=Score(final=p.total, components={"tes": p.tes, "pcs": p.pcs, "deductions": p.ded},
                        range=score_range),
        ))
    return result


ADAPTER = Adapter(
    name=DATASET,
    domain=DOMAIN,
    description="Fis-V: 500 ladies' singles short programs; total = TES + PCS - deductions.",
    files=(CSV_NAME, "train_dataset.txt", "test_dataset.txt", "train.txt", "test.txt"),
    load=load,
)
