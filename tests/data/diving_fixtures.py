"""Small FineDiving and MTL-AQA annotation folders in the datasets' exact file formats.

``write_finediving(folder)`` and ``write_mtlaqa(folder)`` write the original file names with the
original containers and key types (tuple keys, numpy int64 arrays and keys, numpy float64 judge
scores next to plain lists, 3/5/7 stored judges) and a case of every quirk the adapters must
handle. Each returns what it wrote, with the key of every case, so tests can check the records
field by field.

Pickles come in three styles: ``"protocol4"`` (what Python 3 with numpy 2 writes by default),
``"protocol5"`` (numpy's out-of-frame array layout) and ``"python2"`` (written opcode by opcode
as Python 2 with numpy 1.x wrote them: byte strings, ``numpy.core`` globals), the age of
MTL-AQA's files. This module imports nothing from the tests package, so it can also be loaded
by path.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

STYLES = ("protocol4", "protocol5", "python2")


# --------------------------------------------------------------------------------------------
# A Python 2 / numpy 1.x pickle writer (protocol 2), for the types annotation files hold.


def _py2_str(data: bytes) -> bytes:
    # Python 2 `str` (a byte string): SHORT_BINSTRING / BINSTRING.
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<i", len(data)) + data


def _py2_tuple(items: list[bytes]) -> bytes:
    if not items:
        return b")"
    if len(items) <= 3:
        return b"".join(items) + b"\x85\x86\x87"[len(items) - 1 : len(items)]
    return b"(" + b"".join(items) + b"t"


def _py2_dtype(dtype: np.dtype) -> bytes:
    # numpy 1.x: dtype(('i8', 0, 1)) then __setstate__((3, '<', None, None, None, -1, -1, 0)).
    state = _py2_tuple([_py2(3), _py2_str(dtype.str[0].encode()), b"N", b"N", b"N",
                        _py2(-1), _py2(-1), _py2(0)])
    return (b"cnumpy\ndtype\n" + _py2_tuple([_py2_str(dtype.str[1:].encode()), _py2(0), _py2(1)])
            + b"R" + state + b"b")


def _py2(obj: Any) -> bytes:
    if obj is None:
        return b"N"
    if isinstance(obj, (bool, np.bool_)):
        return b"\x88" if obj else b"\x89"
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        state = _py2_tuple([_py2(1), _py2(tuple(arr.shape)), _py2_dtype(arr.dtype), b"\x89",
                            _py2_str(arr.tobytes())])
        return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _py2((0,))
                + _py2_str(b"b") + b"\x87R" + state + b"b")
    if isinstance(obj, np.generic):
        return (b"cnumpy.core.multiarray\nscalar\n"
                + _py2_tuple([_py2_dtype(obj.dtype), _py2_str(obj.tobytes())]) + b"R")
    if isinstance(obj, int):
        if -(2**31) <= obj < 2**31:
            return b"J" + struct.pack("<i", obj)
        data = pickle.encode_long(obj)
        return b"\x8a" + bytes([len(data)]) + data
    if isinstance(obj, float):
        return b"G" + struct.pack(">d", obj)
    if isinstance(obj, str):
        return _py2_str(obj.encode("latin1"))
    if isinstance(obj, bytes):
        return _py2_str(obj)
    if isinstance(obj, tuple):
        return _py2_tuple([_py2(x) for x in obj])
    if isinstance(obj, list):
        return b"]" + (b"(" + b"".join(_py2(x) for x in obj) + b"e" if obj else b"")
    if isinstance(obj, dict):
        items = b"".join(_py2(k) + _py2(v) for k, v in obj.items())
        return b"}" + (b"(" + items + b"u" if obj else b"")
    raise TypeError(f"the Python 2 fixture writer does not handle {type(obj).__name__}")


def py2_pickle_bytes(obj: Any) -> bytes:
    """``obj`` pickled as Python 2 with numpy 1.x would have written it (protocol 2)."""
    return b"\x80\x02" + _py2(obj) + b"."


def dump(obj: Any, path: Path, style: str = "protocol4") -> Path:
    """Pickle ``obj`` to ``path`` in one of :data:`STYLES`."""
    if style not in STYLES:
        raise ValueError(f"unknown pickle style {style!r}; expected one of {STYLES}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if style == "python2":
        path.write_bytes(py2_pickle_bytes(obj))
    else:
        path.write_bytes(pickle.dumps(obj, protocol=4 if style == "protocol4" else 5))
    return path


# --------------------------------------------------------------------------------------------
# FineDiving


# Sub-action table: the ids DATASETS.md names keep their real ids; the rest are made up.
FINEDIVING_TABLE = {
    1: "Forward", 2: "Back", 3: "Reverse", 4: "Inward", 15: "2.5 Soms.Pike",
    19: "3.5 Soms.Tuck", 22: "4.5 Soms.Tuck", 24: "2 Soms.Pike", 31: "1.5 Twists",
    36: "Entry", 38: "Background",
}


@dataclass
class FineDivingFixture:
    """What :func:`write_finediving` wrote. ``cases`` maps a case name to its key."""

    root: Path
    files: dict[str, Path]
    coarse: dict[tuple[str, int], Any]
    fine: dict[tuple[str, int], Any]
    table: dict[int, str]
    splits: dict[str, list[tuple[str, int]]]
    cases: dict[str, tuple[str, int]]
    # run-derived steps each readable record should get: key -> [(label, start, end), ...]
    steps: dict[tuple[str, int], list[tuple[str, int, int]]] = field(default_factory=dict)

    def split_of(self, key: tuple[str, int]) -> str | None:
        return next((s for s, keys in self.splits.items() if key in keys), None)


def _labels(steps: list[tuple[int, int]]) -> np.ndarray:
    """frames_labels from (sub-action id, number of frames) pairs."""
    return np.concatenate([np.full(n, i, dtype=np.int64) for i, n in steps])


def _transits(steps: list[tuple[int, int]]) -> np.ndarray:
    ends = np.cumsum([n for _, n in steps]) - 1
    return ends[:-1].astype(np.int64)


def write_finediving(
    folder: Path, style: str = "protocol4", fine_grained: str = "full"
) -> FineDivingFixture:
    """Write a FineDiving annotation folder (``Annotations/`` and ``train_test_split/``).

    ``fine_grained``: ``"full"`` writes ``FineDiving_fine-grained_annotation.pkl`` (dicts with
    their own ``sub-action_types``); ``"aqa"`` writes only ``fine-grained_annotation_aqa.pkl``
    (5-item lists named through ``Sub_action_Types_Table.pkl``).
    """
    folder = Path(folder)
    men3m, sync = "FINADivingWorldCup2021_Men3m_final_r1", "FINADivingWorldCup2021_Women3m_synchro_final_r2"
    men10m = "FINADivingWorldCup2021_Men10m_final_r3"
    cases = {
        "three_judges": (men3m, 8),       # 5253b, judges a plain list
        "numpy_judges": (men3m, 9),       # 407c, judges a numpy float64 array
        "five_judges": (sync, 3),         # synchronised: 5 counted of 11
        "seven_judges": ("01", 12),       # MTL-AQA source video: all 7 judges
        "negative_transit": (men10m, 2),  # transit list with a -1
        "unsorted_transit": (men10m, 4),
        "transit_past_end": (men10m, 5),
        "transit_disagrees": (men10m, 6),
        "flicker": (men10m, 7),           # one-frame label blips
        "recurring": (men10m, 10),        # a label recurring after another
        "background": (men10m, 11),       # Background frames around the dive
        "bad_score": (men3m, 20),         # dive_score disagrees with DD x judges
        "short_labels": (men3m, 21),      # frames_labels shorter than the window
        "bad_label": (men3m, 22),         # action_type that is not a dive number
        "no_split": (men3m, 23),          # in no split file
        "no_fine": (men3m, 24),           # no fine-grained annotation
        "fine_disagrees": (men3m, 25),    # fine-grained dive_score differs from coarse
        "unreadable": (men3m, 26),        # judge_scores is not a list of numbers
        "missing": (men3m, 99),           # split key without any annotation
    }
    B, TW, P25, IN, T35, FW, T45, ENTRY, BG, P2, RV = 2, 31, 15, 4, 19, 1, 22, 36, 38, 24, 3
    # case -> (action_type, difficulty, judges, dive_score or None for the rule, start, steps)
    specs: dict[str, tuple] = {
        "three_judges": ("5253b", 3.2, [7.0, 7.5, 7.0], None, 1000, [(B, 12), (TW, 30), (P25, 40), (ENTRY, 18)]),
        "numpy_judges": ("407c", 3.2, np.array([8.0, 8.5, 8.0]), None, 2000, [(IN, 15), (T35, 60), (ENTRY, 25)]),
        "five_judges": ("405b", 3.0, [7.0, 7.5, 7.0, 7.5, 7.0], None, 300, [(IN, 10), (P25, 50), (ENTRY, 20)]),
        "seven_judges": ("307c", 3.5, np.array([8.5, 9.0, 8.0, 8.5, 9.5, 7.5, 8.0]), None, 41000,
                         [(RV, 14), (T35, 58), (ENTRY, 28)]),
        "negative_transit": ("109c", 3.7, [6.0, 6.5, 6.0], None, 500, [(FW, 20), (T45, 60), (ENTRY, 20)]),
        "unsorted_transit": ("107b", 3.1, [7.0, 7.0, 7.0], None, 600, [(FW, 20), (T35, 50), (ENTRY, 30)]),
        "transit_past_end": ("107b", 3.1, [7.0, 7.0, 7.5], None, 700, [(FW, 20), (T35, 50), (ENTRY, 30)]),
        "transit_disagrees": ("207c", 3.0, [7.0, 7.0, 7.5], None, 800, [(B, 20), (T35, 50), (ENTRY, 30)]),
        "flicker": ("207c", 3.0, [7.5, 7.0, 7.5], None, 900, [(B, 20), (T35, 50), (ENTRY, 30)]),
        "recurring": ("207c", 3.0, [6.5, 7.0, 7.5], None, 1100, [(B, 20), (T35, 30), (B, 10), (T35, 10), (ENTRY, 30)]),
        "background": ("405b", 3.0, [8.0, 8.0, 8.0], None, 1200, [(BG, 5), (IN, 15), (P25, 50), (ENTRY, 25), (BG, 5)]),
        "bad_score": ("205b", 3.0, [7.0, 7.0, 7.0], 60.0, 1300, [(B, 15), (P25, 55), (ENTRY, 30)]),
        "short_labels": ("205b", 3.0, [7.0, 7.5, 7.0], None, 1400, [(B, 15), (P25, 55), (ENTRY, 30)]),
        "bad_label": ("999z", 2.0, [5.0, 5.0, 5.0], None, 1500, [(B, 15), (P2, 55), (ENTRY, 30)]),
        "no_split": ("205b", 3.0, [6.0, 6.0, 6.5], None, 1600, [(B, 15), (P25, 55), (ENTRY, 30)]),
        "no_fine": ("205b", 3.0, [6.0, 6.5, 6.5], None, 1700, [(B, 15), (P25, 55), (ENTRY, 30)]),
        "fine_disagrees": ("205b", 3.0, [6.5, 6.5, 6.5], None, 1800, [(B, 15), (P25, 55), (ENTRY, 30)]),
        "unreadable": ("205b", 3.0, "n/a", 58.5, 1900, [(B, 15), (P25, 55), (ENTRY, 30)]),
    }
    coarse: dict[tuple[str, int], Any] = {}
    fine: dict[tuple[str, int], Any] = {}
    expected_steps: dict[tuple[str, int], list[tuple[str, int, int]]] = {}
    for case, (action_type, dd, judges, score, start, steps) in specs.items():
        key = cases[case]
        n = sum(k for _, k in steps)
        if score is None:
            js = sorted(float(j) for j in judges)
            if len(js) == 7:
                score = dd * sum(js[2:5])
            else:
                score = dd * sum(js) * (0.6 if len(js) == 5 else 1.0)
            score = round(score, 2)
        coarse[key] = {
            "action_type": action_type, "start_frame": start, "end_frame": start + n - 1,
            "dive_score": score, "difficulty": dd, "judge_scores": judges,
        }
        labels, transits = _labels(steps), _transits(steps)
        dive_steps = [(i, k) for i, k in steps if i != BG]
        ends = np.cumsum([k for _, k in steps]) - 1
        expected_steps[key] = [
            (FINEDIVING_TABLE[i], int(e - k + 1), int(e)) for (i, k), e in zip(steps, ends) if i != BG
        ]
        if case == "background":
            transits = _transits(dive_steps) + 5  # transit positions in the labelled clip
        elif case == "negative_transit":
            transits = np.array([-1, 79], dtype=np.int64)
        elif case == "unsorted_transit":
            transits = np.array([69, 19], dtype=np.int64)
        elif case == "transit_past_end":
            transits = np.array([19, 500], dtype=np.int64)
        elif case == "transit_disagrees":
            transits = np.array([24, 69], dtype=np.int64)
        elif case == "flicker":
            labels[5] = T35        # a one-frame blip inside "Back"
            labels[20] = B         # first frame of the somersaults still labelled "Back"
            # the blip is merged back into Back; the first step now ends at frame 20
            expected_steps[key] = [("Back", 0, 20), ("3.5 Soms.Tuck", 21, 69), ("Entry", 70, 99)]
            transits = np.array([20, 69], dtype=np.int64)
        elif case == "short_labels":
            labels = labels[:-5]   # the last 5 frames unlabelled
            transits = np.array([14, 69], dtype=np.int64)
            expected_steps[key] = [("Back", 0, 14), ("2.5 Soms.Pike", 15, 69), ("Entry", 70, 94)]
        if case == "unreadable":
            expected_steps.pop(key)
        if case == "no_fine":
            expected_steps[key] = []
            continue
        names = {np.int64(i): FINEDIVING_TABLE[i] for i in sorted({i for i, _ in steps})}
        fine_score = score + 1.0 if case == "fine_disagrees" else score
        fine[key] = {
            "action_type": action_type, "dive_score": fine_score, "difficulty": dd,
            "steps_transit_frames": transits, "frames_labels": labels, "sub-action_types": names,
        }

    splits = {
        "train": [cases[c] for c in ("three_judges", "five_judges", "negative_transit", "unsorted_transit",
                                     "flicker", "background", "bad_score", "short_labels", "no_fine",
                                     "unreadable")],
        "test": [cases[c] for c in ("numpy_judges", "seven_judges", "transit_past_end", "transit_disagrees",
                                    "recurring", "bad_label", "fine_disagrees", "missing")],
    }
    ann, split_dir = folder / "Annotations", folder / "train_test_split"
    files = {
        "coarse": dump(coarse, ann / "FineDiving_coarse_annotation.pkl", style),
        "table": dump(dict(FINEDIVING_TABLE), ann / "Sub_action_Types_Table.pkl", style),
        "train": dump(splits["train"], split_dir / "train_split.pkl", style),
        "test": dump(splits["test"], split_dir / "test_split.pkl", style),
    }
    if fine_grained == "full":
        files["fine"] = dump(fine, ann / "FineDiving_fine-grained_annotation.pkl", style)
    elif fine_grained == "aqa":
        aqa = {k: [v["action_type"], v["dive_score"], v["difficulty"], v["steps_transit_frames"],
                   v["frames_labels"]] for k, v in fine.items()}
        files["fine_aqa"] = dump(aqa, ann / "fine-grained_annotation_aqa.pkl", style)
    else:
        raise ValueError(f"fine_grained must be 'full' or 'aqa', got {fine_grained!r}")
    return FineDivingFixture(folder, files, coarse, fine, dict(FINEDIVING_TABLE), splits, cases,
                             expected_steps)


# --------------------------------------------------------------------------------------------
# MTL-AQA


@dataclass
class MtlAqaFixture:
    """What :func:`write_mtlaqa` wrote. ``cases`` maps a case name to its key."""

    root: Path
    files: dict[str, Path]
    annotations: dict[tuple[int, int], Any]
    derived: dict[tuple[int, int], Any]
    captions: dict[tuple[Any, int], list[str]]
    splits: dict[str, list[tuple[int, int]]]
    cases: dict[str, tuple[int, int]]
    labels: dict[tuple[int, int], str | None]  # expected action label per readable record

    def split_of(self, key: tuple[int, int]) -> str | None:
        return next((s for s, keys in self.splits.items() if key in keys), None)


def _caption(text: str) -> list[str]:
    return ["<sos>", *text.split(), "<eos>"]


def write_mtlaqa(
    folder: Path,
    style: str = "python2",
    derived_name: str | None = "augmented_final_annotations_dict.pkl",
    official: bool = True,
) -> MtlAqaFixture:
    """Write an MTL-AQA folder (``Ready_2_Use/MTL-AQA_split_0_data/`` and ``info/``).

    ``derived_name``: the file name of the derived copy with ``judge_scores`` and
    ``dive_number`` (``None`` writes none); ``official=False`` leaves out
    ``final_annotations_dict.pkl``, as in the folders of the CoRe/TPT family of repositories.
    """
    folder = Path(folder)
    cases = {
        "forward": (1, 1),          # 107B from the codes, with caption
        "twisting": (1, 2),         # 5253B
        "armstand": (2, 1),         # 626C
        "number_disagrees": (2, 3), # derived dive_number differs from the codes
        "no_caption": (3, 1),
        "bad_score": (3, 2),        # final score disagrees with DD x middle 3 judges
        "no_split": (4, 1),
        "official_only": (4, 2),    # not in the derived copy: no judges, label from the codes
        "bad_code": (5, 1),         # rotation_type 9: no dive number can be composed
        "unreadable": (5, 2),       # final_score is not a number
        "missing": (9, 1),          # split key without annotation
    }
    # case -> (rotation_type, ss_no, tw_no, position, armstand, dd, judges, derived dive_number)
    specs = {
        "forward": (1, 7, 0, 1, 0, 3.1, [8.0, 8.5, 8.5, 9.0, 8.0, 8.5, 9.0], "107B"),
        "twisting": (0, 5, 3, 1, 0, 3.2, [7.0, 7.5, 7.0, 6.5, 7.0, 7.5, 8.0], "5253B"),
        "armstand": (0, 6, 0, 2, 1, 3.3, [9.0, 9.0, 9.5, 8.5, 9.0, 9.0, 9.5], "626C"),
        "number_disagrees": (2, 7, 0, 2, 0, 3.2, [6.0, 6.5, 6.0, 6.0, 6.5, 5.5, 6.0], "407B"),
        "no_caption": (3, 5, 0, 2, 0, 3.0, [7.5, 7.5, 7.0, 8.0, 7.5, 7.0, 7.5], "305C"),
        "bad_score": (1, 5, 0, 1, 0, 3.1, [5.0, 5.5, 5.0, 6.0, 5.5, 5.0, 5.5], "105B"),
        "no_split": (2, 5, 0, 2, 0, 2.8, [8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0], "405C"),
        "official_only": (1, 9, 0, 2, 0, 3.7, None, None),
        "bad_code": (9, 5, 0, 2, 0, 2.8, None, None),
        "unreadable": (1, 5, 0, 1, 0, 3.1, [6.0] * 7, "105B"),
    }
    annotations: dict[tuple[int, int], Any] = {}
    derived: dict[tuple[int, int], Any] = {}
    labels: dict[tuple[int, int], str | None] = {}
    frame = 1000
    for case, (rot, ss, tw, pos, arm, dd, judges, number) in specs.items():
        key = cases[case]
        js = sorted(judges) if judges else [6.0] * 7
        final = round(dd * sum(js[2:5]), 2)
        if case == "bad_score":
            final += 3.0
        ann = {
            "primary_view": 0, "start_frame": frame, "end_frame": frame + 95, "position": pos,
            "armstand": arm, "rotation_type": rot, "ss_no": ss, "tw_no": tw, "difficulty": dd,
            "final_score": "n/a" if case == "unreadable" else final,
        }
        frame += 400
        annotations[key] = ann
        if judges is not None:
            derived[key] = {**ann, "judge_scores": np.array(judges, dtype=np.float64), "dive_number": number}
        if case != "unreadable":
            labels[key] = {"official_only": "109C", "bad_code": None}.get(case, number)

    captions = {
        (np.int64(k[0]), k[1]): _caption(text)
        for k, text in {
            cases["forward"]: "a lovely forward three and a half pike , very clean entry",
            cases["twisting"]: "back two and a half with one and a half twists",
            cases["armstand"]: "armstand back triple tuck , held the handstand well",
            cases["number_disagrees"]: "inward three and a half",
            cases["bad_score"]: "a big splash on that one",
            cases["no_split"]: "inward two and a half tuck",
            cases["official_only"]: "forward four and a half tuck",
            cases["bad_code"]: "not sure what that was",
            (7, 7): "a caption whose dive has no annotation",
        }.items()
    }
    splits = {
        "train": [cases[c] for c in ("forward", "twisting", "number_disagrees", "bad_score", "bad_code",
                                     "unreadable")],
        "test": [cases[c] for c in ("armstand", "no_caption", "official_only", "missing")],
    }
    data, info = folder / "Ready_2_Use" / "MTL-AQA_split_0_data", folder / "info"
    files = {
        "captions": dump(captions, data / "final_captions_dict.pkl", style),
        "train": dump(splits["train"], data / "train_split_0.pkl", style),
        "test": dump(splits["test"], data / "test_split_0.pkl", style),
    }
    (data / "vocab.json").write_text('{"ix_to_word": {}, "word_to_ix": {}}', encoding="utf-8")
    if official:
        files["annotations"] = dump(annotations, data / "final_annotations_dict.pkl", style)
    if derived_name is not None:
        # The derived copies were written by Python 3 repositories.
        files["derived"] = dump(derived, info / derived_name, "protocol4")
    return MtlAqaFixture(folder, files, annotations, derived, captions, splits, cases, labels)


__all__ = ["FINEDIVING_TABLE", "STYLES", "FineDivingFixture", "MtlAqaFixture", "dump",
           "py2_pickle_bytes", "write_finediving", "write_mtlaqa"]


def write_finediving_bulk(folder: Path, n_records: int = 3000, seed: int = 0) -> int:
    """A FineDiving folder with ``n_records`` clean dives of realistic size, for timing.

    Dives have 3 to 5 steps and 63 to 273 frames, like the real dataset; two thirds are in
    the train split. Returns the number of records written.
    """
    rng = np.random.default_rng(seed)
    templates = [
        ("5253b", 3.2, [2, 31, 15, 36]), ("407c", 3.2, [4, 19, 36]), ("205b", 3.0, [2, 15, 36]),
        ("109c", 3.7, [1, 22, 36]), ("405b", 3.0, [4, 15, 36]), ("5253b", 3.2, [2, 31, 15, 36, 38]),
    ]
    coarse, fine, keys = {}, {}, []
    for index in range(n_records):
        action_type, dd, ids = templates[index % len(templates)]
        n = int(rng.integers(63, 274))
        sizes = 5 + rng.multinomial(n - 5 * len(ids), np.full(len(ids), 1 / len(ids)))
        steps = list(zip(ids, sizes.tolist()))
        judges = rng.choice(np.arange(5.0, 10.5, 0.5), size=3)
        key = (f"FINADivingWorldCup2021_bulk_{index // 25:03d}", index % 25)
        keys.append(key)
        coarse[key] = {"action_type": action_type, "start_frame": 10 * index, "end_frame": 10 * index + n - 1,
                       "dive_score": round(dd * float(judges.sum()), 2), "difficulty": dd,
                       "judge_scores": judges}
        fine[key] = {"action_type": action_type, "dive_score": coarse[key]["dive_score"], "difficulty": dd,
                     "steps_transit_frames": _transits(steps), "frames_labels": _labels(steps),
                     "sub-action_types": {np.int64(i): FINEDIVING_TABLE[i] for i in ids}}
    cut = 2 * n_records // 3
    ann = Path(folder) / "Annotations"
    dump(coarse, ann / "FineDiving_coarse_annotation.pkl")
    dump(fine, ann / "FineDiving_fine-grained_annotation.pkl")
    dump(dict(FINEDIVING_TABLE), ann / "Sub_action_Types_Table.pkl")
    dump(keys[:cut], ann / "train_split.pkl")
    dump(keys[cut:], ann / "test_split.pkl")
    return n_records
