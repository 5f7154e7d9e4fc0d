"""Small fixtures in the exact formats of AQA-7, JIGSAWS, Fis-V, FineFS, LOGO and the generic
user format (DATASETS.md and docs/data-formats.md): the same containers, key types and quirks.

Each writer puts the files under a folder and returns it. The values are made up; only the
formats follow the real files.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import scipy.io


def by_id(result) -> dict:
    """The records of an adapter's LoadResult by id."""
    return {r.id: r for r in result.records}

# ----------------------------------------------------------------------------------- AQA-7

# [class_id, sample_id, score] rows, as floats like the released .mat files.
AQA7_TRAIN = [
    [1, 1, 84.15], [1, 2, 21.6], [1, 3, 102.6],
    [2, 1, 15.2], [2, 2, 12.3],
    [3, 1, 30.0], [3, 2, 48.0],
    [4, 1, 8.0], [4, 2, 50.0],
    [5, 1, 46.2], [5, 2, 104.88],
    [6, 1, 49.8], [6, 2, 99.36],
]
AQA7_TEST = [
    [1, 4, 70.5], [2, 3, 16.87], [3, 3, 25.5], [4, 3, 40.0], [5, 3, 80.1], [6, 3, 90.0],
]


def write_aqa7(root: Path, *, test_x100: bool = True, alt_names: bool = False,
               bad_rows: bool = True) -> Path:
    """AQA-7's Split_4 folder with both lists, the test list stored x 100 (like some copies).

    ``alt_names`` names the files ``consolidated_*.mat`` instead of ``split_4_*_list.mat``.
    ``bad_rows`` adds a row with an unknown class id and a repeated sample to the train list.
    Also creates one release-layout video and one CoRe-layout frame folder.
    """
    split_dir = root / "Split_4"
    split_dir.mkdir(parents=True, exist_ok=True)
    train = [list(r) for r in AQA7_TRAIN]
    if bad_rows:
        train += [[9, 1, 50.0], [1, 2, 30.0]]
    test = [[c, s, score * 100 if test_x100 else score] for c, s, score in AQA7_TEST]
    names = ("consolidated_train_list.mat", "consolidated_test_list.mat") if alt_names else (
        "split_4_train_list.mat", "split_4_test_list.mat")
    scipy.io.savemat(split_dir / names[0],
                     {"consolidated_train_list": np.array(train, dtype=float)})
    scipy.io.savemat(split_dir / names[1], {"consolidated_test_list": np.array(test, dtype=float)})
    (root / "Actions" / "diving").mkdir(parents=True, exist_ok=True)
    (root / "Actions" / "diving" / "001.avi").write_bytes(b"")
    (root / "gym_vault-out" / "002").mkdir(parents=True, exist_ok=True)
    return root


# ---------------------------------------------------------------------------------- JIGSAWS

JIGSAWS_LABELS = {
    "Suturing_B001": [2, 2, 2, 2, 2, 3],
    "Suturing_B002": np.array([3, 3, 2, 3, 3, 3], dtype=np.int64),
    "Suturing_C001": [4, 4, 4, 5, 4, 4],
    "Suturing_D001": [5, 5, 5, 5, 5, 5],
    "Suturing_E001": [1, 2, 1, 2, 1, 2],
    "Knot_Tying_B001": (3.0, 2.0, 3.0, 2.0, 3.0, 2.0),
    "Knot_Tying_C001": [4, 4, 3, 4, 4, 4],
    "Needle_Passing_B001": [2, 3, 2, 3, 2, 3],
    "Needle_Passing_D001": [5, 4, 5, 4, 5, 6],  # an item outside 1..5
    "Needle_Passing_E001": [3, 3, 3, 3, 3],  # five items only: unreadable
    "Juggling_B001": [3, 3, 3, 3, 3, 3],  # not a JIGSAWS task: unreadable
}
JIGSAWS_SPLITS = {
    "Suturing": [["Suturing_B001", "Suturing_E001"], ["Suturing_B002"], ["Suturing_C001"],
                 ["Suturing_D001"]],
    "Knot_Tying": [["Knot_Tying_B001"], ["Knot_Tying_C001"], [], ["Knot_Tying_F001"]],
    "Needle_Passing": [["Needle_Passing_B001"], ["Needle_Passing_D001"], [], []],
}


def write_jigsaws_pickles(root: Path, *, splits: bool = True) -> Path:
    """``label.pkl`` (trial -> 6 GRS items) and ``splits.pkl`` (task -> 4 folds), USDL-style."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "label.pkl").open("wb") as fh:
        pickle.dump(JIGSAWS_LABELS, fh)
    if splits:
        with (root / "splits.pkl").open("wb") as fh:
            pickle.dump(JIGSAWS_SPLITS, fh)
    return root


# The release's meta files: trial, self-reported skill, GRS total, six items (tab separated).
JIGSAWS_META = {
    "Suturing": [
        "Suturing_B001\t\tN\t13\t2\t2\t2\t2\t2\t3",
        "Suturing_B002\t\tN\t17\t3\t3\t2\t3\t3\t3",
        "Suturing_C001\t\tI\t25\t4\t4\t4\t5\t4\t4",
        "Suturing_D001\t\tE\t31\t5\t5\t5\t5\t5\t5",  # total typo: the items sum to 30
    ],
    "Knot_Tying": ["Knot_Tying_B001\t\tN\t15\t3\t2\t3\t2\t3\t2",
                   "Knot_Tying_C001\t\tI\tnot-a-number"],
}


def write_jigsaws_release(root: Path) -> Path:
    """The JIGSAWS release layout: ``<Task>/meta_file_<Task>.txt`` and ``<Task>/video/``."""
    for task, lines in JIGSAWS_META.items():
        folder = root / task
        (folder / "video").mkdir(parents=True, exist_ok=True)
        (folder / f"meta_file_{task}.txt").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    (root / "Suturing" / "video" / "Suturing_B001_capture1.avi").write_bytes(b"")
    return root


# ------------------------------------------------------------------------------------ Fis-V

FISV_ROWS = [
    "1,57.07,28.71,29.36,1,Kaetlyn OSMOND,2015,NHK",
    "2,54.96,28.88,27.08,1,Mariko KIHARA,2015,NHK",
    "3,60.78,32.21,28.57,0,Zijun LI,2015,NHK",
    "4,58.16,36.53,31.63,0,Gracie GOLD,2014,NHK",  # total disagrees with tes + pcs - ded
    "5,61.1,32.2,28.9,0,Mirai NAGASU,2015,NHK",
    "6,abc,32.2,28.9,0,Broken ROW,2015,NHK",  # unreadable
    "7,,,,,,,",  # the released file pads its end with empty rows: not a program
    "8,,,,,,,",
]
FISV_TRAIN = ["1 28.71 29.36 1", "2 28.88 27.08 1", "4 36.53 31.63 0", "5 32.2 28.9 0"]
FISV_TEST = ["3 32.21 28.75 0", "9 30.0 30.0 0"]  # 3: pcs disagrees with the CSV; 9: no CSV row


def write_fisv(root: Path, *, header: bool = True, split_names: tuple[str, str] = (
        "train_dataset.txt", "test_dataset.txt")) -> Path:
    """``fs_dataset.csv`` (header ``number,total,tes,pcs,ded,,,`` or none) and the split lists."""
    root.mkdir(parents=True, exist_ok=True)
    lines = (["number,total,tes,pcs,ded,,,"] if header else []) + FISV_ROWS
    (root / "fs_dataset.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / split_names[0]).write_text("\n".join(FISV_TRAIN) + "\n", encoding="utf-8")
    (root / split_names[1]).write_text("\n".join(FISV_TEST) + "\n", encoding="utf-8")
    (root / "videos").mkdir(exist_ok=True)
    (root / "videos" / "1.mp4").write_bytes(b"")
    return root


# ----------------------------------------------------------------------------------- FineFS


def finefs_program(number: int, elements: list[tuple[str, str, str, float, float, float]],
                   tes: float, pcs: float, deductions: float, total: float) -> dict:
    """One FineFS annotation: totals, program components and executed elements.

    ``elements``: (element, coarse_class, time "M-SS,M-SS", bv, goe, score_of_pannel).
    """
    return {
        "competition": "WC2019_Men",
        "total_segment_score": total,
        "total_element_score": tes,
        "total_program_component_score(factored)": pcs,
        "program_component": {
            name: {"score_of_pannel": round(pcs / 5, 2), "factor": 1.0,
                   "judge_score": [8.0] * 9}
            for name in ("skating_skills", "transitions", "performance", "composition",
                         "interpretation")
        },
        "deductions": deductions,
        "factor": 1.0,
        "element_score": [e[5] for e in elements],
        "executed_element": {
            f"element{i}": {
                "element": name, "coarse_class": coarse, "time": time, "bv": bv, "goe": goe,
                "judge_score": [1, 2, 1, 2, 1, 1, 2, 1, 1], "score_of_pannel": panel,
                "info": [],
            }
            for i, (name, coarse, time, bv, goe, panel) in enumerate(elements, 1)
        },
    }


FINEFS_PROGRAMS = {
    0: finefs_program(0, [("3F+1Eu+3S", "jump", "0-22,0-25", 10.1, 1.2, 11.3),
                          ("FCSp4", "spin", "1-05,1-15", 3.2, 0.5, 3.7),
                          ("3Lz", "jump", "1-40,1-42", 5.9, 0.84, 674.0),  # panel-score typo
                          ("StSq3", "sequence", "2-01,2-30", 3.3, 0.6, 3.9)],
                      tes=25.64, pcs=35.0, deductions=1.0, total=59.64),
    1: finefs_program(1, [("4T", "jump", "0-30,0-33", 9.5, -1.0, 8.5),
                          ("CCoSp4", "spin", "0-20,0-31", 3.5, 0.4, 3.9)],  # out of order
                      tes=12.4, pcs=30.0, deductions=0.0, total=42.4),
    729: finefs_program(729, [("3A", "jump", "0-40,0-43", 8.0, 1.6, 9.6),
                              ("2A", "jump", "1-70,1-72", 3.3, 0.3, 3.6)],  # bad time
                        tes=9.6, pcs=70.0, deductions=2.0, total=77.6),
}


def write_finefs(root: Path, *, split_files: bool = False) -> Path:
    """``annotation/<number>.json`` files as released, plus one truncated file."""
    folder = root / "annotation"
    folder.mkdir(parents=True, exist_ok=True)
    for number, program in FINEFS_PROGRAMS.items():
        (folder / f"{number}.json").write_text(json.dumps(program, indent=1), encoding="utf-8")
    (folder / "730.json").write_text('{"total_segment_score": 80.5, "executed', encoding="utf-8")
    (root / "video").mkdir(exist_ok=True)
    (root / "video" / "0.mp4").write_bytes(b"")
    if split_files:
        (root / "train.txt").write_text("0\n729\n", encoding="utf-8")
        (root / "test.txt").write_text("1\n1100\n729\n", encoding="utf-8")  # 729: in both
    return root


# ------------------------------------------------------------------------------------- LOGO


def _frame_labels(runs: list[tuple[int, int]]) -> list[int]:
    return [label for label, length in runs for _ in range(length)]


LOGO_RUNS = {
    ("WorldChampionship2019_free_final", 0): [(12, 5), (8, 10), (6, 4), (9, 6), (12, 3)],
    ("WorldChampionship2019_free_final", 1): [(12, 4), (1, 8), (2, 8), (7, 5)],
    ("WorldChampionship2022_tech_final", 3): [(12, 3), (11, 6), (12, 4)],
}


def write_logo(root: Path) -> Path:
    """``anno_dict.pkl`` keyed by (competition, routine) tuples, and numbered split pickles.

    Routine 0: end frames as the run ends (inclusive); routine 1: numpy arrays, exclusive end
    frames; routine 3: a noisy end-frame list. One key has an unknown event (unreadable) and
    the test split lists a routine with no annotation.
    """
    folder = root / "LOGO Anno&Split"
    folder.mkdir(parents=True, exist_ok=True)
    anno: dict[tuple[str, int], list] = {}
    for key, runs in LOGO_RUNS.items():
        labels = _frame_labels(runs)
        ends = list(np.cumsum([n for _, n in runs]) - 1)
        event = "tech" if "tech" in key[0] else "free"
        anno[key] = [event, 88.25 + key[1], "/", [int(e) for e in ends], labels]
    k1 = ("WorldChampionship2019_free_final", 1)
    anno[k1][3] = np.array([e + 1 for e in anno[k1][3]], dtype=np.int64)
    anno[k1][4] = np.array(anno[k1][4], dtype=np.int64)
    k3 = ("WorldChampionship2022_tech_final", 3)
    anno[k3][3] = [2, 9, 12]  # the runs end at 2, 8, 12
    anno[("WorldChampionship2019_free_final", 7)] = ["duet", 80.0, "/", [1], [12, 12]]
    with (folder / "anno_dict.pkl").open("wb") as fh:
        pickle.dump(anno, fh)
    train = [("WorldChampionship2019_free_final", 0), ("WorldChampionship2019_free_final", 1)]
    test = [("WorldChampionship2022_tech_final", 3), ("WorldChampionship2022_tech_final", 9)]
    for name, keys in (("train_split3.pkl", train), ("test_split3.pkl", test)):
        with (folder / name).open("wb") as fh:
            pickle.dump(keys, fh)
    with (folder / "train_split4.pkl").open("wb") as fh:  # a later split: not the one used
        pickle.dump(test, fh)
    frames = root / "LOGO" / "WorldChampionship2019_free_final" / "0"
    frames.mkdir(parents=True, exist_ok=True)
    return root


# ---------------------------------------------------------------------------------- generic


def write_generic(root: Path) -> Path:
    """A clinic's folder: clips, a JSONL of records and a CSV, with one bad line in each."""
    clips = root / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    (clips / "squat_01.mp4").write_bytes(b"")
    (clips / "lunge_frames").mkdir(exist_ok=True)
    records = [
        {"id": "squat_01", "video": "clips/squat_01.mp4", "score": 7.5},
        {"id": "squat_02", "dataset": "clinic", "domain": "generic", "split": "test",
         "video": {"path": "/data/abs/squat_02.mp4", "start_frame": 10, "end_frame": 99,
                   "fps": 30.0},
         "action": {"label": "squat", "attributes": {"side": "left"}},
         "steps": [{"label": "descent", "start_frame": 0, "end_frame": 40},
                   {"label": "ascent", "start_frame": 41, "end_frame": 89, "score": 3.0}],
         "score": {"final": 6.0, "range": [0, 10]}, "commentary": "knees cave in"},
    ]
    lines = [json.dumps(r) for r in records] + ['{"id": "broken", "score": ']
    (root / "records.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    csv_lines = [
        "id,video,score,start_frame,end_frame,fps,label,split,domain,component:tes,"
        "component:pcs,component:deductions,attribute:reps,attribute:patient,attribute:load,"
        "judges,score_min,score_max",
        "lunge_01,clips/lunge_frames,70.5,0,120,25,lunge,train,figure_skating,40,31.5,1,10,007,"
        "12.5,7;8;7.5,0,100",
        "lunge_02,clips/lunge_02.mp4,,,,,lunge,train,,,,,,,,,,",
        "lunge_03,clips/lunge_03.mp4,high,,,,lunge,train,,,,,,,,,,",  # score is not a number
        "squat_01,clips/other.mp4,5,,,,,,,,,,,,,,,",  # id already used in records.jsonl
    ]
    (root / "visits.csv").write_text("\n".join(csv_lines) + "\n", encoding="utf-8")
    return root
