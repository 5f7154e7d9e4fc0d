"""FineFS adapter on fixtures in the format of the released annotation/<number>.json files."""

import json

import pytest

from hieroaction.data.adapters import get_adapter
from hieroaction.data.adapters.finefs import FineFSOptions, default_splits, load, parse_time
from hieroaction.data.validate import validate_dataset
from hieroaction.errors import DataError
from tests.data.other_fixtures import FINEFS_PROGRAMS, by_id, write_finefs


def test_program_totals_elements_as_steps(tmp_path):
    root = write_finefs(tmp_path / "data")
    result = get_adapter("finefs").load(root, None)
    records = by_id(result)
    assert sorted(records) == ["finefs/0", "finefs/1", "finefs/729"]
    rec = records["finefs/0"]
    assert (rec.dataset, rec.domain, rec.action.label) == ("finefs", "figure_skating",
                                                          "short program")
    assert rec.score.final == 59.64
    assert rec.score.components == {"tes": 25.64, "pcs": 35.0, "deductions": 1.0}
    assert rec.video.fps == 25.0 and rec.video.start_frame == 0
    assert rec.video.path == str(root / "video" / "0.mp4")
    # "0-22,0-25" -> seconds 22..25 -> frames 550..625 at 25 fps
    assert [(s.label, s.start_frame, s.end_frame, s.score) for s in rec.steps] == [
        ("3F+1Eu+3S", 550, 625, 11.3), ("FCSp4", 1625, 1875, 3.7), ("3Lz", 2500, 2550, 674.0),
        ("StSq3", 3025, 3750, 3.9)]
    elements = rec.action.attributes["elements"]
    assert [e["coarse_class"] for e in elements] == ["jump", "spin", "jump", "sequence"]
    assert elements[0]["bv"] == 10.1 and elements[0]["judge_score"][:3] == [1, 2, 1]
    assert rec.action.attributes["program"] == "short_program"
    assert rec.action.attributes["competition"] == "WC2019_Men"
    assert set(rec.action.attributes["program_component"]) >= {"skating_skills", "interpretation"}
    free = records["finefs/729"]
    assert free.action.label == "free skating" and free.score.components["deductions"] == 2.0
    assert [s.label for s in free.steps] == ["3A"]  # 2A has an unreadable time
    # short and free programs get their own observed ranges
    assert rec.score.range == (42.4, 59.64)
    assert free.score.range == (0.0, 300.0)  # a single free program: the domain's range


def test_problems(tmp_path):
    root = write_finefs(tmp_path / "data")
    result = load(root)
    problems = sorted((p.kind, p.id) for p in result.problems)
    assert problems == [("label", "finefs/0"), ("steps", "finefs/729"),
                        ("unreadable", "finefs/730")]
    label = next(p for p in result.problems if p.kind == "label")
    assert "674" in label.detail and "6.74" in label.detail
    # the validator adds the elements that overlap (program 1's spin starts before its jump ends)
    report = validate_dataset("finefs", root)
    assert ("steps", "finefs/1") in {(p.kind, p.id) for p in report.problems}
    assert not [p for p in report.problems if p.kind == "score_rule"]


def test_split_files_and_the_deterministic_split(tmp_path):
    records = by_id(load(write_finefs(tmp_path / "a", split_files=True)))
    assert records["finefs/0"].split == "train" and records["finefs/1"].split == "test"
    result = load(tmp_path / "a")
    assert sorted((p.kind, p.id) for p in result.problems if p.kind in ("missing", "label")) == [
        ("label", "finefs/0"), ("label", "finefs/729"), ("missing", "finefs/1100")]
    assert records["finefs/729"].split == "train"  # listed in both: the first file wins
    # over the full release: 583 + 350 train, 146 + 88 test, as in the FineFS paper
    full = default_splits(range(1167), FineFSOptions())
    short = [full[n] for n in range(729)]
    assert short.count("train") == 583 and short.count("test") == 146
    free = [full[n] for n in range(729, 1167)]
    assert free.count("train") == 350 and free.count("test") == 88
    # a program's split does not depend on which others are present
    assert default_splits([5, 800], FineFSOptions()) == {5: full[5], 800: full[800]}
    assert default_splits(range(1167), FineFSOptions(split_salt="other")) != full


def test_time_parsing_and_deduction_sign(tmp_path):
    assert parse_time("2-05,2-12") == (125, 132)
    assert parse_time("0-22, 0-25") == (22, 25)
    assert parse_time("1-70,1-72") is None and parse_time(None) is None
    program = dict(FINEFS_PROGRAMS[0], deductions=-1.0)
    (tmp_path / "annotation").mkdir()
    (tmp_path / "annotation" / "5.json").write_text(json.dumps(program), encoding="utf-8")
    (rec,) = load(tmp_path).records
    assert rec.score.components["deductions"] == 1.0


def test_no_annotation_files(tmp_path):
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match="<number>.json"):
        load(tmp_path)
