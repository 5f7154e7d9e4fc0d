"""JIGSAWS adapter: USDL-style label/split pickles and the release's meta files."""

import json
import os
import pickle

import pytest

from hieroaction.data.adapters import get_adapter
from hieroaction.data.adapters.jigsaws import default_folds, load, parse_trial
from hieroaction.data.validate import validate_dataset
from hieroaction.domains import get_domain
from hieroaction.errors import DataError, UnsafePickleError
from tests.data.other_fixtures import by_id, write_jigsaws_pickles, write_jigsaws_release


def test_label_and_split_pickles(tmp_path):
    result = get_adapter("jigsaws").load(write_jigsaws_pickles(tmp_path / "info"), None)
    records = by_id(result)
    assert len(records) == 9
    rec = records["jigsaws/Suturing_B002"]  # stored as a numpy int64 array
    items = get_domain("surgical").components
    assert list(rec.score.components) == list(items) and len(items) == 6
    assert list(rec.score.components.values()) == [3, 3, 2, 3, 3, 3]
    assert rec.score.final == 17 and rec.score.range == (6.0, 30.0)
    assert (rec.dataset, rec.domain, rec.action.label) == ("jigsaws", "surgical", "Suturing")
    assert rec.action.attributes == {"task": "Suturing", "surgeon": "B", "trial": 2}
    assert rec.video.fps == 30.0
    # split = the fold in which the trial is a test trial
    assert rec.split == "fold1"
    assert records["jigsaws/Suturing_E001"].split == "fold0"
    assert records["jigsaws/Needle_Passing_D001"].split == "fold1"
    problems = sorted((p.kind, p.id) for p in result.problems)
    assert problems == [
        ("label", "jigsaws/Needle_Passing_D001"),  # an item scored 6
        ("missing", "jigsaws/Knot_Tying_F001"),  # in a fold, no label
        ("unreadable", "jigsaws/Juggling_B001"),  # not a JIGSAWS task
        ("unreadable", "jigsaws/Needle_Passing_E001"),  # five items
    ]


def test_release_meta_files_give_skill_and_the_stored_total(tmp_path):
    root = write_jigsaws_release(tmp_path / "JIGSAWS")
    result = load(root)
    records = by_id(result)
    assert sorted(records) == ["jigsaws/Knot_Tying_B001", "jigsaws/Suturing_B001",
                               "jigsaws/Suturing_B002", "jigsaws/Suturing_C001",
                               "jigsaws/Suturing_D001"]
    b001 = records["jigsaws/Suturing_B001"]
    assert b001.action.attributes["skill_level"] == "novice"
    assert records["jigsaws/Suturing_C001"].action.attributes["skill_level"] == "intermediate"
    assert b001.video.path == str(root / "Suturing" / "video" / "Suturing_B001_capture1.avi")
    # no split file: sorted trials of each task dealt round-robin into 4 folds
    assert [records[f"jigsaws/Suturing_{t}"].split for t in ("B001", "B002", "C001", "D001")] == [
        "fold0", "fold1", "fold2", "fold3"]
    assert [(p.kind, p.id) for p in result.problems] == [
        ("unreadable", "meta_file_Knot_Tying.txt:2")]
    # the stored total 31 of Suturing_D001 is not the sum of its items (30)
    report = validate_dataset("jigsaws", root)
    assert [(p.kind, p.id) for p in report.problems if p.kind == "score_rule"] == [
        ("score_rule", "jigsaws/Suturing_D001")]


def test_label_file_and_meta_files_together(tmp_path):
    root = write_jigsaws_release(tmp_path / "JIGSAWS")
    labels = {"Suturing_B001": [2, 2, 2, 2, 2, 3], "Suturing_B002": [3, 3, 3, 3, 3, 3]}
    (root / "label.json").write_text(json.dumps(labels), encoding="utf-8")
    result = load(root)
    records = by_id(result)
    b002 = records["jigsaws/Suturing_B002"]
    assert list(b002.score.components.values()) == [3] * 6  # items from the label file
    assert b002.score.final == 17  # total from the meta file
    assert b002.action.attributes["skill_level"] == "novice"
    disagreements = [p for p in result.problems if p.kind == "label"]
    assert [p.id for p in disagreements] == ["jigsaws/Suturing_B002"]
    assert "meta_file_Suturing.txt" in disagreements[0].detail


def test_default_folds_and_trial_names():
    assert parse_trial("Needle_Passing_B001") == ("Needle_Passing", "B", 1)
    assert parse_trial("Knot_Tying_I005") == ("Knot_Tying", "I", 5)
    assert parse_trial("Suturing_B1") is None and parse_trial("Juggling_B001") is None
    names = [f"Suturing_{s}00{i}" for s in "BCDEF" for i in (1, 2)] + ["Knot_Tying_B001"]
    folds = default_folds(names, 4)
    assert folds["Knot_Tying_B001"] == "fold0"
    counts = [sum(v == f"fold{k}" for n, v in folds.items() if n.startswith("Suturing"))
              for k in range(4)]
    assert counts == [3, 3, 2, 2]
    assert default_folds(list(reversed(names)), 4) == folds  # independent of input order


def test_missing_labels_and_unsafe_pickle(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="label.pkl or label.json"):
        load(tmp_path / "empty")

    class Exploit:
        def __reduce__(self):
            return (os.getcwd, ())

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "label.pkl").write_bytes(pickle.dumps({"Suturing_B001": Exploit()}))
    with pytest.raises(UnsafePickleError, match="label.pkl"):
        load(bad)
    (bad / "label.pkl").write_bytes(pickle.dumps(["not", "a", "dict"]))
    with pytest.raises(DataError, match="expected a dict"):
        load(bad)
