"""A user's own data: unified records as JSONL, or a CSV with documented columns.

``hieroaction data convert generic --annotations DIR`` reads every ``*.jsonl`` and ``*.csv``
file under ``DIR`` (or the one file ``DIR`` names). See ``docs/data-formats.md`` for the format:

* JSONL: one unified record per line, as small as ``{"id": "c1", "video": "clip.mp4",
  "score": 7.5}``;
* CSV: a header row naming columns from :data:`CSV_COLUMNS`, plus ``component:NAME`` and
  ``attribute:NAME`` columns.

Relative video paths resolve against the folder of the file that names them, so a folder of
clips and its annotation file can be moved together.

This module also holds small helpers the other dataset adapters share (locating a clip under
a root folder, stable hash orders for deterministic splits, observed score ranges, the
dataset description files in ``domains/data/datasets``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any


from hieroaction.data.adapters.base import Adapter, LoadResult, Problem
from hieroaction.data.records import BadLine, Record, iter_jsonl
from hieroaction.errors import DataError

# Plain columns of the generic CSV format, in the order the documentation lists them.
CSV_COLUMNS: tuple[str, ...] = (
    "id", "video", "score", "start_frame", "end_frame", "fps", "label", "split", "domain",
    "dataset", "commentary", "judges", "score_min", "score_max",
)
COMPONENT_PREFIX = "component:"
ATTRIBUTE_PREFIX = "attribute:"


# --------------------------------------------------------------------------- shared helpers


def locate_clip(root: Path | None, candidates: Iterable[str]) -> tuple[str | None, str | None]:
    """``(video_path, frames_dir)`` of the first candidate that exists under ``root``.

    ``candidates`` are paths relative to ``root``; a file is a video, a folder a frame folder.
    Returns ``(None, None)`` when ``root`` is ``None`` or nothing exists. Only the candidates
    are probed (no recursive search), so this stays fast on frame trees of millions of files.
    The path returned is absolute (:func:`absolute_path`).
    """
    if root is None:
        return None, None
    for candidate in candidates:
        path = Path(root) / candidate
        if path.is_file():
            return absolute_path(path), None
        if path.is_dir():
            return None, absolute_path(path)
    return None, None


def existing_folder(path: Path) -> str | None:
    """``path`` as an absolute path when it is a folder, else ``None`` (a clip whose frames are
    not there gets no ``frames_dir``)."""
    return absolute_path(path) if path.is_dir() else None


def absolute_path(path: str | Path) -> str:
    """``path`` absolute and normalised, as converted records store it: a records file then
    works whichever folder a command runs from, and wherever the file is written."""
    return os.path.abspath(Path(path).expanduser())


def stable_order(keys: Iterable[str], salt: str) -> list[str]:
    """``keys`` in a pseudo-random order that depends only on each key and ``salt``.

    A SHA-256 order, unlike a seeded RNG, never changes across library versions and does not
    depend on which other keys are present, so deterministic splits stay reproducible.
    """
    return sorted(keys, key=lambda k: hashlib.sha256(f"{salt}:{k}".encode()).hexdigest())


def observed_range(values: Iterable[float]) -> tuple[float, float] | None:
    """``(min, max)`` of the finite ``values``, or ``None`` when they do not span a range."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite or min(finite) >= max(finite):
        return None
    return (min(finite), max(finite))


def text_lines(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line number, line, whitespace-separated cells)`` of the non-blank lines of ``path``."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable text file ({exc})") from None
    return [(number, line, line.split()) for number, line in enumerate(lines, 1) if line.strip()]


def set_observed_ranges(records: Sequence[Record], group: Callable[[Record], Any],
                        fallback: tuple[float, float] | None) -> None:
    """Set each record's ``score.range`` to the observed final scores of its ``group``.

    A group whose scores do not span a range (one record, all equal) gets ``fallback``.
    """
    groups: dict[Any, list[Record]] = {}
    for record in records:
        groups.setdefault(group(record), []).append(record)
    for members in groups.values():
        score_range = observed_range(r.score.final for r in members) or fallback
        for record in members:
            record.score.range = score_range


def as_float(value: Any) -> float | None:
    """``value`` as a finite float (numpy scalars and numeric strings included), else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def as_int(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (``3``, ``3.0``, ``'3'``), else ``None``."""
    number = as_float(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


# --------------------------------------------------------------------------- generic format


def _resolve(path: str | None, base: Path) -> str | None:
    # Relative paths in a user's file mean "next to this file", not "next to the shell".
    if path is None or path == "" or os.path.isabs(path):
        return path or None
    return absolute_path(base / path)


def _with_resolved_paths(record: Record, base: Path) -> Record:
    video = record.video
    path, frames_dir = _resolve(video.path, base), _resolve(video.frames_dir, base)
    if path == video.path and frames_dir == video.frames_dir:
        return record
    return record.model_copy(update={"video": video.model_copy(
        update={"path": path, "frames_dir": frames_dir})})


def _split_video(value: str, base: Path) -> dict[str, str]:
    """The ``video`` column as a VideoRef mapping: a folder is a frame folder.

    A path that does not exist (yet) is a frame folder when it has no file suffix.
    """
    resolved = _resolve(value, base)
    assert resolved is not None
    target = Path(resolved)
    if target.is_dir() or (not target.exists() and target.suffix == ""):
        return {"frames_dir": resolved}
    return {"path": resolved}


def _cell_number(value: str, column: str, integer: bool = False) -> float | int:
    number = as_int(value) if integer else as_float(value)
    if number is None:
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"column {column!r}: expected {kind}, got {value!r}")
    return number


_PLAIN_NUMBER = re.compile(r"[+-]?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")


def _cell_scalar(value: str) -> Any:
    # Attributes keep their numeric type when they are written as plain numbers (reps = 10),
    # but codes such as "007", "1e" or "inf" stay text.
    if not _PLAIN_NUMBER.fullmatch(value):
        return value
    return int(value) if value.lstrip("+-").isdigit() else float(value)


def _csv_row_to_mapping(row: dict[str, str], base: Path) -> dict[str, Any]:
    """One CSV row (header -> cell text) as a unified-record mapping; ValueError if bad."""
    cells = {k: (v or "").strip() for k, v in row.items()}
    out: dict[str, Any] = {"id": cells.get("id", "")}
    video: dict[str, Any] = {}
    score: dict[str, Any] = {}
    action: dict[str, Any] = {}
    components: dict[str, float] = {}
    attributes: dict[str, Any] = {}
    for column, value in cells.items():
        if value == "" or column == "id":
            continue
        if column == "video":
            video.update(_split_video(value, base))
        elif column in ("start_frame", "end_frame"):
            video[column] = _cell_number(value, column, integer=True)
        elif column == "fps":
            video["fps"] = _cell_number(value, column)
        elif column == "score":
            score["final"] = _cell_number(value, column)
        elif column == "judges":
            score["judges"] = [_cell_number(v, column) for v in value.replace(",", ";").split(";")
                               if v.strip()]
        elif column == "label":
            action["label"] = value
        elif column in ("split", "domain", "dataset", "commentary"):
            out[column] = value
        elif column.startswith(COMPONENT_PREFIX):
            components[column[len(COMPONENT_PREFIX):]] = _cell_number(value, column)
        elif column.startswith(ATTRIBUTE_PREFIX):
            attributes[column[len(ATTRIBUTE_PREFIX):]] = _cell_scalar(value)
    low, high = cells.get("score_min", ""), cells.get("score_max", "")
    if low or high:
        if not (low and high):
            raise ValueError("columns 'score_min' and 'score_max' must be given together")
        score["range"] = [_cell_number(low, "score_min"), _cell_number(high, "score_max")]
    if components:
        score["components"] = components
    if attributes:
        action["attributes"] = attributes
    if video:
        out["video"] = video
    if score:
        out["score"] = score
    if action:
        out["action"] = action
    return out


def _check_header(path: Path, header: Sequence[str] | None) -> list[str]:
    if not header:
        raise DataError(f"{path}: empty CSV file; expected a header row starting with 'id'")
    names = [h.strip() for h in header]
    if "id" not in names:
        raise DataError(f"{path}: the CSV header has no 'id' column; expected columns "
                        f"{list(CSV_COLUMNS)} plus component:NAME and attribute:NAME")
    for name in names:
        prefixed = name.startswith((COMPONENT_PREFIX, ATTRIBUTE_PREFIX))
        if not (name in CSV_COLUMNS or (prefixed and name.split(":", 1)[1])):
            raise DataError(f"{path}: unknown CSV column {name!r}; expected columns "
                            f"{list(CSV_COLUMNS)} plus component:NAME and attribute:NAME")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DataError(f"{path}: the CSV header repeats column {duplicated[0]!r}")
    return names


def _read_csv(path: Path, result: LoadResult) -> list[tuple[Record, str]]:
    """Records of one generic CSV file, each with where it came from."""
    out: list[tuple[Record, str]] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: spreadsheets add a BOM
            reader = csv.reader(fh)
            header = _check_header(path, next(reader, None))
            for row in reader:
                where = f"{path.name}:{reader.line_num}"
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    result.problems.append(Problem(where, "unreadable", (
                        f"{path}: line {reader.line_num} has {len(row)} cells; "
                        f"the header has {len(header)}")))
                    continue
                try:
                    mapping = _csv_row_to_mapping(dict(zip(header, row)), path.parent)
                    record = Record.from_json(json.dumps(mapping))
                except (ValueError, DataError) as exc:
                    result.problems.append(Problem(
                        where, "unreadable", f"{path}: line {reader.line_num}: {exc}"))
                    continue
                out.append((record, where))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    return out


def _read_jsonl(path: Path, result: LoadResult) -> list[tuple[Record, str]]:
    bad: list[BadLine] = []
    out: list[tuple[Record, str]] = []
    try:
        for record in iter_jsonl(path, bad):
            out.append((_with_resolved_paths(record, path.parent), path.name))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    for line in bad:
        result.problems.append(Problem(f"{path.name}:{line.line}", "unreadable", str(line)))
    return out


def annotation_files(annotations: Path) -> list[Path]:
    """The ``*.jsonl`` and ``*.csv`` files the generic adapter reads from ``annotations``."""
    annotations = Path(annotations)
    if annotations.is_file():
        if annotations.suffix.lower() not in (".jsonl", ".csv"):
            raise DataError(f"{annotations}: expected a .jsonl or .csv annotation file")
        return [annotations]
    if not annotations.is_dir():
        raise DataError(f"{annotations}: no such annotations folder or file")
    files = sorted(
        p for p in annotations.rglob("*")
        if p.is_file() and p.suffix.lower() in (".jsonl", ".csv")
        and not any(part.startswith(".") for part in p.relative_to(annotations).parts)
    )
    if not files:
        raise DataError(f"{annotations}: no .jsonl or .csv annotation files in this folder "
                        "or below it")
    return files


def load(annotations_dir: Path, frames_dir: Path | None = None) -> LoadResult:
    """Read a user's own records: every JSONL and CSV file under ``annotations_dir``.

    ``frames_dir`` is not used: the files name their videos (relative to the file's folder).
    A record id seen before is reported (``unreadable``) and the later copy skipped.
    """
    result = LoadResult()
    first_seen: dict[str, str] = {}
    for path in annotation_files(Path(annotations_dir)):
        reader = _read_csv if path.suffix.lower() == ".csv" else _read_jsonl
        for record, where in reader(path, result):
            if record.id in first_seen:
                result.problems.append(Problem(record.id, "unreadable", (
                    f"{where}: id {record.id!r} is already used in {first_seen[record.id]}; "
                    "this copy is skipped")))
                continue
            first_seen[record.id] = where
            result.records.append(record)
    return result


ADAPTER = Adapter(
    name="generic",
    domain="generic",
    description="A user's own clips: unified records as JSONL, or a CSV with documented columns "
                "(docs/data-formats.md).",
    files=("*.jsonl", "*.csv"),
    load=load,
)
