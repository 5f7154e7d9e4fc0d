"""FineFS (Ji et al., 2023): 1167 figure skating programs with per-element annotations.

One JSON file per program, ``annotation/<number>.json`` (0-728 short programs, 729-1166 free
skating): program totals (``total_segment_score``, ``total_element_score``,
``total_program_component_score(factored)``, ``program_component``, ``deductions``,
``factor``) and ``executed_element``: ``element1`` .. ``elementN``, each with ``element`` (e.g.
``'3F+1Eu+3S'``), ``coarse_class``, ``bv``, ``goe``, ``judge_score``, ``score_of_pannel`` and
``time`` ``"M-SS,M-SS"`` (start, end; whole seconds).

Each element becomes a step: label ``element``, frames ``seconds x 25`` (the videos are 25 fps;
an element's end frame is the first frame of its end second), score ``score_of_pannel``. Steps
hold only label, frames and score, so the element's other fields (``coarse_class``, ``bv``,
``goe``, ``judge_score``, ...) go to ``action.attributes["elements"]``, one entry per step in
the same order.

Splits: ``train.txt`` / ``test.txt`` of program numbers when present; otherwise, per program
type, the 80 % of numbers first in a SHA-256 order are train (583 + 350 = 933 train and
146 + 88 = 234 test over the full release, the counts of the FineFS paper).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hieroaction.data.adapters.base import Adapter, LoadResult, Problem, dataset_description, find_file, find_files
from hieroaction.data.adapters.generic import (
    as_float,
    as_int,
    locate_clip,
    set_observed_ranges,
    stable_order,
    text_lines,
)
from hieroaction.data.records import Action, Record, Score, Step, VideoRef
from hieroaction.domains import get_domain
from hieroaction.errors import DataError
from hieroaction.io import read_json_object

DATASET = "finefs"
DOMAIN = "figure_skating"
DESCRIPTION_FILE = "finefs_dataset.yaml"
_TIME = re.compile(r"^\s*(\d+)-(\d{1,2})\s*,\s*(\d+)-(\d{1,2})\s*$")
_ELEMENT_KEY = re.compile(r"^element(\d+)$")


@dataclass(frozen=True)
class FineFSOptions:
    """Settings of the FineFS reader (the facts about the dataset are in its YAML file)."""

    test_fraction: float = 0.2  # used only without train.txt / test.txt
    split_salt: str = "finefs"  # changes the deterministic split when changed


def _description() -> dict[str, Any]:
    return dataset_description(DESCRIPTION_FILE)


def parse_time(text: Any) -> tuple[int, int] | None:
    """``"2-05,2-12"`` -> ``(125, 132)`` seconds; ``None`` when it is not ``M-SS,M-SS``."""
    if not isinstance(text, str):
        return None
    match = _TIME.match(text)
    if match is None:
        return None
    m1, s1, m2, s2 = (int(g) for g in match.groups())
    if s1 >= 60 or s2 >= 60:
        return None
    return m1 * 60 + s1, m2 * 60 + s2


def program_type(number: int) -> str | None:
    """``short_program`` / ``free_skating`` from the file number, ``None`` outside the ranges."""
    for name, spec in _description()["programs"].items():
        if int(spec["first"]) <= number <= int(spec["last"]):
            return str(name)
    return None


def default_splits(numbers: Sequence[int], options: FineFSOptions) -> dict[int, str]:
    """The deterministic split without split files (see the module docstring).

    Each program type is ordered over its full number range from the YAML, so a program's
    split does not depend on which other files are present.
    """
    out: dict[int, str] = {}
    groups: dict[str, list[str]] = {
        name: [str(n) for n in range(int(spec["first"]), int(spec["last"]) + 1)]
        for name, spec in _description()["programs"].items()
    }
    present = {str(n) for n in numbers}
    groups["other"] = sorted(present - {n for g in groups.values() for n in g})
    for name, members in groups.items():
        ordered = stable_order(members, f"{options.split_salt}:{name}")
        n_train = math.floor(len(ordered) * (1.0 - options.test_fraction))
        for rank, key in enumerate(ordered):
            if key in present:
                out[int(key)] = "train" if rank < n_train else "test"
    return out


def _split_files(root: Path, result: LoadResult) -> dict[int, str] | None:
    names = _description()["split_files"]
    paths = {split: find_file(root, name, required=False) for split, name in names.items()}
    if all(p is None for p in paths.values()):
        return None
    out: dict[int, str] = {}
    for split, path in paths.items():
        if path is None:
            continue
        for line_no, line, cells in text_lines(path):
            number = as_int(Path(cells[0].split(",")[0]).stem)
            if number is None:
                result.problems.append(Problem(f"{path.name}:{line_no}", "unreadable", (
                    f"{path}: line {line_no} is {line.strip()!r}; expected a program number")))
                continue
            if number in out and out[number] != split:
                result.problems.append(Problem(f"{DATASET}/{number}", "label", (
                    f"{path.name} lists program {number}, already in the {out[number]} split; "
                    f"{out[number]} is kept")))
                continue
            out.setdefault(number, split)
    return out


def _first(data: dict[str, Any], keys: Sequence[str]) -> Any:
    return next((data[k] for k in keys if k in data), None)


def _deductions(value: Any) -> float | None:
    # Protocols print deductions as negative numbers; the formula subtracts a positive one.
    if isinstance(value, dict):
        parts = [as_float(v) for v in value.values()]
        if any(p is None for p in parts):
            return None
        return sum(abs(p) for p in parts)  # type: ignore[arg-type]
    number = as_float(value)
    return None if number is None else abs(number)


def _steps(data: dict[str, Any], fps: float, fields: Sequence[str], where: str,
           tolerance: float, problems: list[str],
           label_problems: list[str]) -> tuple[list[Step], list[dict[str, Any]]]:
    """Steps and per-element extras of ``executed_element``; ``problems`` get what is wrong."""
    elements = data.get("executed_element")
    if not isinstance(elements, dict):
        raise ValueError(f"'executed_element' is {type(elements).__name__}; expected a dict of "
                         "element1 .. elementN")
    keyed = []
    for key, element in elements.items():
        match = _ELEMENT_KEY.match(str(key))
        keyed.append((int(match.group(1)) if match else math.inf, str(key), element))
    steps: list[Step] = []
    extras: list[dict[str, Any]] = []
    for _, key, element in sorted(keyed, key=lambda t: (t[0], t[1])):
        if not isinstance(element, dict) or not isinstance(element.get("element"), str):
            problems.append(f"{where}: {key} has no 'element' name; the element is left out")
            continue
        span = parse_time(element.get("time"))
        if span is None or span[1] < span[0]:
            problems.append(f"{where}: {key} ({element['element']}) has time "
                            f"{element.get('time')!r}; expected 'M-SS,M-SS' with start <= end; "
                            "the element is left out")
            continue
        panel = as_float(element.get("score_of_pannel"))
        bv, goe = as_float(element.get("bv")), as_float(element.get("goe"))
        if panel is not None and bv is not None and goe is not None \
                and abs(panel - (bv + goe)) > tolerance:
            # The panel's element score is base value + GOE; a known typo stores 1639 for 16.39.
            label_problems.append(f"{where}: {key} ({element['element']}) has score_of_pannel "
                                  f"{panel:g} but bv + goe = {bv + goe:.2f}")
        steps.append(Step(label=element["element"], start_frame=round(span[0] * fps),
                          end_frame=round(span[1] * fps), score=panel))
        extras.append({f: element[f] for f in fields if f in element})
    return steps, extras


def _record(path: Path, number: int, data: dict[str, Any], split: str | None,
            video_root: Path, problems: list[str], label_problems: list[str]) -> Record:
    """One program's record; raises ValueError when its totals cannot be read."""
    desc = _description()
    keys = desc["keys"]
    total = as_float(_first(data, keys["total"]))
    tes = as_float(_first(data, keys["tes"]))
    pcs = as_float(_first(data, keys["pcs"]))
    if total is None or tes is None or pcs is None:
        raise ValueError(f"expected numbers under {keys['total'][0]!r}, {keys['tes'][0]!r} and "
                         f"{keys['pcs'][0]!r}")
    components = {"tes": tes, "pcs": pcs}
    deductions = _deductions(_first(data, keys["deductions"]))
    if deductions is not None:
        components["deductions"] = deductions
    fps = float(desc["fps"])
    steps, elements = _steps(data, fps, desc["element_fields"], path.name,
                             get_domain(DOMAIN).score_tolerance, problems, label_problems)
    kind = program_type(number)
    attributes: dict[str, Any] = {"number": number, "elements": elements}
    if kind is not None:
        attributes["program"] = kind
    for key in ("competition", "factor", "program_component"):
        if key in data:
            attributes[key] = data[key]
    video_path, frames = locate_clip(video_root, (
        layout.format(number=number) for layout in desc["clip_layouts"]))
    label = desc["programs"][kind]["label"] if kind is not None else None
    return Record(
        id=f"{DATASET}/{number}",
        dataset=DATASET,
        domain=DOMAIN,
        split=split,
        video=VideoRef(path=video_path, frames_dir=frames, start_frame=0, fps=fps),
        action=Action(label=label, attributes=attributes),
        steps=steps,
        score=Score(final=total, components=components),
    )


def annotation_files(root: Path) -> dict[int, Path]:
    """Program number -> ``<number>.json`` under ``root``."""
    files: dict[int, Path] = {}
    for path in find_files(root, "*.json"):
        number = as_int(path.stem) if path.stem.isdigit() else None
        if number is not None:
            files.setdefault(number, path)
    if not files:
        raise DataError(f"{root}: no FineFS annotation files; expected <number>.json files "
                        "(annotation/0.json ...) in this folder or below it")
    return files


def load(annotations_dir: Path, frames_dir: Path | None = None,
         options: FineFSOptions | None = None) -> LoadResult:
    """Read every FineFS program annotation under ``annotations_dir``.

    Clips are looked up under ``frames_dir`` (default: the folder holding ``annotation/``)
    as ``video/<number>.mp4`` and the other layouts of ``finefs_dataset.yaml``.
    """
    options = options or FineFSOptions()
    annotations_dir = Path(annotations_dir)
    result = LoadResult()
    files = annotation_files(annotations_dir)
    splits = _split_files(annotations_dir, result)
    if splits is None:
        splits = default_splits(sorted(files), options)
    else:
        for number in sorted(set(splits) - set(files)):
            result.problems.append(Problem(f"{DATASET}/{number}", "missing", (
                f"the {splits[number]} split lists program {number} but there is no "
                f"{number}.json")))
    first = files[min(files)]
    default_root = first.parent.parent if first.parent.name == "annotation" else first.parent
    video_root = Path(frames_dir) if frames_dir is not None else default_root
    for number, path in sorted(files.items()):
        record_id = f"{DATASET}/{number}"
        try:
            data = read_json_object(path, error=DataError)
            problems: list[str] = []
            label_problems: list[str] = []
            record = _record(path, number, data, splits.get(number), video_root, problems,
                             label_problems)
        except DataError as exc:  # already names the file
            result.problems.append(Problem(record_id, "unreadable", str(exc)))
            continue
        except (OSError, ValueError) as exc:
            result.problems.append(Problem(record_id, "unreadable", f"{path}: {exc}"))
            continue
        result.problems.extend(Problem(record_id, "steps", p) for p in problems)
        result.problems.extend(Problem(record_id, "label", p) for p in label_problems)
        result.records.append(record)
    # Score ranges per program type: short and free programs score on different scales.
    set_observed_ranges(result.records, lambda r: r.action.attributes.get("program"),
                        get_domain(DOMAIN).score_range)
    return result


ADAPTER = Adapter(
    name=DATASET,
    domain=DOMAIN,
    description="FineFS: 1167 short and free figure skating programs; elements as steps with "
                "panel scores; total = TES + PCS - deductions.",
    files=("<number>.json", "train.txt", "test.txt"),
    load=load,
)
