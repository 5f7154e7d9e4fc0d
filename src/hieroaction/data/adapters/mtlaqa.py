"""MTL-AQA (CVPR 2019): 1412 dives with difficulty, final score, dive attributes and commentary.

Reads the original files (found anywhere under the annotations folder):

* ``final_annotations_dict.pkl``: ``(video, dive_idx) -> {primary_view, start_frame, end_frame,
  position, armstand, rotation_type, ss_no, tw_no, difficulty, final_score}``;
* the widely used derived copy of it, which adds ``judge_scores`` (an array of the 7 judges)
  and ``dive_number`` (e.g. ``'407C'``). It circulates under several names; the first of
  :data:`DERIVED_FILES` found is used: ``final_annotations_dict_with_dive_number.pkl`` (CoRe,
  TPT and their successors; some READMEs list it without the extension) and
  ``augmented_final_annotations_dict.pkl`` (USDL/MUSDL and their successors). Either file
  alone is enough; with both, the derived copy contributes judges and dive numbers;
* ``final_captions_dict.pkl`` (optional): ``(numpy int64 video, int idx) -> tokens from
  '<sos>' to '<eos>'``, the broadcast commentary;
* ``train_split_0.pkl`` and ``test_split_0.pkl``: lists of keys.

The dive number comes from ``dive_number`` when present, else it is composed from the integer
codes (meanings in ``domains/data/datasets/mtl_aqa.yaml``); both are cross-checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hieroaction.data.adapters.base import Adapter, LoadResult, Problem, dataset_description, find_file
from hieroaction.data.adapters.generic import existing_folder
from hieroaction.data.records import Action, Record, Score, VideoRef
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
from hieroaction.domains.diving import dive_number_from_parts, judge_rule, parse_dive_number
from hieroaction.errors import DataError

DATASET = "mtl-aqa"
DOMAIN = "diving"
OFFICIAL = "final_annotations_dict.pkl"
DERIVED_FILES = (
    "final_annotations_dict_with_dive_number.pkl",
    "final_annotations_dict_with_dive_number",
    "augmented_final_annotations_dict.pkl",
)
CAPTIONS = "final_captions_dict.pkl"
SPLITS = {"train": "train_split_0.pkl", "test": "test_split_0.pkl"}

_KEYS = "a dict of (video, dive_idx) -> annotation"
# The integer codes, in the order they are reported in action.attributes["codes"].
_CODE_FIELDS = ("rotation_type", "ss_no", "tw_no", "position", "armstand")


def dataset_facts() -> dict[str, Any]:
    """The parsed ``domains/data/datasets/mtl_aqa.yaml``."""
    return dataset_description("mtl_aqa.yaml")


def record_id(video: int, dive: int) -> str:
    """The unified record id of an MTL-AQA key."""
    return f"{DATASET}/{video}/{dive}"


_KEY_PARTS = (("video", to_int), ("dive_idx", to_int))


def _key(raw: Any) -> tuple[int, int]:
    return to_key(raw, _KEY_PARTS)


def _raw_id(raw: Any) -> str:
    try:
        return record_id(*_key(raw))
    except ValueError:
        return f"{DATASET}/{raw!r}"


def compose_dive_number(codes: dict[str, int]) -> str | None:
    """The FINA dive number the MTL-AQA codes describe, or ``None`` for an unknown code."""
    facts = dataset_facts()
    group = facts["rotation_type"].get(codes["rotation_type"])
    position = facts["position"].get(codes["position"])
    armstand = facts["armstand"].get(codes["armstand"])
    if group is None or position is None or armstand is None:
        return None
    return dive_number_from_parts(group, codes["ss_no"], codes["tw_no"], position, armstand)


def commentary_text(tokens: Any) -> str | None:
    """The commentary of a caption token list, without its special tokens."""
    if isinstance(tokens, str):
        tokens = tokens.split()
    if isinstance(tokens, np.ndarray):
        tokens = tokens.tolist()
    if not isinstance(tokens, (list, tuple)):
        raise ValueError(f"caption must be a list of tokens, got {type(tokens).__name__}")
    special = set(dataset_facts()["caption_special_tokens"])
    words = [to_str(t, "caption token") for t in tokens]
    text = " ".join(w for w in words if w not in special).strip()
    return text or None


def _action(
    rid: str, ann: dict[str, Any], extra: dict[str, Any]
) -> tuple[Action, list[Problem]]:
    problems = []
    codes = {name: to_int(ann[name], name) for name in _CODE_FIELDS}
    composed = compose_dive_number(codes)
    given = extra.get("dive_number", ann.get("dive_number"))
    label = to_str(given, "dive_number").strip().upper() if given is not None else composed
    if given is None and composed is None:
        problems.append(Problem(rid, "label", f"the codes {codes} do not name a FINA dive"))
    elif given is not None and composed is not None and composed != label:
        problems.append(Problem(
            rid, "label", f"dive_number {label!r} but the codes {codes} give {composed!r}"
        ))
    dive = parse_dive_number(label) if label else None
    if label and dive is None:
        problems.append(Problem(rid, "label", f"dive number {label!r} is not a FINA dive number"))
    attributes = {**(dive.attributes() if dive else {}), "codes": codes}
    return Action(label=label, attributes=attributes), problems


def _score(ann: dict[str, Any], extra: dict[str, Any]) -> Score:
    dd = to_float(ann["difficulty"], "difficulty")
    final = to_float(ann["final_score"], "final_score")
    raw_judges = extra.get("judge_scores", ann.get("judge_scores"))
    judges = to_float_list(raw_judges, "judge_scores") if raw_judges is not None else []
    components = {"difficulty": dd}
    rule = judge_rule(len(judges)) if judges else None
    if rule is not None:
        components["execution"] = rule.execution(judges)
    return Score(final=final, components=components, judges=judges,
                 range=get_domain(DOMAIN).score_range)


def _record(
    key: tuple[int, int],
    ann: Any,
    extra: Any,
    caption: Any,
    split: str | None,
    frames_root: Path | None,
) -> tuple[Record, list[Problem]]:
    """The record of one annotation (``extra``: the derived copy's entry) and its problems."""
    rid = record_id(*key)
    for value in (ann, extra):
        if not isinstance(value, dict):
            raise ValueError(f"annotation must be a dict, got {type(value).__name__}")
    start = to_int(ann["start_frame"], "start_frame")
    end = to_int(ann["end_frame"], "end_frame")
    if end < start:
        raise ValueError(f"end_frame {end} is before start_frame {start}")
    score = _score(ann, extra)
    action, problems = _action(rid, ann, extra)
    commentary = None
    if caption is not None:
        try:
            commentary = commentary_text(caption)
        except ValueError as exc:
            # The commentary is an extra: a bad caption must not cost the scored record.
            problems.append(Problem(rid, "label", f"{CAPTIONS}: {exc}; commentary left empty"))
    facts = dataset_facts()
    frames_dir = None
    if frames_root is not None:
        frames_dir = existing_folder(Path(frames_root) / facts["video_dir_template"].format(key[0]))
    record = Record(
        id=rid,
        dataset=DATASET,
        domain=DOMAIN,
        split=split,
        video=VideoRef(
            frames_dir=frames_dir,
            frame_template=facts["frame_template"],
            start_frame=start,
            end_frame=end,
            fps=None,  # not stored in the annotations
        ),
        action=action,
        score=score,
        commentary=commentary,
    )
    return record, problems


def _keyed(
    mapping: dict[Any, Any], filename: str, problems: list[Problem]
) -> dict[tuple[int, int], Any]:
    """``mapping`` with its keys as (int, int); unreadable keys are reported and left out."""
    out = {}
    for raw, value in mapping.items():
        try:
            out[_key(raw)] = value
        except ValueError as exc:
            problems.append(Problem(_raw_id(raw), "unreadable", f"{filename}: {exc}"))
    return out


def load(annotations_dir: Path, frames_dir: Path | None = None) -> LoadResult:
    """Read MTL-AQA's original files under ``annotations_dir`` into unified records."""
    root = Path(annotations_dir)
    result = LoadResult()
    problems = result.problems

    official_path = find_file(root, OFFICIAL, required=False)
    derived_path = next(
        (p for p in (find_file(root, n, required=False) for n in DERIVED_FILES) if p), None
    )
    if official_path is None and derived_path is None:
        raise DataError(
            f"{root}: no file named {OFFICIAL!r} (or its derived copy, one of "
            f"{list(DERIVED_FILES)}) in this folder or below it"
        )
    official = derived = {}
    if official_path is not None:
        official = _keyed(load_pickled(official_path, dict, _KEYS), official_path.name, problems)
    if derived_path is not None:
        derived = _keyed(load_pickled(derived_path, dict, _KEYS), derived_path.name, problems)
    captions: dict[tuple[int, int], Any] = {}
    captions_path = find_file(root, CAPTIONS, required=False)
    if captions_path is not None:
        captions = _keyed(
            load_pickled(captions_path, dict, "a dict of (video, dive_idx) -> caption tokens"),
            CAPTIONS, problems,
        )

    split_of: dict[tuple[int, int], str] = {}
    for split, filename in SPLITS.items():
        keys = load_pickled(
            find_file(root, filename), (list, tuple), "a list of (video, dive_idx) keys"
        )
        for raw in keys:
            try:
                split_of.setdefault(_key(raw), split)
            except ValueError as exc:
                problems.append(Problem(_raw_id(raw), "unreadable", f"{filename}: {exc}"))

    source = (official_path or derived_path).name
    # Official records first, in file order, then any found only in the derived copy.
    keys = list(official) + [k for k in derived if k not in official]
    for key in keys:
        ann = official.get(key, derived.get(key))
        try:
            record, record_problems = _record(
                key, ann, derived.get(key, {}), captions.get(key), split_of.get(key), frames_dir
            )
        except (KeyError, TypeError, ValueError) as exc:
            where = source if key in official else derived_path.name
            problems.append(Problem(record_id(*key), "unreadable", f"{where}: {entry_error(exc)}"))
            continue
        result.records.append(record)
        problems.extend(record_problems)

    known = set(keys)
    for key, split in split_of.items():
        if key not in known:
            detail = f"in {SPLITS[split]} but not in {source}"
            problems.append(Problem(record_id(*key), "missing", detail))
    # Caption keys without an annotation are a known quirk of the release: nothing to report.
    return result


ADAPTER = Adapter(
    name=DATASET,
    domain=DOMAIN,
    description=(
        "MTL-AQA (CVPR 2019): 1412 dives with difficulty, score, dive attributes and commentary"
    ),
    files=(OFFICIAL, *SPLITS.values(), CAPTIONS, *DERIVED_FILES),
    load=load,
)

__all__ = ["ADAPTER", "DERIVED_FILES", "commentary_text", "compose_dive_number", "dataset_facts",
           "load", "record_id"]
